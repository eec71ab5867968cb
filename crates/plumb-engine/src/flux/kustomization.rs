//! `Kustomization`: build `spec.path` of its source's revision, apply, prune, check health,
//! and write Flux's status (`Ready` with Flux's reasons, `lastAppliedRevision`,
//! `lastAttemptedRevision`, `inventory`).
//!
//! Reasons written on `Ready=False`: `InvalidSpec` and `InvalidCELExpression` (with
//! `Stalled`), `DependencyNotReady`,
//! `ArtifactFailed`, `BuildFailed`, `ReconciliationFailed`, `PruneFailed`,
//! `HealthCheckFailed`; `Ready=Unknown` with `Progressing` while a new revision or spec is
//! applied and while health checks run; and
//! `ReconciliationSucceeded` on success.

use super::apply::{self, ApplySettings};
use super::conditions::{self, Condition};
use super::git_repository;
use super::inventory::{self, Entry};
use super::kustomization_spec::{KustomizationSpec, dependency_cycle};
use super::post_build::{PostBuild, post_build};
use super::remote::{Cleanup, Target};
use super::substitute::is_valid_name;
use super::{Flux, FluxKind, is_ready};
use crate::queue::AppId;
use crate::sources::{Resolved, error_chain};
use crate::status::now;
use base64::Engine as _;
use plumb_core::key::{ObjectKey, str_at};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How soon a Kustomization waiting for a dependency looks again (Flux's default
/// `--requeue-dependency`); a dependency becoming ready wakes it sooner.
const REQUEUE_DEPENDENCY: Duration = Duration::from_secs(30);

/// How a reconcile ended, for the status.
struct Outcome {
    ready: &'static str,
    reason: &'static str,
    message: String,
    stalled: bool,
    /// The revision attempted, when known.
    attempted: Option<String>,
    /// Set on success: the revision now applied.
    applied: Option<String>,
    /// The new inventory, when objects were applied.
    inventory: Option<Vec<Entry>>,
    /// `Healthy` condition, when health was checked.
    healthy: Option<Condition>,
}

impl Outcome {
    fn failed(reason: &'static str, message: impl Into<String>) -> Outcome {
        Outcome {
            ready: "False",
            reason,
            message: message.into(),
            stalled: false,
            attempted: None,
            applied: None,
            inventory: None,
            healthy: None,
        }
    }

    fn attempted(mut self, revision: &str) -> Outcome {
        self.attempted = Some(revision.to_string());
        self
    }
}

/// The status for `outcome`, keeping what it does not change from the previous status.
fn status_for(object: &Value, outcome: &Outcome, warnings: &[String]) -> Value {
    let previous = object.get("status").cloned().unwrap_or(Value::Null);
    let mut status = super::reconcile_fields(object, &previous);
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let applied = outcome
        .applied
        .clone()
        .unwrap_or_else(|| str_at(&previous, &["lastAppliedRevision"]).to_string());
    if !applied.is_empty() {
        status.insert("lastAppliedRevision".into(), json!(applied));
    }
    let attempted = outcome
        .attempted
        .clone()
        .unwrap_or_else(|| str_at(&previous, &["lastAttemptedRevision"]).to_string());
    if !attempted.is_empty() {
        status.insert("lastAttemptedRevision".into(), json!(attempted));
    }
    match &outcome.inventory {
        Some(entries) => {
            status.insert("inventory".into(), inventory::to_json(entries));
        }
        None => {
            if let Some(old) = previous.get("inventory").filter(|i| !i.is_null()) {
                status.insert("inventory".into(), old.clone());
            }
        }
    }
    let mut list = conditions::ready_conditions(
        outcome.ready,
        outcome.reason,
        &outcome.message,
        outcome.stalled,
    );
    if let Some(healthy) = &outcome.healthy {
        list.push(healthy.clone());
    }
    if !warnings.is_empty() {
        list.push(Condition::new(
            conditions::FIELDS_NOT_ACTED_ON,
            "True",
            "NotSupportedYet",
            format!("accepted but not acted on: {}", warnings.join("; ")),
        ));
    }
    let old_conditions = previous.get("conditions").cloned().unwrap_or(Value::Null);
    status.insert(
        "conditions".into(),
        conditions::to_json(&list, &old_conditions, generation, &now()),
    );
    Value::Object(status)
}

/// The decoded `data` and `stringData` of a Secret or ConfigMap.
pub(crate) fn secret_or_configmap_values(object: &Value) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    let is_secret = str_at(object, &["kind"]) == "Secret";
    if let Some(data) = object.get("data").and_then(Value::as_object) {
        for (key, value) in data {
            let Some(text) = value.as_str() else { continue };
            let decoded = if is_secret {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
            } else {
                Some(text.to_string())
            };
            if let Some(decoded) = decoded {
                values.insert(key.clone(), decoded);
            }
        }
    }
    if let Some(data) = object.get("stringData").and_then(Value::as_object) {
        for (key, value) in data {
            if let Some(text) = value.as_str() {
                values.insert(key.clone(), text.to_string());
            }
        }
    }
    values
}

