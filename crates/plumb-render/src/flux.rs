//! Flux's kustomize-controller build: the path of a Flux `Kustomization` built with Kustomize,
//! with the `Kustomization`'s overlay (target namespace, name prefix and suffix, images,
//! patches, components) applied to the top-level kustomization and no load restriction inside
//! the snapshot (Flux builds with `LoadRestrictionsNone`).
//!
//! A path without a kustomization file gets one generated, as Flux does: every `.yaml`/`.yml`
//! file under it, recursively, in lexical order; a subdirectory holding its own kustomization
//! file is listed as a directory and not descended into. What Flux leaves out of artifacts by
//! default (`.git/`, `.github/`, `.circleci/`, CI files such as `.gitlab-ci.yml`) is skipped.

use crate::{Error, Limits, confine, relative};
use plumb_core::manifest::Manifest;
use serde_json::Value;
use std::path::Path;

pub use plumb_kustomize::{
    Image as KustomizeImage, Patch as KustomizePatch, PatchTarget as KustomizePatchTarget,
};

/// What a Flux `Kustomization` asks of the build.
#[derive(Debug, Clone, Default)]
pub struct FluxBuild {
    /// `spec.targetNamespace`.
    pub target_namespace: Option<String>,
    /// `spec.namePrefix`.
    pub name_prefix: Option<String>,
    /// `spec.nameSuffix`.
    pub name_suffix: Option<String>,
    /// `spec.images`.
    pub images: Vec<KustomizeImage>,
    /// `spec.patches`.
    pub patches: Vec<KustomizePatch>,
    /// `spec.components`, relative to the path.
    pub components: Vec<String>,
}

const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Directories and files Flux's source-controller leaves out of every artifact by default
/// (CI configuration and the like), so a generated kustomization does not list them.
const DEFAULT_EXCLUDED_DIRS: [&str; 3] = [".git", ".github", ".circleci"];
const DEFAULT_EXCLUDED_FILES: [&str; 10] = [
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
    ".goreleaser.yml",
    ".sops.yaml",
    ".flux.yaml",
];

fn has_kustomization(dir: &Path) -> bool {
    KUSTOMIZATION_FILES.iter().any(|f| dir.join(f).is_file())
}

/// Builds `path` (relative to the snapshot `root`, `./` allowed) the way Flux does.
///
/// **Errors**: a path that does not exist or leads outside the snapshot, more files or deeper
/// directories than `limits` allow while generating a kustomization, and any Kustomize error
/// (naming the file and field); nothing is returned partially.
pub fn render_flux(
    root: &Path,
    path: &str,
    build: &FluxBuild,
    limits: &Limits,
) -> Result<Vec<Manifest>, Error> {
    let root = root.canonicalize().map_err(|source| Error::Read {
        path: ".".into(),
        source,
    })?;
    let cleaned = path.trim_start_matches("./").trim_start_matches('/');
    let dir = confine(&root, Path::new(cleaned), path)?;
    if !dir.is_dir() {
        return Err(Error::PathNotFound {
            path: path.to_string(),
        });
    }
    let options = plumb_kustomize::Options {
        max_file_size: limits.max_file_bytes,
        max_total_bytes: limits.max_total_bytes,
        max_files: limits.max_files,
        max_depth: limits.max_depth,
        load_restrictor: plumb_kustomize::LoadRestrictor::None,
        ..Default::default()
    };
    let overrides = plumb_kustomize::Overrides {
        name_prefix: build.name_prefix.clone(),
        name_suffix: build.name_suffix.clone(),
        namespace: build.target_namespace.clone(),
        images: build.images.clone(),
        patches: build.patches.clone(),
        components: build.components.clone(),
        ..Default::default()
    };
    let shown = relative(&root, &dir);
    let objects = if has_kustomization(&dir) {
        plumb_kustomize::build_with_overrides(&root, &dir, &options, &overrides)
    } else {
        let resources = generated_resources(&root, &dir, limits)?;
        plumb_kustomize::build_generated(&root, &dir, &options, &overrides, &resources)
    }
    .map_err(|source| Error::Kustomize {
        path: shown.clone(),
        source,
    })?;
    let manifests = crate::manifests_from(objects, &format!("{shown}/kustomization.yaml"));
    for manifest in &manifests {
        manifest.validate()?;
    }
    Ok(manifests)
}

