//! The only crate of plumb that talks to Kubernetes.
//!
//! [`Cluster`] wraps a kube-rs client with a discovery cache: objects are addressed by their
//! `apiVersion` and `kind` as written in manifests, resolved once per kind (and again when a
//! CRD appears). It offers what the engine needs and nothing more: server-side apply (real and
//! dry-run), get, delete, merge patches, and watches of the objects plumb manages.

use futures::{Stream, StreamExt};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{ApiCapabilities, Scope};
use kube::runtime::watcher;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

pub use kube::Client;

/// The field manager plumb applies with.
pub const FIELD_MANAGER: &str = "plumb";

/// A failure talking to the API server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig could not be read or used.
    #[error("cannot load kubeconfig {path}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A cluster's connection settings cannot be used.
    #[error("cannot use the connection settings of cluster {server}")]
    Config {
        /// The API server URL.
        server: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server does not serve this kind.
    #[error("the server does not serve {api_version} {kind}")]
    UnknownKind {
        /// As written in the manifest.
        api_version: String,
        /// As written in the manifest.
        kind: String,
    },
    /// The API server answered with an error status.
    #[error("{message}")]
    Api {
        /// HTTP status code.
        code: u16,
        /// `reason` of the Status (NotFound, Conflict, Invalid...).
        reason: String,
        /// The server's message.
        message: String,
    },
    /// Anything else from the client (connection, decoding).
    #[error("kubernetes request failed")]
    Client(#[source] kube::Error),
    /// A response that could not be converted.
    #[error("cannot decode object")]
    Decode(#[source] serde_json::Error),
}

impl Error {
    /// Whether the server said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api { code: 404, .. })
    }

    /// Whether the server refused a write made against an older resourceVersion.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Api { code: 409, .. })
    }
}

impl From<kube::Error> for Error {
    fn from(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => Error::Api {
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            other => Error::Client(other),
        }
    }
}

/// How a resolved kind is addressed.
#[derive(Debug, Clone)]
pub struct Kind {
    /// kube-rs' description of the resource.
    pub resource: ApiResource,
    /// Whether objects of this kind live in namespaces.
    pub namespaced: bool,
}

/// Whether a write is real or a server-side dry-run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DryRun {
    /// Persist the change.
    #[default]
    None,
    /// Ask the server what the result would be (`dryRun=All`).
    Server,
}

/// Options of a server-side apply.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Real or dry-run.
    pub dry_run: DryRun,
    /// Take ownership of fields other managers own (plumb's default is `true`, as Argo CD's
    /// server-side apply forces conflicts).
    pub force: bool,
}

/// A connection to one cluster.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
    /// The client watches use: without a response timeout, since a quiet watch is not a dead
    /// one (the same client as `client` unless built by [`Cluster::from_config`]).
    watch_client: Client,
    kinds: Arc<RwLock<HashMap<(String, String), Kind>>>,
    /// The settings the clients were built from (watch client's, request client's), so the
    /// same connection can act as another user; `None` when built from a client.
    settings: Option<Arc<(kube::Config, kube::Config)>>,
}

impl Cluster {
    /// Connects with a kubeconfig file and optional context.
    pub async fn from_kubeconfig(path: &Path, context: Option<&str>) -> Result<Cluster, Error> {
        let shown = path.display().to_string();
        let kubeconfig = Kubeconfig::read_from(path).map_err(|e| Error::Kubeconfig {
            path: shown.clone(),
            source: Box::new(e),
        })?;
        let options = KubeConfigOptions {
            context: context.map(str::to_string),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| Error::Kubeconfig {
                path: shown.clone(),
                source: Box::new(e),
            })?;
        let client = Client::try_from(config.clone()).map_err(|e| Error::Kubeconfig {
            path: shown,
            source: Box::new(e),
        })?;
        Ok(Cluster {
            watch_client: client.clone(),
            client,
            kinds: Arc::default(),
            settings: Some(Arc::new((config.clone(), config))),
        })
    }

