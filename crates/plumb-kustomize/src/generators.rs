//! configMapGenerator, secretGenerator and builtin generator configs under `generators:`,
//! including create/merge/replace behaviour against resources from bases.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::Error;
use crate::accumulate::{Acc, Target, append};
use crate::error::field_err;
use crate::kustomization::{GeneratorArgs, GeneratorOptions};
use crate::resource::{GeneratorInfo, Resource};

pub(crate) fn run(t: &Target<'_>, acc: &mut Acc) -> Result<(), Error> {
    let global = t.k.generator_options.clone();
    for args in t.k.config_map_generator.clone().unwrap_or_default() {
        generate(
            t,
            acc,
            &args,
            global.as_ref(),
            "ConfigMap",
            "configMapGenerator",
            None,
        )?;
    }
    for args in t.k.secret_generator.clone().unwrap_or_default() {
        generate(
            t,
            acc,
            &args,
            global.as_ref(),
            "Secret",
            "secretGenerator",
            None,
        )?;
    }
    for entry in t.k.generators.clone().unwrap_or_default() {
        let path = t.loader.resolve(&t.dir, &entry)?;
        let docs = if path.is_dir() {
            crate::accumulate::plugin_configs_from_dir(t, &path)?
        } else {
            t.loader.check_file_in(&t.dir, &path)?;
            let text = t.loader.read_string(&path)?;
            crate::yaml::parse_raw(&text).map_err(|source| Error::Yaml {
                path: path.clone(),
                source,
            })?
        };
        for doc in docs {
            let kind = doc
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let api = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
            let (gen_kind, field) = match (api, kind.as_str()) {
                ("builtin", "ConfigMapGenerator") => ("ConfigMap", "generators"),
                ("builtin", "SecretGenerator") => ("Secret", "generators"),
                _ => {
                    return Err(Error::Unsupported {
                        path: t.file.clone(),
                        field: "generators".into(),
                        reason: format!(
                            "{entry}: {api}/{kind} is a generator plugin; plumb runs only the \
                             builtin ConfigMapGenerator and SecretGenerator"
                        ),
                    });
                }
            };
            let mut obj = doc.as_object().cloned().unwrap_or_default();
            let meta = obj.remove("metadata").unwrap_or(Value::Null);
            obj.remove("apiVersion");
            obj.remove("kind");
            if let Some(n) = meta.get("name") {
                obj.insert("name".into(), n.clone());
            }
            if let Some(n) = meta.get("namespace") {
                obj.insert("namespace".into(), n.clone());
            }
            let args: GeneratorArgs = serde_json::from_value(Value::Object(obj))
                .map_err(|e| field_err(&t.file, field, format!("{entry}: {e}")))?;
            let plugin_name = meta.get("name").and_then(Value::as_str).unwrap_or("");
            let origin = json!({
                "configuredIn": crate::accumulate::join_rel(&t.rel, &entry),
                "configuredBy": {"apiVersion": "builtin", "kind": kind, "name": plugin_name},
            });
            generate(t, acc, &args, None, gen_kind, field, Some(origin))?;
        }
    }
    Ok(())
}

fn merge_options(
    local: Option<&GeneratorOptions>,
    global: Option<&GeneratorOptions>,
) -> GeneratorOptions {
    let mut out = local.cloned().unwrap_or_default();
    if let Some(g) = global {
        if let Some(gl) = &g.labels {
            let l = out.labels.get_or_insert_with(BTreeMap::new);
            l.extend(gl.clone());
        }
        if let Some(ga) = &g.annotations {
            let a = out.annotations.get_or_insert_with(BTreeMap::new);
            a.extend(ga.clone());
        }
        if g.disable_name_suffix_hash == Some(true) {
            out.disable_name_suffix_hash = Some(true);
        }
        if g.immutable == Some(true) {
            out.immutable = Some(true);
        }
    }
    out
}

