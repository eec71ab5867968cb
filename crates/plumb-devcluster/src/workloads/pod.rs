//! The simulated kubelet: pods start after `pod_ready_delay` and report
//! container states like a real node would, including injected faults.

use std::time::Instant;

use serde_json::{Value, json};

use super::{has_fault, pod_phase, write_status};
use crate::controllers::{Controllers, Key};
use crate::meta::now;
use crate::store::meta_str;

fn pod_ip(uid: &str) -> String {
    let n = uid
        .bytes()
        .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("10.244.{}.{}", (n >> 8) % 250, n % 250 + 2)
}

fn cond(ty: &str, status: bool, t: &str, reason: Option<&str>) -> Value {
    let mut c = json!({"type": ty, "status": if status { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": t});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    c
}

fn container_ids(pod: &Value) -> Vec<(String, String)> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        c.get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        c.get("image")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The status of a pod whose containers are in `state`.
fn status_with(
    pod: &Value,
    phase: &str,
    ready: bool,
    state: &dyn Fn(&str) -> Value,
    restarts: i64,
) -> Value {
    let t = now();
    let start = pod
        .pointer("/status/startTime")
        .cloned()
        .unwrap_or(json!(t));
    let uid = meta_str(pod, "uid");
    let statuses: Vec<Value> = container_ids(pod)
        .into_iter()
        .map(|(name, image)| {
            json!({
                "name": name,
                "image": image,
                "imageID": "",
                "containerID": format!("containerd://{}", &uid.replace('-', "")),
                "ready": ready,
                "started": ready,
                "restartCount": restarts,
                "state": state(&image),
                "lastState": {},
            })
        })
        .collect();
    let scheduled_at = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter()
                .find(|c| c.get("type") == Some(&json!("PodScheduled")))
        })
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or(json!(t));
    let t_ready = t.clone();
    let terminated = phase == "Succeeded" || phase == "Failed";
    let mut conditions = vec![
        cond("PodReadyToStartContainers", true, &t, None),
        cond("Initialized", true, &t, None),
        cond(
            "Ready",
            ready,
            &t_ready,
            (!ready).then_some(if terminated {
                "PodCompleted"
            } else {
                "ContainersNotReady"
            }),
        ),
        cond(
            "ContainersReady",
            ready,
            &t_ready,
            (!ready).then_some(if terminated {
                "PodCompleted"
            } else {
                "ContainersNotReady"
            }),
        ),
        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": scheduled_at}),
    ];
    // Keep transition times stable when nothing flipped.
    if let Some(old) = pod.pointer("/status/conditions").and_then(Value::as_array) {
        for c in &mut conditions {
            if let Some(o) = old.iter().find(|o| o.get("type") == c.get("type"))
                && o.get("status") == c.get("status")
                && let Some(lt) = o.get("lastTransitionTime")
            {
                c["lastTransitionTime"] = lt.clone();
            }
        }
    }
    let ip = pod_ip(uid);
    json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": "10.0.0.1",
        "hostIPs": [{"ip": "10.0.0.1"}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": start,
        "containerStatuses": statuses,
        "qosClass": pod.pointer("/status/qosClass").cloned().unwrap_or(json!("BestEffort")),
    })
}

pub(crate) fn reconcile(ctl: &mut Controllers, pod: &Value) {
    let phase = pod_phase(pod).to_string();
    if phase == "Succeeded" || phase == "Failed" {
        return;
    }
    let uid = meta_str(pod, "uid").to_string();
    let delay = ctl.cluster.pod_ready_delay;
    let seen = *ctl.pod_seen.entry(uid.clone()).or_insert_with(Instant::now);
    let key = Key::Workload(
        "pods".into(),
        meta_str(pod, "namespace").to_string(),
        meta_str(pod, "name").to_string(),
    );
    let spec = pod.get("spec").cloned().unwrap_or(json!({}));
    let elapsed = seen.elapsed();
    if elapsed < delay {
        if pod.pointer("/status/containerStatuses").is_none() {
            let waiting = |_: &str| json!({"waiting": {"reason": "ContainerCreating"}});
            let status = status_with(pod, "Pending", false, &waiting, 0);
            write_status(&ctl.cluster, "pods", pod, status);
        }
        ctl.requeue(key, delay - elapsed);
        return;
    }
    let t = now();
    if has_fault(&spec, "fail-pull") {
        let waiting = |image: &str| json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{image}\"")}});
        write_status(
            &ctl.cluster,
            "pods",
            pod,
            status_with(pod, "Pending", false, &waiting, 0),
        );
        return;
    }
    let restart = spec
        .get("restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Always");
    if has_fault(&spec, "fail-crash") {
        let restarts = pod
            .pointer("/status/containerStatuses/0/restartCount")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let waiting = |_: &str| json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container"}});
        write_status(
            &ctl.cluster,
            "pods",
            pod,
            status_with(pod, "Running", false, &waiting, restarts + 1),
        );
        ctl.requeue(key, delay.max(std::time::Duration::from_secs(1)) * 5);
        return;
    }
    if restart != "Always" {
        let failed = has_fault(&spec, "fail-job");
        let code = if failed { 1 } else { 0 };
        let reason = if failed { "Error" } else { "Completed" };
        let started = pod
            .pointer("/status/startTime")
            .cloned()
            .unwrap_or(json!(t));
        let terminated = move |_: &str| json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now()}});
        let phase = if failed { "Failed" } else { "Succeeded" };
        write_status(
            &ctl.cluster,
            "pods",
            pod,
            status_with(pod, phase, false, &terminated, 0),
        );
        return;
    }
    if phase == "Running" {
        return;
    }
    let started = t.clone();
    let running = move |_: &str| json!({"running": {"startedAt": started}});
    write_status(
        &ctl.cluster,
        "pods",
        pod,
        status_with(pod, "Running", true, &running, 0),
    );
}