    /// Wraps an existing client.
    pub fn new(client: Client) -> Cluster {
        Cluster {
            watch_client: client.clone(),
            client,
            kinds: Arc::default(),
            settings: None,
        }
    }

    /// The same connection acting as `user` (with `groups`, or the groups the server gives
    /// that user): requests carry `Impersonate-User`/`Impersonate-Group`, so the server
    /// authorizes them as that user, as Flux's `serviceAccountName` does. Kinds already
    /// discovered are shared.
    ///
    /// **Errors**: [`Error::Config`] when this connection was built from a bare client, or
    /// the user or a group cannot be sent as a header.
    pub fn impersonating(&self, user: &str, groups: &[String]) -> Result<Cluster, Error> {
        let invalid = |source: Box<dyn std::error::Error + Send + Sync>| Error::Config {
            server: self
                .settings
                .as_ref()
                .map(|s| s.1.cluster_url.to_string())
                .unwrap_or_default(),
            source,
        };
        let Some(settings) = &self.settings else {
            return Err(invalid(
                "this connection was built from a client and cannot impersonate".into(),
            ));
        };
        let act_as = |config: &kube::Config| {
            let mut config = config.clone();
            config.auth_info.impersonate = Some(user.to_string());
            config.auth_info.impersonate_groups = (!groups.is_empty()).then(|| groups.to_vec());
            config
        };
        let (watch, requests) = (act_as(&settings.0), act_as(&settings.1));
        Ok(Cluster {
            watch_client: Client::try_from(watch.clone()).map_err(|e| invalid(Box::new(e)))?,
            client: Client::try_from(requests.clone()).map_err(|e| invalid(Box::new(e)))?,
            kinds: self.kinds.clone(),
            settings: Some(Arc::new((watch, requests))),
        })
    }

