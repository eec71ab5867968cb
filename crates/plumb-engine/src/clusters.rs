//! Destination clusters: Argo CD cluster Secrets, `spec.destination` resolved through them,
//! and one client per cluster.
//!
//! A cluster Secret lives in the control namespace, labelled
//! `argocd.argoproj.io/secret-type: cluster`, with `name`, `server`, `config` (JSON:
//! `bearerToken`, `username`/`password`, `tlsClientConfig`) and optionally `namespaces`,
//! `clusterResources` and `project`. The Secrets are watched ([`watch`]): a new or changed one
//! takes effect at once and every application is looked at again. Parsing ([`ClusterSecret::parse`])
//! and resolution ([`resolve`]) are pure; [`destination`] puts them together with the client
//! cache.
//!
//! Argo CD's rules: `name` and `server` together are an error; `server` matches a Secret's
//! `server` (trailing `/` ignored), else the in-cluster server `https://kubernetes.default.svc`;
//! `name` matches Secrets' `name`, and `in-cluster` names the in-cluster server as long as no
//! Secret has that server (such a Secret renames it, and sets its namespaces). The in-cluster
//! server is always reached with the controller's own connection.
//!
//! **Guarantees**: credentials never reach a log, a condition or an error message (`Debug` of
//! every type here masks them).

use crate::Context;
use crate::sources::error_chain;
use base64::Engine as _;
use futures::StreamExt;
use plumb_core::application::{Destination as DestinationSpec, IN_CLUSTER};
use plumb_core::key::str_at;
use plumb_kube::{Cluster, ClusterConfig, TlsConfig, WatchEvent};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The label that marks Argo CD's Secrets by type.
pub(crate) const SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";
/// The name of the in-cluster destination when no Secret renames it.
pub(crate) const IN_CLUSTER_NAME: &str = "in-cluster";
/// How long a successful look at a cluster vouches for it.
const REACHABLE_TTL: Duration = Duration::from_secs(5);
/// How long a failed look at a cluster answers for it (so the applications of a cluster that
/// is down do not each wait for their own timeout).
const UNREACHABLE_TTL: Duration = Duration::from_secs(5);
/// How long the look at a cluster may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One cluster Secret, parsed.
#[derive(Clone)]
pub(crate) struct ClusterSecret {
    /// `metadata.name` of the Secret.
    pub secret: String,
    /// `name`: how applications refer to the cluster.
    pub name: String,
    /// `server`, without a trailing `/`.
    pub server: String,
    /// `namespaces`: the only namespaces managed there (all when empty).
    pub namespaces: Vec<String>,
    /// `clusterResources`: whether cluster-scoped objects are managed when `namespaces` is set.
    pub cluster_resources: bool,
    /// `project`: the project the cluster is scoped to.
    pub project: String,
    /// How to connect, or why the Secret cannot be used (naming the Secret and field).
    pub connection: Result<ClusterConfig, String>,
    /// Changes whenever anything the client is built from changes.
    fingerprint: u64,
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSecret")
            .field("secret", &self.secret)
            .field("name", &self.name)
            .field("server", &self.server)
            .field("namespaces", &self.namespaces)
            .field("cluster_resources", &self.cluster_resources)
            .field("project", &self.project)
            .field("connection", &self.connection)
            .finish()
    }
}

/// A Secret's field, from `data` (base64) or `stringData`.
fn field(secret: &Value, key: &str) -> Result<Option<String>, String> {
    if let Some(text) = secret
        .pointer(&format!("/stringData/{key}"))
        .and_then(Value::as_str)
    {
        return Ok(Some(text.to_string()));
    }
    let Some(encoded) = secret
        .pointer(&format!("/data/{key}"))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| format!("data.{key}: not valid base64"))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| format!("data.{key}: not UTF-8 text"))
}

