//! Render-time benchmark: podinfo and a generated large chart with subcharts.
//! Run with `cargo bench -p plumb-helm --bench render`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plumb_helm::{TemplateOptions, template};

fn corpus() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/corpus");
    if p.exists() {
        p
    } else {
        PathBuf::from("/work/shared/corpus")
    }
}

/// CPU seconds (user + system) of this process, from /proc (Linux); the machine may be
/// shared, so CPU time is the fairer figure.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn time(label: &str, iters: u32, mut f: impl FnMut()) {
    f();
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    for _ in 0..iters {
        f();
    }
    let per: Duration = start.elapsed() / iters;
    let cpu = (cpu_seconds() - cpu0) / f64::from(iters);
    println!(
        "{label}: wall {:.3} ms, cpu {:.3} ms per render ({iters} runs); peak RSS {} KiB",
        per.as_secs_f64() * 1000.0,
        cpu * 1000.0,
        peak_rss_kib()
    );
}

fn big_chart(dir: &Path, subcharts: usize, templates: usize) -> PathBuf {
    let root = dir.join("big");
    let w = |p: PathBuf, s: &str| {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(p, s).unwrap_or_else(|e| panic!("{e}"));
    };
    let mut deps = String::from("dependencies:\n");
    for s in 0..subcharts {
        deps.push_str(&format!(
            "- name: sub{s}\n  version: 1.0.0\n  condition: sub{s}.enabled\n"
        ));
        let sd = root.join(format!("charts/sub{s}"));
        w(
            sd.join("Chart.yaml"),
            &format!("apiVersion: v2\nname: sub{s}\nversion: 1.0.0\n"),
        );
        w(
            sd.join("values.yaml"),
            "enabled: true\nreplicas: 2\nimage: {repository: nginx, tag: \"1.27\"}\nlabels: {team: a, tier: web}\n",
        );
        w(
            sd.join("templates/_helpers.tpl"),
            "{{- define \"sub.fullname\" -}}{{ printf \"%s-%s\" .Release.Name .Chart.Name | trunc 63 | trimSuffix \"-\" }}{{- end -}}\n{{- define \"sub.labels\" -}}\napp.kubernetes.io/name: {{ .Chart.Name }}\n{{ toYaml .Values.labels }}\n{{- end -}}\n",
        );
        for t in 0..templates {
            w(
                sd.join(format!("templates/deploy{t}.yaml")),
                &format!(
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{{{ include \"sub.fullname\" . }}}}-{t}\n  labels:\n    {{{{- include \"sub.labels\" . | nindent 4 }}}}\nspec:\n  replicas: {{{{ .Values.replicas }}}}\n  template:\n    spec:\n      containers:\n      - name: c\n        image: \"{{{{ .Values.image.repository }}}}:{{{{ .Values.image.tag }}}}\"\n        env:\n        {{{{- range $k, $v := .Values.labels }}}}\n        - name: {{{{ $k | upper }}}}\n          value: {{{{ $v | quote }}}}\n        {{{{- end }}}}\n"
                ),
            );
        }
    }
    w(
        root.join("Chart.yaml"),
        &format!("apiVersion: v2\nname: big\nversion: 1.0.0\n{deps}"),
    );
    w(root.join("values.yaml"), "global: {env: prod}\n");
    root
}

fn main() {
    let o = TemplateOptions {
        kube_version: Some("1.30.0".into()),
        ..TemplateOptions::default()
    };
    let podinfo_root = corpus().join("podinfo");
    let podinfo = podinfo_root.join("charts/podinfo");
    time("podinfo (default values)", 200, || {
        let r = template(&podinfo_root, &podinfo, &o).unwrap_or_else(|e| panic!("{e}"));
        assert!(!r.manifests.is_empty());
    });
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let big = big_chart(tmp.path(), 20, 10);
    time(
        "large chart (20 subcharts x 10 templates = 200 Deployments)",
        20,
        || {
            let r = template(tmp.path(), &big, &o).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(r.manifests.len(), 200);
        },
    );
}
