//! Which fields of a built-in object its Go type does not declare.
//!
//! kube-apiserver decodes built-in kinds into typed structs, so a field the
//! type lacks is dropped (and reported under `fieldValidation`). Here the
//! object is decoded into the matching `k8s-openapi` type through a
//! deserializer that remembers every key the type skipped; the typed value
//! itself is thrown away, and the stored object is the request's JSON minus
//! those keys (so nothing is reordered or reformatted).
//!
//! **Caveats**: the types are those of the `k8s-openapi` version the final
//! binary enables (newer than the server's reported 1.31, so a field added
//! since is accepted). An object whose known fields have the wrong JSON type
//! fails to decode; it is then reported as [`Decoded::Undecodable`] and
//! callers keep it as it is (kube-apiserver refuses it).

use std::cell::RefCell;
use std::fmt;

use serde::Deserializer;
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Error, Value};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// Where an unknown field sits, from the object root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct FieldPath(pub Vec<Segment>);

impl fmt::Display for FieldPath {
    /// As kube-apiserver's strict decoder prints it: `spec.containers[0].foo`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

impl FieldPath {
    /// The path of the map holding this field.
    pub(crate) fn parent(&self) -> &[Segment] {
        &self.0[..self.0.len().saturating_sub(1)]
    }
}

/// What decoding an object into its type found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decoded {
    /// The kind has no typed decoder here (custom resources).
    Untyped,
    /// A known field had the wrong JSON type; nothing was checked.
    Undecodable(String),
    /// The fields the type does not declare, in document order.
    Unknown(Vec<FieldPath>),
}

/// Decodes `obj` as the built-in `kind` of `api_version` and lists the
/// fields its type does not declare. `apiVersion` and `kind` themselves are
/// not checked (the endpoint already did).
pub(crate) fn unknown_fields(api_version: &str, kind: &str, obj: &Value) -> Decoded {
    match decoder(api_version, kind) {
        Some(decode) => {
            let sink = RefCell::new(Vec::new());
            match decode(Tracked::root(obj, &sink)) {
                Ok(()) => Decoded::Unknown(sink.into_inner()),
                Err(e) => Decoded::Undecodable(e.to_string()),
            }
        }
        None => Decoded::Untyped,
    }
}

/// Removes the given fields from `obj` (paths from [`unknown_fields`] on
/// the same object).
pub(crate) fn prune(obj: &mut Value, paths: &[FieldPath]) {
    for p in paths {
        let Some((Segment::Key(last), parent)) = p.0.split_last() else {
            continue;
        };
        if let Some(Value::Object(m)) = walk_mut(obj, parent) {
            m.shift_remove(last);
        }
    }
}

