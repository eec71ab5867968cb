//! `plumb devcluster`: the embedded API server in the foreground.

use crate::cli::DevclusterArgs;
use anyhow::Context as _;
use std::process::ExitCode;
use std::time::Duration;

pub async fn run(args: DevclusterArgs) -> anyhow::Result<ExitCode> {
    if !args.listen.ip().is_loopback() {
        anyhow::bail!(
            "--listen {}: the embedded cluster has no authentication and listens on loopback addresses only",
            args.listen
        );
    }
    let options = plumb_devcluster::Options {
        listen: args.listen,
        data_dir: args.data_dir.clone(),
        pod_ready_delay: Duration::from_secs_f64(args.pod_ready_delay.max(0.0)),
    };
    let cluster = plumb_devcluster::DevCluster::start(options)
        .await
        .context("cannot start the embedded cluster")?;
    let path = match (&args.kubeconfig_out, &args.data_dir) {
        (Some(path), _) => path.clone(),
        (None, Some(dir)) => dir.join("kubeconfig"),
        (None, None) => std::env::temp_dir().join(format!(
            "plumb-devcluster-{}.kubeconfig",
            cluster.addr().port()
        )),
    };
    std::fs::write(&path, cluster.kubeconfig())
        .with_context(|| format!("cannot write kubeconfig {}", path.display()))?;
    println!("plumb devcluster listening on {}", cluster.url());
    println!("kubeconfig written to {}", path.display());
    println!("  export KUBECONFIG={}", path.display());
    println!("  kubectl get namespaces");
    tokio::signal::ctrl_c().await.ok();
    cluster.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