/// The variables of `spec.postBuild`: each `substituteFrom` in order, then `substitute` over
/// them. Values are never part of an error.
async fn variables(
    flux: &Flux,
    namespace: &str,
    spec: &KustomizationSpec,
) -> Result<BTreeMap<String, String>, String> {
    let mut variables = BTreeMap::new();
    for (index, from) in spec.substitute_from.iter().enumerate() {
        let found = flux
            .context
            .cluster
            .get("v1", &from.kind, namespace, &from.name)
            .await
            .map_err(|e| {
                format!(
                    "spec.postBuild.substituteFrom[{index}]: cannot read {} {:?}: {}",
                    from.kind,
                    from.name,
                    error_chain(&e)
                )
            })?;
        match found {
            Some(object) => {
                for (key, value) in secret_or_configmap_values(&object) {
                    if !is_valid_name(&key) {
                        return Err(format!(
                            "spec.postBuild.substituteFrom[{index}]: {} {:?}: key {key:?} is not a valid variable name (names match [_a-zA-Z][_a-zA-Z0-9]*)",
                            from.kind, from.name
                        ));
                    }
                    variables.insert(key, value);
                }
            }
            None if from.optional => {}
            None => {
                return Err(format!(
                    "spec.postBuild.substituteFrom[{index}]: {} '{namespace}/{}' not found",
                    from.kind, from.name
                ));
            }
        }
    }
    variables.extend(spec.substitute.clone());
    Ok(variables)
}

/// Reconciles the Kustomization `id`; returns when to look again.
pub(crate) async fn reconcile(flux: &Arc<Flux>, id: &AppId) -> Option<Duration> {
    let object = flux.get(FluxKind::Kustomization, id)?;
    let parsed = KustomizationSpec::parse(object.get("spec").unwrap_or(&Value::Null), &id.0);
    if object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return finalize(flux, id, &object, parsed.ok().as_ref()).await;
    }
    let spec = match parsed {
        Ok(spec) => spec,
        Err(error) => {
            let mut outcome = Outcome::failed(error.reason(), error.to_string());
            outcome.stalled = true;
            let status = status_for(&object, &outcome, &[]);
            flux.write_status(FluxKind::Kustomization, &object, status)
                .await;
            return None;
        }
    };
    if spec.suspend {
        return None;
    }
    if spec.deletion_policy.deletes_objects(spec.prune) && !has_finalizer(&object) {
        // Deleting the Kustomization must be able to garbage-collect its objects first.
        let mut finalizers = finalizers(&object);
        finalizers.push(FINALIZER.to_string());
        set_finalizers(flux, id, finalizers).await;
    }
    let warnings = spec.not_acted_on.clone();
    let (outcome, requeue) = run(flux, id, &object, &spec).await;
    let status = status_for(&object, &outcome, &warnings);
    flux.write_status(FluxKind::Kustomization, &object, status)
        .await;
    Some(requeue)
}

/// The finalizer that lets a deleted Kustomization prune its objects first (Flux's).
pub const FINALIZER: &str = "finalizers.fluxcd.io";

fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn has_finalizer(object: &Value) -> bool {
    finalizers(object).iter().any(|f| f == FINALIZER)
}

async fn set_finalizers(flux: &Flux, id: &AppId, finalizers: Vec<String>) {
    if let Err(error) = flux
        .context
        .cluster
        .merge_patch(
            super::KUSTOMIZE_API_VERSION,
            "Kustomization",
            &id.0,
            &id.1,
            &json!({"metadata": {"finalizers": finalizers}}),
        )
        .await
    {
        tracing::warn!(namespace = %id.0, name = %id.1, error = %error_chain(&error), "cannot update Kustomization finalizers");
    }
}

