//! Loading charts from directories and `.tgz` archives, confined to a root directory.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::value::Value;
use crate::yaml;

/// Largest file or archive member the loader accepts.
const MAX_FILE: u64 = 64 << 20;

/// One dependency entry from Chart.yaml (or requirements.yaml).
#[derive(Debug, Clone, Default)]
pub struct Dependency {
    pub name: String,
    pub version: String,
    pub repository: String,
    pub condition: String,
    pub tags: Vec<String>,
    pub alias: String,
    /// import-values entries: `(child, parent)`.
    pub import_values: Vec<(String, String)>,
}

/// A loaded chart and its subcharts.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Chart.yaml as parsed.
    pub metadata: serde_json::Value,
    pub name: String,
    pub version: String,
    pub api_version: String,
    pub chart_type: String,
    pub kube_version: String,
    pub dependencies: Vec<Dependency>,
    /// values.yaml.
    pub values: Value,
    /// values.schema.json.
    pub schema: Option<serde_json::Value>,
    /// `templates/...` files: (relative name, content).
    pub templates: Vec<(String, String)>,
    /// Every other file (crds/, README, config files) for `.Files`.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Subcharts found in `charts/`.
    pub charts: Vec<Chart>,
}

impl Chart {
    /// Is this a library chart?
    pub fn is_library(&self) -> bool {
        self.chart_type == "library"
    }

    /// `crds/` files of this chart only: (path within chart, content).
    pub fn crds(&self) -> Vec<(String, String)> {
        self.files
            .iter()
            .filter(|(k, _)| k.starts_with("crds/"))
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).to_string()))
            .collect()
    }

    /// What templates see as `.Chart` (Go struct field names).
    pub fn metadata_value(&self) -> Value {
        let m = &self.metadata;
        let get = |k: &str| {
            m.get(k)
                .map(Value::from_json)
                .unwrap_or_else(|| Value::str(""))
        };
        let mut out = BTreeMap::new();
        for (go, key) in [
            ("Name", "name"),
            ("Home", "home"),
            ("Version", "version"),
            ("Description", "description"),
            ("Icon", "icon"),
            ("APIVersion", "apiVersion"),
            ("Condition", "condition"),
            ("Tags", "tags"),
            ("AppVersion", "appVersion"),
            ("KubeVersion", "kubeVersion"),
            ("Type", "type"),
        ] {
            out.insert(go.to_string(), get(key));
        }
        out.insert("Name".into(), Value::str(self.name.as_str()));
        for (go, key) in [
            ("Sources", "sources"),
            ("Keywords", "keywords"),
            ("Maintainers", "maintainers"),
            ("Dependencies", "dependencies"),
        ] {
            out.insert(
                go.to_string(),
                m.get(key).map(Value::from_json).unwrap_or_default(),
            );
        }
        out.insert(
            "Annotations".into(),
            m.get("annotations")
                .map(Value::from_json)
                .unwrap_or_default(),
        );
        out.insert(
            "Deprecated".into(),
            Value::Bool(
                m.get("deprecated")
                    .and_then(|d| d.as_bool())
                    .unwrap_or(false),
            ),
        );
        Value::map(out)
    }
}

/// Canonicalize `p` and check it lies under `root` (already canonical).
pub fn confine(root: &Path, p: &Path) -> Result<PathBuf, Error> {
    let canon = p.canonicalize().map_err(|e| Error::Io {
        path: p.display().to_string(),
        source: e,
    })?;
    if !canon.starts_with(root) {
        return Err(Error::OutsideRoot {
            path: p.display().to_string(),
            root: root.display().to_string(),
        });
    }
    Ok(canon)
}

/// Read a file confined to `root`.
pub fn read_confined(root: &Path, p: &Path) -> Result<Vec<u8>, Error> {
    let canon = confine(root, p)?;
    let meta = std::fs::metadata(&canon).map_err(|e| Error::Io {
        path: p.display().to_string(),
        source: e,
    })?;
    if meta.len() > MAX_FILE {
        return Err(Error::TooLarge {
            path: p.display().to_string(),
            limit: MAX_FILE,
        });
    }
    std::fs::read(&canon).map_err(|e| Error::Io {
        path: p.display().to_string(),
        source: e,
    })
}

