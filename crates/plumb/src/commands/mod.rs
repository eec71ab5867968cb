//! One module per command; `run` dispatches.

mod app;
mod bench;
mod bench_helm;
mod controller;
mod demo;
mod devcluster;
mod render;

use crate::cli::{ClusterArgs, Command};
use anyhow::Context as _;
use std::path::PathBuf;
use std::process::ExitCode;

pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Devcluster(args) => devcluster::run(args).await,
        Command::Controller(args) => controller::run(args).await,
        Command::App(command) => app::run(command).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Kustomize(command) => render::kustomize(command),
        Command::Helm(command) => render::helm(command),
        Command::Bench(command) => bench::run(command).await,
        Command::Completion { shell } => {
            let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "plumb", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The kubeconfig to use: the flag, `$KUBECONFIG`, then `~/.kube/config`.
pub fn kubeconfig_path(args: &ClusterArgs) -> anyhow::Result<PathBuf> {
    if let Some(path) = &args.kubeconfig {
        return Ok(path.clone());
    }
    let home = std::env::var_os("HOME")
        .context("no --kubeconfig given, KUBECONFIG unset and HOME unknown")?;
    Ok(PathBuf::from(home).join(".kube/config"))
}

/// Connects to the cluster the arguments name.
pub async fn connect(args: &ClusterArgs) -> anyhow::Result<plumb_kube::Cluster> {
    let path = kubeconfig_path(args)?;
    Ok(plumb_kube::Cluster::from_kubeconfig(&path, args.context.as_deref()).await?)
}

/// The default cache directory for Git mirrors.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("plumb");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".cache/plumb");
    }
    std::env::temp_dir().join("plumb-cache")
}