/// A Kustomization being deleted: prune its inventory as `spec.deletionPolicy` says, then
/// release the finalizer. Only objects still carrying its labels are deleted.
async fn finalize(
    flux: &Arc<Flux>,
    id: &AppId,
    object: &Value,
    spec: Option<&KustomizationSpec>,
) -> Option<Duration> {
    if !has_finalizer(object) {
        return None;
    }
    let status = object.get("status").cloned().unwrap_or(Value::Null);
    let entries = inventory::read(&status);
    let policy = spec.map_or(super::kustomization_spec::DeletionPolicy::Orphan, |s| {
        s.deletion_policy
    });
    let prune = spec.is_some_and(|s| s.prune);
    if policy.deletes_objects(prune) && !spec.is_some_and(|s| s.suspend) {
        let target = spec.map_or(Target::default(), KustomizationSpec::target);
        match super::remote::cleanup_cluster(flux, id, target, "Kustomization").await {
            Cleanup::Retry => return Some(Duration::from_secs(5)),
            Cleanup::Orphan => {}
            Cleanup::Reach(cluster) => {
                let cluster = &cluster;
                if let Err(message) = apply::prune(
                    cluster,
                    &entries,
                    &apply::Owner::kustomization(&id.1, &id.0),
                )
                .await
                {
                    tracing::warn!(namespace = %id.0, name = %id.1, %message, "cannot prune a deleted Kustomization's objects; retrying");
                    return Some(Duration::from_secs(5));
                }
                if policy == super::kustomization_spec::DeletionPolicy::WaitForTermination {
                    let timeout = spec.map_or(Duration::from_secs(60), |s| s.timeout);
                    let objects: Vec<(String, ObjectKey)> =
                        entries.iter().filter_map(Entry::object).collect();
                    if let Err(message) = apply::wait_deleted(cluster, &objects, timeout).await {
                        tracing::warn!(namespace = %id.0, name = %id.1, %message, "objects of a deleted Kustomization still terminating");
                    }
                }
            }
        }
    }
    let remaining: Vec<String> = finalizers(object)
        .into_iter()
        .filter(|f| f != FINALIZER)
        .collect();
    set_finalizers(flux, id, remaining).await;
    None
}

/// A step's result: its value, or how the reconcile ends and when to look again (boxed: the
/// outcome is large).
type Step<T> = Result<T, Box<(Outcome, Duration)>>;

/// Dependencies, source, build, apply, prune, health: the outcome and when to look again.
async fn run(
    flux: &Arc<Flux>,
    id: &AppId,
    object: &Value,
    spec: &KustomizationSpec,
) -> (Outcome, Duration) {
    let steps = async {
        check_dependencies(flux, id, spec)?;
        let artifact = artifact(flux, id, spec)?;
        let attempted = str_at(object, &["status", "lastAttemptedRevision"]);
        if artifact.revision != attempted || super::wants_reconcile(object) {
            // Something new to apply: say so, as Flux does, so `Ready` is never stale (retries
            // of the same revision do not flap it).
            let progressing = Outcome {
                ready: "Unknown",
                reason: "Progressing",
                message: format!(
                    "Reconciliation in progress for revision {}",
                    artifact.revision
                ),
                stalled: false,
                attempted: Some(artifact.revision.clone()),
                applied: None,
                inventory: None,
                healthy: None,
            };
            let status = status_for(object, &progressing, &spec.not_acted_on);
            flux.write_status(FluxKind::Kustomization, object, status)
                .await;
        }
        let objects = build(flux, id, spec, &artifact).await?;
        apply_prune_and_check(flux, id, object, spec, &artifact.revision, objects).await
    };
    match steps.await {
        Ok(outcome) => (outcome, spec.interval),
        Err(failed) => *failed,
    }
}

