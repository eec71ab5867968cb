//! Helm's release records: Secrets `sh.helm.release.v1.<release>.v<version>` of type
//! `helm.sh/release.v1` in the storage namespace, as the Helm SDK (and so Flux's
//! helm-controller) writes them — `data.release` is the release as JSON, gzipped and
//! base64-encoded, with the labels `name`, `owner=helm`, `status` and `version`.
//!
//! Writing the same records means `helm list`, `helm history` and `helm get manifest` show what
//! plumb installed, and a release Flux installed before carries on with its numbering and its
//! manifest (what a later upgrade prunes) when plumb takes over.

use base64::Engine as _;
use plumb_core::key::{ObjectKey, str_at};
use serde_json::{Value, json};
use std::io::{Read, Write};

/// The Secret type of Helm's release records.
pub const RELEASE_TYPE: &str = "helm.sh/release.v1";
/// The largest decompressed release read.
const MAX_RELEASE_BYTES: u64 = 32 << 20;

/// The name of the record of `release` at `version`.
pub fn secret_name(release: &str, version: u64) -> String {
    format!("sh.helm.release.v1.{release}.v{version}")
}

/// A release as Helm records it (the fields plumb reads and writes).
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    /// The release name.
    pub name: String,
    /// The release namespace (where the objects go).
    pub namespace: String,
    /// The release version (1 for the first install).
    pub version: u64,
    /// `deployed`, `superseded`, `failed`, `pending-install`, ...
    pub status: String,
    /// What happened, for `helm history`.
    pub description: String,
    /// When first deployed (RFC 3339).
    pub first_deployed: String,
    /// When this version was deployed (RFC 3339).
    pub last_deployed: String,
    /// `Chart.yaml` of the chart, as JSON.
    pub chart_metadata: Value,
    /// The values the user supplied.
    pub config: Value,
    /// The rendered objects, as YAML documents.
    pub manifest: String,
    /// The hooks: (template path, object).
    pub hooks: Vec<(String, Value)>,
}

impl Release {
    /// Helm's JSON form of the release.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "info": {
                "first_deployed": self.first_deployed,
                "last_deployed": self.last_deployed,
                "deleted": "",
                "description": self.description,
                "status": self.status,
            },
            "chart": {"metadata": self.chart_metadata, "lock": null, "templates": [],
                "values": {}, "schema": null, "files": []},
            "config": self.config,
            "manifest": self.manifest,
            "hooks": self.hooks.iter().map(|(path, object)| json!({
                "name": str_at(object, &["metadata", "name"]),
                "kind": str_at(object, &["kind"]),
                "path": path,
                "manifest": serde_saphyr::to_string(object).unwrap_or_default(),
                "events": str_at(object, &["metadata", "annotations", "helm.sh/hook"])
                    .split(',').map(str::trim).filter(|e| !e.is_empty()).collect::<Vec<_>>(),
                "last_run": {"started_at": "", "completed_at": "", "phase": ""},
            })).collect::<Vec<_>>(),
            "version": self.version,
            "namespace": self.namespace,
        })
    }

    /// Reads Helm's JSON form.
    pub fn from_json(value: &Value) -> Release {
        Release {
            name: str_at(value, &["name"]).to_string(),
            namespace: str_at(value, &["namespace"]).to_string(),
            version: value.get("version").and_then(Value::as_u64).unwrap_or(0),
            status: str_at(value, &["info", "status"]).to_string(),
            description: str_at(value, &["info", "description"]).to_string(),
            first_deployed: str_at(value, &["info", "first_deployed"]).to_string(),
            last_deployed: str_at(value, &["info", "last_deployed"]).to_string(),
            chart_metadata: value
                .pointer("/chart/metadata")
                .cloned()
                .unwrap_or(Value::Null),
            config: value.get("config").cloned().unwrap_or(Value::Null),
            manifest: str_at(value, &["manifest"]).to_string(),
            hooks: value
                .get("hooks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|hook| {
                    let text = str_at(hook, &["manifest"]);
                    let object: Value = serde_saphyr::from_str(text).ok()?;
                    object
                        .is_object()
                        .then(|| (str_at(hook, &["path"]).to_string(), object))
                })
                .collect(),
        }
    }

    /// The hooks as manifests.
    pub fn hook_manifests(&self) -> Vec<plumb_core::manifest::Manifest> {
        self.hooks
            .iter()
            .map(|(path, object)| plumb_core::manifest::Manifest {
                object: object.clone(),
                origin: plumb_core::manifest::Origin {
                    file: path.clone(),
                    document: 0,
                },
            })
            .collect()
    }

    /// The record as a Secret in `storage_namespace`.
    pub fn to_secret(&self, storage_namespace: &str) -> Result<Value, String> {
        let json = serde_json::to_vec(&self.to_json()).map_err(|e| e.to_string())?;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(&json)
            .map_err(|e| format!("cannot compress the release: {e}"))?;
        let compressed = gzip
            .finish()
            .map_err(|e| format!("cannot compress the release: {e}"))?;
        let engine = &base64::engine::general_purpose::STANDARD;
        // Helm stores the base64 text as the Secret's bytes, which the API encodes again.
        let stored = engine.encode(engine.encode(compressed));
        Ok(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "type": RELEASE_TYPE,
            "metadata": {
                "name": secret_name(&self.name, self.version),
                "namespace": storage_namespace,
                "labels": {
                    "name": self.name,
                    "owner": "helm",
                    "status": self.status,
                    "version": self.version.to_string(),
                },
            },
            "data": {"release": stored},
        }))
    }

    /// Reads a release record Secret.
    ///
    /// **Errors**: the Secret holds no readable release.
    pub fn from_secret(secret: &Value) -> Result<Release, String> {
        let name = str_at(secret, &["metadata", "name"]);
        let stored = str_at(secret, &["data", "release"]);
        let engine = &base64::engine::general_purpose::STANDARD;
        let once = engine
            .decode(stored)
            .map_err(|e| format!("secret {name}: data.release is not base64: {e}"))?;
        let bytes = engine
            .decode(&once)
            .map_err(|e| format!("secret {name}: the release is not base64: {e}"))?;
        let json = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(bytes.as_slice())
                .take(MAX_RELEASE_BYTES + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("secret {name}: cannot decompress the release: {e}"))?;
            if out.len() as u64 > MAX_RELEASE_BYTES {
                return Err(format!(
                    "secret {name}: the release is larger than {MAX_RELEASE_BYTES} bytes"
                ));
            }
            out
        } else {
            bytes
        };
        let value: Value = serde_json::from_slice(&json)
            .map_err(|e| format!("secret {name}: the release is not JSON: {e}"))?;
        Ok(Release::from_json(&value))
    }

    /// The objects of the manifest as (apiVersion, key); unreadable documents are skipped.
    pub fn objects(&self) -> Vec<(String, ObjectKey)> {
        plumb_render::parse_documents("manifest.yaml", &self.manifest)
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, object)| object.is_object())
            .map(|(_, object)| {
                (
                    str_at(&object, &["apiVersion"]).to_string(),
                    ObjectKey::of(&object),
                )
            })
            .collect()
    }
}