    /// Connects to the API server `config` describes (as an Argo CD cluster Secret does).
    /// Plain `http://` servers are reached without TLS.
    ///
    /// **Guarantees**: every request but a watch gives up after
    /// [`ClusterConfig::request_timeout`], and connecting after
    /// [`ClusterConfig::connect_timeout`], so an unreachable server never blocks a caller for
    /// long. Credentials are never logged or put in an error.
    ///
    /// **Errors**: [`Error::Config`] when the server URL, a certificate or a key is malformed.
    pub async fn from_config(config: &ClusterConfig) -> Result<Cluster, Error> {
        let invalid = |source: Box<dyn std::error::Error + Send + Sync>| Error::Config {
            server: config.server.clone(),
            source,
        };
        let kubeconfig = config.kubeconfig().map_err(|e| invalid(Box::new(e)))?;
        let client_config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| invalid(Box::new(e)))?;
        Cluster::with_timeouts(
            client_config,
            Timeouts {
                connect: config.connect_timeout,
                request: config.request_timeout,
            },
        )
        .map_err(invalid)
    }

    /// Connects with a kubeconfig held as text by a user's object (Flux's
    /// `spec.kubeConfig.secretRef`), at its current context. `origin` names where it came
    /// from in errors.
    ///
    /// **Guarantees**: only self-contained settings are used, so the text can neither make
    /// the controller run a command nor read or send its own files and credentials: `exec`
    /// and `auth-provider` users, `tokenFile`, `client-certificate`/`client-key` and
    /// `certificate-authority` paths, and `insecure-skip-tls-verify` are refused (as Flux
    /// refuses them unless told otherwise); requests time out as [`Timeouts`] says.
    ///
    /// **Errors**: [`Error::Kubeconfig`] naming `origin` and the refused field, or the parse
    /// failure.
    pub async fn from_kubeconfig_text(
        text: &str,
        origin: &str,
        timeouts: Timeouts,
    ) -> Result<Cluster, Error> {
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| Error::Kubeconfig {
            path: origin.to_string(),
            source,
        };
        // The parser's message may quote the text, which holds credentials: not passed on.
        let kubeconfig = Kubeconfig::from_yaml(text)
            .map_err(|_| failed("it is not a valid kubeconfig (YAML of kind Config)".into()))?;
        if let Some(refused) = unsafe_kubeconfig_field(&kubeconfig) {
            return Err(failed(refused.into()));
        }
        let client_config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| failed(Box::new(e)))?;
        Cluster::with_timeouts(client_config, timeouts).map_err(failed)
    }

    /// Clients for `client_config`: every request but a watch bounded by `timeouts`.
    fn with_timeouts(
        mut client_config: kube::Config,
        timeouts: Timeouts,
    ) -> Result<Cluster, Box<dyn std::error::Error + Send + Sync>> {
        client_config.connect_timeout = Some(timeouts.connect);
        client_config.write_timeout = Some(timeouts.request);
        let watch_config = client_config.clone();
        let watch_client = Client::try_from(watch_config.clone())?;
        client_config.read_timeout = Some(timeouts.request);
        client_config.reset_reader_on_write = true;
        let client = Client::try_from(client_config.clone())?;
        Ok(Cluster {
            client,
            watch_client,
            kinds: Arc::default(),
            settings: Some(Arc::new((watch_config, client_config))),
        })
    }

    /// Asks the server for its version: whether it answers at all.
    pub async fn probe(&self) -> Result<(), Error> {
        self.client.apiserver_version().await?;
        Ok(())
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Resolves `apiVersion` + `kind` through discovery, cached. A miss asks the server again,
    /// so kinds of CRDs created meanwhile are found.
    pub async fn kind(&self, api_version: &str, kind: &str) -> Result<Kind, Error> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(found) = self
            .kinds
            .read()
            .ok()
            .and_then(|kinds| kinds.get(&key).cloned())
        {
            return Ok(found);
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, capabilities): (ApiResource, ApiCapabilities) =
            kube::discovery::pinned_kind(&self.client, &gvk)
                .await
                .map_err(|error| match Error::from(error) {
                    Error::Api { code: 404, .. } => Error::UnknownKind {
                        api_version: api_version.into(),
                        kind: kind.into(),
                    },
                    Error::Client(kube::Error::Discovery(_)) => Error::UnknownKind {
                        api_version: api_version.into(),
                        kind: kind.into(),
                    },
                    other => other,
                })?;
        let found = Kind {
            resource,
            namespaced: capabilities.scope == Scope::Namespaced,
        };
        if let Ok(mut kinds) = self.kinds.write() {
            kinds.insert(key, found.clone());
        }
        Ok(found)
    }

    /// Forgets cached discovery (after CRDs change).
    pub fn forget_kinds(&self) {
        if let Ok(mut kinds) = self.kinds.write() {
            kinds.clear();
        }
    }

    fn api(&self, kind: &Kind, namespace: &str) -> Api<DynamicObject> {
        if kind.namespaced && !namespace.is_empty() {
            Api::namespaced_with(self.client.clone(), namespace, &kind.resource)
        } else {
            Api::all_with(self.client.clone(), &kind.resource)
        }
    }

    /// Server-side applies `object` as field manager `plumb`; returns the resulting object.
    pub async fn apply(&self, object: &Value, options: &ApplyOptions) -> Result<Value, Error> {
        self.apply_validated(object, options, Validation::ServerDefault)
            .await
    }

    /// [`Cluster::apply`] with an explicit `fieldValidation` (Argo CD's `Validate=false` is
    /// [`Validation::Ignore`]).
    pub async fn apply_validated(
        &self,
        object: &Value,
        options: &ApplyOptions,
        validation: Validation,
    ) -> Result<Value, Error> {
        let (kind, namespace, name) = self.address(object).await?;
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.field_validation = match validation {
            Validation::ServerDefault => None,
            Validation::Strict => Some(kube::api::ValidationDirective::Strict),
            Validation::Ignore => Some(kube::api::ValidationDirective::Ignore),
        };
        if options.force {
            params = params.force();
        }
        if options.dry_run == DryRun::Server {
            params = params.dry_run();
        }
        let result = self
            .api(&kind, &namespace)
            .patch(&name, &params, &Patch::Apply(object))
            .await?;
        serde_json::to_value(result).map_err(Error::Decode)
    }

    /// Applies a JSON merge patch (used for Application status and annotations).
    pub async fn merge_patch(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Value, Error> {
        let kind = self.kind(api_version, kind).await?;
        let result = self
            .api(&kind, namespace)
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        serde_json::to_value(result).map_err(Error::Decode)
    }

    /// Applies a JSON merge patch to the `status` subresource (kinds whose CRD declares one,
    /// such as Flux's).
    pub async fn merge_patch_status(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Value, Error> {
        let kind = self.kind(api_version, kind).await?;
        let result = self
            .api(&kind, namespace)
            .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        serde_json::to_value(result).map_err(Error::Decode)
    }

    /// Reads one object; `None` when it does not exist.
    pub async fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, Error> {
        let kind = self.kind(api_version, kind).await?;
        match self.api(&kind, namespace).get_opt(name).await? {
            Some(object) => Ok(Some(serde_json::to_value(object).map_err(Error::Decode)?)),
            None => Ok(None),
        }
    }

    /// Lists objects of a kind in a namespace (all namespaces when empty).
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
    ) -> Result<Vec<Value>, Error> {
        let kind = self.kind(api_version, kind).await?;
        let list = self.api(&kind, namespace).list(&Default::default()).await?;
        list.items
            .into_iter()
            .map(|o| serde_json::to_value(o).map_err(Error::Decode))
            .collect()
    }

    /// Lists objects of a kind in a namespace (all namespaces when empty) matching a label
    /// selector (`a=b,c`).
    pub async fn list_selected(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        label_selector: &str,
    ) -> Result<Vec<Value>, Error> {
        let kind = self.kind(api_version, kind).await?;
        let params = kube::api::ListParams::default().labels(label_selector);
        let list = self.api(&kind, namespace).list(&params).await?;
        list.items
            .into_iter()
            .map(|o| serde_json::to_value(o).map_err(Error::Decode))
            .collect()
    }

    /// Replaces an object with `object` (PUT, as `kubectl replace`), creating it when it does
    /// not exist; fields `object` does not set are removed.
    pub async fn replace(&self, object: &Value) -> Result<Value, Error> {
        let (kind, namespace, name) = self.address(object).await?;
        let api = self.api(&kind, &namespace);
        let mut typed: DynamicObject =
            serde_json::from_value(object.clone()).map_err(Error::Decode)?;
        let Some(live) = api.get_opt(&name).await? else {
            return self.create(object).await;
        };
        typed.metadata.resource_version = live.metadata.resource_version;
        let result = api.replace(&name, &Default::default(), &typed).await?;
        serde_json::to_value(result).map_err(Error::Decode)
    }

    /// Creates an object (plain create, for objects plumb itself owns such as CRDs).
    pub async fn create(&self, object: &Value) -> Result<Value, Error> {
        let (kind, namespace, _) = self.address(object).await?;
        let object: DynamicObject =
            serde_json::from_value(object.clone()).map_err(Error::Decode)?;
        let result = self
            .api(&kind, &namespace)
            .create(&Default::default(), &object)
            .await?;
        serde_json::to_value(result).map_err(Error::Decode)
    }

    /// Deletes an object with the given propagation; a missing object is not an error.
    pub async fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        propagation: Propagation,
    ) -> Result<(), Error> {
        let kind = self.kind(api_version, kind).await?;
        let params = DeleteParams {
            propagation_policy: Some(match propagation {
                Propagation::Foreground => PropagationPolicy::Foreground,
                Propagation::Background => PropagationPolicy::Background,
                Propagation::Orphan => PropagationPolicy::Orphan,
            }),
            ..Default::default()
        };
        match self.api(&kind, namespace).delete(name, &params).await {
            Ok(_) => Ok(()),
            Err(error) => match Error::from(error) {
                e if e.is_not_found() => Ok(()),
                e => Err(e),
            },
        }
    }

    /// Watches objects of a kind across all namespaces carrying `label_selector`, yielding every
    /// object that changes or disappears. Restarts are handled by the watcher with backoff.
    pub async fn watch(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        label_selector: Option<&str>,
    ) -> Result<impl Stream<Item = WatchEvent> + Send + 'static, Error> {
        let kind = self.kind(api_version, kind).await?;
        let api: Api<DynamicObject> = if kind.namespaced && !namespace.is_empty() {
            Api::namespaced_with(self.watch_client.clone(), namespace, &kind.resource)
        } else {
            Api::all_with(self.watch_client.clone(), &kind.resource)
        };
        let mut config = watcher::Config::default();
        if let Some(selector) = label_selector {
            config = config.labels(selector);
        }
        let stream = kube::runtime::WatchStreamExt::default_backoff(watcher(api, config));
        Ok(stream.filter_map(|event| async move {
            match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    serde_json::to_value(o).ok().map(WatchEvent::Applied)
                }
                Ok(watcher::Event::Delete(o)) => {
                    serde_json::to_value(o).ok().map(WatchEvent::Deleted)
                }
                Ok(watcher::Event::InitDone) => Some(WatchEvent::Synced),
                Ok(watcher::Event::Init) => Some(WatchEvent::Restarted),
                Err(error) => Some(WatchEvent::Error(error.to_string())),
            }
        }))
    }

    async fn address(&self, object: &Value) -> Result<(Kind, String, String), Error> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind_name = object.get("kind").and_then(Value::as_str).unwrap_or("");
        let kind = self.kind(api_version, kind_name).await?;
        let metadata = object.get("metadata");
        let namespace = metadata
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let name = metadata
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        Ok((kind, namespace, name))
    }
}