/// Fails unless every dependency exists, is ready, and (on the same source) has applied the
/// source's current revision; a cycle stalls.
fn check_dependencies(flux: &Flux, id: &AppId, spec: &KustomizationSpec) -> Step<()> {
    if spec.depends_on.is_empty() {
        return Ok(());
    }
    if let Some(cycle) = dependency_cycle(id, &flux.dependency_graph()) {
        let path: Vec<String> = cycle
            .iter()
            .map(|(ns, name)| format!("{ns}/{name}"))
            .collect();
        let mut outcome = Outcome::failed(
            "DependencyNotReady",
            format!("spec.dependsOn: dependency cycle: {}", path.join(" -> ")),
        );
        outcome.stalled = true;
        return Err(Box::new((outcome, spec.retry_interval)));
    }
    let not_ready = |message: String| -> Step<()> {
        Err(Box::new((
            Outcome::failed("DependencyNotReady", message),
            REQUEUE_DEPENDENCY,
        )))
    };
    let source_kind = match spec.source.kind.as_str() {
        "OCIRepository" => FluxKind::OciRepository,
        _ => FluxKind::GitRepository,
    };
    let wanted = flux
        .get(
            source_kind,
            &(spec.source.namespace.clone(), spec.source.name.clone()),
        )
        .map(|r| str_at(&r, &["status", "artifact", "revision"]).to_string())
        .unwrap_or_default();
    for (namespace, name) in &spec.depends_on {
        let Some(dependency) =
            flux.get(FluxKind::Kustomization, &(namespace.clone(), name.clone()))
        else {
            return not_ready(format!("dependency '{namespace}/{name}' not found"));
        };
        if !is_ready(&dependency) {
            return not_ready(format!("dependency '{namespace}/{name}' is not ready"));
        }
        // Same source: the dependency must have applied the revision this one is about to
        // apply, so a new commit rolls out in dependency order (as Flux).
        let same_source =
            super::kustomization_spec::source_ref(&dependency, namespace) == spec.source;
        if same_source
            && !wanted.is_empty()
            && str_at(&dependency, &["status", "lastAppliedRevision"]) != wanted
        {
            return not_ready(format!(
                "dependency '{namespace}/{name}' revision is not up to date"
            ));
        }
    }
    Ok(())
}

/// The source's current revision, as recorded by its GitRepository or OCIRepository.
struct Artifact {
    /// The Flux revision string (`main@sha1:<sha>`, `v1.0.0@sha256:<digest>`).
    revision: String,
    /// Where its files come from.
    origin: Origin,
}

/// One included GitRepository of a source: its commit and rules, and where its files go.
#[derive(Clone)]
struct IncludedSource {
    sha: String,
    url: String,
    ignore: Option<String>,
    from_path: String,
    to_path: String,
}

/// The includes of the GitRepository `repository`, at the revisions its status records.
fn included_sources(flux: &Flux, repository: &Value) -> Result<Vec<IncludedSource>, String> {
    let namespace = str_at(repository, &["metadata", "namespace"]).to_string();
    let spec =
        git_repository::GitRepositorySpec::parse(repository.get("spec").unwrap_or(&Value::Null))
            .map_err(|e| e.to_string())?;
    let recorded = repository
        .pointer("/status/includedArtifacts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if recorded.len() != spec.include.len() {
        return Err("its included artifacts are not ready yet".into());
    }
    spec.include
        .iter()
        .zip(&recorded)
        .map(|(include, artifact)| {
            let sha = git_repository::sha_of(str_at(artifact, &["revision"]))
                .ok_or("an included artifact has no revision")?
                .to_string();
            let included = flux
                .get(
                    FluxKind::GitRepository,
                    &(namespace.clone(), include.repository.clone()),
                )
                .ok_or_else(|| {
                    format!(
                        "included GitRepository '{namespace}/{}' not found",
                        include.repository
                    )
                })?;
            Ok(IncludedSource {
                sha,
                url: str_at(&included, &["spec", "url"]).to_string(),
                ignore: included
                    .pointer("/spec/ignore")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                from_path: include.from_path.clone(),
                to_path: include.to_path.clone(),
            })
        })
        .collect()
}

/// Where an artifact's files come from.
enum Origin {
    /// A commit of a Git repository.
    Git {
        /// The commit.
        sha: String,
        /// The repository URL.
        url: String,
        /// The GitRepository's `spec.ignore`.
        ignore: Option<String>,
        /// Its `spec.include`, resolved to the revisions its status records.
        includes: Vec<IncludedSource>,
    },
    /// A manifest of an OCI repository, pulled by digest (from the engine's cache when the
    /// OCIRepository pulled it already).
    Oci {
        /// The OCIRepository's spec.
        spec: Box<super::oci_repository::OciRepositorySpec>,
        /// Its namespace (for its secret).
        namespace: String,
        /// The manifest digest.
        digest: String,
    },
}

