//! Helm charts stored in OCI registries (`helm push oci://…`), read through the OCI
//! distribution API.
//!
//! A chart `podinfo` in `oci://ghcr.io/stefanprodan/charts` is the registry repository
//! `stefanprodan/charts/podinfo` on `ghcr.io`; its versions are tags (Helm writes a `+` of build
//! metadata as `_`, since tags cannot hold `+`), and each tag's manifest carries the chart
//! archive as one layer of type [`CHART_LAYER_MEDIA_TYPE`].
//!
//! **Guarantees**: every request has the client's timeout; JSON answers (tag pages, manifests,
//! tokens) are capped at [`MAX_JSON_BYTES`], tag listing at [`MAX_TAG_PAGES`] pages, and the
//! chart layer at [`super::HelmLimits::max_chart_bytes`] (checked against the manifest's
//! declared size before downloading, and while reading); the layer's sha256 digest is checked
//! before unpacking; unpacked charts are cached by layer digest. Plain `http://` is used only
//! for loopback registries or when [`PlainHttp::Allowed`] says so (Argo CD's
//! `insecureOCIForceHttp`). Credentials go only to the registry and the token service its
//! challenge names, never over plain HTTP to a host that is not allowed plain HTTP.
//!
//! **Authentication** answers the registry's `WWW-Authenticate` challenge: `Basic` with the
//! credentials, or `Bearer` by asking the named token service (anonymously, or with the
//! credentials as basic auth) for a pull token, cached until shortly before it expires.

use super::{HelmAuth, HelmError, HelmRepositories};
use plumb_core::semver::Version;
use reqwest::blocking::Response;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, HeaderValue, WWW_AUTHENTICATE};
use serde::Deserialize;
use sha2::Digest;
use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The layer holding the chart archive.
pub const CHART_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// Helm's chart config; a manifest with another config is not a chart.
pub const CHART_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
/// Largest tag page, manifest or token answer read.
pub const MAX_JSON_BYTES: u64 = 4 << 20;
/// Most tag pages followed (1000 tags a page).
pub const MAX_TAG_PAGES: usize = 100;
const MAX_TOKENS: usize = 10_000;

/// A chart in an OCI registry: `oci://{registry}/{repository}/{chart}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OciReference {
    /// `host` or `host:port`.
    pub registry: String,
    /// The path below the registry, without the chart; may be empty.
    pub repository: String,
    /// The chart name, the last path component.
    pub chart: String,
}

impl OciReference {
    /// Whether an Application's `repoURL` with a `chart` names an OCI registry: `oci://…`, or
    /// no scheme at all, which is how Argo CD writes OCI Helm repositories
    /// (`registry-1.docker.io/bitnamicharts`).
    pub fn is_oci(repo_url: &str) -> bool {
        let url = repo_url.trim();
        url.starts_with("oci://") || !url.contains("://")
    }

    /// The chart `chart` of the OCI repository `repo_url` (`oci://host[:port]/path` or
    /// `host[:port]/path`). With an empty `chart`, the last path component of `repo_url` is the
    /// chart (`oci://ghcr.io/stefanprodan/charts/podinfo`).
    ///
    /// **Errors**: [`HelmError::Reference`] for another scheme, userinfo, a tag or digest in the
    /// URL, or path components the distribution spec does not allow.
    pub fn parse(repo_url: &str, chart: &str) -> Result<OciReference, HelmError> {
        let invalid = |message: &str| HelmError::Reference {
            reference: repo_url.to_string(),
            message: message.to_string(),
        };
        let trimmed = repo_url.trim();
        let rest = match trimmed.strip_prefix("oci://") {
            Some(rest) => rest,
            None if trimmed.contains("://") => {
                return Err(invalid(
                    "an OCI chart repository is oci://host/path or host/path",
                ));
            }
            None => trimmed,
        };
        let rest = rest.trim_end_matches('/');
        let (registry, path) = rest.split_once('/').unwrap_or((rest, ""));
        if registry.is_empty() || !registry.bytes().all(is_host_byte) {
            return Err(invalid("expected a registry host[:port] after oci://"));
        }
        if path.contains('@') || path.contains(':') {
            return Err(invalid(
                "a tag or digest does not belong in repoURL; put the version in targetRevision",
            ));
        }
        let mut components: Vec<&str> = if path.is_empty() {
            Vec::new()
        } else {
            path.split('/').collect()
        };
        let chart = chart.trim();
        if chart.is_empty() {
            match components.pop() {
                Some(last) => {
                    let repository = components.join("/");
                    return OciReference::checked(registry, &repository, last, repo_url);
                }
                None => return Err(invalid("no chart: the path below the registry is empty")),
            }
        }
        OciReference::checked(registry, &components.join("/"), chart, repo_url)
    }