fn walk_mut<'v>(mut cur: &'v mut Value, path: &[Segment]) -> Option<&'v mut Value> {
    for s in path {
        cur = match (s, cur) {
            (Segment::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (Segment::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

type Decoder = fn(Tracked<'_, '_>) -> Result<(), Error>;

fn decode<T: DeserializeOwned>(t: Tracked<'_, '_>) -> Result<(), Error> {
    T::deserialize(t).map(drop)
}

/// The typed decoder of every built-in kind the server serves.
fn decoder(api_version: &str, kind: &str) -> Option<Decoder> {
    use k8s_openapi::api::{
        admissionregistration::v1 as admission, apps::v1 as apps, autoscaling::v2 as autoscaling,
        batch::v1 as batch, coordination::v1 as coordination, core::v1 as core,
        discovery::v1 as discovery, events::v1 as events, networking::v1 as networking,
        node::v1 as node, policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as scheduling,
        storage::v1 as storage,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    let d: Decoder = match (api_version, kind) {
        ("v1", "Namespace") => decode::<core::Namespace>,
        ("v1", "ConfigMap") => decode::<core::ConfigMap>,
        ("v1", "Secret") => decode::<core::Secret>,
        ("v1", "Service") => decode::<core::Service>,
        ("v1", "ServiceAccount") => decode::<core::ServiceAccount>,
        ("v1", "Endpoints") => decode::<core::Endpoints>,
        ("v1", "Pod") => decode::<core::Pod>,
        ("v1", "Event") => decode::<core::Event>,
        ("v1", "PersistentVolumeClaim") => decode::<core::PersistentVolumeClaim>,
        ("v1", "PersistentVolume") => decode::<core::PersistentVolume>,
        ("v1", "ResourceQuota") => decode::<core::ResourceQuota>,
        ("v1", "LimitRange") => decode::<core::LimitRange>,
        ("v1", "Node") => decode::<core::Node>,
        ("apps/v1", "Deployment") => decode::<apps::Deployment>,
        ("apps/v1", "ReplicaSet") => decode::<apps::ReplicaSet>,
        ("apps/v1", "StatefulSet") => decode::<apps::StatefulSet>,
        ("apps/v1", "DaemonSet") => decode::<apps::DaemonSet>,
        ("apps/v1", "ControllerRevision") => decode::<apps::ControllerRevision>,
        ("batch/v1", "Job") => decode::<batch::Job>,
        ("batch/v1", "CronJob") => decode::<batch::CronJob>,
        ("networking.k8s.io/v1", "Ingress") => decode::<networking::Ingress>,
        ("networking.k8s.io/v1", "IngressClass") => decode::<networking::IngressClass>,
        ("networking.k8s.io/v1", "NetworkPolicy") => decode::<networking::NetworkPolicy>,
        ("autoscaling/v2", "HorizontalPodAutoscaler") => {
            decode::<autoscaling::HorizontalPodAutoscaler>
        }
        ("policy/v1", "PodDisruptionBudget") => decode::<policy::PodDisruptionBudget>,
        ("rbac.authorization.k8s.io/v1", "Role") => decode::<rbac::Role>,
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => decode::<rbac::RoleBinding>,
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => decode::<rbac::ClusterRole>,
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            decode::<rbac::ClusterRoleBinding>
        }
        ("coordination.k8s.io/v1", "Lease") => decode::<coordination::Lease>,
        ("discovery.k8s.io/v1", "EndpointSlice") => decode::<discovery::EndpointSlice>,
        ("storage.k8s.io/v1", "StorageClass") => decode::<storage::StorageClass>,
        ("storage.k8s.io/v1", "CSIDriver") => decode::<storage::CSIDriver>,
        ("scheduling.k8s.io/v1", "PriorityClass") => decode::<scheduling::PriorityClass>,
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            decode::<apiextensions::CustomResourceDefinition>
        }
        ("events.k8s.io/v1", "Event") => decode::<events::Event>,
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
            decode::<admission::ValidatingWebhookConfiguration>
        }
        ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration") => {
            decode::<admission::MutatingWebhookConfiguration>
        }
        ("node.k8s.io/v1", "RuntimeClass") => decode::<node::RuntimeClass>,
        _ => return None,
    };
    Some(d)
}

/// Where a value sits; a chain of borrowed links so that no path is built
/// unless a field turns out unknown.
#[derive(Clone, Copy)]
enum At<'a> {
    Root,
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl At<'_> {
    fn path(&self) -> FieldPath {
        let mut segs = Vec::new();
        let mut cur = self;
        loop {
            match cur {
                At::Root => break,
                At::Key(parent, k) => {
                    segs.push(Segment::Key((*k).to_string()));
                    cur = parent;
                }
                At::Index(parent, i) => {
                    segs.push(Segment::Index(*i));
                    cur = parent;
                }
            }
        }
        segs.reverse();
        FieldPath(segs)
    }
}

/// A deserializer over a JSON value that records the keys a typed
/// `Deserialize` impl skips (it asks for `IgnoredAny` for them).
struct Tracked<'de, 'a> {
    value: &'de Value,
    at: At<'a>,
    sink: &'a RefCell<Vec<FieldPath>>,
}

impl<'de, 'a> Tracked<'de, 'a> {
    fn root(value: &'de Value, sink: &'a RefCell<Vec<FieldPath>>) -> Self {
        Tracked {
            value,
            at: At::Root,
            sink,
        }
    }

    fn map<V: Visitor<'de>>(
        self,
        m: &'de serde_json::Map<String, Value>,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_map(TrackedMap {
            iter: m.iter(),
            pending: None,
            root: matches!(self.at, At::Root),
            at: self.at,
            sink: self.sink,
        })
    }

    fn seq<V: Visitor<'de>>(self, a: &'de [Value], v: V) -> Result<V::Value, Error> {
        v.visit_seq(TrackedSeq {
            iter: a.iter().enumerate(),
            at: self.at,
            sink: self.sink,
        })
    }
}

macro_rules! forward_to_value {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                self.value.$method(v)
            }
        )*
    };
}

impl<'de> Deserializer<'de> for Tracked<'de, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Object(m) => self.map(m, v),
            Value::Array(a) => self.seq(a, v),
            other => other.deserialize_any(v),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        if self.value.is_null() {
            v.visit_none()
        } else {
            v.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Array(a) => self.seq(a, v),
            other => other.deserialize_seq(v),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Object(m) => self.map(m, v),
            other => other.deserialize_map(v),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Value::Object(m) => self.map(m, v),
            other => other.deserialize_struct(name, fields, v),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        self.value.deserialize_enum(name, variants, v)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        self.value.deserialize_unit_struct(name, v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.sink.borrow_mut().push(self.at.path());
        v.visit_unit()
    }

    forward_to_value! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_unit
        deserialize_identifier
    }
}

struct TrackedMap<'de, 'a> {
    iter: serde_json::map::Iter<'de>,
    pending: Option<(&'de str, &'de Value)>,
    /// At the object root `apiVersion` and `kind` are hidden from the type
    /// (its decoder would insist on its own version).
    root: bool,
    at: At<'a>,
    sink: &'a RefCell<Vec<FieldPath>>,
}