fn generate(
    t: &Target<'_>,
    acc: &mut Acc,
    args: &GeneratorArgs,
    global: Option<&GeneratorOptions>,
    kind: &str,
    field: &str,
    plugin_origin: Option<Value>,
) -> Result<(), Error> {
    let name = args.name.clone().filter(|n| !n.is_empty()).ok_or_else(|| {
        field_err(
            &t.file,
            field,
            format!("a {kind} generator must have a name"),
        )
    })?;
    let opts = merge_options(args.options.as_ref(), global);
    let pairs = load_pairs(t, args, field)?;
    let mut data = Map::new();
    let mut binary = Map::new();
    for (k, v) in pairs {
        if !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            || k.is_empty()
        {
            return Err(field_err(
                &t.file,
                field,
                format!(
                    "{name}: invalid key {k:?}: a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
                ),
            ));
        }
        if data.contains_key(&k) || binary.contains_key(&k) {
            return Err(field_err(
                &t.file,
                field,
                format!("{kind} {name} illegally repeats the key `{k}`"),
            ));
        }
        match String::from_utf8(v) {
            Ok(s) if kind == "Secret" => {
                data.insert(k, Value::String(encode_base64_lines(s.as_bytes())));
            }
            Ok(s) => {
                data.insert(k, Value::String(s));
            }
            Err(e) => {
                let bytes = e.into_bytes();
                if kind == "Secret" {
                    data.insert(k, Value::String(encode_base64_lines(&bytes)));
                } else {
                    binary.insert(k, Value::String(encode_base64_lines(&bytes)));
                }
            }
        }
    }
    let mut meta = Map::new();
    meta.insert("name".into(), Value::String(name.clone()));
    if let Some(ns) = args.namespace.as_ref().filter(|n| !n.is_empty()) {
        meta.insert("namespace".into(), Value::String(ns.clone()));
    }
    if let Some(labels) = opts.labels.as_ref().filter(|l| !l.is_empty()) {
        meta.insert("labels".into(), json!(labels));
    }
    if let Some(ann) = opts.annotations.as_ref().filter(|l| !l.is_empty()) {
        meta.insert("annotations".into(), json!(ann));
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!("v1"));
    obj.insert("kind".into(), json!(kind));
    obj.insert("metadata".into(), Value::Object(meta));
    if kind == "Secret" {
        let ty = args
            .type_
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "Opaque".into());
        obj.insert("type".into(), Value::String(ty));
    }
    if !data.is_empty() {
        obj.insert("data".into(), Value::Object(data));
    }
    if !binary.is_empty() {
        obj.insert("binaryData".into(), Value::Object(binary));
    }
    if opts.immutable == Some(true) {
        obj.insert("immutable".into(), Value::Bool(true));
    }
    let mut r = Resource::new(Value::Object(obj));
    r.generator = Some(GeneratorInfo {
        needs_hash: opts.disable_name_suffix_hash != Some(true),
    });
    if t.origins {
        let configured_in = if t.rel.is_empty() {
            file_name(&t.file)
        } else {
            format!("{}/{}", t.rel, file_name(&t.file))
        };
        r.origin = Some(plugin_origin.unwrap_or_else(|| {
            json!({
                "configuredIn": configured_in,
                "configuredBy": {"apiVersion": "builtin", "kind": format!("{kind}Generator")},
            })
        }));
    }
    let behavior = args.behavior.as_deref().unwrap_or("create");
    match behavior {
        "" | "create" => append(acc, r, &t.file, field),
        "merge" | "replace" => merge_into(acc, r, behavior, &t.file, field),
        other => Err(field_err(
            &t.file,
            field,
            format!("{name}: unknown behavior {other:?} (expected create, merge or replace)"),
        )),
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn merge_into(
    acc: &mut Acc,
    new: Resource,
    behavior: &str,
    file: &Path,
    field: &str,
) -> Result<(), Error> {
    let gvk = new.gvk();
    let name = new.name().to_string();
    let ns = new.namespace().to_string();
    let found = acc.resources.iter_mut().find(|r| {
        r.gvk() == gvk
            && r.all_ids()
                .iter()
                .any(|(n, s)| n == &name && (ns.is_empty() || s == &ns))
    });
    let Some(old) = found else {
        return Err(field_err(
            file,
            field,
            format!(
                "merging from generator: id {} does not exist; cannot merge or replace",
                crate::resource::id_display(&gvk, &name, &ns)
            ),
        ));
    };
    // Like kustomize: the generated object replaces the old one, keeping the old name,
    // namespace and history, with labels/annotations (and, for merge, data) merged in.
    let mut obj = new.obj;
    for key in ["labels", "annotations"] {
        let mut merged = old
            .obj
            .pointer(&format!("/metadata/{key}"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(Value::Object(entries)) = obj.pointer(&format!("/metadata/{key}")) {
            for (k, v) in entries {
                merged.insert(k.clone(), v.clone());
            }
        }
        if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
            if merged.is_empty() {
                meta.remove(key);
            } else {
                meta.insert(key.to_string(), Value::Object(merged));
            }
        }
    }
    if behavior == "merge" {
        for key in ["data", "binaryData"] {
            let mut merged = old
                .obj
                .get(key)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if let Some(Value::Object(entries)) = obj.get(key) {
                for (k, v) in entries {
                    merged.insert(k.clone(), v.clone());
                }
            }
            if let Some(o) = obj.as_object_mut()
                && !merged.is_empty()
            {
                o.insert(key.to_string(), Value::Object(merged));
            }
        }
    }
    if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
        meta.insert("name".into(), Value::String(old.name().to_string()));
        if old.namespace().is_empty() {
            meta.remove("namespace");
        } else {
            meta.insert(
                "namespace".into(),
                Value::String(old.namespace().to_string()),
            );
        }
    }
    old.obj = obj;
    if behavior == "replace"
        && let Some(origin) = new.origin
    {
        old.origin = Some(origin);
    }
    Ok(())
}

fn load_pairs(
    t: &Target<'_>,
    args: &GeneratorArgs,
    field: &str,
) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut pairs = Vec::new();
    let mut envs = args.envs.clone();
    if let Some(e) = &args.env {
        envs.push(e.clone());
    }
    for env in &envs {
        let path = t
            .loader
            .resolve_file(&t.dir, env)
            .map_err(|e| e.context(format!("loading KV pairs: env source file {env:?}")))?;
        let text = t.loader.read_string(&path)?;
        for (i, line) in text.lines().enumerate() {
            let line = if i == 0 {
                line.trim_start_matches('\u{FEFF}')
            } else {
                line
            };
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line.split_once('=').unwrap_or((line, ""));
            if k.is_empty() || k.contains(char::is_whitespace) {
                return Err(field_err(
                    &t.file,
                    field,
                    format!(
                        "{env}: line {}: invalid environment variable name {k:?}",
                        i + 1
                    ),
                ));
            }
            pairs.push((k.to_string(), v.as_bytes().to_vec()));
        }
    }
    for lit in &args.literals {
        let Some((k, v)) = lit.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(field_err(
                &t.file,
                field,
                format!("invalid literal source {lit}, expected key=value"),
            ));
        };
        pairs.push((k.to_string(), remove_quotes(v).as_bytes().to_vec()));
    }
    for src in &args.files {
        let (key, rel) = match src.matches('=').count() {
            0 => (
                Path::new(src)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                src.as_str(),
            ),
            1 => {
                let (k, p) = src.split_once('=').unwrap_or(("", ""));
                if k.is_empty() || p.is_empty() {
                    return Err(field_err(
                        &t.file,
                        field,
                        format!("invalid file source {src:?}"),
                    ));
                }
                (k.to_string(), p)
            }
            _ => {
                return Err(field_err(
                    &t.file,
                    field,
                    format!("source {src:?} key name or file path contains '='"),
                ));
            }
        };
        let path = t
            .loader
            .resolve_file(&t.dir, rel)
            .map_err(|e| e.context(format!("loading KV pairs: file source {src:?}")))?;
        pairs.push((key, t.loader.read_bytes(&path)?));
    }
    Ok(pairs)
}

