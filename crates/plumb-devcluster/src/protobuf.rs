//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`),
//! which kubectl 1.32 and later send for generator commands such as
//! `kubectl create namespace` and `kubectl create configmap`.
//!
//! A small descriptor-driven decoder covers the kinds those generators
//! create without a pod template (Namespace, ConfigMap, Secret,
//! ServiceAccount and the four RBAC kinds). Any other kind, or a field this
//! table does not know, is refused with 415 rather than silently dropped.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::errors::ApiError;

/// A field's wire shape.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Bool,
    Int,
    Time,
    MapStr,
    MapBytes,
    Msg(&'static [Field]),
}

#[derive(Clone, Copy)]
struct Field {
    num: u64,
    name: &'static str,
    ty: Ty,
    repeated: bool,
}

const fn f(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
    }
}

const fn r(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: true,
    }
}

const OWNER_REF: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "controller", Ty::Bool),
    f(7, "blockOwnerDeletion", Ty::Bool),
];

const OBJECT_META: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "generateName", Ty::Str),
    f(3, "namespace", Ty::Str),
    f(4, "selfLink", Ty::Str),
    f(5, "uid", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "generation", Ty::Int),
    f(8, "creationTimestamp", Ty::Time),
    f(9, "deletionTimestamp", Ty::Time),
    f(10, "deletionGracePeriodSeconds", Ty::Int),
    f(11, "labels", Ty::MapStr),
    f(12, "annotations", Ty::MapStr),
    r(13, "ownerReferences", Ty::Msg(OWNER_REF)),
    r(14, "finalizers", Ty::Str),
];

const META: Field = f(1, "metadata", Ty::Msg(OBJECT_META));

const CONFIG_MAP: &[Field] = &[
    META,
    f(2, "data", Ty::MapStr),
    f(3, "binaryData", Ty::MapBytes),
    f(4, "immutable", Ty::Bool),
];

const SECRET: &[Field] = &[
    META,
    f(2, "data", Ty::MapBytes),
    f(3, "type", Ty::Str),
    f(4, "stringData", Ty::MapStr),
    f(5, "immutable", Ty::Bool),
];

const NAMESPACE: &[Field] = &[
    META,
    f(2, "spec", Ty::Msg(&[r(1, "finalizers", Ty::Str)])),
    f(3, "status", Ty::Msg(&[f(1, "phase", Ty::Str)])),
];

const OBJECT_REF: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(2, "namespace", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "fieldPath", Ty::Str),
];

const SERVICE_ACCOUNT: &[Field] = &[
    META,
    r(2, "secrets", Ty::Msg(OBJECT_REF)),
    r(3, "imagePullSecrets", Ty::Msg(&[f(1, "name", Ty::Str)])),
    f(4, "automountServiceAccountToken", Ty::Bool),
];

const POLICY_RULE: &[Field] = &[
    r(1, "verbs", Ty::Str),
    r(2, "apiGroups", Ty::Str),
    r(3, "resources", Ty::Str),
    r(4, "resourceNames", Ty::Str),
    r(5, "nonResourceURLs", Ty::Str),
];

const ROLE: &[Field] = &[META, r(2, "rules", Ty::Msg(POLICY_RULE))];

const SUBJECT: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(2, "apiGroup", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "namespace", Ty::Str),
];

const ROLE_REF: &[Field] = &[
    f(1, "apiGroup", Ty::Str),
    f(2, "kind", Ty::Str),
    f(3, "name", Ty::Str),
];

const BINDING: &[Field] = &[
    META,
    r(2, "subjects", Ty::Msg(SUBJECT)),
    f(3, "roleRef", Ty::Msg(ROLE_REF)),
];

fn kind_fields(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    Some(match (api_version, kind) {
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("rbac.authorization.k8s.io/v1", "Role" | "ClusterRole") => ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => BINDING,
        _ => return None,
    })
}

fn unsupported(what: String) -> ApiError {
    ApiError::new(
        415,
        "UnsupportedMediaType",
        format!("not supported yet: protobuf request bodies for {what} (send application/json)"),
    )
}

fn malformed(why: &str) -> ApiError {
    ApiError::bad_request(format!("malformed protobuf body: {why}"))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| malformed("truncated varint"))?;
            self.pos += 1;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(malformed("varint too long"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], ApiError> {
        let len = usize::try_from(self.varint()?).map_err(|_| malformed("length overflow"))?;
        let end = self.pos.checked_add(len).filter(|e| *e <= self.buf.len());
        let end = end.ok_or_else(|| malformed("length past end"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// (field number, wire type) pairs until the end.
    fn next(&mut self) -> Result<Option<(u64, u64)>, ApiError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        Ok(Some((key >> 3, key & 7)))
    }
}

fn string(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| malformed("string is not UTF-8"))
}

fn map_entry(b: &[u8], bytes_value: bool) -> Result<(String, Value), ApiError> {
    let mut r = Reader { buf: b, pos: 0 };
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    while let Some((num, wire)) = r.next()? {
        if wire != 2 {
            return Err(malformed("map entry field is not length-delimited"));
        }
        let data = r.bytes()?;
        match num {
            1 => k = string(data)?,
            2 if bytes_value => {
                v = json!(base64::engine::general_purpose::STANDARD.encode(data));
            }
            2 => v = Value::String(string(data)?),
            _ => return Err(malformed("unknown map entry field")),
        }
    }
    Ok((k, v))
}

fn time(b: &[u8]) -> Result<Value, ApiError> {
    let mut r = Reader { buf: b, pos: 0 };
    let mut secs = 0i64;
    while let Some((num, wire)) = r.next()? {
        match (num, wire) {
            (1, 0) => secs = r.varint()? as i64,
            (2, 0) => {
                r.varint()?;
            }
            _ => return Err(malformed("unknown Time field")),
        }
    }
    if secs <= 0 {
        return Ok(Value::Null);
    }
    Ok(chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| json!(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()))
        .unwrap_or(Value::Null))
}

