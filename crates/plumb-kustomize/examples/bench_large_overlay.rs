//! Benchmark: generate a large overlay (400 Deployments + 400 Services, 40 generators merged
//! across base and overlay, 50 patches, images, labels, namespace, prefix), build it with plumb
//! several times, and, when `kubectl` is on PATH, time `kubectl kustomize` on the same tree and
//! check the outputs are byte-identical.
//!
//! `cargo run --release -p plumb-kustomize --example bench_large_overlay [DIR]`

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

fn generate(root: &Path) -> std::io::Result<()> {
    let base = root.join("base");
    let overlay = root.join("overlay");
    std::fs::create_dir_all(&base)?;
    std::fs::create_dir_all(&overlay)?;
    let mut res = String::new();
    for i in 0..400 {
        let _ = write!(
            res,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app{i}\n  labels:\n    app: app{i}\n\
             spec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: app{i}\n  template:\n    metadata:\n\
             \x20     labels:\n        app: app{i}\n    spec:\n      containers:\n      - name: main\n\
             \x20       image: example/app{m}:1.0\n        envFrom:\n        - configMapRef:\n\
             \x20           name: cfg{c}\n        env:\n        - name: A\n          value: \"1\"\n\
             \x20       ports:\n        - containerPort: 8080\n          name: http\n      volumes:\n\
             \x20     - name: s\n        secret:\n          secretName: sec{c}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata:\n  name: app{i}\nspec:\n  selector:\n    app: app{i}\n\
             \x20 ports:\n  - port: 80\n    targetPort: http\n---\n",
            m = i % 10,
            c = i % 20
        );
    }
    std::fs::write(base.join("resources.yaml"), res)?;
    let mut k = String::from("resources:\n- resources.yaml\nconfigMapGenerator:\n");
    for j in 0..20 {
        let _ = write!(
            k,
            "- name: cfg{j}\n  literals:\n  - K{j}=v{j}\n  - MODE=base\n"
        );
    }
    k.push_str("secretGenerator:\n");
    for j in 0..20 {
        let _ = write!(k, "- name: sec{j}\n  literals:\n  - password=p{j}\n");
    }
    std::fs::write(base.join("kustomization.yaml"), k)?;
    let mut o = String::from(
        "namespace: prod\nnamePrefix: prod-\ncommonLabels:\n  env: prod\ncommonAnnotations:\n  owner: team\n\
         resources:\n- ../base\nimages:\n",
    );
    for m in 0..10 {
        let _ = write!(o, "- name: example/app{m}\n  newTag: '2.{m}'\n");
    }
    o.push_str("configMapGenerator:\n");
    for j in 0..20 {
        let _ = write!(
            o,
            "- name: cfg{j}\n  behavior: merge\n  literals:\n  - MODE=prod\n"
        );
    }
    o.push_str("patches:\n");
    for p in 0..40 {
        let _ = write!(
            o,
            "- patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata:\n      name: app{p}\n\
             \x20   spec:\n      replicas: 3\n      template:\n        spec:\n          containers:\n\
             \x20         - name: main\n            env:\n            - name: B\n              value: \"{p}\"\n"
        );
    }
    for p in 0..10 {
        let _ = write!(
            o,
            "- target:\n    kind: Service\n    name: app{p}.*\n  patch: |-\n    - op: add\n\
             \x20     path: /metadata/annotations/patched\n      value: \"yes\"\n"
        );
    }
    std::fs::write(overlay.join("kustomization.yaml"), o)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("plumb-kustomize-bench"));
    generate(&root)?;
    let overlay = root.join("overlay");
    let options = plumb_kustomize::Options::default();
    let runs = 10;
    let mut out = String::new();
    let started = Instant::now();
    for _ in 0..runs {
        out = plumb_kustomize::to_yaml(&plumb_kustomize::build(&root, &overlay, &options)?);
    }
    let plumb = started.elapsed() / runs;
    println!(
        "plumb:   {plumb:?} per build ({} bytes of output, mean of {runs})",
        out.len()
    );
    let started = Instant::now();
    match std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(&overlay)
        .output()
    {
        Ok(o) if o.status.success() => {
            let kubectl = started.elapsed();
            println!("kubectl: {kubectl:?} per build");
            println!(
                "speedup: {:.1}x",
                kubectl.as_secs_f64() / plumb.as_secs_f64()
            );
            println!("identical output: {}", o.stdout == out.as_bytes());
        }
        _ => println!("kubectl not available; skipped the comparison"),
    }
    corpus()?;
    Ok(())
}

/// Times every kustomization of the shared corpus (beside the repository) with plumb and with
/// `kubectl kustomize`, in the same run.
fn corpus() -> Result<(), Box<dyn std::error::Error>> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    let mut dirs = Vec::new();
    let mut stack = vec![corpus.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "kustomization.yaml") {
                dirs.push(dir.clone());
            }
        }
    }
    dirs.sort();
    let (mut ours_total, mut theirs_total, mut count) = (0.0, 0.0, 0);
    for dir in dirs {
        let started = Instant::now();
        let reference = std::process::Command::new("kubectl")
            .arg("kustomize")
            .arg(&dir)
            .output()?;
        let theirs = started.elapsed().as_secs_f64();
        if !reference.status.success() {
            continue;
        }
        let started = Instant::now();
        let ours = plumb_kustomize::to_yaml(&plumb_kustomize::build(
            Path::new("/"),
            &dir,
            &plumb_kustomize::Options::default(),
        )?);
        let ours_time = started.elapsed().as_secs_f64();
        let same = ours.as_bytes() == reference.stdout.as_slice();
        println!(
            "corpus {}: plumb {:.1} ms, kubectl {:.1} ms, identical {same}",
            dir.strip_prefix(&corpus).unwrap_or(&dir).display(),
            ours_time * 1e3,
            theirs * 1e3
        );
        ours_total += ours_time;
        theirs_total += theirs;
        count += 1;
    }
    println!(
        "corpus total ({count} kustomizations): plumb {:.1} ms, kubectl {:.1} ms",
        ours_total * 1e3,
        theirs_total * 1e3
    );
    Ok(())
}