impl ClusterSecret {
    /// Parses a cluster Secret. Never fails: what cannot be used is kept in
    /// [`ClusterSecret::connection`], so an application naming this cluster is told why.
    pub(crate) fn parse(secret: &Value) -> ClusterSecret {
        let secret_name = str_at(secret, &["metadata", "name"]).to_string();
        let whose = format!(
            "cluster Secret {}/{secret_name}",
            str_at(secret, &["metadata", "namespace"])
        );
        let mut problems = Vec::new();
        let mut text = |key: &str| match field(secret, key) {
            Ok(value) => value.unwrap_or_default(),
            Err(problem) => {
                problems.push(problem);
                String::new()
            }
        };
        let name = text("name");
        let server = text("server").trim().trim_end_matches('/').to_string();
        let namespaces = text("namespaces")
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        let cluster_resources = text("clusterResources").trim() == "true";
        let project = text("project");
        let config = text("config");
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (&server, &config).hash(&mut hasher);
        let connection = if let Some(problem) = problems.first() {
            Err(format!("{whose}: {problem}"))
        } else if server.is_empty() {
            Err(format!("{whose}: server: must be set"))
        } else {
            parse_config(&server, &config).map_err(|problem| format!("{whose}: {problem}"))
        };
        ClusterSecret {
            secret: secret_name,
            name,
            server,
            namespaces,
            cluster_resources,
            project,
            connection,
            fingerprint: hasher.finish(),
        }
    }
}

/// Parses the `config` JSON of a cluster Secret (empty: no credentials).
fn parse_config(server: &str, config: &str) -> Result<ClusterConfig, String> {
    let mut parsed = ClusterConfig {
        server: server.to_string(),
        ..Default::default()
    };
    if config.trim().is_empty() {
        return Ok(parsed);
    }
    // serde_json's messages give the position, never the text.
    let value: Value =
        serde_json::from_str(config).map_err(|e| format!("config: not valid JSON: {e}"))?;
    let Some(object) = value.as_object() else {
        return Err("config: must be a JSON object".into());
    };
    for (key, what) in [
        (
            "execProviderConfig",
            "exec credential providers are not supported yet (plumb runs no external programs); use bearerToken or a client certificate",
        ),
        (
            "awsAuthConfig",
            "AWS IAM authentication is not supported yet; use bearerToken or a client certificate",
        ),
        (
            "proxyUrl",
            "connecting through a proxy is not supported yet",
        ),
    ] {
        if object.get(key).is_some_and(|v| !is_empty(v)) {
            return Err(format!("config.{key}: {what}"));
        }
    }
    let string = |value: Option<&Value>, path: &str| -> Result<Option<String>, String> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("config.{path}: must be a string")),
        }
    };
    parsed.bearer_token = string(object.get("bearerToken"), "bearerToken")?;
    parsed.username = string(object.get("username"), "username")?;
    parsed.password = string(object.get("password"), "password")?;
    if parsed.username.is_some() != parsed.password.is_some() {
        return Err("config: username and password go together".into());
    }
    if let Some(tls) = object.get("tlsClientConfig").filter(|v| !v.is_null()) {
        let Some(tls) = tls.as_object() else {
            return Err("config.tlsClientConfig: must be a JSON object".into());
        };
        let pem = |key: &str| -> Result<Option<String>, String> {
            let path = format!("tlsClientConfig.{key}");
            let value = string(tls.get(key), &path)?;
            if let Some(value) = &value {
                base64::engine::general_purpose::STANDARD
                    .decode(value.trim())
                    .map_err(|_| format!("config.{path}: not valid base64"))?;
            }
            Ok(value.map(|v| v.trim().to_string()))
        };
        let insecure = match tls.get("insecure") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("config.tlsClientConfig.insecure: must be true or false".into()),
        };
        parsed.tls = TlsConfig {
            insecure,
            ca_data: pem("caData")?,
            cert_data: pem("certData")?,
            key_data: pem("keyData")?,
            server_name: string(tls.get("serverName"), "tlsClientConfig.serverName")?,
        };
        if parsed.tls.cert_data.is_some() != parsed.tls.key_data.is_some() {
            return Err("config.tlsClientConfig: certData and keyData go together".into());
        }
    }
    Ok(parsed)
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Where an application's objects go, as [`resolve`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The cluster's name (`in-cluster` unless a Secret renames it).
    pub name: String,
    /// The API server URL (for the in-cluster destination, `https://kubernetes.default.svc`).
    pub server: String,
    /// The only namespaces managed there (all when empty).
    pub namespaces: Vec<String>,
    /// Whether cluster-scoped objects are managed when `namespaces` is set.
    pub cluster_resources: bool,
    /// The project the cluster is scoped to (empty: none).
    pub project: String,
    /// The Secret that describes it (`None`: the in-cluster destination without a Secret).
    pub secret: Option<String>,
}

