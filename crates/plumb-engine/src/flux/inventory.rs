//! The inventory of a Flux `Kustomization`: `status.inventory.entries[]`, one `{id, v}` per
//! applied object, where `id` is `<namespace>_<name>_<group>_<kind>` (a `:` in the name written
//! as `__`, as Flux's `cli-utils` object metadata does) and `v` the API version.

use plumb_core::key::ObjectKey;
use serde_json::{Value, json};

/// One object of the inventory: its API version and identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// The id, `<namespace>_<name>_<group>_<kind>`.
    pub id: String,
    /// The version part of the API version (`v1`).
    pub version: String,
}

impl Entry {
    /// The entry for an object of `api_version` with identity `key`.
    pub fn of(api_version: &str, key: &ObjectKey) -> Entry {
        Entry {
            id: format!(
                "{}_{}_{}_{}",
                key.namespace,
                key.name.replace(':', "__"),
                key.group,
                key.kind
            ),
            version: plumb_core::key::version_of(api_version).to_string(),
        }
    }

    /// The API version and identity the entry stands for; `None` for a malformed id.
    pub fn object(&self) -> Option<(String, ObjectKey)> {
        let (namespace, rest) = self.id.split_once('_')?;
        let (rest, kind) = rest.rsplit_once('_')?;
        let (name, group) = rest.rsplit_once('_')?;
        if name.is_empty() || kind.is_empty() || self.version.is_empty() {
            return None;
        }
        let api_version = if group.is_empty() {
            self.version.clone()
        } else {
            format!("{group}/{}", self.version)
        };
        Some((
            api_version,
            ObjectKey {
                group: group.to_string(),
                kind: kind.to_string(),
                namespace: namespace.to_string(),
                name: name.replace("__", ":"),
            },
        ))
    }
}

/// Reads `status.inventory.entries` (malformed entries are skipped).
pub fn read(status: &Value) -> Vec<Entry> {
    status
        .pointer("/inventory/entries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            Some(Entry {
                id: entry.get("id")?.as_str()?.to_string(),
                version: entry.get("v")?.as_str()?.to_string(),
            })
        })
        .collect()
}

/// `status.inventory` for `entries`, sorted by id.
pub fn to_json(entries: &[Entry]) -> Value {
    let mut sorted = entries.to_vec();
    sorted.sort();
    sorted.dedup();
    json!({"entries": sorted.iter().map(|e| json!({"id": e.id, "v": e.version})).collect::<Vec<_>>()})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(group: &str, kind: &str, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            group: group.into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    #[test]
    fn ids_are_fluxs() {
        let deployment = Entry::of("apps/v1", &key("apps", "Deployment", "default", "podinfo"));
        assert_eq!(deployment.id, "default_podinfo_apps_Deployment");
        assert_eq!(deployment.version, "v1");
        let service = Entry::of("v1", &key("", "Service", "default", "podinfo"));
        assert_eq!(service.id, "default_podinfo__Service");
        let namespace = Entry::of("v1", &key("", "Namespace", "", "apps"));
        assert_eq!(namespace.id, "_apps__Namespace");
        let role = Entry::of(
            "rbac.authorization.k8s.io/v1",
            &key(
                "rbac.authorization.k8s.io",
                "ClusterRole",
                "",
                "system:viewer",
            ),
        );
        assert_eq!(
            role.id,
            "_system__viewer_rbac.authorization.k8s.io_ClusterRole"
        );
    }

    #[test]
    fn ids_round_trip() {
        for (api_version, k) in [
            ("apps/v1", key("apps", "Deployment", "default", "podinfo")),
            ("v1", key("", "Service", "default", "podinfo")),
            ("v1", key("", "Namespace", "", "apps")),
            (
                "rbac.authorization.k8s.io/v1",
                key(
                    "rbac.authorization.k8s.io",
                    "ClusterRole",
                    "",
                    "system:viewer",
                ),
            ),
        ] {
            let entry = Entry::of(api_version, &k);
            assert_eq!(entry.object(), Some((api_version.to_string(), k)));
        }
        for bad in ["", "a", "a_b", "ns__Kind", "ns_name_group_"] {
            let entry = Entry {
                id: bad.into(),
                version: "v1".into(),
            };
            assert_eq!(entry.object(), None, "{bad:?}");
        }
    }

    #[test]
    fn status_round_trip_is_sorted() {
        let entries = vec![
            Entry::of("v1", &key("", "Service", "default", "b")),
            Entry::of("apps/v1", &key("apps", "Deployment", "default", "a")),
        ];
        let status = json!({"inventory": to_json(&entries)});
        let read_back = read(&status);
        assert_eq!(read_back.len(), 2);
        assert_eq!(read_back[0].id, "default_a_apps_Deployment");
        assert_eq!(status["inventory"]["entries"][1]["v"], "v1");
    }
}