impl<'de> MapAccess<'de> for TrackedMap<'de, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        for (k, v) in self.iter.by_ref() {
            if self.root && (k == "apiVersion" || k == "kind") {
                continue;
            }
            self.pending = Some((k.as_str(), v));
            return seed
                .deserialize(BorrowedStrDeserializer::<Error>::new(k))
                .map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some((k, value)) = self.pending.take() else {
            return Err(de::Error::custom("map value requested before its key"));
        };
        seed.deserialize(Tracked {
            value,
            at: At::Key(&self.at, k),
            sink: self.sink,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct TrackedSeq<'de, 'a> {
    iter: std::iter::Enumerate<std::slice::Iter<'de, Value>>,
    at: At<'a>,
    sink: &'a RefCell<Vec<FieldPath>>,
}

impl<'de> SeqAccess<'de> for TrackedSeq<'de, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.iter.next() {
            Some((i, value)) => seed
                .deserialize(Tracked {
                    value,
                    at: At::Index(&self.at, i),
                    sink: self.sink,
                })
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unknown(api_version: &str, kind: &str, obj: &Value) -> Vec<String> {
        match unknown_fields(api_version, kind, obj) {
            Decoded::Unknown(p) => p.iter().map(ToString::to_string).collect(),
            other => panic!("expected a decode, got {other:?}"),
        }
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"app": "x"}, "annotations": {"a": "b"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "x"}},
                "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                "template": {
                    "metadata": {"labels": {"app": "x"}},
                    "spec": {"containers": [{
                        "name": "c", "image": "nginx",
                        "ports": [{"containerPort": 80}],
                        "resources": {"limits": {"cpu": 1, "memory": "64Mi"}, "requests": {"cpu": "0.5"}}
                    }]}
                }
            },
            "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}
        })
    }

    #[test]
    fn a_clean_deployment_has_no_unknown_fields() {
        assert!(unknown("apps/v1", "Deployment", &deployment()).is_empty());
    }

    #[test]
    fn unknown_fields_are_reported_with_their_paths_in_document_order() {
        let mut d = deployment();
        d["metadata"]["bogus"] = json!(null);
        d["spec"]["replica"] = json!(3);
        d["spec"]["template"]["spec"]["containers"][0]["foo"] = json!({"x": 1});
        d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["nope"] = json!(1);
        d["status"]["conditions"][0]["extra"] = json!("e");
        d["status"]["made"] = json!("up");
        assert_eq!(
            unknown("apps/v1", "Deployment", &d),
            [
                "metadata.bogus",
                "spec.template.spec.containers[0].ports[0].nope",
                "spec.template.spec.containers[0].foo",
                "spec.replica",
                "status.conditions[0].extra",
                "status.made",
            ]
        );
    }

    #[test]
    fn maps_int_or_string_quantities_and_raw_json_keep_everything() {
        let cr = json!({
            "apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"},
            "revision": 1, "data": {"anything": {"goes": [1, {"here": true}]}}
        });
        assert!(unknown("apps/v1", "ControllerRevision", &cr).is_empty());
        let cm = json!({"metadata": {"name": "c"}, "data": {"any-key": "v"}, "binaryData": {"b": "AA=="}});
        assert!(unknown("v1", "ConfigMap", &cm).is_empty());
        let svc = json!({"metadata": {"name": "s"}, "spec": {"ports": [
            {"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}
        ]}});
        assert!(unknown("v1", "Service", &svc).is_empty());
    }

    #[test]
    fn crd_schemas_are_raw_json_where_the_type_says_so() {
        let crd = json!({"metadata": {"name": "ws.example.com"}, "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "ws", "kind": "W"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object", "x-kubernetes-preserve-unknown-fields": true,
                "properties": {"spec": {"type": "object", "default": {"free": "form"}}}
            }}}]
        }});
        assert!(unknown("apiextensions.k8s.io/v1", "CustomResourceDefinition", &crd).is_empty());
    }

    #[test]
    fn wrongly_typed_objects_are_undecodable_and_custom_kinds_untyped() {
        let mut d = deployment();
        d["spec"]["replicas"] = json!("three");
        assert!(matches!(
            unknown_fields("apps/v1", "Deployment", &d),
            Decoded::Undecodable(_)
        ));
        assert_eq!(
            unknown_fields("example.com/v1", "Widget", &json!({})),
            Decoded::Untyped
        );
    }

    #[test]
    fn prune_removes_exactly_the_reported_fields() {
        let clean = deployment();
        let mut d = clean.clone();
        d["spec"]["replica"] = json!(3);
        d["spec"]["template"]["spec"]["containers"][0]["foo"] = json!(1);
        let Decoded::Unknown(paths) = unknown_fields("apps/v1", "Deployment", &d) else {
            panic!("decodes");
        };
        prune(&mut d, &paths);
        assert_eq!(d, clean);
        // Paths that no longer lead anywhere are ignored.
        prune(&mut d, &paths);
        assert_eq!(d, clean);
    }
}
