//! Runs a devcluster in the foreground: `cargo run --example devcluster -- 127.0.0.1:8080`.

use plumb_devcluster::{DevCluster, Options};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    if let Some(listen) = args.next() {
        options.listen = listen.parse()?;
    }
    if let Some(dir) = args.next() {
        options.data_dir = Some(dir.into());
    }
    let cluster = DevCluster::start(options).await?;
    let path =
        std::env::temp_dir().join(format!("devcluster-{}.kubeconfig", cluster.addr().port()));
    std::fs::write(&path, cluster.kubeconfig())?;
    println!(
        "listening on {}; kubeconfig: {}",
        cluster.url(),
        path.display()
    );
    tokio::signal::ctrl_c().await?;
    cluster.shutdown().await;
    Ok(())
}
