//! Cost of one custom health assessment: `cargo bench -p plumb-customhealth --bench assess`.
//!
//! A Lua script in the style of Argo CD's built-in ones (conditions loop, a few string checks)
//! on a Certificate-like object with a handful of conditions; the same decision as CEL
//! `healthCheckExprs`; and the built-in rules, for scale. Each figure is the mean over a timed
//! loop after a warm-up; CPU time of the process is printed too, as other work may share the
//! machine.

use plumb_customhealth::{CustomHealth, HealthCheckExprs};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

const SCRIPT: &str = r#"local hs = {}
if obj.status ~= nil and obj.status.conditions ~= nil then
  for i, condition in ipairs(obj.status.conditions) do
    if condition.type == "Issuing" and condition.status == "True" then
      hs.status = "Progressing"
      hs.message = condition.message
      return hs
    end
    if condition.type == "Ready" and condition.status == "False" then
      hs.status = "Degraded"
      hs.message = condition.message
      return hs
    end
    if condition.type == "Ready" and condition.status == "True" then
      hs.status = "Healthy"
      hs.message = condition.message
      return hs
    end
  end
end
hs.status = "Progressing"
hs.message = "Waiting for certificate"
return hs
"#;

fn object() -> Value {
    let mut conditions: Vec<Value> = (0..4)
        .map(|i| {
            json!({"type": format!("Other{i}"), "status": "True", "reason": "Fine",
            "message": "nothing to see", "lastTransitionTime": "2026-12-03T10:00:00Z"})
        })
        .collect();
    conditions.push(json!({"type": "Ready", "status": "True", "reason": "Ready",
        "message": "Certificate is up to date and has not expired",
        "lastTransitionTime": "2026-12-03T10:00:00Z", "observedGeneration": 3}));
    json!({
        "apiVersion": "example.com/v1", "kind": "Certificate",
        "metadata": {"name": "web", "namespace": "apps", "generation": 3,
            "labels": {"app": "web", "team": "a"},
            "annotations": {"note": "x".repeat(200)}},
        "spec": {"secretName": "web-tls", "dnsNames": ["web.example.com", "www.example.com"],
            "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}},
        "status": {"conditions": conditions, "notAfter": "2027-03-03T10:00:00Z",
            "observedGeneration": 3}
    })
}

/// Mean wall time per call over `runs` calls, and the process CPU time per call.
fn time(runs: u32, mut f: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..runs / 10 {
        f();
    }
    let cpu = cpu_time();
    let started = Instant::now();
    for _ in 0..runs {
        f();
    }
    let wall = started.elapsed() / runs;
    let cpu = cpu_time().saturating_sub(cpu) / runs;
    (wall, cpu)
}

/// User + system CPU time of this process, from /proc (zero where it is not available).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn main() {
    let object = object();
    let data: BTreeMap<String, String> = [(
        "resource.customizations.health.example.com_Certificate".to_string(),
        SCRIPT.to_string(),
    )]
    .into();
    let rules = CustomHealth::from_config_map(&data);
    assert_eq!(
        rules.health(&object).map(|h| h.status.as_str()),
        Some("Healthy")
    );
    let exprs = HealthCheckExprs::parse(Some(&json!([{
        "apiVersion": "example.com/v1", "kind": "Certificate",
        "inProgress": "status.conditions.exists(c, c.type == 'Issuing' && c.status == 'True')",
        "failed": "status.conditions.exists(c, c.type == 'Ready' && c.status == 'False')",
        "current": "status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')"
    }])))
    .expect("expressions compile");
    assert!(matches!(exprs.assess(&object), Some(Ok(_))));
    let none = CustomHealth::default();

    let runs = 5_000;
    let (lua_wall, lua_cpu) = time(runs, || {
        black_box(rules.assess(black_box(&object)));
    });
    let (cel_wall, cel_cpu) = time(runs, || {
        black_box(exprs.assess(black_box(&object)));
    });
    let (builtin_wall, builtin_cpu) = time(runs * 10, || {
        black_box(none.assess(black_box(&object)));
    });
    let limits = plumb_customhealth::Limits::default();
    let trivial = "return {status = 'Healthy'}";
    let empty = json!({});
    let (sandbox_wall, sandbox_cpu) = time(runs, || {
        black_box(plumb_customhealth::lua::evaluate(trivial, black_box(&empty), &limits).ok());
    });
    let looping: BTreeMap<String, String> = [(
        "resource.customizations.health.example.com_Certificate".to_string(),
        "while true do end".to_string(),
    )]
    .into();
    let looping = CustomHealth::from_config_map(&looping);
    let (loop_wall, _) = time(10, || {
        black_box(looping.assess(black_box(&object)));
    });
    println!("one assessment of a Certificate-like object ({runs} runs, mean):");
    println!("  Lua script (fresh sandbox)  {lua_wall:>10.2?} wall  {lua_cpu:>10.2?} CPU");
    println!(
        "  of which the sandbox alone  {sandbox_wall:>10.2?} wall  {sandbox_cpu:>10.2?} CPU (trivial script, empty object)"
    );
    println!("  CEL healthCheckExprs        {cel_wall:>10.2?} wall  {cel_cpu:>10.2?} CPU");
    println!("  built-in rules              {builtin_wall:>10.2?} wall  {builtin_cpu:>10.2?} CPU");
    println!("  Lua script looping forever  {loop_wall:>10.2?} wall (stopped by the 100 ms limit)");
}