fn artifact(flux: &Flux, id: &AppId, spec: &KustomizationSpec) -> Step<Artifact> {
    let source = &spec.source;
    let failed = |message: String| -> Step<Artifact> {
        Err(Box::new((
            Outcome::failed("ArtifactFailed", message),
            spec.retry_interval,
        )))
    };
    if let Err(message) = flux
        .context
        .options
        .flux_tenancy
        .check_reference(&id.0, (&source.kind, &source.namespace, &source.name))
    {
        return Err(Box::new((
            Outcome::failed("AccessDenied", message),
            spec.retry_interval,
        )));
    }
    if source.kind == "OCIRepository" {
        let source_id = (source.namespace.clone(), source.name.clone());
        let Some(repository) = flux.get(FluxKind::OciRepository, &source_id) else {
            return failed(format!(
                "Source 'OCIRepository/{}/{}' not found",
                source.namespace, source.name
            ));
        };
        let ready = conditions::status_of(&repository, conditions::READY) == Some("True");
        let revision = str_at(&repository, &["status", "artifact", "revision"]).to_string();
        let parsed = super::oci_repository::OciRepositorySpec::parse(
            repository.get("spec").unwrap_or(&Value::Null),
        );
        return match (super::oci_repository::digest_of(&revision), parsed) {
            (Some(digest), Ok(oci)) if ready => Ok(Artifact {
                origin: Origin::Oci {
                    spec: Box::new(oci),
                    namespace: source.namespace.clone(),
                    digest: digest.to_string(),
                },
                revision,
            }),
            _ => failed(format!(
                "Source 'OCIRepository/{}/{}' is not ready, artifact not found",
                source.namespace, source.name
            )),
        };
    }
    if source.kind != "GitRepository" {
        return failed(format!(
            "spec.sourceRef.kind: {} sources are not supported yet (only GitRepository and OCIRepository)",
            source.kind
        ));
    }
    let source_id = (source.namespace.clone(), source.name.clone());
    let Some(repository) = flux.get(FluxKind::GitRepository, &source_id) else {
        return failed(format!(
            "Source 'GitRepository/{}/{}' not found",
            source.namespace, source.name
        ));
    };
    let revision = str_at(&repository, &["status", "artifact", "revision"]).to_string();
    let ready = conditions::status_of(&repository, conditions::READY) == Some("True");
    let includes = match included_sources(flux, &repository) {
        Ok(includes) => includes,
        Err(message) => {
            return failed(format!(
                "Source 'GitRepository/{}/{}' is not ready: {message}",
                source.namespace, source.name
            ));
        }
    };
    match git_repository::sha_of(&revision) {
        Some(sha) if ready => Ok(Artifact {
            origin: Origin::Git {
                sha: sha.to_string(),
                url: str_at(&repository, &["spec", "url"]).to_string(),
                ignore: repository
                    .pointer("/spec/ignore")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                includes,
            },
            revision,
        }),
        _ => failed(format!(
            "Source 'GitRepository/{}/{}' is not ready, artifact not found",
            source.namespace, source.name
        )),
    }
}

