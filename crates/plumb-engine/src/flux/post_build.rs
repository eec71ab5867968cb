//! What a Flux Kustomization does to the built objects before applying them:
//! `spec.commonMetadata` (labels and annotations on every object's metadata, selectors left
//! alone), `spec.postBuild` variable substitution ([`super::substitute`]) unless the object
//! says `kustomize.toolkit.fluxcd.io/substitute: disabled`, and the ownership labels
//! `kustomize.toolkit.fluxcd.io/name` and `.../namespace`. Pure.

use super::substitute::{has_variables, substitute};
use super::{NAME_LABEL, NAMESPACE_LABEL, SUBSTITUTE_ANNOTATION};
use plumb_core::key::str_at;
use plumb_core::manifest::Manifest;
use plumb_core::tracking::set_metadata_entry;
use std::collections::BTreeMap;

/// Options of [`post_build`].
#[derive(Debug, Clone, Default)]
pub struct PostBuild {
    /// `spec.commonMetadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `spec.commonMetadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// The variables, when `spec.postBuild` is set.
    pub variables: Option<BTreeMap<String, String>>,
    /// The Kustomization's name.
    pub owner_name: String,
    /// The Kustomization's namespace.
    pub owner_namespace: String,
}

/// `Kind/namespace/name` (or `Kind/name`) of an object, for messages.
pub fn describe(object: &serde_json::Value) -> String {
    let kind = str_at(object, &["kind"]);
    let namespace = str_at(object, &["metadata", "namespace"]);
    let name = str_at(object, &["metadata", "name"]);
    if namespace.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}/{namespace}/{name}")
    }
}

/// Applies `options` to every manifest.
///
/// **Errors**: a substitution error or an object that no longer parses as one object after
/// substitution, naming the object and the file it came from.
pub fn post_build(manifests: Vec<Manifest>, options: &PostBuild) -> Result<Vec<Manifest>, String> {
    let mut out = Vec::with_capacity(manifests.len());
    for mut manifest in manifests {
        for (key, value) in &options.labels {
            set_metadata_entry(&mut manifest.object, "labels", key, value.clone());
        }
        for (key, value) in &options.annotations {
            set_metadata_entry(&mut manifest.object, "annotations", key, value.clone());
        }
        if let Some(variables) = &options.variables {
            let disabled = str_at(
                &manifest.object,
                &["metadata", "annotations", SUBSTITUTE_ANNOTATION],
            ) == "disabled";
            if !disabled {
                let what = format!("{}: {}", manifest.origin.file, describe(&manifest.object));
                let text = plumb_render::flux::to_yaml(&manifest.object);
                if has_variables(&text) {
                    let replaced = substitute(&text, variables).map_err(|error| {
                        format!("{what}: variable substitution failed: {error}")
                    })?;
                    let mut documents = plumb_render::parse_documents(
                        "substituted.yaml",
                        &replaced,
                    )
                    .map_err(|error| {
                        // Only the position and the reason: the parser's excerpt
                        // would show substituted values, which may come from a Secret.
                        let reason = error.message.split(" --> ").next().unwrap_or_default();
                        format!("{what}: not valid YAML after variable substitution: {reason}")
                    })?;
                    if documents.len() != 1 {
                        return Err(format!(
                            "{what}: variable substitution turned one object into {}",
                            documents.len()
                        ));
                    }
                    manifest.object = documents.remove(0).1;
                    manifest
                        .validate()
                        .map_err(|error| format!("{what}: after variable substitution: {error}"))?;
                }
            }
        }
        set_metadata_entry(
            &mut manifest.object,
            "labels",
            NAME_LABEL,
            options.owner_name.clone(),
        );
        set_metadata_entry(
            &mut manifest.object,
            "labels",
            NAMESPACE_LABEL,
            options.owner_namespace.clone(),
        );
        out.push(manifest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(object: serde_json::Value) -> Manifest {
        Manifest {
            object,
            origin: plumb_core::manifest::Origin {
                file: "apps/kustomization.yaml".into(),
                document: 0,
            },
        }
    }

    fn options(variables: Option<&[(&str, &str)]>) -> PostBuild {
        PostBuild {
            labels: BTreeMap::from([("team".into(), "a".into())]),
            annotations: BTreeMap::new(),
            variables: variables.map(|v| {
                v.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
            owner_name: "apps".into(),
            owner_namespace: "flux-system".into(),
        }
    }

    #[test]
    fn substitutes_typed_values_and_stamps_labels() {
        let deployment = manifest(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "${ns:=default}"},
            "spec": {"replicas": "${replicas}", "selector": {"matchLabels": {"app": "web"}}}}));
        let out =
            post_build(vec![deployment], &options(Some(&[("replicas", "3")]))).expect("builds");
        let object = &out[0].object;
        assert_eq!(
            object["spec"]["replicas"],
            json!(3),
            "a number after substitution"
        );
        assert_eq!(object["metadata"]["namespace"], "default");
        assert_eq!(object["metadata"]["labels"][NAME_LABEL], "apps");
        assert_eq!(object["metadata"]["labels"][NAMESPACE_LABEL], "flux-system");
        assert_eq!(object["metadata"]["labels"]["team"], "a");
        assert_eq!(
            object["spec"]["selector"]["matchLabels"],
            json!({"app": "web"}),
            "selectors untouched"
        );
    }

    #[test]
    fn disabled_objects_and_no_post_build_keep_variables() {
        let script = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "script", "annotations": {SUBSTITUTE_ANNOTATION: "disabled"}},
            "data": {"run.sh": "echo ${HOME}"}});
        let out = post_build(vec![manifest(script.clone())], &options(Some(&[]))).expect("builds");
        assert_eq!(out[0].object["data"]["run.sh"], "echo ${HOME}");
        let out = post_build(vec![manifest(script)], &options(None)).expect("builds");
        assert_eq!(out[0].object["data"]["run.sh"], "echo ${HOME}");
    }

    #[test]
    fn substitution_errors_name_the_object() {
        let bad = manifest(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "apps"}, "data": {"a": "${x:1}"}}));
        let error = post_build(vec![bad], &options(Some(&[]))).expect_err("unsupported");
        assert!(
            error.starts_with(
                "apps/kustomization.yaml: ConfigMap/apps/cfg: variable substitution failed"
            ),
            "{error}"
        );
        let breaks = manifest(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg"}, "data": {"a": "${x}"}}));
        let error = post_build(vec![breaks], &options(Some(&[("x", "[unclosed")])))
            .expect_err("invalid yaml");
        assert!(error.contains("ConfigMap/cfg: not valid YAML"), "{error}");
        println!("{error}");
    }
}