/// Load a chart directory or `.tgz`, confined to `root`.
pub fn load(root: &Path, chart: &Path) -> Result<Chart, Error> {
    let canon = confine(root, chart)?;
    let files = if canon.is_dir() {
        let mut files = BTreeMap::new();
        walk(root, &canon, &canon, &mut files)?;
        files
    } else {
        let data = read_confined(root, &canon)?;
        untar(&data, &chart.display().to_string())?
    };
    from_files(files, &chart.display().to_string())
}

fn walk(
    root: &Path,
    base: &Path,
    dir: &Path,
    out: &mut BTreeMap<String, Vec<u8>>,
) -> Result<(), Error> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::Io {
        path: dir.display().to_string(),
        source: e,
    })?;
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let canon = confine(root, &p)?;
        let rel = p
            .strip_prefix(base)
            .map(|r| r.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        if canon.is_dir() {
            walk(root, base, &p, out)?;
        } else {
            out.insert(rel, read_confined(root, &p)?);
        }
    }
    Ok(())
}

/// Unpack a gzipped chart archive; entries are stripped of their top directory.
pub fn untar(data: &[u8], what: &str) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    let gz = flate2::read::GzDecoder::new(data);
    let mut ar = tar::Archive::new(gz);
    let mut out = BTreeMap::new();
    let bad = |e: std::io::Error| Error::Chart {
        chart: what.to_string(),
        msg: format!("cannot read archive: {e}"),
    };
    let mut total = 0u64;
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(bad)?
            .to_string_lossy()
            .replace('\\', "/");
        let parts: Vec<&str> = path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if parts.contains(&"..") {
            return Err(Error::Chart {
                chart: what.to_string(),
                msg: format!("archive entry {path:?} escapes the chart"),
            });
        }
        if parts.len() < 2 {
            continue;
        }
        let size = entry.header().size().unwrap_or(0);
        total += size;
        if size > MAX_FILE || total > 4 * MAX_FILE {
            return Err(Error::TooLarge {
                path: what.to_string(),
                limit: MAX_FILE,
            });
        }
        let mut buf = Vec::new();
        entry.read_to_end(&mut buf).map_err(bad)?;
        out.insert(parts[1..].join("/"), buf);
    }
    Ok(out)
}

/// Patterns from `.helmignore`.
struct Ignore {
    rules: Vec<(bool, bool, String)>, // (negate, dir_only, pattern)
}

impl Ignore {
    fn parse(src: &str) -> Ignore {
        let mut rules = Vec::new();
        for line in src.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (neg, l) = match l.strip_prefix('!') {
                Some(r) => (true, r),
                None => (false, l),
            };
            let (dir, l) = match l.strip_suffix('/') {
                Some(r) => (true, r),
                None => (false, l),
            };
            rules.push((neg, dir, l.trim_start_matches('/').to_string()));
        }
        Ignore { rules }
    }

    fn ignored(&self, path: &str) -> bool {
        // A file is ignored when it or any parent directory matches.
        let parts: Vec<&str> = path.split('/').collect();
        let mut ignored = false;
        for (neg, dir_only, pat) in &self.rules {
            for i in 0..parts.len() {
                let is_dir = i + 1 < parts.len();
                if *dir_only && !is_dir {
                    continue;
                }
                let sub = parts[..=i].join("/");
                let hit = if pat.contains('/') {
                    glob_match(pat, &sub)
                } else {
                    glob_match(pat, parts[i])
                };
                if hit {
                    ignored = !neg;
                }
            }
        }
        ignored
    }
}

