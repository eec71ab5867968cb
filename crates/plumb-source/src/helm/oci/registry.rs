//! The registry conversation of an OCI chart pull: challenges and tokens, tag pages,
//! manifests and the chart blob, each request bounded (see the parent module).

use super::super::{HelmAuth, HelmError, HelmRepositories};
use super::{
    ChartLayer, MAX_JSON_BYTES, MAX_TAG_PAGES, OciAccess, OciReference, chart_layer, exact_version,
    is_tag, tag_version, uses_plain_http, version_tag,
};
use reqwest::blocking::Response;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, HeaderValue, WWW_AUTHENTICATE};
use serde::Deserialize;
use sha2::Digest;
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
/// Manifests and indexes, so that an artifact pull can say an index is one.
pub(super) const ANY_MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json";
const MAX_TOKENS: usize = 10_000;

/// (registry, repository name, sha256 of the credentials): a token is reused only by
/// callers presenting the same user *and* password, so an object with wrong or no
/// credentials never rides on a token another object's credentials obtained.
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
pub(in crate::helm) struct Tokens {
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
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
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

/// What a pull is for: errors name a chart, or the artifact's repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Subject {
    /// A Helm chart (`chart "podinfo" in repository oci://…`).
    Chart,
    /// Any OCI artifact (`oci://…/podinfo`).
    Artifact,
}

/// One pull: the client, the reference and how to reach it.
pub(super) struct Session<'a> {
    repositories: &'a HelmRepositories,
    pub(super) reference: &'a OciReference,
    access: &'a OciAccess,
    base: String,
    plain_http: bool,
    subject: Subject,
}

impl<'a> Session<'a> {
    pub(super) fn new(
        repositories: &'a HelmRepositories,
        reference: &'a OciReference,
        access: &'a OciAccess,
        subject: Subject,
    ) -> Session<'a> {
        let plain_http = uses_plain_http(reference, access);
        let scheme = if plain_http { "http" } else { "https" };
        Session {
            repositories,
            reference,
            access,
            base: format!("{scheme}://{}/v2/{}", reference.registry, reference.name()),
            plain_http,
            subject,
        }
    }

    /// Access refused, named as the subject is.
    fn denied(&self, message: String) -> HelmError {
        match self.subject {
            Subject::Chart => HelmError::Auth {
                repo: self.reference.repository_url(),
                chart: self.reference.chart.clone(),
                message,
            },
            Subject::Artifact => HelmError::RegistryAuth {
                reference: self.reference.to_string(),
                message,
            },
        }
    }

    pub(super) fn url(&self, suffix: &str) -> Result<reqwest::Url, HelmError> {
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
                .map(|a| {
                    use sha2::Digest as _;
                    let mut hasher = sha2::Sha256::new();
                    hasher.update(a.username.as_bytes());
                    hasher.update([0]);
                    hasher.update(a.password.as_bytes());
                    super::super::hex(&hasher.finalize())
                })
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
    pub(super) fn get(
        &self,
        url: &reqwest::Url,
        accept: Option<&str>,
    ) -> Result<Response, HelmError> {
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
        let refused = |message: String| self.denied(message);
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
    pub(super) fn read(
        &self,
        response: Response,
        limit: u64,
        shown: &str,
    ) -> Result<Vec<u8>, HelmError> {
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
    pub(super) fn check(
        &self,
        response: Response,
        url: &reqwest::Url,
    ) -> Result<Response, HelmError> {
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        if status == 401 || status == 403 {
            return Err(self.denied(format!(
                "{} answered HTTP {status}{}",
                redacted(url),
                if self.access.auth.is_some() {
                    ""
                } else {
                    " (no credentials: add a repository secret for this registry)"
                }
            )));
        }
        Err(HelmError::Status {
            url: redacted(url),
            status,
        })
    }

    /// Every tag of the chart's repository; `None` when the repository does not exist.
    pub(super) fn tags(&self) -> Result<Option<Vec<String>>, HelmError> {
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

    /// The manifest named `reference` (a tag or a digest), as served for `accept`; `None`
    /// when there is no such manifest.
    pub(super) fn manifest_body(
        &self,
        reference: &str,
        accept: &str,
    ) -> Result<Option<Vec<u8>>, HelmError> {
        let url = self.url(&format!("manifests/{reference}"))?;
        let response = self.get(&url, Some(accept))?;
        if response.status().as_u16() == 404 {
            return Ok(None);
        }
        let response = self.check(response, &url)?;
        let separator = if reference.starts_with("sha256:") {
            "@"
        } else {
            ":"
        };
        let shown = format!("{}{separator}{reference} manifest", self.reference);
        self.read(response, MAX_JSON_BYTES, &shown).map(Some)
    }

    /// The chart layer of the manifest tagged `tag`; `None` when there is no such tag.
    fn manifest(&self, tag: &str) -> Result<Option<ChartLayer>, HelmError> {
        let Some(body) = self.manifest_body(tag, MANIFEST_ACCEPT)? else {
            return Ok(None);
        };
        let shown = format!("{}:{tag}", self.reference);
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
        let (body, actual) = self.blob_bytes(&layer.digest, layer.size, limit, &shown)?;
        if actual != layer.digest {
            return Err(HelmError::LayerDigest {
                reference: format!("{}:{tag}", self.reference),
                expected: layer.digest.clone(),
                actual,
            });
        }
        Ok(body)
    }

    /// The blob `digest` (declared `size` bytes), at most `limit` bytes, with the sha256
    /// digest of what was read (`sha256:<hex>`), for the caller to compare. `shown` names the
    /// blob in errors.
    pub(super) fn blob_bytes(
        &self,
        digest: &str,
        size: u64,
        limit: u64,
        shown: &str,
    ) -> Result<(Vec<u8>, String), HelmError> {
        if size > limit {
            return Err(HelmError::TooLarge {
                url: shown.to_string(),
                limit,
            });
        }
        let url = self.url(&format!("blobs/{digest}"))?;
        let response = self.get(&url, None)?;
        let response = self.check(response, &url)?;
        let body = self.read(response, limit, shown)?;
        let actual = format!("sha256:{}", super::super::hex(&sha2::Sha256::digest(&body)));
        Ok((body, actual))
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
        let session = Session::new(self, reference, access, Subject::Chart);
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
                let versions: Vec<super::super::ChartVersion> = tags
                    .iter()
                    .filter(|tag| is_tag(tag))
                    .map(|tag| super::super::ChartVersion {
                        version: tag_version(tag),
                        ..Default::default()
                    })
                    .collect();
                let picked = super::super::pick(
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
            super::super::hex(&sha2::Sha256::digest(
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
    fn tokens_are_renewed_before_they_expire() {
        let tokens = Tokens::default();
        let key: TokenKey = ("r".into(), "charts/c".into(), "u".into());
        tokens.put(
            key.clone(),
            Remembered::Bearer("t".into()),
            Duration::from_secs(60),
        );
        assert!(matches!(tokens.get(&key), Some(Remembered::Bearer(t)) if t == "t"));
        let other: TokenKey = ("r".into(), "charts/c".into(), "someone-else".into());
        assert!(tokens.get(&other).is_none());
        // A lifetime within the renewal margin is not reused at all.
        tokens.put(
            key.clone(),
            Remembered::Bearer("t".into()),
            Duration::from_secs(5),
        );
        assert!(tokens.get(&key).is_none());
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