    fn checked(
        registry: &str,
        repository: &str,
        chart: &str,
        shown: &str,
    ) -> Result<OciReference, HelmError> {
        let bad = repository
            .split('/')
            .filter(|_| !repository.is_empty())
            .chain([chart])
            .find(|component| !is_path_component(component));
        if let Some(component) = bad {
            return Err(HelmError::Reference {
                reference: shown.to_string(),
                message: format!(
                    "{component:?} is not a valid repository name component (lowercase letters, digits and single separators . _ __ -)"
                ),
            });
        }
        Ok(OciReference {
            registry: registry.to_ascii_lowercase(),
            repository: repository.to_string(),
            chart: chart.to_string(),
        })
    }

    /// `oci://{registry}/{repository}`: the chart repository, as errors name it.
    pub fn repository_url(&self) -> String {
        if self.repository.is_empty() {
            format!("oci://{}", self.registry)
        } else {
            format!("oci://{}/{}", self.registry, self.repository)
        }
    }

    /// The registry repository name of the chart (`{repository}/{chart}`).
    pub fn name(&self) -> String {
        if self.repository.is_empty() {
            self.chart.clone()
        } else {
            format!("{}/{}", self.repository, self.chart)
        }
    }

    /// Whether the registry is on this machine (`localhost`, `127.0.0.0/8`, `::1`).
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.strip_prefix('[') {
            Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
            None => self.registry.split(':').next().unwrap_or_default(),
        };
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.name())
    }
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, the distribution spec's path component.
fn is_path_component(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 {
        return false;
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut index = 0;
    while index < bytes.len() {
        if alnum(bytes[index]) {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && !alnum(bytes[index]) {
            index += 1;
        }
        let separator = &text[start..index];
        let dashes = separator.bytes().all(|b| b == b'-');
        if !(separator == "." || separator == "_" || separator == "__" || dashes) {
            return false;
        }
    }
    true
}

/// A tag as the distribution spec allows it: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
fn is_tag(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The chart version a tag stands for (Helm writes `+` as `_` in tags).
pub fn tag_version(tag: &str) -> String {
    tag.replace('_', "+")
}

/// The tag a chart version is stored under.
pub fn version_tag(version: &str) -> String {
    version.replace('+', "_")
}

/// Whether `constraint` names one exact version (`1.2.3`, `v1.2.3-rc.1+b`) rather than a range:
/// such a version is fetched by its tag without listing tags, as Helm does.
fn exact_version(constraint: &str) -> Option<&str> {
    let text = constraint.trim();
    Version::parse(text).ok()?;
    let core = text.split(['-', '+']).next().unwrap_or_default();
    (core.matches('.').count() == 2).then_some(text)
}

/// When plain `http://` may be used for a registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PlainHttp {
    /// Only for loopback registries; every other registry is spoken to over `https://`.
    #[default]
    LoopbackOnly,
    /// Use `http://` (Argo CD's `insecureOCIForceHttp: "true"`, Helm's `--plain-http`).
    Allowed,
}

/// How to reach one OCI repository.
#[derive(Debug, Clone, Default)]
pub struct OciAccess {
    /// Basic credentials, sent when the registry or its token service challenges.
    pub auth: Option<HelmAuth>,
    /// When plain HTTP is used.
    pub plain_http: PlainHttp,
}

/// (registry, repository name, user).
type TokenKey = (String, String, String);

/// What a registry accepted for a [`TokenKey`].
#[derive(Clone)]
enum Remembered {
    /// The credentials as basic auth (a `Basic` challenge was answered).
    Basic,
    /// A pull token.
    Bearer(String),
}

/// What registries accepted, by [`TokenKey`], with when it expires: later requests send it
/// at once instead of being challenged again.
#[derive(Default)]
pub(super) struct Tokens {
    tokens: Mutex<HashMap<TokenKey, (Remembered, Instant)>>,
}

impl Tokens {
    fn get(&self, key: &TokenKey) -> Option<Remembered> {
        let tokens = self.tokens.lock().ok()?;
        let (remembered, expires) = tokens.get(key)?;
        (Instant::now() < *expires).then(|| remembered.clone())
    }

    fn put(&self, key: TokenKey, remembered: Remembered, lifetime: Duration) {
        if let Ok(mut tokens) = self.tokens.lock() {
            if tokens.len() >= MAX_TOKENS {
                tokens.clear();
            }
            // Renew early so a token never expires in flight.
            let lifetime = lifetime.saturating_sub(Duration::from_secs(10));
            tokens.insert(key, (remembered, Instant::now() + lifetime));
        }
    }
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    size: u64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The chart layer of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartLayer {
    /// `sha256:<64 hex>`.
    pub digest: String,
    /// Declared size in bytes.
    pub size: u64,
}

/// The chart layer of the manifest `body`, or why `body` is not a chart manifest.
///
/// **Errors**: invalid JSON, an image index, a schema other than 2, no or several chart
/// layers, a digest that is not `sha256:<64 hex>`.
pub fn chart_layer(body: &[u8]) -> Result<ChartLayer, String> {
    let manifest: Manifest =
        serde_json::from_slice(body).map_err(|err| format!("invalid manifest: {err}"))?;
    if manifest.media_type.contains("image.index") || manifest.media_type.contains("list.v2") {
        return Err(format!(
            "the manifest is an index ({}), not a chart manifest",
            manifest.media_type
        ));
    }
    if manifest.schema_version != 2 {
        return Err(format!(
            "manifest schemaVersion {} (expected 2)",
            manifest.schema_version
        ));
    }
    let mut charts = manifest
        .layers
        .into_iter()
        .filter(|layer| layer.media_type == CHART_LAYER_MEDIA_TYPE);
    let layer = match (charts.next(), charts.next()) {
        (Some(layer), None) => layer,
        (None, _) => {
            let config = manifest.config.map(|c| c.media_type).unwrap_or_default();
            let hint = if config == CHART_CONFIG_MEDIA_TYPE {
                String::new()
            } else {
                format!(
                    " (config media type {config:?}; a Helm chart has {CHART_CONFIG_MEDIA_TYPE:?})"
                )
            };
            return Err(format!(
                "the manifest has no layer of type {CHART_LAYER_MEDIA_TYPE}{hint}"
            ));
        }
        (Some(_), Some(_)) => {
            return Err(format!(
                "the manifest has more than one layer of type {CHART_LAYER_MEDIA_TYPE}"
            ));
        }
    };
    let hex = layer.digest.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "chart layer digest {:?} is not sha256:<64 lowercase hex>",
            layer.digest.chars().take(80).collect::<String>()
        ));
    }
    Ok(ChartLayer {
        digest: layer.digest,
        size: layer.size,
    })
}