/// The manifest text of `objects`: YAML documents with Helm's `# Source:` comment.
pub fn manifest_of(objects: &[(String, Value)]) -> String {
    let mut text = String::new();
    for (source, object) in objects {
        let yaml = serde_saphyr::to_string(object).unwrap_or_default();
        text.push_str("---\n# Source: ");
        text.push_str(source);
        text.push('\n');
        text.push_str(&yaml);
        if !yaml.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}

/// The newest record of `secrets` (the release's record Secrets), if any.
pub fn latest(secrets: &[Value]) -> Option<&Value> {
    secrets.iter().max_by_key(|s| {
        str_at(s, &["metadata", "labels", "version"])
            .parse::<u64>()
            .unwrap_or(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release() -> Release {
        Release {
            name: "podinfo".into(),
            namespace: "apps".into(),
            version: 3,
            status: "deployed".into(),
            description: "Upgrade complete".into(),
            first_deployed: "2026-01-01T00:00:00Z".into(),
            last_deployed: "2026-01-02T00:00:00Z".into(),
            chart_metadata: json!({"name": "podinfo", "version": "6.14.1", "appVersion": "6.14.1"}),
            config: json!({"replicaCount": 2}),
            hooks: vec![(
                "podinfo/templates/hooks/job.yaml".into(),
                json!({"apiVersion": "batch/v1", "kind": "Job",
                    "metadata": {"name": "podinfo-pre-install",
                        "annotations": {"helm.sh/hook": "pre-install"}}}),
            )],
            manifest: manifest_of(&[(
                "podinfo/templates/service.yaml".into(),
                json!({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "podinfo", "namespace": "apps"}}),
            )]),
        }
    }

    #[test]
    fn records_round_trip_in_helms_encoding() {
        let secret = release().to_secret("apps").expect("encodes");
        assert_eq!(secret["metadata"]["name"], "sh.helm.release.v1.podinfo.v3");
        assert_eq!(secret["metadata"]["labels"]["owner"], "helm");
        assert_eq!(secret["type"], RELEASE_TYPE);
        // data.release is base64 of base64 of gzip, as the Helm SDK stores it.
        let engine = &base64::engine::general_purpose::STANDARD;
        let inner = engine
            .decode(secret["data"]["release"].as_str().expect("text"))
            .expect("outer base64");
        let gzip = engine.decode(inner).expect("inner base64");
        assert_eq!(&gzip[..2], &[0x1f, 0x8b]);
        let back = Release::from_secret(&secret).expect("decodes");
        assert_eq!(back, release());
        assert_eq!(
            back.objects(),
            vec![(
                "v1".to_string(),
                ObjectKey {
                    group: String::new(),
                    kind: "Service".into(),
                    namespace: "apps".into(),
                    name: "podinfo".into()
                }
            )]
        );
    }

    #[test]
    fn unreadable_records_are_errors_naming_the_secret() {
        let secret = json!({"metadata": {"name": "sh.helm.release.v1.x.v1"},
            "data": {"release": "not base64!"}});
        let error = Release::from_secret(&secret).expect_err("bad");
        assert!(error.contains("sh.helm.release.v1.x.v1"), "{error}");
        let engine = &base64::engine::general_purpose::STANDARD;
        let secret = json!({"metadata": {"name": "s"},
            "data": {"release": engine.encode(engine.encode(b"{not json"))}});
        assert!(Release::from_secret(&secret).is_err());
    }
}
