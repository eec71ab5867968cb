//! Sprig's list and dict functions.

use std::collections::{BTreeMap, HashMap};

use super::{Func, int, is_empty, items, s, want, want_min};
use crate::value::Value;

fn map_ref(v: &Value, func: &str) -> Result<crate::value::MapRef, String> {
    match v {
        Value::Map(m) => Ok(m.clone()),
        other => Err(format!(
            "{func}: expected a dict, got {}",
            other.type_name()
        )),
    }
}

/// mergo-style deep merge of `src` into `dst`.
pub(crate) fn merge_into(dst: &crate::value::MapRef, src: &Value, overwrite: bool) {
    let Some(entries) = src.map_entries() else {
        return;
    };
    for (k, sv) in entries {
        let existing = dst.borrow().get(&k).cloned();
        match existing {
            Some(Value::Map(dm)) if matches!(sv, Value::Map(_)) => merge_into(&dm, &sv, overwrite),
            Some(dv) => {
                if overwrite && !is_empty(&sv)
                    || (!overwrite && is_empty(&dv) && !matches!(dv, Value::Map(_)))
                {
                    dst.borrow_mut().insert(k, sv.deep_copy());
                }
            }
            None => {
                dst.borrow_mut().insert(k, sv.deep_copy());
            }
        }
    }
}

