//! Robustness: mutated copies of the conformance inputs (random byte edits and inserted YAML
//! and kustomize tokens) must build or fail with an error, never panic or hang.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plumb_kustomize::{Options, build, to_yaml};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const TOKENS: &[&str] = &[
    "$patch: delete\n",
    "$patch: replace\n",
    "- ../\n",
    "- /etc/passwd\n",
    "&a ",
    "*a",
    "[",
    "]",
    "{",
    "}",
    ": ",
    "\n- ",
    "  ",
    "null",
    "~",
    "'",
    "\"",
    "\t",
    "- .\n",
    "<<: *a\n",
    "op: move\n",
    "path: /spec/0\n",
    "behavior: merge\n",
    "name: (\n",
    "kind: List\nitems: [1, {a: b}]\n",
    "fieldPath: a.[b=c].*.0\n",
    "0x1F",
    "yes",
    "-",
    "?",
    "|\n",
    ">-\n",
];

fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(4) {
            0 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                let len = rng.below(16).min(bytes.len() - at);
                bytes.drain(at..at + len);
            }
            1 => {
                let at = rng.below(bytes.len() + 1);
                let tok = TOKENS[rng.below(TOKENS.len())];
                bytes.splice(at..at, tok.bytes());
            }
            2 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                let pool = b" -:[]{}\n#&*!|>'\"%@`0a";
                bytes[at] = pool[rng.below(pool.len())];
            }
            _ => {
                let lines: Vec<&str> = text.lines().collect();
                if !lines.is_empty() {
                    let l = lines[rng.below(lines.len())];
                    let at = rng.below(bytes.len() + 1);
                    bytes.splice(at..at, format!("{l}\n").into_bytes());
                }
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn copy_tree(from: &Path, to: &Path, files: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(from) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            fs::create_dir_all(&dest).expect("mkdir");
            copy_tree(&p, &dest, files);
        } else if fs::copy(&p, &dest).is_ok() {
            files.push(dest);
        }
    }
}

#[test]
fn mutated_inputs_never_panic() {
    let cases = Path::new("/work/shared/conformance/kustomize/cases");
    let alt =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/kustomize/cases");
    let cases = if alt.is_dir() {
        alt
    } else {
        cases.to_path_buf()
    };
    let Ok(rd) = fs::read_dir(&cases) else {
        eprintln!("conformance cases not found; skipping");
        return;
    };
    let mut names: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    names.sort();
    // PLUMB_FUZZ_SEED / PLUMB_FUZZ_ROUNDS widen the search locally; the defaults keep CI fast.
    let env_num = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(default)
    };
    let mut rng = Rng(env_num("PLUMB_FUZZ_SEED", 0x9E37_79B9_7F4A_7C15).max(1));
    let rounds = env_num("PLUMB_FUZZ_ROUNDS", 4);
    let options = Options {
        timeout: Duration::from_secs(5),
        ..Options::default()
    };
    let (mut ok, mut err) = (0, 0);
    for round in 0..rounds {
        for case in &names {
            let tmp = tempfile::tempdir().expect("tempdir");
            let mut files = Vec::new();
            copy_tree(&case.join("input"), tmp.path(), &mut files);
            if files.is_empty() {
                continue;
            }
            for _ in 0..=rng.below(2) {
                let f = &files[rng.below(files.len())];
                let text = fs::read_to_string(f).unwrap_or_default();
                fs::write(f, mutate(&text, &mut rng)).expect("write");
            }
            let entry = fs::read_to_string(case.join("entry")).unwrap_or_default();
            let dir = tmp.path().join(entry.trim());
            let started = Instant::now();
            match build(tmp.path(), &dir, &options) {
                Ok(objs) => {
                    let _ = to_yaml(&objs);
                    ok += 1;
                }
                Err(e) => {
                    assert!(!e.chain().is_empty());
                    err += 1;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "round {round}: {} took {:?}",
                case.display(),
                started.elapsed()
            );
        }
    }
    eprintln!("fuzz: {ok} built, {err} failed cleanly");
    assert!(ok + err > 0);
}