/// Shell-style glob (`*`, `?`, `[...]`, `**`), `*` not crossing `/`.
pub fn glob_match(pat: &str, s: &str) -> bool {
    fn rec(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('*') => {
                if p.get(1) == Some(&'*') {
                    let rest = &p[2..];
                    (0..=s.len()).any(|i| rec(rest, &s[i..]))
                } else {
                    let rest = &p[1..];
                    for i in 0..=s.len() {
                        if rec(rest, &s[i..]) {
                            return true;
                        }
                        if i < s.len() && s[i] == '/' {
                            break;
                        }
                    }
                    false
                }
            }
            Some('?') => !s.is_empty() && s[0] != '/' && rec(&p[1..], &s[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|&c| c == ']') else {
                    return !s.is_empty() && s[0] == '[' && rec(&p[1..], &s[1..]);
                };
                if s.is_empty() {
                    return false;
                }
                let class = &p[1..end];
                let (neg, class) = match class.first() {
                    Some('!') | Some('^') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= s[0] && s[0] <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == s[0];
                        i += 1;
                    }
                }
                hit != neg && rec(&p[end + 1..], &s[1..])
            }
            Some('\\') if p.len() > 1 => !s.is_empty() && s[0] == p[1] && rec(&p[2..], &s[1..]),
            Some(c) => !s.is_empty() && s[0] == *c && rec(&p[1..], &s[1..]),
        }
    }
    let p: Vec<char> = pat.chars().collect();
    let s: Vec<char> = s.chars().collect();
    rec(&p, &s)
}