impl Target {
    /// Whether the controller's own connection reaches it.
    pub(crate) fn is_in_cluster(&self) -> bool {
        self.server == IN_CLUSTER
    }

    /// Why the cluster's Secret keeps an object out (`namespaces`, `clusterResources`); `None`
    /// when it does not. `namespace` is `None` for a cluster-scoped object.
    pub(crate) fn scope_refusal(&self, namespace: Option<&str>) -> Option<String> {
        let target = self;
        if target.namespaces.is_empty() {
            return None;
        }
        let secret = target.secret.as_deref().unwrap_or_default();
        match namespace {
            Some(namespace) if !target.namespaces.iter().any(|n| n == namespace) => Some(format!(
                "namespace {namespace} is not managed in cluster {} (cluster Secret {secret}: namespaces: {})",
                target.name,
                target.namespaces.join(",")
            )),
            None if !target.cluster_resources => Some(format!(
                "cluster-scoped objects are not managed in cluster {} (cluster Secret {secret} sets namespaces without clusterResources: \"true\")",
                target.name
            )),
            _ => None,
        }
    }
}

/// Why a destination cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// The spec names no cluster that exists, or names it wrongly (an `InvalidSpecError`).
    Invalid(String),
    /// The cluster exists but cannot be reached or its Secret cannot be used (a
    /// `ComparisonError`).
    Failed(String),
}

impl Unusable {
    pub(crate) fn message(&self) -> &str {
        match self {
            Unusable::Invalid(message) | Unusable::Failed(message) => message,
        }
    }
}

fn target_of(secret: &ClusterSecret) -> Target {
    Target {
        name: secret.name.clone(),
        server: secret.server.clone(),
        namespaces: secret.namespaces.clone(),
        cluster_resources: secret.cluster_resources,
        project: secret.project.clone(),
        secret: Some(secret.secret.clone()),
    }
}

fn in_cluster() -> Target {
    Target {
        name: IN_CLUSTER_NAME.into(),
        server: IN_CLUSTER.into(),
        namespaces: Vec::new(),
        cluster_resources: false,
        project: String::new(),
        secret: None,
    }
}