fn remove_quotes(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && b[0] == b[b.len() - 1] && (b[0] == b'"' || b[0] == b'\'') {
        return &s[1..s.len() - 1];
    }
    s
}

/// Base64 as kustomize writes Secret data: lines of 70 characters, each followed by a newline
/// when the encoding needs more than one line.
pub(crate) fn encode_base64_lines(data: &[u8]) -> String {
    const LINE: usize = 70;
    let enc = base64::engine::general_purpose::STANDARD.encode(data);
    let lines = enc.len() / LINE + 1;
    if lines <= 1 {
        return enc;
    }
    let mut out = String::with_capacity(enc.len() + lines);
    let bytes = enc.as_bytes();
    for chunk in bytes.chunks(LINE) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_splits_long_values_into_lines() {
        assert_eq!(encode_base64_lines(b"admin"), "YWRtaW4=");
        let long = encode_base64_lines(&[b'x'; 60]);
        let lines: Vec<&str> = long.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), 70);
        assert!(long.ends_with('\n'));
    }

    #[test]
    fn literal_quotes_are_removed_only_when_matching() {
        assert_eq!(remove_quotes("\"a b\""), "a b");
        assert_eq!(remove_quotes("'x'"), "x");
        assert_eq!(remove_quotes("'x\""), "'x\"");
        assert_eq!(remove_quotes("\""), "\"");
    }
}