/// Whether bytes parse as a message whose fields are all zero or empty.
fn is_default_message(b: &[u8]) -> bool {
    let mut r = Reader { buf: b, pos: 0 };
    loop {
        match r.next() {
            Ok(None) => return true,
            Ok(Some((_, 0))) => {
                if !matches!(r.varint(), Ok(0)) {
                    return false;
                }
            }
            Ok(Some((_, 2))) => match r.bytes() {
                Ok(inner) if inner.is_empty() || is_default_message(inner) => {}
                _ => return false,
            },
            _ => return false,
        }
    }
}

fn message(b: &[u8], fields: &[Field], kind: &str) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    let mut r = Reader { buf: b, pos: 0 };
    while let Some((num, wire)) = r.next()? {
        let Some(field) = fields.iter().find(|f| f.num == num) else {
            // Go always encodes struct-valued fields; one holding only
            // default values (an empty status, say) carries nothing.
            if wire == 2 && is_default_message(r.bytes()?) {
                continue;
            }
            return Err(unsupported(format!("{kind} (field {num})")));
        };
        let value = match (field.ty, wire) {
            (Ty::Bool, 0) => json!(r.varint()? != 0),
            (Ty::Int, 0) => json!(r.varint()? as i64),
            (Ty::Str, 2) => Value::String(string(r.bytes()?)?),
            (Ty::Time, 2) => time(r.bytes()?)?,
            (Ty::MapStr | Ty::MapBytes, 2) => {
                let (k, v) = map_entry(r.bytes()?, matches!(field.ty, Ty::MapBytes))?;
                let m = out.entry(field.name).or_insert_with(|| json!({}));
                if let Some(m) = m.as_object_mut() {
                    m.insert(k, v);
                }
                continue;
            }
            (Ty::Msg(sub), 2) => Value::Object(message(r.bytes()?, sub, kind)?),
            _ => return Err(malformed("unexpected wire type")),
        };
        if field.repeated {
            let list = out.entry(field.name).or_insert_with(|| json!([]));
            if let Some(a) = list.as_array_mut() {
                a.push(value);
            }
        } else {
            out.insert(field.name.to_string(), value);
        }
    }
    Ok(out)
}

/// Decodes a protobuf-encoded object (the `k8s\0` envelope around a
/// `runtime.Unknown`).
pub(crate) fn decode(bytes: &[u8]) -> Result<Value, ApiError> {
    let body = bytes
        .strip_prefix(b"k8s\0")
        .ok_or_else(|| malformed("missing k8s protobuf magic"))?;
    let mut r = Reader { buf: body, pos: 0 };
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while let Some((num, wire)) = r.next()? {
        if wire != 2 {
            return Err(malformed("unexpected wire type in envelope"));
        }
        let data = r.bytes()?;
        match num {
            1 => {
                let tm = message(
                    data,
                    &[f(1, "apiVersion", Ty::Str), f(2, "kind", Ty::Str)],
                    "TypeMeta",
                )?;
                api_version = tm
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                kind = tm
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
            }
            2 => raw = data,
            3 if !data.is_empty() => return Err(unsupported("encoded bodies".into())),
            _ => {}
        }
    }
    let fields = kind_fields(&api_version, &kind)
        .ok_or_else(|| unsupported(format!("{api_version} {kind}")))?;
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    obj.extend(message(raw, fields, &kind)?);
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(num: u64, data: &[u8]) -> Vec<u8> {
        let mut out = vec![((num << 3) | 2) as u8, data.len() as u8];
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn decodes_a_configmap() {
        let meta = field(1, b"cm");
        let entry = [field(1, b"k"), field(2, b"v")].concat();
        let raw = [field(1, &meta), field(2, &entry)].concat();
        let tm = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let body = [b"k8s\0".to_vec(), field(1, &tm), field(2, &raw)].concat();
        assert_eq!(
            decode(&body).expect("decode"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"k": "v"}})
        );
    }

    #[test]
    fn refuses_unknown_kinds_and_garbage() {
        let tm = [field(1, b"apps/v1"), field(2, b"Deployment")].concat();
        let body = [b"k8s\0".to_vec(), field(1, &tm)].concat();
        assert_eq!(decode(&body).expect_err("unsupported").code, 415);
        assert_eq!(decode(b"k8s\0\xff\xff").expect_err("garbage").code, 400);
        assert_eq!(decode(b"nope").expect_err("no magic").code, 400);
    }
}