/// The resources of the kustomization Flux generates for `dir`.
fn generated_resources(root: &Path, dir: &Path, limits: &Limits) -> Result<Vec<String>, Error> {
    let mut resources = Vec::new();
    let mut seen = 0usize;
    walk(root, dir, dir, 0, limits, &mut seen, &mut resources)?;
    Ok(resources)
}

/// Depth-first in lexical order, like Go's `filepath.Walk`; bounded by `limits`.
fn walk(
    root: &Path,
    top: &Path,
    current: &Path,
    depth: usize,
    limits: &Limits,
    seen: &mut usize,
    resources: &mut Vec<String>,
) -> Result<(), Error> {
    if depth > limits.max_depth {
        return Err(Error::LimitExceeded {
            what: "directory depth",
            limit: limits.max_depth as u64,
        });
    }
    let mut entries: Vec<_> = std::fs::read_dir(current)
        .map_err(|source| Error::Read {
            path: relative(root, current),
            source,
        })?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        *seen += 1;
        if *seen > limits.max_files {
            return Err(Error::LimitExceeded {
                what: "number of files",
                limit: limits.max_files as u64,
            });
        }
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let rel = path
            .strip_prefix(top)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() {
            if DEFAULT_EXCLUDED_DIRS.contains(&name.as_ref()) {
                continue;
            }
            if has_kustomization(&path) {
                resources.push(rel);
            } else {
                walk(root, top, &path, depth + 1, limits, seen, resources)?;
            }
            continue;
        }
        // Symlinks count as files here (Go's Walk does not follow them); the loader confines
        // what they point to when it reads them.
        if DEFAULT_EXCLUDED_FILES.contains(&name.as_ref()) {
            continue;
        }
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            resources.push(rel);
        }
    }
    Ok(())
}

/// What one Flux post-renderer (`HelmRelease.spec.postRenderers[].kustomize`) asks of the
/// rendered chart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PostRenderer {
    /// `patches` (and the older `patchesStrategicMerge`/`patchesJson6902`, as patches).
    pub patches: Vec<KustomizePatch>,
    /// `images`.
    pub images: Vec<KustomizeImage>,
}

/// Runs `renderer` over `objects` as Flux's Kustomize post-renderer does: the objects are the
/// resources of a kustomization carrying the renderer's patches and images. Each object keeps
/// its origin (a patch cannot rename an object) and its place in the order.
///
/// **Errors**: a patch Kustomize refuses (malformed, or a strategic merge patch whose target
/// is not among the objects), named with `name` (the field path of the renderer).
pub fn post_render(
    objects: Vec<Manifest>,
    renderer: &PostRenderer,
    name: &str,
    limits: &Limits,
) -> Result<Vec<Manifest>, Error> {
    if renderer.patches.is_empty() && renderer.images.is_empty() {
        return Ok(objects);
    }
    let dir = tempfile::tempdir().map_err(|source| Error::Read {
        path: name.to_string(),
        source,
    })?;
    let values: Vec<Value> = objects.iter().map(|m| m.object.clone()).collect();
    std::fs::write(
        dir.path().join("resources.yaml"),
        plumb_kustomize::to_yaml(&values),
    )
    .map_err(|source| Error::Read {
        path: name.to_string(),
        source,
    })?;
    let options = plumb_kustomize::Options {
        max_file_size: limits.max_file_bytes,
        max_total_bytes: limits.max_total_bytes,
        max_files: limits.max_files,
        max_depth: limits.max_depth,
        ..Default::default()
    };
    let overrides = plumb_kustomize::Overrides {
        images: renderer.images.clone(),
        patches: renderer.patches.clone(),
        ..Default::default()
    };
    let built = plumb_kustomize::build_generated(
        dir.path(),
        dir.path(),
        &options,
        &overrides,
        &["resources.yaml".to_string()],
    )
    .map_err(|source| Error::Kustomize {
        path: name.to_string(),
        source,
    })?;
    let identity = |object: &Value| {
        let text = |path: &[&str]| plumb_core::key::str_at(object, path).to_string();
        (
            text(&["apiVersion"]),
            text(&["kind"]),
            text(&["metadata", "namespace"]),
            text(&["metadata", "name"]),
        )
    };
    let mut patched: std::collections::HashMap<_, Value> =
        built.into_iter().map(|o| (identity(&o), o)).collect();
    Ok(objects
        .into_iter()
        .map(|manifest| Manifest {
            object: patched
                .remove(&identity(&manifest.object))
                .unwrap_or(manifest.object),
            origin: manifest.origin,
        })
        .collect())
}

