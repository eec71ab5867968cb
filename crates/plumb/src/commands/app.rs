//! `plumb app ...`: read Applications, and request operations the way Argo CD's CLI does
//! (by setting `.operation` or the refresh annotation), then follow the controller's progress.

use super::{connect, default_cache_dir};
use crate::cli::{AppCommand, AppScope, Output};
use crate::output::{self, short, table};
use anyhow::{Context as _, bail};
use plumb_core::application::{API_VERSION, ApplicationSpec, REFRESH_ANNOTATION};
use plumb_core::key::str_at;
use plumb_core::sync_options::DELETION_APPROVED_ANNOTATION;
use plumb_engine::flux::{HELM_API_VERSION, KUSTOMIZE_API_VERSION};
use plumb_kube::Cluster;
use serde_json::{Value, json};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn run(command: AppCommand) -> anyhow::Result<ExitCode> {
    match command {
        AppCommand::List(args) => {
            let cluster = connect(&args.scope.cluster).await?;
            let apps = cluster
                .list(API_VERSION, "Application", &args.scope.app_namespace)
                .await?;
            // Flux Kustomizations and HelmReleases from every namespace, when their CRDs are
            // installed.
            let mut kustomizations = Vec::new();
            for (api_version, kind) in [
                (KUSTOMIZE_API_VERSION, "Kustomization"),
                (HELM_API_VERSION, "HelmRelease"),
            ] {
                match cluster.list(api_version, kind, "").await {
                    Ok(items) => kustomizations.extend(items),
                    Err(plumb_kube::Error::UnknownKind { .. }) => {}
                    Err(error) => return Err(error.into()),
                }
            }
            print_list(&apps, &kustomizations, args.output)?;
            Ok(ExitCode::SUCCESS)
        }
        AppCommand::Get(args) => {
            let (cluster, app) = fetch(&args.scope, &args.name).await?;
            let relations = match args.output {
                None | Some(Output::Wide) => {
                    windows_and_dependencies(&cluster, &args.scope, &app).await?
                }
                _ => Vec::new(),
            };
            print_app(&app, args.output, &relations)?;
            Ok(ExitCode::SUCCESS)
        }
        AppCommand::History(args) => {
            let (_, app) = fetch(&args.scope, &args.name).await?;
            print_history(&app, args.output)?;
            Ok(ExitCode::SUCCESS)
        }
        AppCommand::Sync(args) => {
            let (cluster, app) = fetch(&args.scope, &args.name).await?;
            let mut sync = json!({"prune": args.prune});
            pin_revision(
                &app,
                &mut sync,
                args.revision.as_deref(),
                args.source_position,
            )?;
            if !args.resources.is_empty() {
                let resources = args
                    .resources
                    .iter()
                    .map(|r| parse_resource(r))
                    .collect::<anyhow::Result<Vec<Value>>>()?;
                sync["resources"] = json!(resources);
            }
            if args.dry_run {
                sync["dryRun"] = json!(true);
            }
            if args.force {
                sync["syncStrategy"] = json!({"apply": {"force": true}});
            }
            request_operation(&cluster, &app, sync).await?;
            if args.r#async {
                println!("sync of {} requested", args.name);
                return Ok(ExitCode::SUCCESS);
            }
            wait_operation(
                &cluster,
                &args.scope,
                &args.name,
                Duration::from_secs(args.timeout),
            )
            .await
        }
        AppCommand::Rollback(args) => {
            let (cluster, app) = fetch(&args.scope, &args.name).await?;
            let spec = ApplicationSpec::parse(app.get("spec").unwrap_or(&Value::Null))?;
            if spec.is_automated() {
                bail!(
                    "rollback cannot be initiated when auto-sync is enabled (application {}); disable spec.syncPolicy.automated first",
                    args.name
                );
            }
            let history = app
                .pointer("/status/history")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let entry =
                match args.id {
                    Some(id) => {
                        history.iter().find(|h| h.get("id").and_then(Value::as_i64) == Some(id)).cloned().with_context(
                            || {
                                format!(
                                    "application {} has no history entry with id {id} (see `plumb app history {}`)",
                                    args.name, args.name
                                )
                            },
                        )?
                    }
                    None => history.iter().rev().nth(1).cloned().with_context(|| {
                        format!("application {} has no earlier deployment to roll back to", args.name)
                    })?,
                };
            let sync = rollback_sync(&entry);
            request_operation(&cluster, &app, sync).await?;
            wait_operation(
                &cluster,
                &args.scope,
                &args.name,
                Duration::from_secs(args.timeout),
            )
            .await
        }
        AppCommand::Refresh(args) => {
            let (cluster, _app) = fetch(&args.scope, &args.name).await?;
            let kind = if args.hard { "hard" } else { "normal" };
            let patch = json!({"metadata": {"annotations": {REFRESH_ANNOTATION: kind}}});
            cluster
                .merge_patch(
                    API_VERSION,
                    "Application",
                    &args.scope.app_namespace,
                    &args.name,
                    &patch,
                )
                .await?;
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let current = get(&cluster, &args.scope, &args.name).await?;
                if str_at(&current, &["metadata", "annotations", REFRESH_ANNOTATION]).is_empty() {
                    print_app(&current, None, &[])?;
                    return Ok(ExitCode::SUCCESS);
                }
                if Instant::now() > deadline {
                    bail!(
                        "the controller did not refresh {} within 60s; is `plumb controller` running?",
                        args.name
                    );
                }
            }
        }
        AppCommand::Delete(args) => {
            let (cluster, app) = fetch(&args.scope, &args.name).await?;
            if args.cascade {
                let mut finalizers: Vec<Value> = app
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if !finalizers.iter().any(|f| {
                    f.as_str()
                        .is_some_and(|f| f.starts_with("resources-finalizer.argocd.argoproj.io"))
                }) {
                    finalizers.push(json!("resources-finalizer.argocd.argoproj.io"));
                    cluster
                        .merge_patch(
                            API_VERSION,
                            "Application",
                            &args.scope.app_namespace,
                            &args.name,
                            &json!({"metadata": {"finalizers": finalizers}}),
                        )
                        .await?;
                }
            }
            cluster
                .delete(
                    API_VERSION,
                    "Application",
                    &args.scope.app_namespace,
                    &args.name,
                    plumb_kube::Propagation::Foreground,
                )
                .await?;
            if args.wait {
                let deadline = Instant::now() + Duration::from_secs(300);
                while cluster
                    .get(
                        API_VERSION,
                        "Application",
                        &args.scope.app_namespace,
                        &args.name,
                    )
                    .await?
                    .is_some()
                {
                    if Instant::now() > deadline {
                        bail!("application {} still exists after 300s", args.name);
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
            println!("application {} deleted", args.name);
            Ok(ExitCode::SUCCESS)
        }
        AppCommand::ConfirmDeletion(args) => {
            let cluster = connect(&args.scope.cluster).await?;
            get(&cluster, &args.scope, &args.name).await?;
            let approved = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let patch =
                json!({"metadata": {"annotations": {DELETION_APPROVED_ANNOTATION: approved}}});
            cluster
                .merge_patch(
                    API_VERSION,
                    "Application",
                    &args.scope.app_namespace,
                    &args.name,
                    &patch,
                )
                .await
                .with_context(|| {
                    format!("cannot approve deletion for application {}", args.name)
                })?;
            println!("application {}: deletion approved at {approved}", args.name);
            Ok(ExitCode::SUCCESS)
        }
        AppCommand::TerminateOp(args) => {
            terminate_operation(&args.scope, &args.name, Duration::from_secs(args.timeout)).await
        }
        AppCommand::Diff(args) => {
            let (cluster, app) = fetch(&args.scope, &args.name).await?;
            let cache_dir = args.cache_dir.clone().unwrap_or_else(default_cache_dir);
            let sources = plumb_engine::git::GitSources::new(&cache_dir)
                .context("cannot open the Git cache")?;
            let options = plumb_engine::Options {
                control_namespace: "argocd".into(),
                ..Default::default()
            };
            let diffs = plumb_engine::diff::diff(cluster, Arc::new(sources), options, &app)
                .await
                .map_err(|message| {
                    anyhow::anyhow!("cannot compare application {}: {message}", args.name)
                })?;
            let color = match args.color.as_str() {
                "always" => true,
                "never" => false,
                _ => std::io::IsTerminal::is_terminal(&std::io::stdout()),
            };
            let mut out = std::io::stdout().lock();
            for diff in &diffs {
                let live = diff.live.as_ref().map(output::yaml).unwrap_or_default();
                let desired = diff.desired.as_ref().map(output::yaml).unwrap_or_default();
                writeln!(out, "===== {} ======", diff.key)?;
                out.write_all(
                    output::unified_diff(&live, &desired, "live", "desired", color).as_bytes(),
                )?;
            }
            Ok(if diffs.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

async fn get(cluster: &Cluster, scope: &AppScope, name: &str) -> anyhow::Result<Value> {
    cluster
        .get(API_VERSION, "Application", &scope.app_namespace, name)
        .await?
        .with_context(|| {
            format!(
                "application {name:?} not found in namespace {:?}",
                scope.app_namespace
            )
        })
}

async fn fetch(scope: &AppScope, name: &str) -> anyhow::Result<(Cluster, Value)> {
    let cluster = connect(&scope.cluster).await?;
    let app = get(&cluster, scope, name).await?;
    Ok((cluster, app))
}

/// Sets `.operation`, refusing when one is already running.
async fn request_operation(cluster: &Cluster, app: &Value, sync: Value) -> anyhow::Result<()> {
    let (namespace, name) = (
        str_at(app, &["metadata", "namespace"]),
        str_at(app, &["metadata", "name"]),
    );
    if app.get("operation").is_some_and(|o| !o.is_null()) {
        bail!("another operation is already in progress on application {name}");
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "plumb-cli".into());
    let operation = json!({"sync": sync, "initiatedBy": {"username": user},
        "info": [{"name": "requestedAt", "value": crate::commands::app::timestamp()}]});
    cluster
        .merge_patch(
            API_VERSION,
            "Application",
            namespace,
            name,
            &json!({"operation": operation}),
        )
        .await?;
    Ok(())
}

pub fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:03}", now.as_secs(), now.subsec_millis())
}

/// Follows `.status.operationState` until the operation we requested finishes.
async fn wait_operation(
    cluster: &Cluster,
    scope: &AppScope,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let deadline = Instant::now() + timeout;
    let mut last_message = String::new();
    let mut err = std::io::stderr();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let app = get(cluster, scope, name).await?;
        let state = app
            .pointer("/status/operationState")
            .cloned()
            .unwrap_or(Value::Null);
        let phase = str_at(&state, &["phase"]);
        let message = str_at(&state, &["message"]);
        let pending = app.get("operation").is_some_and(|o| !o.is_null());
        if !pending && !phase.is_empty() && phase != "Running" {
            print_results(&state)?;
            println!(
                "Phase:    {phase}\nMessage:  {message}\nRevision: {}",
                revisions_text(state.get("syncResult").unwrap_or(&Value::Null), false)
            );
            return Ok(if phase == "Succeeded" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        let line = if phase.is_empty() || !pending {
            "waiting for the controller...".to_string()
        } else {
            format!("{phase}: {message}")
        };
        if line != last_message {
            writeln!(err, "{line}")?;
            last_message = line;
        }
        if Instant::now() > deadline {
            bail!(
                "operation on {name} did not finish within {}s; it goes on in the controller",
                timeout.as_secs()
            );
        }
    }
}

fn print_results(state: &Value) -> anyhow::Result<()> {
    let results = state
        .pointer("/syncResult/resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if results.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            ["group", "kind", "namespace", "name", "status", "message"]
                .iter()
                .map(|f| str_at(r, &[f]).to_string())
                .collect()
        })
        .collect();
    table(
        &mut std::io::stdout(),
        &["GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "MESSAGE"],
        &rows,
    )?;
    println!();
    Ok(())
}

fn sync_policy(app: &Value) -> String {
    let automated = app
        .pointer("/spec/syncPolicy/automated")
        .filter(|a| !a.is_null());
    match automated {
        Some(a) if a.get("enabled").and_then(Value::as_bool) != Some(false) => {
            let mut flags = Vec::new();
            if a.get("prune").and_then(Value::as_bool) == Some(true) {
                flags.push("Prune");
            }
            if a.get("selfHeal").and_then(Value::as_bool) == Some(true) {
                flags.push("SelfHeal");
            }
            if flags.is_empty() {
                "Auto".into()
            } else {
                format!("Auto-{}", flags.join("-"))
            }
        }
        _ => "Manual".into(),
    }
}

fn print_list(
    apps: &[Value],
    kustomizations: &[Value],
    output: Option<Output>,
) -> anyhow::Result<()> {
    let items: Vec<&Value> = apps.iter().chain(kustomizations).collect();
    match output {
        Some(Output::Json) => print!(
            "{}",
            output::json(&json!({"apiVersion": "v1", "kind": "List", "items": items}))
        ),
        Some(Output::Yaml) => print!(
            "{}",
            output::yaml(&json!({"apiVersion": "v1", "kind": "List", "items": items}))
        ),
        _ => {
            let rows: Vec<Vec<String>> = apps
                .iter()
                .map(|app| {
                    let mut row = vec![
                        format!(
                            "{}/{}",
                            str_at(app, &["metadata", "namespace"]),
                            str_at(app, &["metadata", "name"])
                        ),
                        destination_server(app),
                        str_at(app, &["spec", "destination", "namespace"]).to_string(),
                        project(app),
                        str_at(app, &["status", "sync", "status"]).to_string(),
                        str_at(app, &["status", "health", "status"]).to_string(),
                        sync_policy(app),
                        conditions_summary(app),
                    ];
                    if output == Some(Output::Wide) {
                        // A multi-source application shows its first source.
                        let source = app
                            .pointer("/spec/sources/0")
                            .or_else(|| app.pointer("/spec/source"))
                            .unwrap_or(&Value::Null);
                        row.push(str_at(source, &["repoURL"]).to_string());
                        row.push(str_at(source, &["path"]).to_string());
                        row.push(str_at(source, &["targetRevision"]).to_string());
                    }
                    row
                })
                .collect();
            let mut header = vec![
                "NAME",
                "CLUSTER",
                "NAMESPACE",
                "PROJECT",
                "STATUS",
                "HEALTH",
                "SYNCPOLICY",
                "CONDITIONS",
            ];
            if output == Some(Output::Wide) {
                header.extend(["REPO", "PATH", "TARGET"]);
            }
            table(&mut std::io::stdout(), &header, &rows)?;
            if !kustomizations.is_empty() {
                println!();
                print_kustomizations(kustomizations, output == Some(Output::Wide))?;
            }
        }
    }
    Ok(())
}

fn print_kustomizations(kustomizations: &[Value], wide: bool) -> anyhow::Result<()> {
    let (header, rows) = kustomization_table(kustomizations, wide);
    table(&mut std::io::stdout(), &header, &rows)?;
    Ok(())
}

/// Flux Kustomizations and HelmReleases, in the columns `flux get kustomizations` and
/// `flux get helmreleases` show plus their kind.
fn kustomization_table(
    kustomizations: &[Value],
    wide: bool,
) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let rows: Vec<Vec<String>> = kustomizations
        .iter()
        .map(|ks| {
            let ready = ks
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| str_at(c, &["type"]) == "Ready"))
                .cloned()
                .unwrap_or(Value::Null);
            let helm = str_at(ks, &["kind"]) == "HelmRelease";
            // A HelmRelease's revision is the chart version of its newest release.
            let revision = if helm {
                ks.pointer("/status/history/0/chartVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            } else {
                str_at(ks, &["status", "lastAppliedRevision"])
            };
            let mut row = vec![
                format!(
                    "{}/{}",
                    str_at(ks, &["metadata", "namespace"]),
                    str_at(ks, &["metadata", "name"])
                ),
                if helm { "HelmRelease" } else { "Kustomization" }.to_string(),
                revision.to_string(),
                if ks.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
                    "True".to_string()
                } else {
                    "False".to_string()
                },
                str_at(&ready, &["status"]).to_string(),
                str_at(&ready, &["message"]).to_string(),
            ];
            if wide {
                let (source, path) = if helm {
                    (
                        ks.pointer("/spec/chart/spec/sourceRef")
                            .or_else(|| ks.pointer("/spec/chartRef"))
                            .unwrap_or(&Value::Null),
                        str_at(ks, &["spec", "chart", "spec", "chart"]),
                    )
                } else {
                    (
                        ks.pointer("/spec/sourceRef").unwrap_or(&Value::Null),
                        str_at(ks, &["spec", "path"]),
                    )
                };
                row.insert(
                    2,
                    format!(
                        "{}/{}",
                        str_at(source, &["kind"]),
                        str_at(source, &["name"])
                    ),
                );
                row.insert(3, path.to_string());
            }
            row
        })
        .collect();
    let mut header = vec!["NAME", "KIND", "REVISION", "SUSPENDED", "READY", "MESSAGE"];
    if wide {
        header.splice(2..2, ["SOURCE", "PATH"]);
    }
    (header, rows)
}

fn project(app: &Value) -> String {
    let project = str_at(app, &["spec", "project"]);
    if project.is_empty() {
        "default".into()
    } else {
        project.into()
    }
}

fn destination_server(app: &Value) -> String {
    let server = str_at(app, &["spec", "destination", "server"]);
    if server.is_empty() {
        str_at(app, &["spec", "destination", "name"]).to_string()
    } else {
        server.to_string()
    }
}

fn conditions_summary(app: &Value) -> String {
    let conditions = app
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if conditions.is_empty() {
        return "<none>".into();
    }
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for c in &conditions {
        *counts.entry(str_at(c, &["type"]).to_string()).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(k, n)| format!("{k}({n})"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Prints an application; `extra` lines (windows, dependencies) come before the tables.
fn print_app(app: &Value, output: Option<Output>, extra: &[(&str, String)]) -> anyhow::Result<()> {
    match output {
        Some(Output::Json) => {
            print!("{}", output::json(app));
            return Ok(());
        }
        Some(Output::Yaml) => {
            print!("{}", output::yaml(app));
            return Ok(());
        }
        _ => {}
    }
    let mut out = std::io::stdout().lock();
    let field = |label: &str, value: &str| format!("{:<20}{}", format!("{label}:"), value);
    writeln!(
        out,
        "{}",
        field(
            "Name",
            &format!(
                "{}/{}",
                str_at(app, &["metadata", "namespace"]),
                str_at(app, &["metadata", "name"])
            )
        )
    )?;
    writeln!(out, "{}", field("Project", &project(app)))?;
    writeln!(out, "{}", field("Server", &destination_server(app)))?;
    writeln!(
        out,
        "{}",
        field(
            "Namespace",
            str_at(app, &["spec", "destination", "namespace"])
        )
    )?;
    let sources = app
        .pointer("/spec/sources")
        .and_then(Value::as_array)
        .filter(|s| !s.is_empty());
    let target = str_at(app, &["spec", "source", "targetRevision"]);
    let target = if target.is_empty() { "HEAD" } else { target };
    if let Some(sources) = sources {
        writeln!(out, "{}", field("Sources", ""))?;
        for (i, source) in sources.iter().enumerate() {
            writeln!(out, "  {}", source_line(i, source))?;
        }
    } else {
        writeln!(
            out,
            "{}",
            field("Repo", str_at(app, &["spec", "source", "repoURL"]))
        )?;
        writeln!(out, "{}", field("Target", target))?;
        writeln!(
            out,
            "{}",
            field("Path", str_at(app, &["spec", "source", "path"]))
        )?;
    }
    writeln!(out, "{}", field("Sync Policy", &sync_policy(app)))?;
    let revision = str_at(app, &["status", "sync", "revision"]);
    let sync = str_at(app, &["status", "sync", "status"]);
    let sync_status = app.pointer("/status/sync").unwrap_or(&Value::Null);
    let sync_line = if sources.is_some() && sync_status.get("revisions").is_some() {
        format!("{sync} to ({})", revisions_text(sync_status, true))
    } else if revision.is_empty() {
        sync.to_string()
    } else {
        format!("{sync} to {target} ({})", short(revision))
    };
    writeln!(out, "{}", field("Sync Status", &sync_line))?;
    let health = str_at(app, &["status", "health", "status"]);
    let health_message = str_at(app, &["status", "health", "message"]);
    let health_line = if health_message.is_empty() {
        health.to_string()
    } else {
        format!("{health} ({health_message})")
    };
    writeln!(out, "{}", field("Health Status", &health_line))?;
    if let Some(state) = app.pointer("/status/operationState") {
        writeln!(
            out,
            "{}",
            field(
                "Last Sync",
                &format!(
                    "{} {}",
                    str_at(state, &["phase"]),
                    str_at(state, &["message"])
                )
            )
        )?;
    }
    for (label, value) in extra {
        writeln!(out, "{}", field(label, value))?;
    }
    let conditions = app
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !conditions.is_empty() {
        writeln!(out, "\nCONDITION{:<11}MESSAGE", "")?;
        for c in &conditions {
            writeln!(
                out,
                "{:<20}{}",
                str_at(c, &["type"]),
                str_at(c, &["message"])
            )?;
        }
    }
    let resources = app
        .pointer("/status/resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !resources.is_empty() {
        writeln!(out)?;
        let rows: Vec<Vec<String>> = resources
            .iter()
            .map(|r| {
                let mut status = str_at(r, &["status"]).to_string();
                if r.get("requiresPruning").and_then(Value::as_bool) == Some(true) {
                    status.push_str(" (requires pruning)");
                }
                vec![
                    str_at(r, &["group"]).to_string(),
                    str_at(r, &["kind"]).to_string(),
                    str_at(r, &["namespace"]).to_string(),
                    str_at(r, &["name"]).to_string(),
                    status,
                    str_at(r, &["health", "status"]).to_string(),
                    str_at(r, &["health", "message"]).to_string(),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                "GROUP",
                "KIND",
                "NAMESPACE",
                "NAME",
                "STATUS",
                "HEALTH",
                "MESSAGE",
            ],
            &rows,
        )?;
    }
    Ok(())
}

fn print_history(app: &Value, output: Option<Output>) -> anyhow::Result<()> {
    let history = app.pointer("/status/history").cloned().unwrap_or(json!([]));
    match output {
        Some(Output::Json) => print!("{}", output::json(&history)),
        Some(Output::Yaml) => print!("{}", output::yaml(&history)),
        _ => {
            let rows: Vec<Vec<String>> = history
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| {
                    vec![
                        h.get("id").map(|v| v.to_string()).unwrap_or_default(),
                        str_at(h, &["deployedAt"]).to_string(),
                        revisions_text(h, false),
                        if h.pointer("/initiatedBy/automated").and_then(Value::as_bool)
                            == Some(true)
                        {
                            "automated".to_string()
                        } else {
                            str_at(h, &["initiatedBy", "username"]).to_string()
                        },
                    ]
                })
                .collect();
            table(
                &mut std::io::stdout(),
                &["ID", "DATE", "REVISION", "INITIATED BY"],
                &rows,
            )?;
        }
    }
    Ok(())
}

/// Asks the controller to stop the running operation the way Argo CD's CLI does
/// (`status.operationState.phase: Terminating`, written against the version read, so a
/// progress update in between is never lost), then waits until the controller has stopped it.
async fn terminate_operation(
    scope: &AppScope,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let cluster = connect(&scope.cluster).await?;
    for _ in 0..10 {
        let app = get(&cluster, scope, name).await?;
        let phase = str_at(&app, &["status", "operationState", "phase"]);
        match phase {
            "Running" => {}
            "Terminating" => break,
            _ => bail!(
                "unable to terminate operation of application {name}: no operation is in progress"
            ),
        }
        let patch = json!({"metadata": {"resourceVersion": str_at(&app, &["metadata", "resourceVersion"])},
            "status": {"operationState": {"phase": "Terminating"}}});
        match cluster
            .merge_patch(
                API_VERSION,
                "Application",
                &scope.app_namespace,
                name,
                &patch,
            )
            .await
        {
            Ok(_) => break,
            // The controller wrote progress meanwhile: read again and retry.
            Err(error) if error.is_conflict() => continue,
            Err(error) => return Err(error.into()),
        }
    }
    println!("application {name}: operation terminating");
    let deadline = Instant::now() + timeout;
    loop {
        let app = get(&cluster, scope, name).await?;
        let state = app
            .pointer("/status/operationState")
            .cloned()
            .unwrap_or(Value::Null);
        if str_at(&state, &["phase"]) != "Terminating" {
            println!(
                "application {name}: operation {}: {}",
                str_at(&state, &["phase"]),
                str_at(&state, &["message"])
            );
            return Ok(ExitCode::SUCCESS);
        }
        if Instant::now() > deadline {
            bail!(
                "the controller did not stop the operation of {name} within {}s; is `plumb controller` running?",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The sync windows of the application's project that apply to it, and its dependencies and
/// dependents with their state (the human form of `plumb app get`).
async fn windows_and_dependencies(
    cluster: &Cluster,
    scope: &AppScope,
    app: &Value,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    use plumb_core::dependencies::{AppNode, AppRef, DependencyGraph};
    use plumb_core::windows::{SyncWindow, SyncWindows, WindowTarget};
    let spec = ApplicationSpec::parse(app.get("spec").unwrap_or(&Value::Null))?;
    let name = str_at(app, &["metadata", "name"]);
    let mut lines = Vec::new();

    let project = if spec.project.is_empty() {
        "default"
    } else {
        spec.project.as_str()
    };
    let windows: Vec<SyncWindow> = cluster
        .get(API_VERSION, "AppProject", &scope.app_namespace, project)
        .await?
        .and_then(|p| p.pointer("/spec/syncWindows").cloned())
        .filter(|w| !w.is_null())
        .map(serde_json::from_value)
        .transpose()
        .with_context(|| format!("AppProject {project}: spec.syncWindows"))?
        .unwrap_or_default();
    if !windows.is_empty() {
        let compiled = SyncWindows::compile(&windows)
            .with_context(|| format!("AppProject {project}: spec.syncWindows"))?;
        let target = WindowTarget::of_application(name, &spec.destination);
        let now = chrono::Utc::now();
        let decision = compiled.decide(&target, now, plumb_core::plan::Trigger::Automated);
        for index in &decision.applicable {
            let window = &windows[*index];
            let state = if decision.active.contains(index) {
                "active"
            } else {
                "inactive"
            };
            lines.push((
                "Sync Window",
                format!(
                    "{index}: {} {:?} for {}{} ({state}{})",
                    window.kind,
                    window.schedule,
                    window.duration,
                    if window.time_zone.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", window.time_zone)
                    },
                    if window.manual_sync {
                        ", manual sync allowed"
                    } else {
                        ""
                    }
                ),
            ));
        }
        lines.push(("Sync Windows", decision.message()));
    }

    let apps = cluster
        .list(API_VERSION, "Application", &scope.app_namespace)
        .await?;
    let nodes: Vec<AppNode> = apps
        .iter()
        .map(|a| AppNode {
            namespace: str_at(a, &["metadata", "namespace"]).to_string(),
            name: str_at(a, &["metadata", "name"]).to_string(),
            labels: a
                .pointer("/metadata/labels")
                .and_then(|l| serde_json::from_value(l.clone()).ok())
                .unwrap_or_default(),
            depends_on: ApplicationSpec::parse(a.get("spec").unwrap_or(&Value::Null))
                .ok()
                .and_then(|s| s.depends_on),
        })
        .collect();
    let me = AppRef {
        namespace: str_at(app, &["metadata", "namespace"]).to_string(),
        name: name.to_string(),
    };
    let graph = match DependencyGraph::build(&nodes) {
        Ok(graph) => graph,
        Err(error) => {
            lines.push(("Depends On", format!("error: {error}")));
            return Ok(lines);
        }
    };
    let state_of = |r: &AppRef| {
        apps.iter()
            .find(|a| str_at(a, &["metadata", "name"]) == r.name)
            .map(|a| {
                format!(
                    "{r} ({}, {})",
                    str_at(a, &["status", "sync", "status"]),
                    str_at(a, &["status", "health", "status"])
                )
            })
            .unwrap_or_else(|| r.to_string())
    };
    if spec.depends_on.is_some() {
        let dependencies: Vec<String> = graph.dependencies_of(&me).iter().map(state_of).collect();
        let shown = if dependencies.is_empty() {
            "(none selected)".to_string()
        } else {
            dependencies.join(", ")
        };
        lines.push(("Depends On", shown));
        if let Some(cycle) = graph.find_cycle().filter(|c| c.contains(&me)) {
            let path: Vec<String> = cycle.iter().map(ToString::to_string).collect();
            lines.push(("Dependency Cycle", path.join(" -> ")));
        }
    }
    let dependents: Vec<String> = graph
        .dependents_of(&me)
        .iter()
        .map(ToString::to_string)
        .collect();
    if !dependents.is_empty() {
        lines.push(("Dependents", dependents.join(", ")));
    }
    Ok(lines)
}

/// One entry of `spec.sources` as `app get` shows it: position (1-based, as Argo CD counts),
/// repository, path or chart, target revision and ref.
fn source_line(i: usize, source: &Value) -> String {
    let mut line = format!("{}. {}", i + 1, str_at(source, &["repoURL"]));
    let chart = str_at(source, &["chart"]);
    let path = str_at(source, &["path"]);
    if !chart.is_empty() {
        line.push_str(&format!(" chart {chart}"));
    } else if !path.is_empty() {
        line.push_str(&format!(" path {path}"));
    }
    let target = str_at(source, &["targetRevision"]);
    line.push_str(&format!(
        " at {}",
        if target.is_empty() { "HEAD" } else { target }
    ));
    let reference = str_at(source, &["ref"]);
    if !reference.is_empty() {
        line.push_str(&format!(" (ref ${reference})"));
    }
    line
}

/// The revision(s) of a status, history entry or sync result: `revisions` (multi-source,
/// `, `-joined) or `revision`; `short` shortens each to seven characters.
fn revisions_text(value: &Value, shorten: bool) -> String {
    let shown = |r: &str| {
        if shorten {
            short(r).to_string()
        } else {
            r.to_string()
        }
    };
    match value.get("revisions").and_then(Value::as_array) {
        Some(revisions) if !revisions.is_empty() => revisions
            .iter()
            .map(|r| shown(r.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(", "),
        _ => shown(str_at(value, &["revision"])),
    }
}

/// Pins `--revision` in a sync operation: `sync.revision` for a single source; for an
/// application with `spec.sources`, `sync.revisions` with the revision at `--source-position`
/// (1-based) and the others empty (their target revisions), as Argo CD's CLI writes it.
fn pin_revision(
    app: &Value,
    sync: &mut Value,
    revision: Option<&str>,
    position: Option<usize>,
) -> anyhow::Result<()> {
    let name = str_at(app, &["metadata", "name"]);
    let sources = app
        .pointer("/spec/sources")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    match (revision, position) {
        (None, None) => Ok(()),
        (None, Some(_)) => bail!("--source-position needs --revision"),
        (Some(revision), None) if sources == 0 => {
            sync["revision"] = json!(revision);
            Ok(())
        }
        (Some(_), None) => bail!(
            "application {name} has {sources} sources (spec.sources): say which one the revision is for with --source-position N (1 to {sources})"
        ),
        (Some(_), Some(_)) if sources == 0 => bail!(
            "--source-position: application {name} has a single source (spec.source); use --revision alone"
        ),
        (Some(revision), Some(position)) => {
            if position == 0 || position > sources {
                bail!(
                    "--source-position {position}: application {name} has sources 1 to {sources}"
                );
            }
            let mut revisions = vec![String::new(); sources];
            revisions[position - 1] = revision.to_string();
            sync["revisions"] = json!(revisions);
            Ok(())
        }
    }
}

/// The sync operation a rollback to history `entry` requests, as Argo CD's rollback does:
/// its revision and source, or (multi-source) its revisions and sources.
fn rollback_sync(entry: &Value) -> Value {
    let mut sync = json!({"prune": false});
    match entry.get("revisions").filter(|r| r.is_array()) {
        Some(revisions) => {
            sync["revisions"] = revisions.clone();
            if let Some(sources) = entry.get("sources") {
                sync["sources"] = sources.clone();
            }
        }
        None => {
            sync["revision"] = entry.get("revision").cloned().unwrap_or(Value::Null);
            if let Some(source) = entry.get("source") {
                sync["source"] = source.clone();
            }
        }
    }
    sync
}

/// `--resource GROUP:KIND:NAME` (or `GROUP:KIND:NAMESPACE/NAME`) as an entry of Argo CD's
/// `operation.sync.resources`.
fn parse_resource(text: &str) -> anyhow::Result<Value> {
    let parts: Vec<&str> = text.split(':').collect();
    let [group, kind, name] = parts.as_slice() else {
        bail!(
            "--resource {text:?}: expected GROUP:KIND:NAME, e.g. apps:Deployment:web or :ConfigMap:settings"
        );
    };
    let (namespace, name) = name.split_once('/').unwrap_or(("", name));
    if kind.is_empty() || name.is_empty() {
        bail!("--resource {text:?}: KIND and NAME must not be empty");
    }
    let mut resource = json!({"group": group, "kind": kind, "name": name});
    if !namespace.is_empty() {
        resource["namespace"] = json!(namespace);
    }
    Ok(resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kustomizations_are_listed_with_their_kind_and_ready_condition() {
        let ks = json!({"metadata": {"namespace": "flux-system", "name": "podinfo"},
            "spec": {"sourceRef": {"kind": "GitRepository", "name": "repo"}, "path": "./kustomize"},
            "status": {"lastAppliedRevision": "main@sha1:abc",
                "conditions": [{"type": "Ready", "status": "True", "message": "Applied revision: main@sha1:abc"}]}});
        let (header, rows) = kustomization_table(std::slice::from_ref(&ks), false);
        assert_eq!(
            header,
            ["NAME", "KIND", "REVISION", "SUSPENDED", "READY", "MESSAGE"]
        );
        assert_eq!(
            rows[0],
            [
                "flux-system/podinfo",
                "Kustomization",
                "main@sha1:abc",
                "False",
                "True",
                "Applied revision: main@sha1:abc"
            ]
        );
        let (header, rows) = kustomization_table(&[ks], true);
        assert_eq!(header[2..4], ["SOURCE", "PATH"]);
        assert_eq!(rows[0][2..4], ["GitRepository/repo", "./kustomize"]);
        let hr = json!({"kind": "HelmRelease", "metadata": {"namespace": "apps", "name": "podinfo"},
            "spec": {"chart": {"spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "podinfo"}}}},
            "status": {"history": [{"chartVersion": "6.14.1"}],
                "conditions": [{"type": "Ready", "status": "True", "message": "Helm install succeeded"}]}});
        let (_, rows) = kustomization_table(&[hr], true);
        assert_eq!(
            rows[0],
            [
                "apps/podinfo",
                "HelmRelease",
                "HelmRepository/podinfo",
                "podinfo",
                "6.14.1",
                "False",
                "True",
                "Helm install succeeded"
            ]
        );
    }

    #[test]
    fn multi_source_revisions_are_pinned_shown_and_rolled_back() {
        let multi = json!({"metadata": {"name": "web"},
            "spec": {"sources": [{"repoURL": "https://a"}, {"repoURL": "https://b", "ref": "values"}]}});
        let mut sync = json!({});
        pin_revision(&multi, &mut sync, Some("v2"), Some(2)).unwrap();
        assert_eq!(sync, json!({"revisions": ["", "v2"]}));
        for (revision, position, problem) in [
            (Some("v2"), None, "--source-position N (1 to 2)"),
            (Some("v2"), Some(3), "has sources 1 to 2"),
            (None, Some(1), "needs --revision"),
        ] {
            let error = pin_revision(&multi, &mut json!({}), revision, position).unwrap_err();
            assert!(error.to_string().contains(problem), "{error}");
        }
        let single =
            json!({"metadata": {"name": "one"}, "spec": {"source": {"repoURL": "https://a"}}});
        let mut sync = json!({});
        pin_revision(&single, &mut sync, Some("abc"), None).unwrap();
        assert_eq!(sync, json!({"revision": "abc"}));
        assert!(pin_revision(&single, &mut json!({}), Some("abc"), Some(1)).is_err());

        let entry = json!({"id": 0, "revisions": ["0123456789", "1.2.3"], "sources": [{"repoURL": "https://a"}]});
        assert_eq!(
            rollback_sync(&entry),
            json!({"prune": false, "revisions": ["0123456789", "1.2.3"], "sources": [{"repoURL": "https://a"}]})
        );
        assert_eq!(revisions_text(&entry, true), "0123456, 1.2.3");
        let entry = json!({"id": 0, "revision": "abc", "source": {"repoURL": "https://a"}});
        assert_eq!(
            rollback_sync(&entry),
            json!({"prune": false, "revision": "abc", "source": {"repoURL": "https://a"}})
        );
        assert_eq!(revisions_text(&entry, false), "abc");
        assert_eq!(
            source_line(1, &json!({"repoURL": "https://b", "ref": "values"})),
            "2. https://b at HEAD (ref $values)"
        );
    }

    #[test]
    fn resources_parse_as_argo_cd_writes_them() {
        assert_eq!(
            parse_resource("apps:Deployment:web").unwrap(),
            json!({"group": "apps", "kind": "Deployment", "name": "web"})
        );
        assert_eq!(
            parse_resource(":ConfigMap:apps/settings").unwrap(),
            json!({"group": "", "kind": "ConfigMap", "name": "settings", "namespace": "apps"})
        );
        for bad in [
            "Deployment",
            "apps:Deployment",
            ":Deployment:",
            "a:b:c:d",
            "::x",
        ] {
            assert!(parse_resource(bad).is_err(), "{bad}");
        }
    }
}