enum Challenge {
    Basic,
    Bearer(HashMap<String, String>),
    Other,
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
fn parse_challenge(header: &str) -> Challenge {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Challenge::Basic;
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Challenge::Other;
    }
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, value.to_string());
        rest = remainder.trim_start().trim_start_matches(',').trim_start();
    }
    Challenge::Bearer(params)
}

/// The `rel="next"` target of a `Link` header, resolved against `url`, on the same origin.
fn next_link(header: &str, url: &reqwest::Url) -> Option<reqwest::Url> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        if !params.contains("rel=\"next\"") && !params.contains("rel=next") {
            return None;
        }
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let next = url.join(target).ok()?;
        // Stay on the registry: a link elsewhere would receive the token.
        (next.origin() == url.origin()).then_some(next)
    })
}

/// Whether `reference` is reached over `http://`: only loopback registries, or when `access`
/// allows it explicitly.
pub fn uses_plain_http(reference: &OciReference, access: &OciAccess) -> bool {
    reference.is_loopback() || access.plain_http == PlainHttp::Allowed
}

/// One chart pull: the client, the reference and how to reach it.
struct Session<'a> {
    repositories: &'a HelmRepositories,
    reference: &'a OciReference,
    access: &'a OciAccess,
    base: String,
    plain_http: bool,
}