/// How to reach one API server and who to be there: the parts of an Argo CD cluster Secret.
///
/// `Debug` shows no credential.
#[derive(Clone)]
pub struct ClusterConfig {
    /// The API server URL (`https://…`, or `http://…` for a plain-HTTP server such as
    /// `plumb devcluster`).
    pub server: String,
    /// A bearer token.
    pub bearer_token: Option<String>,
    /// Basic authentication: user name.
    pub username: Option<String>,
    /// Basic authentication: password.
    pub password: Option<String>,
    /// TLS settings.
    pub tls: TlsConfig,
    /// How long connecting may take.
    pub connect_timeout: std::time::Duration,
    /// How long a request (not a watch) may take.
    pub request_timeout: std::time::Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            server: String::new(),
            bearer_token: None,
            username: None,
            password: None,
            tls: TlsConfig::default(),
            connect_timeout: std::time::Duration::from_secs(5),
            request_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// How long connecting and a request (not a watch) may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting.
    pub connect: std::time::Duration,
    /// One request.
    pub request: std::time::Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: std::time::Duration::from_secs(5),
            request: std::time::Duration::from_secs(30),
        }
    }
}

/// The first setting of `kubeconfig` that would make the controller run a command, read or
/// send its own files, or skip verifying the server, as `users[NAME].exec` and the like.
fn unsafe_kubeconfig_field(kubeconfig: &Kubeconfig) -> Option<String> {
    for named in &kubeconfig.auth_infos {
        let Some(user) = &named.auth_info else {
            continue;
        };
        for (set, field) in [
            (user.exec.is_some(), "exec"),
            (user.auth_provider.is_some(), "auth-provider"),
            (user.token_file.is_some(), "tokenFile"),
            (user.client_certificate.is_some(), "client-certificate"),
            (user.client_key.is_some(), "client-key"),
        ] {
            if set {
                return Some(format!(
                    "users[{:?}].{field} is not allowed: a kubeconfig from a Secret must carry its credentials inline (token, client-certificate-data, client-key-data)",
                    named.name
                ));
            }
        }
    }
    for named in &kubeconfig.clusters {
        let Some(cluster) = &named.cluster else {
            continue;
        };
        if cluster.certificate_authority.is_some() {
            return Some(format!(
                "clusters[{:?}].certificate-authority is not allowed: use certificate-authority-data",
                named.name
            ));
        }
        if cluster.insecure_skip_tls_verify == Some(true) {
            return Some(format!(
                "clusters[{:?}].insecure-skip-tls-verify is not allowed",
                named.name
            ));
        }
    }
    None
}

