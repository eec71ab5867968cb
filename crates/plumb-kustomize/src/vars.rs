//! The deprecated `vars`: resolve each var from its source object, then substitute `$(NAME)` in
//! the fields listed by the `varReference` field specs.

use serde_json::Value;

use crate::Error;
use crate::fieldspec::{TransformerConfig, visit};
use crate::kustomization::VarArgs;
use crate::resource::{Gvk, Resource};

pub(crate) fn resolve(
    resources: &mut [Resource],
    vars: &[VarArgs],
    config: &TransformerConfig,
) -> Result<(), Error> {
    if vars.is_empty() {
        return Ok(());
    }
    let mut values: Vec<(String, Value)> = Vec::new();
    for v in vars {
        let o = &v.obj_ref;
        let (group, version) = match (&o.api_version, &o.group, &o.version) {
            (Some(api), _, _) => {
                let g = Gvk::from_api_version(api, "");
                (g.group, g.version)
            }
            (None, g, ver) => (
                g.clone().unwrap_or_default(),
                ver.clone().unwrap_or_default(),
            ),
        };
        let want = Gvk {
            group,
            version,
            kind: o.kind.clone().unwrap_or_default(),
        };
        let name = o.name.clone().unwrap_or_default();
        let matches: Vec<&Resource> = resources
            .iter()
            .filter(|r| {
                let g = r.gvk();
                (want.kind.is_empty() || g.kind == want.kind)
                    && (want.group.is_empty() || g.group == want.group)
                    && (want.version.is_empty() || g.version == want.version)
                    && r.all_ids().iter().any(|(n, ns)| {
                        n == &name
                            && o.namespace
                                .as_ref()
                                .is_none_or(|want_ns| crate::patch::ns_equal(ns, want_ns))
                    })
            })
            .collect();
        let describe = || {
            format!(
                "var '{{{} {} {{{}}}}}' cannot be mapped to a field in the set of known resources",
                v.name,
                crate::resource::id_display(&want, &name, o.namespace.as_deref().unwrap_or("")),
                v.field_ref
                    .as_ref()
                    .map_or("metadata.name", |f| f.field_path.as_str())
            )
        };
        let [source] = matches.as_slice() else {
            return Err(Error::Field {
                path: "kustomization".into(),
                field: "vars".into(),
                message: if matches.is_empty() {
                    describe()
                } else {
                    format!("var '{}' matches more than one resource", v.name)
                },
            });
        };
        let path = v
            .field_ref
            .as_ref()
            .map_or("metadata.name", |f| f.field_path.as_str());
        let value = lookup_dotted(&source.obj, path).ok_or_else(|| Error::Field {
            path: "kustomization".into(),
            field: "vars".into(),
            message: format!(
                "var '{}': field {path:?} not found in {}",
                v.name,
                source.id_display()
            ),
        })?;
        values.push((v.name.clone(), value));
    }
    for r in resources.iter_mut() {
        let gvk = r.gvk();
        for fs in &config.var_reference {
            if !fs.matches(&gvk) {
                continue;
            }
            let _ = visit(&mut r.obj, &fs.segments(), None, &mut |v| {
                substitute(v, &values);
                Ok(())
            });
        }
    }
    Ok(())
}

fn substitute(v: &mut Value, values: &[(String, Value)]) {
    match v {
        Value::String(s) => {
            for (name, val) in values {
                let token = format!("$({name})");
                if *s == token {
                    *v = val.clone();
                    return;
                }
                if s.contains(&token) {
                    let text = match val {
                        Value::String(x) => x.clone(),
                        other => other.to_string(),
                    };
                    *s = s.replace(&token, &text);
                }
            }
        }
        Value::Array(items) => {
            for i in items {
                substitute(i, values);
            }
        }
        Value::Object(m) => {
            for (_, x) in m.iter_mut() {
                substitute(x, values);
            }
        }
        _ => {}
    }
}

/// Look up `a.b[0].c` style paths.
fn lookup_dotted(obj: &Value, path: &str) -> Option<Value> {
    let mut cur = obj;
    for part in path.split('.') {
        let (key, index) = match part.find('[') {
            Some(p) => (
                &part[..p],
                part[p + 1..]
                    .strip_suffix(']')
                    .and_then(|i| i.parse::<usize>().ok()),
            ),
            None => (part, None),
        };
        if !key.is_empty() {
            cur = cur.get(key)?;
        }
        if let Some(i) = index {
            cur = cur.get(i)?;
        }
    }
    Some(cur.clone())
}