/// Resolves `spec.destination` through the cluster Secrets of `control_namespace`, by Argo
/// CD's rules (see the module). Secrets are taken in the order given (the first of several with
/// the same server wins).
pub(crate) fn resolve(
    destination: &DestinationSpec,
    secrets: &[ClusterSecret],
    control_namespace: &str,
) -> Result<Target, Unusable> {
    let name = destination.name.trim();
    let server = destination.server.trim().trim_end_matches('/');
    if !name.is_empty() && !server.is_empty() {
        return Err(Unusable::Invalid(format!(
            "spec.destination: application destination can't have both name and server defined: {name} {server}"
        )));
    }
    let usable = |secret: &ClusterSecret| !secret.server.is_empty();
    if !server.is_empty() {
        if let Some(secret) = secrets.iter().find(|s| usable(s) && s.server == server) {
            return Ok(target_of(secret));
        }
        if server == IN_CLUSTER {
            return Ok(in_cluster());
        }
        return Err(Unusable::Invalid(format!(
            "spec.destination.server: cluster {server:?} is not configured: no cluster Secret (label {SECRET_TYPE_LABEL}: cluster) in namespace {control_namespace} has this server"
        )));
    }
    if name.is_empty() {
        return Err(Unusable::Invalid(
            "spec.destination: server or name must be set".into(),
        ));
    }
    let overridden = secrets.iter().any(|s| usable(s) && s.server == IN_CLUSTER);
    if name == IN_CLUSTER_NAME && !overridden {
        return Ok(in_cluster());
    }
    let named: Vec<&ClusterSecret> = secrets.iter().filter(|s| s.name == name).collect();
    match named.as_slice() {
        [] => Err(Unusable::Invalid(format!(
            "spec.destination.name: there are no clusters with this name: {name} (no cluster Secret in namespace {control_namespace} has it)"
        ))),
        [secret] => match &secret.connection {
            Err(problem) if secret.server.is_empty() => Err(Unusable::Failed(format!(
                "cluster {name:?} cannot be used: {problem}"
            ))),
            _ => Ok(target_of(secret)),
        },
        several => Err(Unusable::Invalid(format!(
            "spec.destination.name: there are {} clusters with the same name: [{}]",
            several.len(),
            several
                .iter()
                .map(|s| s.server.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ))),
    }
}

/// A resolved destination with its client: what every read and write of an application's
/// objects goes through.
#[derive(Clone)]
pub(crate) struct Destination {
    /// The client.
    pub cluster: Cluster,
    /// Where it goes.
    pub target: Target,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Destination {
    /// The in-cluster destination over `cluster`.
    pub(crate) fn in_cluster(cluster: Cluster) -> Destination {
        Destination {
            cluster,
            target: in_cluster(),
        }
    }

    /// What caches key the cluster by: its server URL.
    pub(crate) fn key(&self) -> &str {
        &self.target.server
    }

    /// `name (server)`, for messages.
    pub(crate) fn describe(&self) -> String {
        describe(&self.target)
    }
}

fn describe(target: &Target) -> String {
    format!("{} ({})", target.name, target.server)
}

/// When a cluster was last looked at, and what was found.
type Probe = (Instant, Result<(), String>);

/// The cluster Secrets, the clients built from them, and what the last look at each cluster
/// found.
#[derive(Default)]
pub(crate) struct Clusters {
    /// The Secrets by name, as the watch last saw them (`None` until its first list).
    secrets: RwLock<Option<BTreeMap<String, ClusterSecret>>>,
    /// Clients by server, with the fingerprint of the Secret they were built from.
    clients: Mutex<HashMap<String, (u64, Cluster)>>,
    /// The last look at each remote cluster.
    probes: Mutex<HashMap<String, Probe>>,
}

impl Clusters {
    fn watched(&self) -> Option<Vec<ClusterSecret>> {
        let secrets = self.secrets.read().ok()?;
        secrets.as_ref().map(|s| s.values().cloned().collect())
    }

    fn forget_server(&self, server: &str) {
        if let Ok(mut clients) = self.clients.lock() {
            clients.remove(server);
        }
        if let Ok(mut probes) = self.probes.lock() {
            probes.remove(server);
        }
    }
}

/// The cluster Secrets of the control namespace: the watched set, or (before the watch has
/// listed) a list made now.
pub(crate) async fn secrets(context: &Context) -> Result<Vec<ClusterSecret>, String> {
    if let Some(secrets) = context.clusters.watched() {
        return Ok(secrets);
    }
    let namespace = &context.options.control_namespace;
    let listed = context
        .cluster
        .list_selected(
            "v1",
            "Secret",
            namespace,
            &format!("{SECRET_TYPE_LABEL}=cluster"),
        )
        .await
        .map_err(|e| {
            format!(
                "cannot list the cluster Secrets in namespace {namespace}: {}",
                error_chain(&e)
            )
        })?;
    let mut secrets: Vec<ClusterSecret> = listed.iter().map(ClusterSecret::parse).collect();
    secrets.sort_by(|a, b| a.secret.cmp(&b.secret));
    Ok(secrets)
}

/// The destination of an application, with a client for it.
///
/// **Errors**: [`Unusable::Invalid`] when the spec names no (or no unique) cluster,
/// [`Unusable::Failed`] when the cluster's Secret cannot be used or the Secrets cannot be read.
pub(crate) async fn destination(
    context: &Context,
    destination: &DestinationSpec,
) -> Result<Destination, Unusable> {
    let secrets = secrets(context).await.map_err(Unusable::Failed)?;
    let target = resolve(destination, &secrets, &context.options.control_namespace)?;
    if target.is_in_cluster() {
        return Ok(Destination {
            cluster: context.cluster.clone(),
            target,
        });
    }
    let Some(secret) = secrets
        .iter()
        .find(|s| Some(&s.secret) == target.secret.as_ref())
    else {
        return Err(Unusable::Failed(format!(
            "cluster {} is no longer configured",
            describe(&target)
        )));
    };
    let config = secret.connection.as_ref().map_err(|problem| {
        Unusable::Failed(format!(
            "cluster {} cannot be used: {problem}",
            describe(&target)
        ))
    })?;
    let cached = context.clusters.clients.lock().ok().and_then(|clients| {
        clients
            .get(&target.server)
            .filter(|(fingerprint, _)| *fingerprint == secret.fingerprint)
            .map(|(_, cluster)| cluster.clone())
    });
    let cluster = match cached {
        Some(cluster) => cluster,
        None => {
            let cluster = Cluster::from_config(config).await.map_err(|e| {
                Unusable::Failed(format!(
                    "cluster {} (cluster Secret {}) cannot be used: {}",
                    describe(&target),
                    secret.secret,
                    error_chain(&e)
                ))
            })?;
            if let Ok(mut clients) = context.clusters.clients.lock() {
                clients.insert(target.server.clone(), (secret.fingerprint, cluster.clone()));
            }
            cluster
        }
    };
    Ok(Destination { cluster, target })
}

/// Whether a remote destination answers (the in-cluster one always counts as answering: the
/// controller's own requests tell). Results are shared for a few seconds, so the applications of
/// a cluster that is down do not each wait for a timeout.
///
/// **Errors**: the message names the cluster.
pub(crate) async fn reachable(context: &Context, destination: &Destination) -> Result<(), String> {
    if destination.target.is_in_cluster() {
        return Ok(());
    }
    let key = destination.key().to_string();
    let known = context.clusters.probes.lock().ok().and_then(|probes| {
        probes.get(&key).and_then(|(at, result)| {
            let ttl = if result.is_ok() {
                REACHABLE_TTL
            } else {
                UNREACHABLE_TTL
            };
            (at.elapsed() < ttl).then(|| result.clone())
        })
    });
    if let Some(result) = known {
        return result;
    }
    let result = match tokio::time::timeout(PROBE_TIMEOUT, destination.cluster.probe()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(format!(
            "cluster {} is unreachable: {}",
            destination.describe(),
            error_chain(&error)
        )),
        Err(_) => Err(format!(
            "cluster {} is unreachable: no answer within {}s",
            destination.describe(),
            PROBE_TIMEOUT.as_secs()
        )),
    };
    if let Ok(mut probes) = context.clusters.probes.lock() {
        probes.insert(key, (Instant::now(), result.clone()));
    }
    result
}

/// [`reachable`], without the answer of an earlier look (after a request to the cluster
/// failed).
pub(crate) async fn recheck(context: &Context, destination: &Destination) -> Result<(), String> {
    if let Ok(mut probes) = context.clusters.probes.lock() {
        probes.remove(destination.key());
    }
    reachable(context, destination).await
}

/// Watches the cluster Secrets of the control namespace: every change replaces the set at once,
/// drops the client and the managed-object watches of a cluster whose Secret changed, and has
/// every application looked at again.
pub(crate) fn watch(context: Arc<Context>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let namespace = context.options.control_namespace.clone();
        let selector = format!("{SECRET_TYPE_LABEL}=cluster");
        let stream = loop {
            match context
                .cluster
                .watch("v1", "Secret", &namespace, Some(&selector))
                .await
            {
                Ok(stream) => break stream,
                Err(error) => {
                    tracing::warn!(namespace = %namespace, error = %error_chain(&error),
                        "cannot watch cluster Secrets; retrying");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        };
        let mut stream = Box::pin(stream);
        let mut relist: Option<BTreeMap<String, ClusterSecret>> = None;
        while let Some(event) = stream.next().await {
            match event {
                WatchEvent::Restarted => relist = Some(BTreeMap::new()),
                WatchEvent::Applied(object) => {
                    let secret = ClusterSecret::parse(&object);
                    match relist.as_mut() {
                        Some(relist) => {
                            relist.insert(secret.secret.clone(), secret);
                        }
                        None => replace(&context, Some(secret), &object),
                    }
                }
                WatchEvent::Deleted(object) => {
                    if let Some(relist) = relist.as_mut() {
                        relist.remove(str_at(&object, &["metadata", "name"]));
                    } else {
                        replace(&context, None, &object);
                    }
                }
                WatchEvent::Synced => {
                    if let Some(listed) = relist.take() {
                        install(&context, |_| listed);
                    }
                }
                WatchEvent::Error(error) => {
                    tracing::debug!(%error, "cluster Secret watch error; retrying");
                }
            }
        }
    })
}

/// One Secret changed (`secret`) or went away (`None`) after the initial list.
fn replace(context: &Context, secret: Option<ClusterSecret>, object: &Value) {
    let name = str_at(object, &["metadata", "name"]).to_string();
    install(context, |mut secrets| {
        secrets.remove(&name);
        if let Some(secret) = secret {
            secrets.insert(name.clone(), secret);
        }
        secrets
    });
}

/// Replaces the set of Secrets by what `change` makes of it; the clusters whose connection
/// changed lose their client and watches, and every application is looked at again when
/// anything that resolution reads changed.
fn install(
    context: &Context,
    change: impl FnOnce(BTreeMap<String, ClusterSecret>) -> BTreeMap<String, ClusterSecret>,
) {
    let (first, changed) = {
        let Ok(mut secrets) = context.clusters.secrets.write() else {
            return;
        };
        let first = secrets.is_none();
        let old = secrets.take().unwrap_or_default();
        let new = change(old.clone());
        let changed = changes(&old, &new);
        *secrets = Some(new);
        (first, changed)
    };
    for name in &changed.secrets {
        tracing::info!(secret = %name, "cluster Secret changed");
    }
    for server in &changed.connections {
        forget(context, server);
    }
    if first || !changed.secrets.is_empty() {
        look_again(context);
    }
}

/// What differs between two sets of cluster Secrets.
#[derive(Debug, Default, PartialEq, Eq)]
struct Changes {
    /// Secrets added, removed or changed in anything resolution reads.
    secrets: Vec<String>,
    /// Servers whose connection settings changed (or that came or went).
    connections: Vec<String>,
}

fn changes(
    old: &BTreeMap<String, ClusterSecret>,
    new: &BTreeMap<String, ClusterSecret>,
) -> Changes {
    let mut found = Changes::default();
    let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        let (before, after) = (old.get(name), new.get(name));
        let resolution = |s: Option<&ClusterSecret>| {
            s.map(|s| {
                (
                    s.name.clone(),
                    s.server.clone(),
                    s.namespaces.clone(),
                    s.cluster_resources,
                    s.project.clone(),
                    s.fingerprint,
                    s.connection.as_ref().err().cloned(),
                )
            })
        };
        if resolution(before) != resolution(after) {
            found.secrets.push(name.clone());
        }
        let connection = |s: Option<&ClusterSecret>| s.map(|s| (s.server.clone(), s.fingerprint));
        if connection(before) != connection(after) {
            found
                .connections
                .extend(before.into_iter().chain(after).map(|s| s.server.clone()));
        }
    }
    found.connections.sort();
    found.connections.dedup();
    found
}

fn forget(context: &Context, server: &str) {
    context.clusters.forget_server(server);
    if server != IN_CLUSTER {
        context.drift.forget_cluster(server);
    }
}

fn look_again(context: &Context) {
    let ids: Vec<_> = context.with_apps(|apps| apps.keys().cloned().collect());
    for id in ids {
        context.queue.add(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn secret(name: &str, cluster: &str, server: &str, config: &str) -> ClusterSecret {
        ClusterSecret::parse(&json!({
            "metadata": {"name": name, "namespace": "argocd",
                "labels": {SECRET_TYPE_LABEL: "cluster"}},
            "data": {"name": b64(cluster), "server": b64(server), "config": b64(config)}
        }))
    }

    fn dest(name: &str, server: &str) -> DestinationSpec {
        serde_json::from_value(json!({"name": name, "server": server, "namespace": "apps"}))
            .expect("destination")
    }

    #[test]
    fn secret_fields_and_credentials_are_read_and_never_shown() {
        let parsed = secret(
            "prod-secret",
            "prod",
            "https://prod.example.com:6443/",
            r#"{"bearerToken": "tok3n", "tlsClientConfig": {"insecure": true, "serverName": "api", "caData": "Y2E="}}"#,
        );
        assert_eq!(parsed.server, "https://prod.example.com:6443");
        assert_eq!(parsed.name, "prod");
        let config = parsed.connection.as_ref().expect("usable");
        assert_eq!(config.bearer_token.as_deref(), Some("tok3n"));
        assert!(config.tls.insecure);
        assert_eq!(config.tls.server_name.as_deref(), Some("api"));
        assert_eq!(config.tls.ca_data.as_deref(), Some("Y2E="));
        assert!(!format!("{parsed:?}").contains("tok3n"));

        let string_data = ClusterSecret::parse(&json!({
            "metadata": {"name": "s", "namespace": "argocd"},
            "stringData": {"name": "a", "server": "http://127.0.0.1:1", "namespaces": "a, b,,",
                "clusterResources": "true", "project": "team"}
        }));
        assert_eq!(string_data.namespaces, vec!["a", "b"]);
        assert!(string_data.cluster_resources);
        assert_eq!(string_data.project, "team");
        assert!(string_data.connection.is_ok(), "no config: anonymous");
    }

    #[test]
    fn unusable_configs_name_the_secret_and_the_field() {
        let problem = |config: &str| {
            secret("bad", "b", "https://b", config)
                .connection
                .expect_err("refused")
        };
        let message = problem("{not json");
        assert!(
            message.starts_with("cluster Secret argocd/bad: config: not valid JSON"),
            "{message}"
        );
        assert!(
            problem(r#"{"execProviderConfig": {"command": "aws"}}"#).contains(
                "config.execProviderConfig: exec credential providers are not supported yet"
            )
        );
        assert!(
            problem(r#"{"awsAuthConfig": {"clusterName": "x"}}"#).contains("config.awsAuthConfig")
        );
        assert!(problem(r#"{"bearerToken": 3}"#).contains("config.bearerToken: must be a string"));
        assert!(
            problem(r#"{"tlsClientConfig": {"caData": "%%%"}}"#)
                .contains("config.tlsClientConfig.caData: not valid base64")
        );
        assert!(
            problem(r#"{"tlsClientConfig": {"insecure": "yes"}}"#)
                .contains("config.tlsClientConfig.insecure")
        );
        assert!(
            problem(r#"{"tlsClientConfig": {"certData": "Y2E="}}"#)
                .contains("certData and keyData go together")
        );
        assert!(problem(r#"{"username": "u"}"#).contains("username and password"));
        assert!(problem("[1]").contains("config: must be a JSON object"));
        let no_server = secret("s", "n", "", "{}")
            .connection
            .expect_err("no server");
        assert!(no_server.contains("server: must be set"), "{no_server}");
        // Nothing from the config's text reaches the message.
        assert!(!problem(r#"{"bearerToken": "tok3n", "x": }"#).contains("tok3n"));
    }

    #[test]
    fn destinations_resolve_by_argo_cd_rules() {
        let secrets = vec![
            secret("a", "prod", "https://prod:6443", "{}"),
            secret("b", "stage", "http://127.0.0.1:8080/", "{}"),
        ];
        let by_name = resolve(&dest("prod", ""), &secrets, "argocd").expect("by name");
        assert_eq!(by_name.server, "https://prod:6443");
        assert_eq!(by_name.secret.as_deref(), Some("a"));
        let by_server =
            resolve(&dest("", "http://127.0.0.1:8080"), &secrets, "argocd").expect("by server");
        assert_eq!(by_server.name, "stage");
        let local = resolve(&dest("in-cluster", ""), &secrets, "argocd").expect("in-cluster");
        assert!(local.is_in_cluster());
        assert_eq!(
            resolve(
                &dest("", "https://kubernetes.default.svc/"),
                &secrets,
                "argocd"
            )
            .expect("in-cluster server")
            .name,
            "in-cluster"
        );
        let both = resolve(&dest("prod", "https://prod:6443"), &secrets, "argocd").unwrap_err();
        assert_eq!(
            both.message(),
            "spec.destination: application destination can't have both name and server defined: prod https://prod:6443"
        );
        let unknown = resolve(&dest("nope", ""), &secrets, "argocd").unwrap_err();
        assert!(matches!(unknown, Unusable::Invalid(_)));
        assert!(
            unknown
                .message()
                .contains("there are no clusters with this name: nope")
        );
        let unknown_server = resolve(&dest("", "https://other"), &secrets, "argocd").unwrap_err();
        assert!(
            unknown_server
                .message()
                .contains("\"https://other\" is not configured")
        );
        assert!(resolve(&dest("", ""), &secrets, "argocd").is_err());
    }

    #[test]
    fn a_secret_for_the_in_cluster_server_renames_it() {
        let mut secrets = vec![secret("local", "local", IN_CLUSTER, "")];
        secrets[0].namespaces = vec!["apps".into()];
        let renamed = resolve(&dest("local", ""), &secrets, "argocd").expect("renamed");
        assert!(renamed.is_in_cluster());
        assert_eq!(renamed.namespaces, vec!["apps"]);
        assert!(resolve(&dest("in-cluster", ""), &secrets, "argocd").is_err());
        assert_eq!(
            resolve(&dest("", IN_CLUSTER), &secrets, "argocd")
                .expect("by server")
                .name,
            "local"
        );
    }

    #[test]
    fn only_connection_changes_drop_a_client() {
        let map = |secrets: Vec<ClusterSecret>| -> BTreeMap<String, ClusterSecret> {
            secrets.into_iter().map(|s| (s.secret.clone(), s)).collect()
        };
        let old = map(vec![
            secret("a", "prod", "https://prod", r#"{"bearerToken": "one"}"#),
            secret("b", "stage", "https://stage", "{}"),
        ]);
        assert_eq!(changes(&old, &old), Changes::default());
        let mut renamed = old.clone();
        if let Some(b) = renamed.get_mut("b") {
            b.name = "staging".into();
        }
        assert_eq!(
            changes(&old, &renamed),
            Changes {
                secrets: vec!["b".into()],
                connections: vec![],
            }
        );
        let mut rotated = old.clone();
        rotated.insert(
            "a".into(),
            secret("a", "prod", "https://prod", r#"{"bearerToken": "two"}"#),
        );
        assert_eq!(changes(&old, &rotated).connections, vec!["https://prod"]);
        let mut removed = old.clone();
        removed.remove("b");
        assert_eq!(
            changes(&old, &removed),
            Changes {
                secrets: vec!["b".into()],
                connections: vec!["https://stage".into()],
            }
        );
    }

    #[test]
    fn duplicate_names_are_an_error() {
        let secrets = vec![
            secret("a", "prod", "https://one", "{}"),
            secret("b", "prod", "https://two", "{}"),
        ];
        let error = resolve(&dest("prod", ""), &secrets, "argocd").unwrap_err();
        assert!(
            error
                .message()
                .contains("there are 2 clusters with the same name: [https://one https://two]")
        );
    }

    #[test]
    fn namespaces_restrict_what_goes_to_the_cluster() {
        let mut target = in_cluster();
        assert_eq!(target.scope_refusal(None), None);
        target.namespaces = vec!["apps".into()];
        target.secret = Some("s".into());
        let restricted = target.clone();
        assert_eq!(restricted.scope_refusal(Some("apps")), None);
        assert!(
            restricted
                .scope_refusal(Some("kube-system"))
                .is_some_and(|m| m.contains("namespace kube-system is not managed"))
        );
        assert!(restricted.scope_refusal(None).is_some());
        target.cluster_resources = true;
        assert_eq!(target.scope_refusal(None), None);
    }
}