/// Snapshot, Kustomize build, variables and post-build: the objects to apply.
async fn build(
    flux: &Flux,
    id: &AppId,
    spec: &KustomizationSpec,
    artifact: &Artifact,
) -> Step<Vec<plumb_core::manifest::Manifest>> {
    let failed = |reason: &'static str, message: String| {
        Box::new((
            Outcome::failed(reason, message).attempted(&artifact.revision),
            spec.retry_interval,
        ))
    };
    // Off the async threads: both read files.
    let sources = flux.context.sources.clone();
    let limits = flux.context.options.limits.clone();
    let (path, build) = (spec.path.clone(), spec.build.clone());
    let fetch = match &artifact.origin {
        Origin::Git {
            sha,
            url,
            ignore,
            includes,
        } => Fetch::Git {
            url: url.clone(),
            resolved: Resolved {
                revision: sha.clone(),
                message: String::new(),
                author: String::new(),
            },
            ignore: ignore.clone(),
            includes: includes.clone(),
        },
        Origin::Oci {
            spec: oci,
            namespace,
            digest,
        } => {
            let access = super::oci_repository::access_of(flux, namespace, oci)
                .await
                .map_err(|message| {
                    failed(
                        "ArtifactFailed",
                        format!("cannot read revision {}: {message}", artifact.revision),
                    )
                })?;
            Fetch::Oci {
                spec: oci.clone(),
                digest: digest.clone(),
                access,
            }
        }
    };
    let revision = artifact.revision.clone();
    let manifests = tokio::task::spawn_blocking(move || {
        let root = fetch.root(sources.as_ref(), &limits).map_err(|message| {
            (
                "ArtifactFailed",
                format!("cannot read revision {revision}: {message}"),
            )
        })?;
        plumb_render::flux::render_flux(&root, &path, &build, &limits).map_err(|e| {
            let message = match &e {
                plumb_render::Error::PathNotFound { .. }
                | plumb_render::Error::OutsideRoot { what: "path", .. } => {
                    format!("spec.path: {}", error_chain(&e))
                }
                _ => format!("kustomize build failed: {}", error_chain(&e)),
            };
            ("BuildFailed", message)
        })
    })
    .await
    .unwrap_or_else(|e| Err(("BuildFailed", format!("build task failed: {e}"))))
    .map_err(|(reason, message)| failed(reason, message))?;
    let variables = if spec.post_build {
        Some(
            variables(flux, &id.0, spec)
                .await
                .map_err(|message| failed("BuildFailed", message))?,
        )
    } else {
        None
    };
    let options = PostBuild {
        labels: spec.common_labels.clone(),
        annotations: spec.common_annotations.clone(),
        variables,
        owner_name: id.1.clone(),
        owner_namespace: id.0.clone(),
    };
    post_build(manifests, &options).map_err(|message| failed("BuildFailed", message))
}

/// What to read an artifact's files from, off the async threads.
enum Fetch {
    Git {
        url: String,
        resolved: Resolved,
        ignore: Option<String>,
        includes: Vec<IncludedSource>,
    },
    Oci {
        spec: Box<super::oci_repository::OciRepositorySpec>,
        digest: String,
        access: plumb_source::helm::oci::OciAccess,
    },
}

