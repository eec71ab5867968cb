//! `plumb controller`: the reconcile loop against a cluster from a kubeconfig.

use super::{connect, default_cache_dir};
use crate::cli::ControllerArgs;
use anyhow::Context as _;
use plumb_core::application::parse_duration;
use std::process::ExitCode;
use std::sync::Arc;

pub async fn run(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    let cluster = connect(&args.cluster).await?;
    let poll_interval = parse_duration(&args.poll_interval).with_context(|| {
        format!(
            "--poll-interval {:?}: expected a duration such as 3m or 30s",
            args.poll_interval
        )
    })?;
    let cache_dir = args.cache_dir.clone().unwrap_or_else(default_cache_dir);
    let sources =
        plumb_engine::git::GitSources::new(&cache_dir).context("cannot open the Git cache")?;
    let options = plumb_engine::Options {
        app_namespaces: args.app_namespaces.clone(),
        poll_interval,
        poll_jitter: poll_interval / 3,
        workers: args.workers,
        flux_tenancy: plumb_engine::flux::Tenancy {
            cross_namespace_refs: if args.no_cross_namespace_refs {
                plumb_engine::flux::CrossNamespaceRefs::Denied
            } else {
                plumb_engine::flux::CrossNamespaceRefs::Allowed
            },
            default_service_account: args.default_service_account.clone(),
        },
        ..Default::default()
    };
    let controller = plumb_engine::Controller::new(cluster, Arc::new(sources), options);
    eprintln!(
        "plumb controller watching Applications in {}",
        args.app_namespaces.join(", ")
    );
    controller
        .run(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}