pub(super) fn register(m: &mut HashMap<&'static str, Func>) {
    // lists
    m.insert("list", |_, a| Ok(Value::list(a.to_vec())));
    m.insert("tuple", |_, a| Ok(Value::list(a.to_vec())));
    for name in ["append", "push", "mustAppend", "mustPush"] {
        m.insert(name, |_, a| {
            want(a, 2)?;
            let mut v = items(&a[0], "append")?;
            v.push(a[1].clone());
            Ok(Value::list(v))
        });
    }
    for name in ["prepend", "mustPrepend"] {
        m.insert(name, |_, a| {
            want(a, 2)?;
            let mut v = items(&a[0], "prepend")?;
            v.insert(0, a[1].clone());
            Ok(Value::list(v))
        });
    }
    for name in ["first", "mustFirst"] {
        m.insert(name, |_, a| {
            want(a, 1)?;
            Ok(items(&a[0], "first")?.first().cloned().unwrap_or_default())
        });
    }
    for name in ["last", "mustLast"] {
        m.insert(name, |_, a| {
            want(a, 1)?;
            Ok(items(&a[0], "last")?.last().cloned().unwrap_or_default())
        });
    }
    for name in ["rest", "mustRest"] {
        m.insert(name, |_, a| {
            want(a, 1)?;
            let v = items(&a[0], "rest")?;
            Ok(Value::list(v.into_iter().skip(1).collect()))
        });
    }
    for name in ["initial", "mustInitial"] {
        m.insert(name, |_, a| {
            want(a, 1)?;
            let mut v = items(&a[0], "initial")?;
            v.pop();
            Ok(Value::list(v))
        });
    }
    for name in ["reverse", "mustReverse"] {
        m.insert(name, |_, a| {
            want(a, 1)?;
            let mut v = items(&a[0], "reverse")?;
            v.reverse();
            Ok(Value::list(v))
        });
    }
    for name in ["uniq", "mustUniq"] {
        m.insert(name, |_, a| {
            want(a, 1)?;
            let mut out: Vec<Value> = Vec::new();
            for v in items(&a[0], "uniq")? {
                if !out.iter().any(|o| o.to_json() == v.to_json()) {
                    out.push(v)
                }
            }
            Ok(Value::list(out))
        });
    }
    for name in ["without", "mustWithout"] {
        m.insert(name, |_, a| {
            want_min(a, 1)?;
            let drop: Vec<serde_json::Value> = a[1..].iter().map(Value::to_json).collect();
            Ok(Value::list(
                items(&a[0], "without")?
                    .into_iter()
                    .filter(|v| !drop.contains(&v.to_json()))
                    .collect(),
            ))
        });
    }
    for name in ["has", "mustHas"] {
        m.insert(name, |_, a| {
            want(a, 2)?;
            let n = a[0].to_json();
            Ok(Value::Bool(
                items(&a[1], "has")?.iter().any(|v| v.to_json() == n),
            ))
        });
    }
    for name in ["compact", "mustCompact"] {
        m.insert(name, |_, a| {
            want(a, 1)?;
            Ok(Value::list(
                items(&a[0], "compact")?
                    .into_iter()
                    .filter(|v| !is_empty(v))
                    .collect(),
            ))
        });
    }
    m.insert("concat", |_, a| {
        let mut v = Vec::new();
        for l in a {
            v.extend(items(l, "concat")?)
        }
        Ok(Value::list(v))
    });
    for name in ["slice", "mustSlice"] {
        m.insert(name, |_, a| {
            want_min(a, 1)?;
            if let Value::Str(x) = &a[0] {
                let st0 = a.get(1).map(int).unwrap_or(0).max(0) as usize;
                let en = a.get(2).map(int).map(|e| e as usize).unwrap_or(x.len());
                return Ok(Value::str(
                    x.get(st0..en).ok_or("slice index out of range")?,
                ));
            }
            let v = items(&a[0], "slice")?;
            let st0 = a.get(1).map(int).unwrap_or(0).max(0) as usize;
            let en = a.get(2).map(int).map(|e| e as usize).unwrap_or(v.len());
            if st0 > en || en > v.len() {
                return Err(format!("slice bounds out of range [{st0}:{en}]"));
            }
            Ok(Value::list(v[st0..en].to_vec()))
        });
    }
    for name in ["chunk", "mustChunk"] {
        m.insert(name, |_, a| {
            want(a, 2)?;
            let n = int(&a[0]).max(1) as usize;
            Ok(Value::list(
                items(&a[1], "chunk")?
                    .chunks(n)
                    .map(|c| Value::list(c.to_vec()))
                    .collect(),
            ))
        });
    }

    // dicts
    m.insert("dict", |_, a| {
        let mut out = BTreeMap::new();
        for pair in a.chunks(2) {
            out.insert(
                s(&pair[0]),
                pair.get(1).cloned().unwrap_or_else(|| Value::str("")),
            );
        }
        Ok(Value::map(out))
    });
    m.insert("get", |_, a| {
        want(a, 2)?;
        Ok(a[0].get(&s(&a[1])).unwrap_or_else(|| Value::str("")))
    });
    m.insert("set", |_, a| {
        want(a, 3)?;
        let d = map_ref(&a[0], "set")?;
        d.try_borrow_mut()
            .map_err(|_| "set: dict is being iterated")?
            .insert(s(&a[1]), a[2].clone());
        Ok(a[0].clone())
    });
    m.insert("unset", |_, a| {
        want(a, 2)?;
        let d = map_ref(&a[0], "unset")?;
        d.try_borrow_mut()
            .map_err(|_| "unset: dict is being iterated")?
            .remove(&s(&a[1]));
        Ok(a[0].clone())
    });
    m.insert("hasKey", |_, a| {
        want(a, 2)?;
        Ok(Value::Bool(a[0].get(&s(&a[1])).is_some()))
    });
    m.insert("keys", |_, a| {
        let mut out = Vec::new();
        for d in a {
            for (k, _) in d.map_entries().unwrap_or_default() {
                out.push(Value::str(k))
            }
        }
        Ok(Value::list(out))
    });
    m.insert("values", |_, a| {
        want(a, 1)?;
        Ok(Value::list(
            a[0].map_entries()
                .unwrap_or_default()
                .into_iter()
                .map(|(_, v)| v)
                .collect(),
        ))
    });
    m.insert("pluck", |_, a| {
        want_min(a, 1)?;
        let k = s(&a[0]);
        Ok(Value::list(
            a[1..].iter().filter_map(|d| d.get(&k)).collect(),
        ))
    });
    m.insert("pick", |_, a| {
        want_min(a, 1)?;
        let keys: Vec<String> = a[1..].iter().map(s).collect();
        Ok(Value::map(
            a[0].map_entries()
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| keys.contains(k))
                .collect(),
        ))
    });
    m.insert("omit", |_, a| {
        want_min(a, 1)?;
        let keys: Vec<String> = a[1..].iter().map(s).collect();
        Ok(Value::map(
            a[0].map_entries()
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| !keys.contains(k))
                .collect(),
        ))
    });
    for name in ["merge", "mustMerge"] {
        m.insert(name, |_, a| {
            want_min(a, 1)?;
            let d = map_ref(&a[0], "merge")?;
            for src in &a[1..] {
                merge_into(&d, src, false)
            }
            Ok(a[0].clone())
        });
    }
    for name in ["mergeOverwrite", "mustMergeOverwrite"] {
        m.insert(name, |_, a| {
            want_min(a, 1)?;
            let d = map_ref(&a[0], "mergeOverwrite")?;
            for src in &a[1..] {
                merge_into(&d, src, true)
            }
            Ok(a[0].clone())
        });
    }
    m.insert("dig", |_, a| {
        want_min(a, 3)?;
        let n = a.len();
        let mut cur = a[n - 1].clone();
        for k in &a[..n - 2] {
            match cur.get(&s(k)) {
                Some(v) => cur = v,
                None => return Ok(a[n - 2].clone()),
            }
        }
        Ok(cur)
    });
}
