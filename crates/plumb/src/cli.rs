//! Command-line arguments. Parsing only: commands live in `commands/`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// plumb keeps Kubernetes clusters in line with Git.
#[derive(Debug, Parser)]
#[command(name = "plumb", version, about, propagate_version = true)]
pub struct Cli {
    /// Log filter (also RUST_LOG), e.g. `info`, `plumb_engine=debug`.
    #[arg(long, global = true, env = "PLUMB_LOG", default_value = "warn")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the embedded Kubernetes API server (for development, demos and tests).
    Devcluster(DevclusterArgs),
    /// Run the GitOps controller against a cluster.
    Controller(ControllerArgs),
    /// Inspect and operate applications.
    #[command(subcommand)]
    App(AppCommand),
    /// Start an embedded cluster, the controller and an example repository, and show an
    /// application becoming Synced and Healthy.
    Demo(DemoArgs),
    /// Kustomize, natively.
    #[command(subcommand)]
    Kustomize(KustomizeCommand),
    /// Helm, natively.
    #[command(subcommand)]
    Helm(HelmCommand),
    /// Measure the controller end to end (see docs/benchmarks.md).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print shell completions.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct DevclusterArgs {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Keep state in this directory across restarts; memory only when absent.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Where to write the kubeconfig (default: DATA_DIR/kubeconfig or a temporary file).
    #[arg(long)]
    pub kubeconfig_out: Option<PathBuf>,
    /// Seconds until simulated pods become Ready.
    #[arg(long, default_value_t = 1.0)]
    pub pod_ready_delay: f64,
}

#[derive(Debug, Args, Clone)]
pub struct ClusterArgs {
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Context to use instead of the current one.
    #[arg(long)]
    pub context: Option<String>,
}

#[derive(Debug, Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Namespaces whose Applications are reconciled (repeatable). Flux GitRepositories and
    /// Kustomizations are reconciled in every namespace.
    #[arg(long = "app-namespace", default_value = "argocd")]
    pub app_namespaces: Vec<String>,
    /// How often Git is polled, e.g. `3m`, `30s`.
    #[arg(long, default_value = "3m")]
    pub poll_interval: String,
    /// Where Git mirrors and snapshots are kept.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Concurrent reconciles (Flux kinds get half as many workers each).
    #[arg(long, default_value_t = 16)]
    pub workers: usize,
    /// Flux lockdown: a Kustomization or HelmRelease may only use sources of its own
    /// namespace (Flux's `--no-cross-namespace-refs`).
    #[arg(long)]
    pub no_cross_namespace_refs: bool,
    /// Flux lockdown: the service account Kustomizations and HelmReleases act as when they
    /// name none (Flux's `--default-service-account`).
    #[arg(long, value_name = "NAME")]
    pub default_service_account: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Output {
    Wide,
    Yaml,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// List applications (and Flux Kustomizations of every namespace).
    List(AppListArgs),
    /// Show one application.
    Get(AppTarget),
    /// Sync an application and wait for the result.
    Sync(AppSyncArgs),
    /// Show what a sync would change; exit 1 when there are differences.
    Diff(AppDiffArgs),
    /// Show the deployment history.
    History(AppTarget),
    /// Redeploy a revision from the history.
    Rollback(AppRollbackArgs),
    /// Ask the controller to look at Git now.
    Refresh(AppRefreshArgs),
    /// Delete an application (and, by default, what it deployed).
    Delete(AppDeleteArgs),
    /// Stop the application's running sync operation (running hooks are deleted).
    TerminateOp(AppTerminateArgs),
    /// Approve the prunes (`Prune=confirm`) and deletions (`Delete=confirm`) an application
    /// waits for.
    ConfirmDeletion(AppName),
}

#[derive(Debug, Args)]
pub struct AppName {
    /// Application name.
    pub name: String,
    #[command(flatten)]
    pub scope: AppScope,
}

#[derive(Debug, Args)]
pub struct AppScope {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Namespace of the Application objects.
    #[arg(long = "app-namespace", short = 'N', default_value = "argocd")]
    pub app_namespace: String,
}

#[derive(Debug, Args)]
pub struct AppListArgs {
    #[command(flatten)]
    pub scope: AppScope,
    /// Output format.
    #[arg(short, long, value_enum)]
    pub output: Option<Output>,
}

#[derive(Debug, Args)]
pub struct AppTarget {
    /// Application name.
    pub name: String,
    #[command(flatten)]
    pub scope: AppScope,
    /// Output format.
    #[arg(short, long, value_enum)]
    pub output: Option<Output>,
}

