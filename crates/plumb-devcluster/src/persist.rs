//! Persistence under `--data-dir`: a snapshot plus an append-only journal.
//!
//! Every write appends one JSON line to `journal.jsonl` with a single
//! `write` call, so a `kill -9` leaves at most one torn last line, which the
//! loader ignores. On start the snapshot and the journal are folded into a
//! new snapshot, written to a temporary file, synced and renamed into place
//! (rename is atomic), and the journal starts empty.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::store::{Event, EventType, meta_str};

/// Errors while loading or opening the data directory.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot create data directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse snapshot {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The append-only journal of one running server.
pub(crate) struct Journal {
    file: Mutex<File>,
}

/// Objects keyed by (resource, namespace, name).
type State = BTreeMap<(String, String, String), Value>;

/// What was loaded from disk.
pub(crate) struct Loaded {
    pub objects: Vec<(String, Value)>,
    pub rv: u64,
    pub journal: Journal,
}

fn apply_line(state: &mut State, rv: &mut u64, line: &Value) {
    let (Some(resource), Some(object)) = (
        line.get("resource").and_then(Value::as_str),
        line.get("object"),
    ) else {
        return;
    };
    if let Some(n) = line.get("rv").and_then(Value::as_u64) {
        *rv = (*rv).max(n);
    }
    let key = (
        resource.to_string(),
        meta_str(object, "namespace").to_string(),
        meta_str(object, "name").to_string(),
    );
    if line.get("op").and_then(Value::as_str) == Some("del") {
        state.remove(&key);
    } else {
        state.insert(key, object.clone());
    }
}

/// Loads the data directory, compacts it, and opens a fresh journal.
pub(crate) fn load(dir: &Path) -> Result<Loaded, PersistError> {
    std::fs::create_dir_all(dir).map_err(|source| PersistError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let snapshot_path = dir.join("snapshot.json");
    let journal_path = dir.join("journal.jsonl");
    let mut state = State::new();
    let mut rv = 0u64;
    if snapshot_path.exists() {
        let text =
            std::fs::read_to_string(&snapshot_path).map_err(|source| PersistError::Read {
                path: snapshot_path.clone(),
                source,
            })?;
        let snap: Value = serde_json::from_str(&text).map_err(|source| PersistError::Parse {
            path: snapshot_path.clone(),
            source,
        })?;
        rv = snap.get("rv").and_then(Value::as_u64).unwrap_or(0);
        for line in snap
            .get("objects")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            apply_line(&mut state, &mut rv, line);
        }
    }
    if journal_path.exists() {
        let file = File::open(&journal_path).map_err(|source| PersistError::Read {
            path: journal_path.clone(),
            source,
        })?;
        for line in BufReader::new(file).lines() {
            let Ok(line) = line else { break };
            // A torn last line (killed mid-write) does not parse: stop there.
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                break;
            };
            apply_line(&mut state, &mut rv, &v);
        }
    }
    let objects: Vec<Value> = state
        .iter()
        .map(|((resource, _, _), obj)| json!({"resource": resource, "object": obj}))
        .collect();
    let snap = json!({"rv": rv, "objects": objects});
    let tmp = dir.join("snapshot.json.tmp");
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PersistError::Write { path, source }
    };
    {
        let mut f = File::create(&tmp).map_err(write_err(&tmp))?;
        f.write_all(snap.to_string().as_bytes())
            .map_err(write_err(&tmp))?;
        f.sync_all().map_err(write_err(&tmp))?;
    }
    std::fs::rename(&tmp, &snapshot_path).map_err(write_err(&snapshot_path))?;
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&journal_path)
        .map_err(write_err(&journal_path))?;
    Ok(Loaded {
        objects: state
            .into_iter()
            .map(|((resource, _, _), obj)| (resource, obj))
            .collect(),
        rv,
        journal: Journal {
            file: Mutex::new(file),
        },
    })
}

impl Journal {
    /// Appends one event; failures are logged, not fatal, since the server
    /// keeps serving from memory.
    pub fn record(&self, event: &Event) {
        let op = if event.kind == EventType::Deleted {
            "del"
        } else {
            "put"
        };
        let mut line =
            json!({"rv": event.rv, "op": op, "resource": event.resource, "object": &*event.object})
                .to_string();
        line.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(err) = f.write_all(line.as_bytes()) {
            tracing::error!(error = %err, "cannot append to the devcluster journal");
        }
    }
}