/// An object as YAML, printed the way `kustomize build` prints it (what Flux's variable
/// substitution runs over).
pub fn to_yaml(object: &Value) -> String {
    plumb_kustomize::yaml::to_yaml_document(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, text: &str) {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("dirs");
        std::fs::write(file, text).expect("write");
    }

    fn cm(name: &str) -> String {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n")
    }

    #[test]
    fn post_renderers_patch_and_retag_keeping_order_and_origins() {
        let deployment = |name: &str| Manifest {
            object: serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": "apps"},
                "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "ghcr.io/x/app:1.0"}]}}}}),
            origin: plumb_core::manifest::Origin {
                file: format!("chart/templates/{name}.yaml"),
                document: 0,
            },
        };
        let renderer = PostRenderer {
            patches: vec![
                KustomizePatch {
                    patch: Some("- op: add\n  path: /metadata/labels\n  value: {team: a}".into()),
                    target: Some(KustomizePatchTarget {
                        name: Some("web".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                KustomizePatch {
                    patch: Some(
                        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  namespace: apps\nspec:\n  replicas: 3\n"
                            .into(),
                    ),
                    ..Default::default()
                },
            ],
            images: vec![KustomizeImage {
                name: "ghcr.io/x/app".into(),
                new_tag: Some("2.0".into()),
                ..Default::default()
            }],
        };
        let out = post_render(
            vec![deployment("web"), deployment("api")],
            &renderer,
            "spec.postRenderers[0]",
            &Limits::default(),
        )
        .expect("post-rendered");
        assert_eq!(out[0].origin.file, "chart/templates/web.yaml");
        assert_eq!(out[0].object["metadata"]["labels"]["team"], "a");
        assert_eq!(out[1].object["spec"]["replicas"], 3);
        assert!(out[1].object["metadata"].get("labels").is_none());
        for manifest in &out {
            assert_eq!(
                manifest.object["spec"]["template"]["spec"]["containers"][0]["image"],
                "ghcr.io/x/app:2.0"
            );
        }
        let broken = PostRenderer {
            patches: vec![KustomizePatch {
                patch: Some("- op: replace\n  path: /spec/nothing/here\n  value: 1".into()),
                target: Some(KustomizePatchTarget {
                    kind: Some("Deployment".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            images: Vec::new(),
        };
        let error = post_render(
            vec![deployment("web")],
            &broken,
            "spec.postRenderers[1]",
            &Limits::default(),
        )
        .expect_err("a patch that cannot apply");
        assert!(
            error.to_string().contains("spec.postRenderers[1]"),
            "{error}"
        );
    }

    #[test]
    fn generated_kustomization_lists_yaml_files_recursively() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "apps/b.yaml", &cm("b"));
        write(root, "apps/a.yml", &cm("a"));
        write(root, "apps/notes.txt", "not yaml");
        write(root, "apps/sub/c.yaml", &cm("c"));
        write(
            root,
            "apps/zz/kustomization.yaml",
            "resources: [d.yaml]\nnamePrefix: k-\n",
        );
        write(root, "apps/zz/d.yaml", &cm("d"));
        write(root, "apps/zz/ignored.yaml", &cm("ignored"));
        write(root, "apps/.github/workflows/ci.yml", "on: push\n");
        write(root, "apps/.gitlab-ci.yml", "stages: [test]\n");
        let build = FluxBuild {
            target_namespace: Some("team".into()),
            ..Default::default()
        };
        let manifests = render_flux(root, "./apps", &build, &Limits::default()).expect("builds");
        let mut names: Vec<String> = manifests
            .iter()
            .map(|m| {
                format!(
                    "{}/{}",
                    m.object["metadata"]["namespace"].as_str().unwrap_or(""),
                    m.object["metadata"]["name"].as_str().unwrap_or("")
                )
            })
            .collect();
        names.sort();
        assert_eq!(names, ["team/a", "team/b", "team/c", "team/k-d"]);
        let resources = generated_resources(
            &root.canonicalize().expect("root"),
            &root.join("apps").canonicalize().expect("apps"),
            &Limits::default(),
        )
        .expect("scan");
        assert_eq!(resources, ["a.yml", "b.yaml", "sub/c.yaml", "zz"]);
    }

    #[test]
    fn an_existing_kustomization_gets_the_overlay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "base/cm.yaml", &cm("cm"));
        // Flux builds without kustomize's load restrictor: a file outside the directory works.
        write(
            root,
            "app/kustomization.yaml",
            "resources: [../base/cm.yaml]\n",
        );
        let build = FluxBuild {
            name_prefix: Some("p-".into()),
            name_suffix: Some("-s".into()),
            ..Default::default()
        };
        let manifests = render_flux(root, "app", &build, &Limits::default()).expect("builds");
        assert_eq!(manifests.len(), 1);
        assert_eq!(manifests[0].object["metadata"]["name"], "p-cm-s");
    }

    /// The Flux example repository of the corpus, built the way its cluster Kustomizations ask.
    #[test]
    fn flux_example_repository_builds() {
        // `../shared` next to the checkout (a worktree sits one level deeper).
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = ["../../../shared", "../../../../shared"]
            .iter()
            .map(|up| {
                manifest
                    .join(up)
                    .join("corpus/flux2-kustomize-helm-example-classic")
            })
            .find(|p| p.is_dir())
            .expect("the shared corpus");
        let kinds = |path: &str, build: &FluxBuild| -> Vec<String> {
            let mut kinds: Vec<String> = render_flux(&root, path, build, &Limits::default())
                .unwrap_or_else(|e| panic!("{path}: {e:?}"))
                .iter()
                .map(|m| {
                    format!(
                        "{}/{}",
                        m.object["kind"].as_str().unwrap_or(""),
                        m.object["metadata"]["name"].as_str().unwrap_or("")
                    )
                })
                .collect();
            kinds.sort();
            kinds
        };
        // clusters/production/infrastructure.yaml's patch of the ClusterIssuer.
        let production = FluxBuild {
            patches: vec![KustomizePatch {
                patch: Some(
                    "- op: replace\n  path: /spec/acme/server\n  value: https://acme-v02.api.letsencrypt.org/directory\n"
                        .into(),
                ),
                target: Some(KustomizePatchTarget {
                    kind: Some("ClusterIssuer".into()),
                    name: Some("letsencrypt".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let configs = render_flux(
            &root,
            "./infrastructure/configs",
            &production,
            &Limits::default(),
        )
        .expect("configs build");
        assert_eq!(
            configs[0].object["spec"]["acme"]["server"],
            "https://acme-v02.api.letsencrypt.org/directory"
        );
        let controllers = kinds("./infrastructure/controllers", &FluxBuild::default());
        assert!(
            controllers.iter().any(|k| k.starts_with("HelmRelease/")),
            "{controllers:?}"
        );
        let apps = kinds("./apps/staging", &FluxBuild::default());
        assert!(
            apps.contains(&"HelmRelease/podinfo".to_string()),
            "{apps:?}"
        );
        assert!(apps.contains(&"Namespace/podinfo".to_string()), "{apps:?}");
        // No kustomization.yaml at clusters/staging: generated from its files and flux-system/.
        let cluster = kinds("./clusters/staging", &FluxBuild::default());
        assert!(
            cluster.contains(&"Kustomization/apps".to_string())
                && cluster.contains(&"Kustomization/infra-controllers".to_string())
                && cluster.contains(&"Kustomization/infra-configs".to_string()),
            "{cluster:?}"
        );
    }

    #[test]
    fn bad_paths_and_bad_yaml_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "app/bad.yaml", "apiVersion: v1\nkind: [unclosed\n");
        let missing = render_flux(root, "./nope", &FluxBuild::default(), &Limits::default());
        assert!(matches!(missing, Err(Error::PathNotFound { .. })));
        let outside = render_flux(root, "../", &FluxBuild::default(), &Limits::default());
        assert!(outside.is_err());
        let bad = render_flux(root, "app", &FluxBuild::default(), &Limits::default())
            .expect_err("invalid yaml fails");
        let mut text = bad.to_string();
        let mut cause = std::error::Error::source(&bad);
        while let Some(next) = cause {
            text.push_str(&format!(": {next}"));
            cause = next.source();
        }
        assert!(text.contains("bad.yaml"), "{text}");
    }
}