fn parse_dependencies(v: Option<&serde_json::Value>) -> Vec<Dependency> {
    let Some(serde_json::Value::Array(a)) = v else {
        return Vec::new();
    };
    a.iter()
        .map(|d| {
            let st = |k: &str| d.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            let tags = d
                .get("tags")
                .and_then(|t| t.as_array())
                .map(|t| {
                    t.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let import_values = d
                .get("import-values")
                .and_then(|t| t.as_array())
                .map(|t| {
                    t.iter()
                        .filter_map(|iv| match iv {
                            serde_json::Value::String(s) => {
                                Some((format!("exports.{s}"), ".".to_string()))
                            }
                            serde_json::Value::Object(o) => Some((
                                o.get("child")
                                    .and_then(|c| c.as_str())
                                    .unwrap_or("")
                                    .to_string(),
                                o.get("parent")
                                    .and_then(|c| c.as_str())
                                    .unwrap_or("")
                                    .to_string(),
                            )),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            Dependency {
                name: st("name"),
                version: d.get("version").map(json_scalar_string).unwrap_or_default(),
                repository: st("repository"),
                condition: st("condition"),
                tags,
                alias: st("alias"),
                import_values,
            }
        })
        .collect()
}

/// The source text of a top-level `key: value` line (comments stripped).
fn raw_top_level_scalar(src: &str, key: &str) -> Option<String> {
    src.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.trim_start().strip_prefix(':')?;
        let v = match rest.find(" #") {
            Some(i) => &rest[..i],
            None => rest,
        };
        let v = v.trim();
        (!v.is_empty()).then(|| v.to_string())
    })
}

fn json_scalar_string(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Build a chart from its files (paths relative to the chart root).
pub fn from_files(mut files: BTreeMap<String, Vec<u8>>, what: &str) -> Result<Chart, Error> {
    let err = |msg: String| Error::Chart {
        chart: what.to_string(),
        msg,
    };
    // Helm always ignores hidden files directly under templates/ (`templates/.?*`).
    files.retain(|k, _| {
        !k.strip_prefix("templates/")
            .is_some_and(|rest| rest.starts_with('.') && rest.len() > 1 && !rest.contains('/'))
    });
    if let Some(ig) = files.get(".helmignore") {
        let ig = Ignore::parse(&String::from_utf8_lossy(ig));
        files.retain(|k, _| k == "Chart.yaml" || !ig.ignored(k));
    }
    let chart_yaml = files
        .remove("Chart.yaml")
        .ok_or_else(|| err("Chart.yaml file is missing".into()))?;
    let chart_src = String::from_utf8_lossy(&chart_yaml).to_string();
    let metadata: serde_json::Value = if chart_src.trim().is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        yaml::from_str(&chart_src).map_err(|e| err(format!("cannot load Chart.yaml: {e}")))?
    };
    // Chart.yaml's string fields keep their text even when YAML reads a number
    // (sigs.k8s.io/yaml converts by target type): `appVersion: 1.10` stays "1.10".
    let mut metadata = metadata;
    if let serde_json::Value::Object(o) = &mut metadata {
        for key in [
            "version",
            "appVersion",
            "kubeVersion",
            "name",
            "description",
        ] {
            if o.get(key).is_some_and(|v| v.is_number() || v.is_boolean())
                && let Some(raw) = raw_top_level_scalar(&chart_src, key)
            {
                o.insert(key.to_string(), serde_json::Value::String(raw));
            }
        }
    }
    let st = |k: &str| metadata.get(k).map(json_scalar_string).unwrap_or_default();
    let mut dependencies = parse_dependencies(metadata.get("dependencies"));
    let mut values = Value::empty_map();
    let mut schema = None;
    let mut templates = Vec::new();
    let mut sub_files: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let mut archives = Vec::new();
    let mut rest = BTreeMap::new();
    for (name, data) in files {
        if name == "values.yaml" {
            let src = String::from_utf8_lossy(&data);
            values = match yaml::parse_values(&src)
                .map_err(|e| err(format!("cannot load values.yaml: {e}")))?
            {
                Value::Nil => Value::empty_map(),
                v @ Value::Map(_) => v,
                _ => return Err(err("cannot load values.yaml: not a map".into())),
            };
        } else if name == "values.schema.json" {
            schema = Some(
                serde_json::from_slice(&data)
                    .map_err(|e| err(format!("cannot load values.schema.json: {e}")))?,
            );
        } else if name == "requirements.yaml" {
            let r: serde_json::Value = yaml::from_str(&String::from_utf8_lossy(&data))
                .map_err(|e| err(format!("cannot load requirements.yaml: {e}")))?;
            dependencies = parse_dependencies(r.get("dependencies"));
        } else if name == "Chart.lock" || name == "requirements.lock" {
        } else if let Some(t) = name.strip_prefix("templates/") {
            let _ = t;
            templates.push((name.clone(), String::from_utf8_lossy(&data).to_string()));
        } else if let Some(sub) = name.strip_prefix("charts/") {
            match sub.split_once('/') {
                Some((dir, inner)) => {
                    sub_files
                        .entry(dir.to_string())
                        .or_default()
                        .insert(inner.to_string(), data);
                }
                None if sub.ends_with(".tgz") || sub.ends_with(".tar.gz") => {
                    archives.push((sub.to_string(), data))
                }
                None => {}
            }
        } else {
            rest.insert(name, data);
        }
    }
    let mut charts = Vec::new();
    for (dir, f) in sub_files {
        charts.push(from_files(f, &format!("{what}/charts/{dir}"))?);
    }
    for (name, data) in archives {
        let label = format!("{what}/charts/{name}");
        charts.push(from_files(untar(&data, &label)?, &label)?);
    }
    let chart = Chart {
        name: st("name"),
        version: st("version"),
        api_version: st("apiVersion"),
        chart_type: st("type"),
        kube_version: st("kubeVersion"),
        metadata,
        dependencies,
        values,
        schema,
        templates,
        files: rest,
        charts,
    };
    validate(&chart)?;
    Ok(chart)
}

/// Helm's `Metadata.Validate`.
fn validate(c: &Chart) -> Result<(), Error> {
    let v = |m: &str| Error::Validation(m.to_string());
    if c.api_version.is_empty() {
        return Err(v("chart.metadata.apiVersion is required"));
    }
    if c.name.is_empty() {
        return Err(v("chart.metadata.name is required"));
    }
    if c.version.is_empty() {
        return Err(v("chart.metadata.version is required"));
    }
    if crate::funcs_semver_parse(&c.version).is_err() {
        return Err(v(&format!(
            "chart.metadata.version {:?} is invalid",
            c.version
        )));
    }
    if !matches!(c.chart_type.as_str(), "" | "application" | "library") {
        return Err(v("chart.metadata.type must be application or library"));
    }
    Ok(())
}