/// TLS settings of a [`ClusterConfig`]; certificates and keys are base64-encoded PEM, as in a
/// kubeconfig's `*-data` fields (and in Argo CD's `tlsClientConfig`).
#[derive(Clone, Default)]
pub struct TlsConfig {
    /// Skip verifying the server's certificate.
    pub insecure: bool,
    /// The certificate authority (base64 PEM).
    pub ca_data: Option<String>,
    /// The client certificate (base64 PEM).
    pub cert_data: Option<String>,
    /// The client key (base64 PEM).
    pub key_data: Option<String>,
    /// The name the server's certificate must carry, when not the URL's host.
    pub server_name: Option<String>,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |value: &Option<String>| value.as_ref().map(|_| "***");
        f.debug_struct("ClusterConfig")
            .field("server", &self.server)
            .field("bearer_token", &shown(&self.bearer_token))
            .field("username", &self.username)
            .field("password", &shown(&self.password))
            .field("tls", &self.tls)
            .finish()
    }
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("insecure", &self.insecure)
            .field("ca_data", &self.ca_data.is_some())
            .field("cert_data", &self.cert_data.is_some())
            .field("key_data", &self.key_data.as_ref().map(|_| "***"))
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl ClusterConfig {
    /// The same settings as a one-context kubeconfig, so kube-rs' own loading (PEM parsing,
    /// identities) applies.
    fn kubeconfig(&self) -> Result<Kubeconfig, serde_json::Error> {
        let mut cluster = serde_json::json!({"server": self.server});
        if self.tls.insecure {
            cluster["insecure-skip-tls-verify"] = Value::Bool(true);
        }
        if let Some(ca) = &self.tls.ca_data {
            cluster["certificate-authority-data"] = Value::String(ca.clone());
        }
        if let Some(name) = &self.tls.server_name {
            cluster["tls-server-name"] = Value::String(name.clone());
        }
        let mut user = serde_json::Map::new();
        let fields = [
            ("token", &self.bearer_token),
            ("username", &self.username),
            ("password", &self.password),
            ("client-certificate-data", &self.tls.cert_data),
            ("client-key-data", &self.tls.key_data),
        ];
        for (field, value) in fields {
            if let Some(value) = value {
                user.insert(field.to_string(), Value::String(value.clone()));
            }
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "destination", "cluster": cluster}],
            "users": [{"name": "destination", "user": user}],
            "contexts": [{"name": "destination",
                "context": {"cluster": "destination", "user": "destination"}}],
            "current-context": "destination",
        }))
    }
}

/// How the server treats fields its schema does not declare (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Validation {
    /// Whatever the server does by default (Warn on current Kubernetes).
    #[default]
    ServerDefault,
    /// Refuse the write.
    Strict,
    /// Drop them silently.
    Ignore,
}

/// Cascading behaviour of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Delete dependents first.
    Foreground,
    /// Delete dependents afterwards.
    Background,
    /// Keep dependents.
    Orphan,
}

/// What a watch reports.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// An object was created or changed (also every object of the initial list).
    Applied(Value),
    /// An object was deleted.
    Deleted(Value),
    /// A (re)list begins: the objects up to the next [`WatchEvent::Synced`] are the complete
    /// current set; anything a cache held before and does not see again is gone.
    Restarted,
    /// The initial list is complete.
    Synced,
    /// The watch failed and will be retried.
    Error(String),
}
