//! Helm hooks of a HelmRelease's chart, run the way Helm runs them: the objects annotated
//! `helm.sh/hook: <event>` for an event (`pre-install`, `post-install`, `pre-upgrade`,
//! `post-upgrade`, `pre-delete`, `post-delete`) are created in `helm.sh/hook-weight` order (then
//! kind order and name), one at a time; Jobs and Pods are waited for until they finish; a failed
//! hook fails the release. `helm.sh/hook-delete-policy` decides what is deleted:
//! `before-hook-creation` (the default) deletes a previous copy first, `hook-succeeded` and
//! `hook-failed` delete the hook when it finished that way. Hooks are not part of the release's
//! manifest, so a release's prune never touches them. Test hooks run only when a HelmRelease
//! enables `spec.test`.

use super::apply::{delete_and_wait, wait_healthy};
use super::post_build::describe;
use crate::sources::error_chain;
use plumb_core::key::{ObjectKey, str_at};
use plumb_core::manifest::Manifest;
use plumb_kube::{ApplyOptions, Cluster, DryRun};
use serde_json::{Value, json};
use std::time::Duration;

/// A hook event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Before the objects of a first install.
    PreInstall,
    /// After a first install is ready.
    PostInstall,
    /// Before the objects of an upgrade.
    PreUpgrade,
    /// After an upgrade is ready.
    PostUpgrade,
    /// Before an uninstall deletes the objects.
    PreDelete,
    /// After an uninstall deleted them.
    PostDelete,
    /// `helm test` (`test`, and Helm 2's `test-success`).
    Test,
}

impl Event {
    /// The annotation value naming the event.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::PreInstall => "pre-install",
            Event::PostInstall => "post-install",
            Event::PreUpgrade => "pre-upgrade",
            Event::PostUpgrade => "post-upgrade",
            Event::PreDelete => "pre-delete",
            Event::PostDelete => "post-delete",
            Event::Test => "test",
        }
    }
}

fn annotation<'a>(object: &'a Value, name: &str) -> &'a str {
    object
        .pointer(&format!(
            "/metadata/annotations/{}",
            name.replace('~', "~0").replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Whether an object is a Helm hook.
pub fn is_hook(object: &Value) -> bool {
    list(annotation(object, "helm.sh/hook")).next().is_some()
}

/// The hooks of `hooks` that run at `event`, in Helm's order.
pub fn for_event(hooks: &[Manifest], event: Event) -> Vec<&Manifest> {
    let mut selected: Vec<&Manifest> = hooks
        .iter()
        .filter(|m| {
            list(annotation(&m.object, "helm.sh/hook"))
                .any(|h| h == event.as_str() || (event == Event::Test && h == "test-success"))
        })
        .collect();
    let weight = |m: &Manifest| {
        annotation(&m.object, "helm.sh/hook-weight")
            .trim()
            .parse::<i64>()
            .unwrap_or(0)
    };
    selected.sort_by(|a, b| {
        weight(a)
            .cmp(&weight(b))
            .then_with(|| {
                plumb_core::order::apply_order(&a.key())
                    .cmp(&plumb_core::order::apply_order(&b.key()))
            })
            .then_with(|| a.key().name.cmp(&b.key().name))
    });
    selected
}

fn policies(object: &Value) -> Vec<String> {
    let policies: Vec<String> = list(annotation(object, "helm.sh/hook-delete-policy"))
        .map(str::to_string)
        .collect();
    if policies.is_empty() {
        vec!["before-hook-creation".into()]
    } else {
        policies
    }
}

/// Runs the hooks of `event`, each object already labelled; namespaced objects without a
/// namespace go to `namespace`.
///
/// **Errors**: the first hook that cannot be created or fails (named), after its
/// `hook-failed` deletion.
pub async fn run(
    cluster: &Cluster,
    hooks: &[Manifest],
    event: Event,
    namespace: &str,
    timeout: Duration,
) -> Result<usize, String> {
    let selected = for_event(hooks, event);
    for manifest in &selected {
        let mut object = manifest.object.clone();
        let api_version = str_at(&object, &["apiVersion"]).to_string();
        let kind = str_at(&object, &["kind"]).to_string();
        let namespaced = cluster
            .kind(&api_version, &kind)
            .await
            .map_err(|e| {
                format!(
                    "{} hook {}: {}",
                    event.as_str(),
                    describe(&object),
                    error_chain(&e)
                )
            })?
            .namespaced;
        if namespaced
            && str_at(&object, &["metadata", "namespace"]).is_empty()
            && let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut)
        {
            metadata.insert("namespace".into(), json!(namespace));
        }
        let key = ObjectKey::of(&object);
        let policies = policies(&object);
        let failed = |message: String| {
            format!(
                "{} hook {} failed: {message}",
                event.as_str(),
                describe(&object)
            )
        };
        if policies.iter().any(|p| p == "before-hook-creation") {
            delete_and_wait(cluster, &api_version, &key, Duration::from_secs(60))
                .await
                .map_err(failed)?;
        }
        cluster
            .apply(
                &object,
                &ApplyOptions {
                    dry_run: DryRun::None,
                    force: true,
                },
            )
            .await
            .map_err(|e| failed(error_chain(&e)))?;
        let outcome = if matches!(kind.as_str(), "Job" | "Pod") {
            wait_healthy(cluster, &[(api_version.clone(), key.clone())], timeout).await
        } else {
            Ok(())
        };
        let delete_now = match &outcome {
            Ok(()) => policies.iter().any(|p| p == "hook-succeeded"),
            Err(_) => policies.iter().any(|p| p == "hook-failed"),
        };
        if delete_now
            && let Err(message) =
                delete_and_wait(cluster, &api_version, &key, Duration::from_secs(60)).await
        {
            tracing::warn!(hook = %key, %message, "cannot delete a finished Helm hook");
        }
        outcome.map_err(failed)?;
    }
    Ok(selected.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumb_core::manifest::Origin;

    fn hook(name: &str, events: &str, weight: &str) -> Manifest {
        Manifest {
            object: json!({"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": name, "annotations": {"helm.sh/hook": events,
                    "helm.sh/hook-weight": weight}}}),
            origin: Origin {
                file: "t.yaml".into(),
                document: 0,
            },
        }
    }

    #[test]
    fn hooks_run_by_event_then_weight_then_name() {
        let hooks = vec![
            hook("b", "pre-install,pre-upgrade", "5"),
            hook("a", "pre-install", "5"),
            hook("first", "pre-install", "-1"),
            hook("post", "post-install", "0"),
        ];
        let names = |event| {
            for_event(&hooks, event)
                .iter()
                .map(|m| m.key().name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(Event::PreInstall), ["first", "a", "b"]);
        assert_eq!(names(Event::PreUpgrade), ["b"]);
        assert_eq!(names(Event::PostInstall), ["post"]);
        assert!(names(Event::PreDelete).is_empty());
        assert!(is_hook(&hooks[0].object));
        assert_eq!(policies(&hooks[0].object), ["before-hook-creation"]);
    }
}