impl Fetch {
    /// The directory of the artifact's files (blocking).
    fn root(
        &self,
        sources: &dyn crate::sources::Sources,
        limits: &plumb_render::Limits,
    ) -> Result<std::path::PathBuf, String> {
        match self {
            Fetch::Git {
                url,
                resolved,
                ignore,
                includes,
            } => {
                let artifact_of = |url: &str, sha: &str, ignore: Option<&str>| {
                    let resolved = Resolved {
                        revision: sha.to_string(),
                        message: String::new(),
                        author: String::new(),
                    };
                    let snapshot = sources
                        .snapshot(url, &resolved)
                        .map_err(|e| error_chain(e.as_ref()))?;
                    super::artifact::artifact_of(&snapshot, ignore, limits)
                };
                let main = artifact_of(url, &resolved.revision, ignore.as_deref())?;
                let included = includes
                    .iter()
                    .map(|include| {
                        Ok(super::artifact::Included {
                            artifact: artifact_of(
                                &include.url,
                                &include.sha,
                                include.ignore.as_deref(),
                            )?,
                            from_path: include.from_path.clone(),
                            to_path: include.to_path.clone(),
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                super::artifact::composed_artifact(&main, &included, limits)
            }
            Fetch::Oci {
                spec,
                digest,
                access,
            } => {
                let pulled = super::oci_repository::pull_recorded(sources, spec, access, digest)?;
                super::artifact::artifact_of(&pulled.root, spec.ignore.as_deref(), limits)
            }
        }
    }
}

/// Applies, prunes what left the inventory, and checks health: the successful outcome.
async fn apply_prune_and_check(
    flux: &Flux,
    id: &AppId,
    object: &Value,
    spec: &KustomizationSpec,
    revision: &str,
    objects: Vec<plumb_core::manifest::Manifest>,
) -> Step<Outcome> {
    let failed = |reason: &'static str, message: String, inventory: Option<Vec<Entry>>| {
        let mut outcome = Outcome::failed(reason, message).attempted(revision);
        outcome.inventory = inventory;
        Box::new((outcome, spec.retry_interval))
    };
    let cluster = super::remote::target_cluster(flux, &id.0, spec.target())
        .await
        .map_err(|error| failed("ReconciliationFailed", error.message().to_string(), None))?;
    let cluster = &cluster;
    let applied = apply::apply_all(
        cluster,
        objects,
        &ApplySettings {
            force: spec.force,
            default_namespace: None,
        },
    )
    .await
    .map_err(|message| {
        failed(
            "ReconciliationFailed",
            format!("validation failed, nothing applied: {message}"),
            None,
        )
    })?;
    let previous_status = object.get("status").cloned().unwrap_or(Value::Null);
    let old_inventory = inventory::read(&previous_status);
    let mut new_inventory = applied.inventory.clone();
    if !applied.errors.is_empty() {
        // What failed to apply stays in the inventory, so a later prune still finds it.
        let kept = old_inventory.iter().cloned().chain(new_inventory).collect();
        return Err(failed(
            "ReconciliationFailed",
            format!("apply failed: {}", applied.errors.join("; ")),
            Some(kept),
        ));
    }
    if spec.prune {
        let stale = apply::stale(&old_inventory, &new_inventory);
        if let Err(message) =
            apply::prune(cluster, &stale, &apply::Owner::kustomization(&id.1, &id.0)).await
        {
            let kept = new_inventory.iter().cloned().chain(stale).collect();
            return Err(failed(
                "PruneFailed",
                format!("prune failed: {message}"),
                Some(kept),
            ));
        }
    }
    let targets: Vec<(String, ObjectKey)> = if spec.wait {
        applied.objects.clone()
    } else {
        spec.health_checks
            .iter()
            .map(|(api_version, key)| {
                let mut key = key.clone();
                if key.namespace.is_empty() {
                    key.namespace = id.0.clone();
                }
                (api_version.clone(), key)
            })
            .collect()
    };
    let mut healthy = None;
    if !targets.is_empty() {
        let started = Instant::now();
        let progressing = Outcome {
            ready: "Unknown",
            reason: "Progressing",
            message: format!("Health check in progress for revision {revision}"),
            stalled: false,
            attempted: Some(revision.to_string()),
            applied: None,
            inventory: Some(new_inventory.clone()),
            healthy: None,
        };
        let status = status_for(object, &progressing, &spec.not_acted_on);
        flux.write_status(FluxKind::Kustomization, object, status)
            .await;
        let elapsed = || started.elapsed().as_secs_f64();
        match apply::wait_healthy_with(
            cluster,
            &targets,
            spec.timeout,
            Some(&spec.health_check_exprs),
        )
        .await
        {
            Ok(()) => {
                healthy = Some(Condition::new(
                    conditions::HEALTHY,
                    "True",
                    "Succeeded",
                    format!("Health check passed in {:.1}s", elapsed()),
                ));
            }
            Err(message) => {
                let message = format!("health check failed after {:.1}s: {message}", elapsed());
                let mut stop = failed("HealthCheckFailed", message.clone(), Some(new_inventory));
                stop.0.healthy = Some(Condition::new(
                    conditions::HEALTHY,
                    "False",
                    "HealthCheckFailed",
                    message,
                ));
                return Err(stop);
            }
        }
    }
    if !applied.conflicts.is_empty() {
        let mut stop = failed(
            "ReconciliationFailed",
            format!(
                "not applied, owned elsewhere: {}",
                applied.conflicts.join("; ")
            ),
            Some(new_inventory),
        );
        stop.0.healthy = healthy;
        return Err(stop);
    }
    new_inventory.sort();
    Ok(Outcome {
        ready: "True",
        reason: "ReconciliationSucceeded",
        message: format!("Applied revision: {revision}"),
        stalled: false,
        attempted: Some(revision.to_string()),
        applied: Some(revision.to_string()),
        inventory: Some(new_inventory),
        healthy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_keeps_the_last_applied_revision_and_inventory() {
        let object = json!({"metadata": {"generation": 2},
            "status": {"lastAppliedRevision": "main@sha1:aaa", "inventory": {"entries": [{"id": "a_b__ConfigMap", "v": "v1"}]}}});
        let outcome = Outcome::failed("BuildFailed", "bad yaml").attempted("main@sha1:bbb");
        let status = status_for(&object, &outcome, &[]);
        assert_eq!(status["lastAppliedRevision"], "main@sha1:aaa");
        assert_eq!(status["lastAttemptedRevision"], "main@sha1:bbb");
        assert_eq!(status["inventory"]["entries"][0]["id"], "a_b__ConfigMap");
        assert_eq!(status["observedGeneration"], 2);
        assert_eq!(status["conditions"][0]["type"], "Ready");
        assert_eq!(status["conditions"][0]["reason"], "BuildFailed");
    }
}
