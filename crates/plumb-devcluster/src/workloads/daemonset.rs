//! DaemonSet controller: one pod on the single simulated node.

use serde_json::{Map, Value, json};

use super::{
    NODE_NAME, create_owned, delete, owned, pod_from_template, pod_ready, template_hash,
    write_status,
};
use crate::controllers::Controllers;
use crate::store::meta_str;

const REVISION_LABEL: &str = "controller-revision-hash";

pub(crate) fn reconcile(ctl: &mut Controllers, ds: &Value) {
    let cluster = &ctl.cluster;
    let ns = meta_str(ds, "namespace");
    let template = ds.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let hash = template_hash(&template);
    let pods = owned(cluster, "pods", ns, meta_str(ds, "uid"));
    let current = |p: &Value| {
        p.pointer(&format!("/metadata/labels/{REVISION_LABEL}"))
            .and_then(Value::as_str)
            == Some(hash.as_str())
    };
    let on_delete = ds
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        == Some("OnDelete");
    if !on_delete {
        for p in pods.iter().filter(|p| !current(p)) {
            delete(cluster, "pods", p);
        }
    }
    let live: Vec<&Value> = pods.iter().filter(|p| on_delete || current(p)).collect();
    if live.is_empty() {
        let prefix = format!("{}-", meta_str(ds, "name"));
        let mut pod = pod_from_template(
            &template,
            None,
            Some(&prefix),
            &[(REVISION_LABEL, hash.clone())],
        );
        pod["spec"]["nodeName"] = json!(NODE_NAME);
        create_owned(cluster, "pods", ds, "DaemonSet", "apps/v1", pod);
    }
    let ready = live.iter().filter(|p| pod_ready(p)).count();
    let updated = live.iter().filter(|p| current(p)).count();
    let mut status = Map::new();
    status.insert("currentNumberScheduled".into(), json!(live.len().min(1)));
    status.insert("desiredNumberScheduled".into(), json!(1));
    status.insert("numberMisscheduled".into(), json!(0));
    status.insert("numberReady".into(), json!(ready));
    if let Some(g) = ds.pointer("/metadata/generation") {
        status.insert("observedGeneration".into(), g.clone());
    }
    status.insert("updatedNumberScheduled".into(), json!(updated));
    if ready > 0 {
        status.insert("numberAvailable".into(), json!(ready));
    } else {
        status.insert("numberUnavailable".into(), json!(1));
    }
    write_status(cluster, "daemonsets.apps", ds, Value::Object(status));
}