impl<'a> Session<'a> {
    fn new(
        repositories: &'a HelmRepositories,
        reference: &'a OciReference,
        access: &'a OciAccess,
    ) -> Session<'a> {
        let plain_http = uses_plain_http(reference, access);
        let scheme = if plain_http { "http" } else { "https" };
        Session {
            repositories,
            reference,
            access,
            base: format!("{scheme}://{}/v2/{}", reference.registry, reference.name()),
            plain_http,
        }
    }

    fn url(&self, suffix: &str) -> Result<reqwest::Url, HelmError> {
        reqwest::Url::parse(&format!("{}/{suffix}", self.base)).map_err(|err| {
            HelmError::Reference {
                reference: self.reference.to_string(),
                message: format!("cannot build the registry url: {err}"),
            }
        })
    }

    fn token_key(&self) -> TokenKey {
        (
            self.reference.registry.clone(),
            self.reference.name(),
            self.access
                .auth
                .as_ref()
                .map(|a| a.username.clone())
                .unwrap_or_default(),
        )
    }

    fn fetch_error(url: &reqwest::Url, err: reqwest::Error) -> HelmError {
        HelmError::Fetch {
            url: redacted(url),
            source: Box::new(err.without_url()),
        }
    }

    fn send(
        &self,
        url: &reqwest::Url,
        accept: Option<&str>,
        authorization: Option<&Authorization>,
    ) -> Result<Response, HelmError> {
        let mut request = self.repositories.client.get(url.clone());
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        request = match authorization {
            None => request,
            Some(Authorization::Basic(auth)) => {
                request.basic_auth(&auth.username, Some(&auth.password))
            }
            Some(Authorization::Bearer(token)) => {
                match HeaderValue::from_str(&format!("Bearer {token}")) {
                    Ok(mut value) => {
                        value.set_sensitive(true);
                        request.header(AUTHORIZATION, value)
                    }
                    Err(_) => request,
                }
            }
        };
        request.send().map_err(|err| Self::fetch_error(url, err))
    }

    /// GET with a cached token; on 401, answers the challenge once and retries.
    fn get(&self, url: &reqwest::Url, accept: Option<&str>) -> Result<Response, HelmError> {
        let cached = match self.repositories.tokens.get(&self.token_key()) {
            Some(Remembered::Bearer(token)) => Some(Authorization::Bearer(token)),
            Some(Remembered::Basic) => self.access.auth.clone().map(Authorization::Basic),
            None => None,
        };
        let response = self.send(url, accept, cached.as_ref())?;
        if response.status().as_u16() != 401 {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(parse_challenge);
        match (challenge, &self.access.auth) {
            (Some(Challenge::Basic), Some(auth)) => {
                let response = self.send(url, accept, Some(&Authorization::Basic(auth.clone())))?;
                if response.status().is_success() {
                    self.repositories.tokens.put(
                        self.token_key(),
                        Remembered::Basic,
                        Duration::from_secs(3600),
                    );
                }
                Ok(response)
            }
            (Some(Challenge::Bearer(params)), _) => {
                let token = self.token(&params)?;
                self.send(url, accept, Some(&Authorization::Bearer(token)))
            }
            _ => Ok(response),
        }
    }

    /// Asks the token service named by a bearer challenge for a pull token.
    fn token(&self, params: &HashMap<String, String>) -> Result<String, HelmError> {
        let refused = |message: String| HelmError::Auth {
            repo: self.reference.repository_url(),
            chart: self.reference.chart.clone(),
            message,
        };
        let realm = params
            .get("realm")
            .ok_or_else(|| refused("the registry's bearer challenge names no realm".into()))?;
        let mut url = reqwest::Url::parse(realm)
            .map_err(|err| refused(format!("bearer realm {realm:?}: {err}")))?;
        let realm_loopback = url.host_str().is_some_and(|host| {
            host == "localhost"
                || host
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        match url.scheme() {
            "https" => {}
            "http" if self.plain_http || realm_loopback => {}
            other => {
                return Err(refused(format!(
                    "bearer realm {realm:?}: scheme {other} not allowed (https, or http for a plain-http registry)"
                )));
            }
        }
        let scope = params
            .get("scope")
            .cloned()
            .unwrap_or_else(|| format!("repository:{}:pull", self.reference.name()));
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = params.get("service") {
                query.append_pair("service", service);
            }
            query.append_pair("scope", &scope);
        }
        let authorization = self.access.auth.clone().map(Authorization::Basic);
        let response = self.send(&url, Some("application/json"), authorization.as_ref())?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Err(refused(format!(
                "the token service {} answered HTTP {status}",
                redacted(&url)
            )));
        }
        let body = self.read(response, MAX_JSON_BYTES, &redacted(&url))?;
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|err| refused(format!("invalid token answer: {err}")))?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| refused("the token service answered without a token".into()))?;
        // The distribution spec's default lifetime is 60 seconds.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(60).min(3600));
        self.repositories.tokens.put(
            self.token_key(),
            Remembered::Bearer(token.clone()),
            lifetime,
        );
        Ok(token)
    }

    /// The body, at most `limit` bytes (announced or actual).
    fn read(&self, response: Response, limit: u64, shown: &str) -> Result<Vec<u8>, HelmError> {
        let too_large = || HelmError::TooLarge {
            url: shown.to_string(),
            limit,
        };
        let announced = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|length| length > limit) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        response
            .take(limit + 1)
            .read_to_end(&mut body)
            .map_err(|err| HelmError::Fetch {
                url: shown.to_string(),
                source: Box::new(err),
            })?;
        if body.len() as u64 > limit {
            return Err(too_large());
        }
        Ok(body)
    }

    /// Fails with the right error for an unsuccessful status.
    fn check(&self, response: Response, url: &reqwest::Url) -> Result<Response, HelmError> {
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        if status == 401 || status == 403 {
            return Err(HelmError::Auth {
                repo: self.reference.repository_url(),
                chart: self.reference.chart.clone(),
                message: format!(
                    "{} answered HTTP {status}{}",
                    redacted(url),
                    if self.access.auth.is_some() {
                        ""
                    } else {
                        " (no credentials: add a repository secret for this registry)"
                    }
                ),
            });
        }
        Err(HelmError::Status {
            url: redacted(url),
            status,
        })
    }

    /// Every tag of the chart's repository; `None` when the repository does not exist.
    fn tags(&self) -> Result<Option<Vec<String>>, HelmError> {
        let mut tags = Vec::new();
        let mut url = self.url("tags/list?n=1000")?;
        for _ in 0..MAX_TAG_PAGES {
            let response = self.get(&url, Some("application/json"))?;
            if response.status().as_u16() == 404 {
                return Ok(None);
            }
            let response = self.check(response, &url)?;
            let next = response
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(|header| next_link(header, &url));
            let body = self.read(response, MAX_JSON_BYTES, &redacted(&url))?;
            let page: TagList = serde_json::from_slice(&body).map_err(|err| HelmError::Index {
                url: redacted(&url),
                message: format!("invalid tag list: {err}"),
            })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(next) => url = next,
                None => return Ok(Some(tags)),
            }
        }
        Ok(Some(tags))
    }

    /// The chart layer of the manifest tagged `tag`; `None` when there is no such tag.
    fn manifest(&self, tag: &str) -> Result<Option<ChartLayer>, HelmError> {
        let url = self.url(&format!("manifests/{tag}"))?;
        let response = self.get(&url, Some(MANIFEST_ACCEPT))?;
        if response.status().as_u16() == 404 {
            return Ok(None);
        }
        let response = self.check(response, &url)?;
        let shown = format!("{}:{tag}", self.reference);
        let body = self.read(response, MAX_JSON_BYTES, &format!("{shown} manifest"))?;
        chart_layer(&body)
            .map(Some)
            .map_err(|reason| HelmError::NotAChart {
                reference: shown,
                reason,
            })
    }

    /// The blob `layer`, at most `limit` bytes, checked against its digest.
    fn blob(&self, layer: &ChartLayer, tag: &str, limit: u64) -> Result<Vec<u8>, HelmError> {
        let shown = format!("{}:{tag} chart layer {}", self.reference, layer.digest);
        if layer.size > limit {
            return Err(HelmError::TooLarge { url: shown, limit });
        }
        let url = self.url(&format!("blobs/{}", layer.digest))?;
        let response = self.get(&url, None)?;
        let response = self.check(response, &url)?;
        let body = self.read(response, limit, &shown)?;
        let actual = format!("sha256:{}", super::hex(&sha2::Sha256::digest(&body)));
        if actual != layer.digest {
            return Err(HelmError::LayerDigest {
                reference: format!("{}:{tag}", self.reference),
                expected: layer.digest.clone(),
                actual,
            });
        }
        Ok(body)
    }
}