#[derive(Debug, Args)]
pub struct AppSyncArgs {
    /// Application name.
    pub name: String,
    #[command(flatten)]
    pub scope: AppScope,
    /// Sync this revision instead of the target revision.
    #[arg(long)]
    pub revision: Option<String>,
    /// With `--revision`, for an application with `spec.sources`: which source (1-based, as
    /// Argo CD counts) the revision is for; the others sync at their target revisions.
    #[arg(long, value_name = "N")]
    pub source_position: Option<usize>,
    /// Delete objects Git no longer declares.
    #[arg(long)]
    pub prune: bool,
    /// Sync only this resource, as GROUP:KIND:NAME or GROUP:KIND:NAMESPACE/NAME (the core
    /// group is empty: `:ConfigMap:web`); repeatable. Hooks do not run in a selective sync.
    #[arg(long = "resource", value_name = "GROUP:KIND:NAME")]
    pub resources: Vec<String>,
    /// Ask the server to validate every change without making it (nothing is applied or
    /// pruned, no hook runs).
    #[arg(long)]
    pub dry_run: bool,
    /// Delete and create again any object whose change the server refuses (an immutable
    /// field), as the sync option `Force=true` does for one object.
    #[arg(long)]
    pub force: bool,
    /// Return without waiting for the result.
    #[arg(long)]
    pub r#async: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct AppDiffArgs {
    /// Application name.
    pub name: String,
    #[command(flatten)]
    pub scope: AppScope,
    /// Where Git mirrors are cached.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Colour: auto, always, never.
    #[arg(long, default_value = "auto")]
    pub color: String,
}

#[derive(Debug, Args)]
pub struct AppRollbackArgs {
    /// Application name.
    pub name: String,
    /// History id (`plumb app history`); the previous deployment when absent.
    pub id: Option<i64>,
    #[command(flatten)]
    pub scope: AppScope,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct AppRefreshArgs {
    /// Application name.
    pub name: String,
    #[command(flatten)]
    pub scope: AppScope,
    /// Refetch from Git regardless of caches.
    #[arg(long)]
    pub hard: bool,
}

#[derive(Debug, Args)]
pub struct AppTerminateArgs {
    /// Application name.
    pub name: String,
    #[command(flatten)]
    pub scope: AppScope,
    /// Seconds to wait for the controller to stop the operation.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct AppDeleteArgs {
    /// Application name.
    pub name: String,
    #[command(flatten)]
    pub scope: AppScope,
    /// Also delete the objects the application deployed.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub cascade: bool,
    /// Wait until the application is gone.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to put the example repository and kubeconfig (default: a new temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Address of the embedded cluster.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Keep running after the walkthrough so you can edit the repository (the default when
    /// standard output is a terminal).
    #[arg(long, conflicts_with = "exit")]
    pub keep_running: bool,
    /// Exit after the walkthrough (the default when standard output is not a terminal).
    #[arg(long)]
    pub exit: bool,
}

#[derive(Debug, Subcommand)]
pub enum KustomizeCommand {
    /// Print the objects a kustomization builds, like `kustomize build DIR`.
    Build {
        /// The kustomization directory.
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum HelmCommand {
    /// Render a chart like `helm template [NAME] CHART [flags]`.
    #[command(disable_help_flag = true)]
    Template {
        /// Helm's arguments, passed through.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Many applications from one repository against an embedded cluster in a child process:
    /// cold sync, no-change reconcile CPU, drift-revert and commit-to-applied latency, peak RSS.
    Gitops(BenchGitopsArgs),
    /// Many Flux HelmReleases of one chart from a loopback chart repository against an
    /// embedded cluster in a child process: install and upgrade of all of them, controller CPU
    /// and peak RSS.
    Helm(BenchHelmArgs),
}

#[derive(Debug, Args)]
pub struct BenchHelmArgs {
    /// Number of HelmReleases.
    #[arg(long, default_value_t = 1000)]
    pub releases: usize,
    /// Concurrent reconciles.
    #[arg(long, default_value_t = 16)]
    pub workers: usize,
}

#[derive(Debug, Args)]
pub struct BenchGitopsArgs {
    /// Number of applications.
    #[arg(long, default_value_t = 1000)]
    pub apps: usize,
    /// Concurrent reconciles.
    #[arg(long, default_value_t = 16)]
    pub workers: usize,
    /// Drift-revert samples.
    #[arg(long, default_value_t = 50)]
    pub drift_samples: usize,
    /// Commit-to-applied samples.
    #[arg(long, default_value_t = 20)]
    pub commit_samples: usize,
}
