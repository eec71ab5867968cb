//! `plumb app diff`: the comparison the controller makes, as text-ready pairs.

use crate::reconcile::compare;
use crate::sources::{Freshness, Sources};
use crate::{Controller, Options};
use plumb_core::application::ApplicationSpec;
use plumb_core::diff::{mask_secrets, normalize};
use plumb_core::key::ObjectKey;
use plumb_core::tracking::app_instance;
use plumb_kube::Cluster;
use serde_json::Value;
use std::sync::Arc;

/// One object that differs: live and desired, normalized and with Secret values masked.
#[derive(Debug, Clone)]
pub struct ObjectDiff {
    /// The object.
    pub key: ObjectKey,
    /// As it is in the cluster; `None` when it does not exist yet.
    pub live: Option<Value>,
    /// As a sync would make it; `None` when a sync would prune it.
    pub desired: Option<Value>,
}

/// Compares `app` with Git exactly as the controller would and returns the objects that
/// differ.
///
/// **Errors**: the spec is invalid, or the source cannot be fetched or rendered; the message
/// names the field or file.
pub async fn diff(
    cluster: Cluster,
    sources: Arc<dyn Sources>,
    options: Options,
    app: &Value,
) -> Result<Vec<ObjectDiff>, String> {
    let control_namespace = options.control_namespace.clone();
    let context = Controller::new(cluster, sources, options).context;
    let spec = ApplicationSpec::parse(app.get("spec").unwrap_or(&Value::Null))
        .map_err(|e| e.to_string())?;
    if spec.all_sources().is_empty() {
        return Err("spec.source: an application needs a source".into());
    }
    let (namespace, name) = crate::app_id(app);
    let instance = app_instance(&namespace, &name, &control_namespace);
    let destination = crate::clusters::destination(&context, &spec.destination)
        .await
        .map_err(|unusable| unusable.message().to_string())?;
    crate::clusters::reachable(&context, &destination).await?;
    let comparison = compare(
        &context,
        &destination,
        app,
        &spec,
        &instance,
        &crate::multi_source::Target::of(&spec, None),
        Freshness::Now,
    )
    .await?;
    let mut diffs = Vec::new();
    for object in comparison.objects {
        if object.in_sync {
            continue;
        }
        if let Some(error) = object.error {
            return Err(error);
        }
        let desired = object.dry_run.unwrap_or(object.manifest.object);
        diffs.push(ObjectDiff {
            key: ObjectKey::of(&desired),
            live: object.live.as_ref().map(normalize),
            desired: Some(normalize(&desired)),
        });
    }
    for live in comparison.extra {
        diffs.push(ObjectDiff {
            key: ObjectKey::of(&live),
            live: Some(normalize(&live)),
            desired: None,
        });
    }
    for diff in diffs.iter_mut() {
        let mut values: Vec<&mut Value> = diff
            .live
            .iter_mut()
            .chain(diff.desired.iter_mut())
            .collect();
        mask_secrets(&mut values);
    }
    diffs.sort_by(|a, b| {
        plumb_core::order::apply_order(&a.key).cmp(&plumb_core::order::apply_order(&b.key))
    });
    Ok(diffs)
}