enum Authorization {
    Basic(HelmAuth),
    Bearer(String),
}

/// A URL without userinfo or query, for errors.
fn redacted(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.to_string()
}

impl HelmRepositories {
    /// Resolves the chart `reference` at `constraint` (Helm's syntax; empty or `*` for the
    /// newest stable version) and returns the version and the directory holding the unpacked
    /// chart (`<dir>/<chart>/Chart.yaml`).
    ///
    /// An exact version is fetched by its tag without listing tags (as Helm does); a range
    /// lists the tags and picks the highest match. A chart layer once unpacked is served from
    /// the cache by its digest.
    ///
    /// **Errors**: see [`HelmError`]; each names the repository and the chart.
    pub fn oci_chart(
        &self,
        reference: &OciReference,
        constraint: &str,
        access: &OciAccess,
    ) -> Result<(String, PathBuf), HelmError> {
        let session = Session::new(self, reference, access);
        let exact = exact_version(constraint)
            .map(|version| (version.to_string(), version_tag(version)))
            .filter(|(_, tag)| is_tag(tag));
        let found = match &exact {
            Some((version, tag)) => session
                .manifest(tag)?
                .map(|layer| (version.clone(), tag.clone(), layer)),
            None => None,
        };
        let (version, tag, layer) = match found {
            Some(found) => found,
            None => {
                let tags = session.tags()?.ok_or_else(|| HelmError::NoChart {
                    repo: reference.repository_url(),
                    chart: reference.chart.clone(),
                })?;
                let versions: Vec<super::ChartVersion> = tags
                    .iter()
                    .filter(|tag| is_tag(tag))
                    .map(|tag| super::ChartVersion {
                        version: tag_version(tag),
                        ..Default::default()
                    })
                    .collect();
                let picked = super::pick(
                    &versions,
                    constraint,
                    &reference.repository_url(),
                    &reference.chart,
                )?;
                let tag = version_tag(&picked.version);
                let layer = session
                    .manifest(&tag)?
                    .ok_or_else(|| HelmError::NotAChart {
                        reference: format!("{reference}:{tag}"),
                        reason: "the tag is listed but its manifest is not found".into(),
                    })?;
                (picked.version.clone(), tag, layer)
            }
        };
        let dir = self.cache.join(format!(
            "oci-{}",
            super::hex(&sha2::Sha256::digest(
                format!("{}\n{}", layer.digest, reference.chart).as_bytes()
            ))
        ));
        if dir.join(&reference.chart).join("Chart.yaml").is_file() {
            return Ok((version, dir));
        }
        let archive = session.blob(&layer, &tag, self.limits.max_chart_bytes)?;
        self.store(
            &archive,
            &dir,
            &reference.chart,
            &format!("{reference}:{tag}"),
        )?;
        Ok((version, dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_in_argo_cd_and_helm_forms() {
        let argo = OciReference::parse("registry-1.docker.io/bitnamicharts", "nginx").unwrap();
        assert_eq!(argo.registry, "registry-1.docker.io");
        assert_eq!(argo.name(), "bitnamicharts/nginx");
        assert_eq!(
            argo.to_string(),
            "oci://registry-1.docker.io/bitnamicharts/nginx"
        );
        let helm = OciReference::parse("oci://ghcr.io/stefanprodan/charts/", "podinfo").unwrap();
        assert_eq!(helm.repository_url(), "oci://ghcr.io/stefanprodan/charts");
        assert_eq!(helm.name(), "stefanprodan/charts/podinfo");
        let whole = OciReference::parse("oci://ghcr.io/stefanprodan/charts/podinfo", "").unwrap();
        assert_eq!(whole, helm);
        let bare = OciReference::parse("oci://localhost:5000", "podinfo").unwrap();
        assert_eq!(bare.name(), "podinfo");
        assert!(bare.is_loopback());
        assert!(
            OciReference::parse("127.0.0.1:5000/charts", "podinfo")
                .unwrap()
                .is_loopback()
        );
        assert!(
            OciReference::parse("oci://[::1]:5000/charts", "podinfo")
                .unwrap()
                .is_loopback()
        );
        assert!(!helm.is_loopback());
        assert!(
            !OciReference::parse("oci://localhost.evil.com/c", "x")
                .unwrap()
                .is_loopback()
        );
        assert!(OciReference::is_oci("registry-1.docker.io/bitnamicharts"));
        assert!(OciReference::is_oci("oci://ghcr.io/x"));
        assert!(!OciReference::is_oci("https://charts.example.com"));
    }

    #[test]
    fn plain_http_only_for_loopback_or_when_allowed() {
        let access = OciAccess::default();
        let allowed = OciAccess {
            plain_http: PlainHttp::Allowed,
            ..OciAccess::default()
        };
        for (url, loopback) in [
            ("localhost:5000/c", true),
            ("127.0.0.2/c", true),
            ("[::1]:5000/c", true),
            ("ghcr.io/c", false),
            ("10.0.0.1:5000/c", false),
            ("localhost.example.com/c", false),
            ("127.0.0.1.nip.io/c", false),
        ] {
            let reference = OciReference::parse(url, "chart").unwrap();
            assert_eq!(uses_plain_http(&reference, &access), loopback, "{url}");
            assert!(uses_plain_http(&reference, &allowed), "{url}");
        }
    }

    #[test]
    fn bad_references_are_refused_with_the_reason() {
        for (url, chart, expected) in [
            ("https://ghcr.io/charts", "podinfo", "oci://host/path"),
            ("oci://", "podinfo", "registry host"),
            ("oci://ghcr.io", "", "path below the registry is empty"),
            ("oci://user:pw@ghcr.io/charts", "podinfo", "registry host"),
            ("oci://ghcr.io/charts/podinfo:6.0.0", "", "targetRevision"),
            (
                "oci://ghcr.io/charts/podinfo@sha256:ab",
                "",
                "targetRevision",
            ),
            ("oci://ghcr.io/charts/../x", "podinfo", "\"..\""),
            ("oci://ghcr.io/Charts", "podinfo", "\"Charts\""),
            ("oci://ghcr.io/charts", "pod/../info", "not a valid"),
            ("oci://ghcr.io//charts", "podinfo", "\"\""),
        ] {
            let error = OciReference::parse(url, chart).unwrap_err().to_string();
            assert!(error.contains(expected), "{url} {chart}: {error}");
        }
    }

    #[test]
    fn tags_map_to_versions_as_helm_writes_them() {
        assert_eq!(tag_version("1.2.3_build.5"), "1.2.3+build.5");
        assert_eq!(version_tag("1.2.3+build.5"), "1.2.3_build.5");
        assert_eq!(exact_version(" 6.7.1 "), Some("6.7.1"));
        assert_eq!(exact_version("v1.2.3-rc.1+b"), Some("v1.2.3-rc.1+b"));
        for range in ["6", "6.7", "^6.0", ">=1.0.0", "*", "", "6.x", "1.2.3 - 1.4"] {
            assert_eq!(exact_version(range), None, "{range}");
        }
        let tags = [
            "6.5.0",
            "6.7.1",
            "latest",
            "7.0.0-rc.1",
            "6.7.1_build.2",
            "sha256-abc",
        ];
        let versions: Vec<crate::helm::ChartVersion> = tags
            .iter()
            .map(|t| crate::helm::ChartVersion {
                version: tag_version(t),
                ..Default::default()
            })
            .collect();
        let pick = |c: &str| {
            crate::helm::pick(&versions, c, "oci://r/c", "podinfo").map(|v| v.version.clone())
        };
        assert_eq!(pick("~6.5").unwrap(), "6.5.0");
        assert!(pick("^6.0").unwrap().starts_with("6.7.1"));
        assert_eq!(pick(">=7.0.0-0").unwrap(), "7.0.0-rc.1");
        let error = pick(">=8").unwrap_err().to_string();
        assert!(
            error.contains("chart \"podinfo\" in repository oci://r/c") && error.contains(">=8"),
            "{error}"
        );
        assert!(is_tag("6.7.1_build.2") && !is_tag("../x") && !is_tag("") && !is_tag("a/b"));
    }

    fn manifest(layers: &str, config: &str) -> Vec<u8> {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"{config}","digest":"sha256:{z}","size":2}},"layers":[{layers}]}}"#,
            z = "0".repeat(64)
        )
        .into_bytes()
    }

    fn layer(media_type: &str, digest: &str) -> String {
        format!(r#"{{"mediaType":"{media_type}","digest":"{digest}","size":10}}"#)
    }

    #[test]
    fn chart_manifests_yield_their_layer_and_others_say_why_not() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let good = manifest(
            &layer(CHART_LAYER_MEDIA_TYPE, &digest),
            CHART_CONFIG_MEDIA_TYPE,
        );
        assert_eq!(
            chart_layer(&good).unwrap(),
            ChartLayer {
                digest: digest.clone(),
                size: 10
            }
        );
        let image = manifest(
            &layer("application/vnd.oci.image.layer.v1.tar+gzip", &digest),
            "application/vnd.oci.image.config.v1+json",
        );
        let error = chart_layer(&image).unwrap_err();
        assert!(
            error.contains("no layer of type") && error.contains("image.config"),
            "{error}"
        );
        let two = manifest(
            &format!(
                "{},{}",
                layer(CHART_LAYER_MEDIA_TYPE, &digest),
                layer(CHART_LAYER_MEDIA_TYPE, &digest)
            ),
            CHART_CONFIG_MEDIA_TYPE,
        );
        assert!(chart_layer(&two).unwrap_err().contains("more than one"));
        for bad_digest in ["sha512:abc", "sha256:XYZ", "sha256:../../etc/passwd", ""] {
            let bad = manifest(
                &layer(CHART_LAYER_MEDIA_TYPE, bad_digest),
                CHART_CONFIG_MEDIA_TYPE,
            );
            assert!(
                chart_layer(&bad).unwrap_err().contains("not sha256"),
                "{bad_digest}"
            );
        }
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(chart_layer(index).unwrap_err().contains("index"));
        assert!(
            chart_layer(b"{\"schemaVersion\":1}")
                .unwrap_err()
                .contains("schemaVersion 1")
        );
        assert!(
            chart_layer(b"not json")
                .unwrap_err()
                .contains("invalid manifest")
        );
        assert!(chart_layer(b"[]").is_err());
    }

    #[test]
    fn challenges_and_links_parse_without_panics() {
        let Challenge::Bearer(params) = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:charts/podinfo:pull""#,
        ) else {
            panic!("not bearer");
        };
        assert_eq!(params["realm"], "https://auth.example.com/token");
        assert_eq!(params["service"], "registry.example.com");
        assert_eq!(params["scope"], "repository:charts/podinfo:pull");
        assert!(matches!(
            parse_challenge("Basic realm=\"x\""),
            Challenge::Basic
        ));
        assert!(matches!(parse_challenge("Negotiate"), Challenge::Other));
        for text in [
            "Bearer",
            "Bearer realm",
            "Bearer realm=\"open",
            "Bearer ,,=,",
            "",
        ] {
            let _ = parse_challenge(text);
        }
        let url = reqwest::Url::parse("https://r.example.com/v2/c/tags/list?n=2").unwrap();
        let next = next_link(r#"</v2/c/tags/list?n=2&last=b>; rel="next""#, &url).unwrap();
        assert_eq!(
            next.as_str(),
            "https://r.example.com/v2/c/tags/list?n=2&last=b"
        );
        assert!(next_link(r#"<https://evil.example.com/x>; rel="next""#, &url).is_none());
        assert!(next_link("garbage", &url).is_none());
    }
}
