//! Flux's source exclusions: which files of a Git checkout make up a `GitRepository`'s
//! artifact. Patterns use the `.gitignore` format as Flux's source-controller reads it (go-git's
//! matcher): lowest priority first — Flux's default exclusions (VCS files, images and archives,
//! CI configuration, a few tool configs), then every `.sourceignore` file of the tree (scoped
//! to its directory, parents before children), then `spec.ignore`; the last pattern that
//! matches a path decides, so `!pattern` re-includes, even below an excluded directory.
//!
//! A pattern without a slash (other than a trailing one) matches any path component; with one
//! it is anchored at the directory of the file that holds it, and `**` spans any number of
//! components. A trailing `/` matches directories only. A pattern that matches a directory
//! matches everything in it.
//!
//! **Guarantees**: matching is linear in pattern × path length (no backtracking blow-up on
//! adversarial patterns); [`materialize`] copies only regular files and directories (as Flux's
//! archive does, symbolic links are left out), within the size and count limits.

use crate::{Error, Limits};
use std::path::Path;

/// The `.sourceignore` file name.
pub const IGNORE_FILE: &str = ".sourceignore";

const EXCLUDE_VCS: &str = ".git/,.gitignore,.gitmodules,.gitattributes";
const EXCLUDE_EXT: &str = "*.jpg,*.jpeg,*.gif,*.png,*.wmv,*.flv,*.tar.gz,*.zip";
const EXCLUDE_CI: &str = ".github/,.circleci/,.travis.yml,.gitlab-ci.yml,appveyor.yml,.drone.yml,cloudbuild.yaml,codeship-services.yml,codeship-steps.yml";
const EXCLUDE_EXTRA: &str = "**/.goreleaser.yml,**/.sops.yaml,**/.flux.yaml";

/// Longest pattern line considered; longer lines are ignored.
const MAX_PATTERN_LEN: usize = 4096;

/// One parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    /// The directory (components) of the file holding it; it applies below it only.
    domain: Vec<String>,
    /// `!`: re-includes.
    negated: bool,
    /// A trailing `/`: directories only.
    dir_only: bool,
    /// Contains a slash: anchored at the domain, matched component by component.
    anchored: bool,
    /// The glob of each component.
    components: Vec<Vec<char>>,
}

impl Pattern {
    fn parse(line: &str, domain: &[String]) -> Option<Pattern> {
        let mut text = line.trim_end_matches([' ', '\t', '\r']);
        if text.is_empty() || text.starts_with('#') || text.len() > MAX_PATTERN_LEN {
            return None;
        }
        let negated = text.starts_with('!');
        if negated {
            text = &text[1..];
        }
        let dir_only = text.ends_with('/');
        let text = text.trim_end_matches('/');
        let anchored = text.contains('/');
        let text = text.trim_start_matches('/');
        if text.is_empty() {
            return None;
        }
        Some(Pattern {
            domain: domain.to_vec(),
            negated,
            dir_only,
            anchored,
            components: text
                .split('/')
                .filter(|c| !c.is_empty())
                .map(|c| c.chars().collect())
                .collect(),
        })
    }

    /// Whether the pattern matches `path` (components from the root) or a directory holding it.
    fn matches(&self, path: &[&str], is_dir: bool) -> bool {
        if path.len() <= self.domain.len() || !self.domain.iter().zip(path).all(|(d, p)| d == p) {
            return false;
        }
        let path = &path[self.domain.len()..];
        if !self.anchored {
            let Some(glob) = self.components.first() else {
                return false;
            };
            return path.iter().enumerate().any(|(index, name)| {
                let is_last = index + 1 == path.len();
                glob_match(glob, name) && !(self.dir_only && is_last && !is_dir)
            });
        }
        // Which pattern positions can be reached after consuming each number of components.
        let count = self.components.len();
        let mut reach = vec![false; count + 1];
        reach[0] = true;
        close_over_globstars(&self.components, &mut reach);
        for (index, name) in path.iter().enumerate() {
            if reach[count] && index > 0 {
                // The whole pattern matched a directory holding the path.
                return true;
            }
            let mut next = vec![false; count + 1];
            for position in 0..count {
                if !reach[position] {
                    continue;
                }
                let glob = &self.components[position];
                if is_globstar(glob) {
                    next[position] = true;
                    next[position + 1] = true;
                } else if glob_match(glob, name) {
                    next[position + 1] = true;
                }
            }
            close_over_globstars(&self.components, &mut next);
            reach = next;
            if !reach.iter().any(|r| *r) {
                return false;
            }
        }
        reach[count] && (!self.dir_only || is_dir)
    }
}

fn is_globstar(glob: &[char]) -> bool {
    glob == ['*', '*']
}

/// A `**` may match no component: whatever reaches it reaches past it too.
fn close_over_globstars(components: &[Vec<char>], reach: &mut [bool]) {
    for position in 0..components.len() {
        if reach[position] && is_globstar(&components[position]) {
            reach[position + 1] = true;
        }
    }
}

/// Go's `filepath.Match` on one component: `*`, `?`, `[...]` (`^` negates, `a-z` ranges),
/// `\` escapes; linear in pattern × name (the classic single-star backtracking).
fn glob_match(pattern: &[char], name: &str) -> bool {
    let text: Vec<char> = name.chars().collect();
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                '*' => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                '?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, width)) = class_match(&pattern[p..], text[t])
                        && matched
                    {
                        p += width;
                        t += 1;
                        continue;
                    }
                }
                '\\' if p + 1 < pattern.len() && pattern[p + 1] == text[t] => {
                    p += 2;
                    t += 1;
                    continue;
                }
                '\\' if p + 1 < pattern.len() => {}
                c if c == text[t] => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((star_p, star_t)) => {
                p = star_p + 1;
                t = star_t + 1;
                star = Some((star_p, star_t + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// Whether the class at the start of `pattern` matches `c`, and the class's width; `None`
/// for an unclosed class (which then matches nothing, as Go reports a bad pattern).
fn class_match(pattern: &[char], c: char) -> Option<(bool, usize)> {
    let mut index = 1;
    let negated = matches!(pattern.get(index), Some('^') | Some('!'));
    if negated {
        index += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let current = *pattern.get(index)?;
        if current == ']' && !first {
            return Some((matched != negated, index + 1));
        }
        first = false;
        let (low, width) = if current == '\\' {
            (*pattern.get(index + 1)?, 2)
        } else {
            (current, 1)
        };
        index += width;
        if pattern.get(index) == Some(&'-') && pattern.get(index + 1).is_some_and(|h| *h != ']') {
            let high = *pattern.get(index + 1)?;
            index += 2;
            matched |= low <= c && c <= high;
        } else {
            matched |= low == c;
        }
    }
}

/// The exclusions of one artifact.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

impl Matcher {
    /// Flux's default exclusions followed by `patterns` (`.gitignore`-format lines) scoped to
    /// the root.
    pub fn with_defaults(extra: Option<&str>) -> Matcher {
        let mut matcher = Matcher::default();
        for line in [EXCLUDE_VCS, EXCLUDE_EXT, EXCLUDE_CI, EXCLUDE_EXTRA]
            .iter()
            .flat_map(|list| list.split(','))
        {
            matcher.add(line, &[]);
        }
        if let Some(extra) = extra {
            matcher.add_lines(extra, &[]);
        }
        matcher
    }

    fn add(&mut self, line: &str, domain: &[String]) {
        if let Some(pattern) = Pattern::parse(line, domain) {
            self.patterns.push(pattern);
        }
    }

    fn add_lines(&mut self, text: &str, domain: &[String]) {
        for line in text.lines() {
            self.add(line, domain);
        }
    }

    /// Whether the file or directory at `path` (`/`-separated, relative to the root) is left
    /// out of the artifact.
    pub fn is_excluded(&self, path: &str, is_dir: bool) -> bool {
        let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        self.patterns
            .iter()
            .rev()
            .find(|p| p.matches(&components, is_dir))
            .is_some_and(|p| !p.negated)
    }
}

/// The matcher of a checkout at `root`: Flux's defaults, the tree's `.sourceignore` files, then
/// `spec_ignore`, in that priority order (lowest first).
///
/// **Errors**: an unreadable directory or `.sourceignore`, or one larger than the file limit.
pub fn load(root: &Path, spec_ignore: Option<&str>, limits: &Limits) -> Result<Matcher, Error> {
    let mut matcher = Matcher::with_defaults(None);
    let mut visited = 0usize;
    load_dir(
        root,
        root,
        &mut Vec::new(),
        &mut matcher,
        limits,
        &mut visited,
    )?;
    if let Some(text) = spec_ignore {
        matcher.add_lines(text, &[]);
    }
    Ok(matcher)
}

fn load_dir(
    root: &Path,
    dir: &Path,
    domain: &mut Vec<String>,
    matcher: &mut Matcher,
    limits: &Limits,
    visited: &mut usize,
) -> Result<(), Error> {
    if domain.len() > limits.max_depth {
        return Err(Error::LimitExceeded {
            what: "directory depth",
            limit: limits.max_depth as u64,
        });
    }
    let shown = |path: &Path| crate::relative(root, path);
    let file = dir.join(IGNORE_FILE);
    if let Ok(metadata) = std::fs::symlink_metadata(&file)
        && metadata.is_file()
    {
        if metadata.len() > limits.max_file_bytes {
            return Err(Error::LimitExceeded {
                what: "size of a .sourceignore file",
                limit: limits.max_file_bytes,
            });
        }
        let text = std::fs::read_to_string(&file).map_err(|source| Error::Read {
            path: shown(&file),
            source,
        })?;
        matcher.add_lines(&text, domain);
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|source| Error::Read {
            path: shown(dir),
            source,
        })?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        *visited += 1;
        if *visited > limits.max_files {
            return Err(Error::LimitExceeded {
                what: "number of files",
                limit: limits.max_files as u64,
            });
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == ".git" || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        domain.push(name);
        load_dir(root, &entry.path(), domain, matcher, limits, visited)?;
        domain.pop();
    }
    Ok(())
}

/// Writes the artifact of the checkout at `root` to `dest`: every regular file and directory
/// `matcher` does not exclude, hard-linked where the filesystem allows, copied otherwise; a
/// file already at `dest` is replaced.
///
/// **Errors**: unreadable entries, a failed write, or more files, bytes or depth than
/// `limits` allow.
pub fn materialize(
    root: &Path,
    dest: &Path,
    matcher: &Matcher,
    limits: &Limits,
) -> Result<(), Error> {
    let mut budget = (0usize, 0u64);
    copy_dir(root, root, dest, "", matcher, limits, &mut budget, 0)
}

#[allow(clippy::too_many_arguments)]
fn copy_dir(
    root: &Path,
    dir: &Path,
    dest: &Path,
    relative: &str,
    matcher: &Matcher,
    limits: &Limits,
    budget: &mut (usize, u64),
    depth: usize,
) -> Result<(), Error> {
    if depth > limits.max_depth {
        return Err(Error::LimitExceeded {
            what: "directory depth",
            limit: limits.max_depth as u64,
        });
    }
    let write_error = |path: &Path, source: std::io::Error| Error::Read {
        path: format!("{} (writing the artifact)", crate::relative(root, path)),
        source,
    };
    std::fs::create_dir_all(dest).map_err(|e| write_error(dir, e))?;
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Read {
        path: crate::relative(root, dir),
        source,
    })?;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if relative.is_empty() {
            name.clone()
        } else {
            format!("{relative}/{name}")
        };
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        budget.0 += 1;
        if budget.0 > limits.max_files {
            return Err(Error::LimitExceeded {
                what: "number of files",
                limit: limits.max_files as u64,
            });
        }
        if kind.is_dir() {
            // Always descended: a later `!pattern` may re-include files below an excluded
            // directory (go-git's matcher, which Flux uses, allows it).
            if name == ".git" {
                continue;
            }
            copy_dir(
                root,
                &entry.path(),
                &dest.join(&name),
                &path,
                matcher,
                limits,
                budget,
                depth + 1,
            )?;
            continue;
        }
        if !kind.is_file() || matcher.is_excluded(&path, false) {
            continue;
        }
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        budget.1 += size;
        if size > limits.max_file_bytes || budget.1 > limits.max_total_bytes {
            return Err(Error::LimitExceeded {
                what: "artifact size",
                limit: limits.max_total_bytes,
            });
        }
        let target = dest.join(&name);
        // Copying over an existing tree (an included artifact) replaces its files.
        let _ = std::fs::remove_file(&target);
        if std::fs::hard_link(entry.path(), &target).is_err() {
            std::fs::copy(entry.path(), &target).map_err(|e| write_error(&entry.path(), e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excluded(matcher: &Matcher, path: &str) -> bool {
        matcher.is_excluded(path, false)
    }

    #[test]
    fn flux_defaults_exclude_vcs_ci_media_and_tool_files() {
        let m = Matcher::with_defaults(None);
        for path in [
            ".git/config",
            ".gitignore",
            "sub/.gitattributes",
            "docs/logo.png",
            "release.tar.gz",
            ".github/workflows/ci.yaml",
            "a/.circleci/config.yml",
            ".gitlab-ci.yml",
            "deep/er/.sops.yaml",
            ".goreleaser.yml",
        ] {
            assert!(excluded(&m, path), "{path}");
        }
        for path in [
            "deploy/app.yaml",
            "kustomization.yaml",
            "README.md",
            "tar.gz/x.yaml",
        ] {
            assert!(!excluded(&m, path), "{path}");
        }
    }

    #[test]
    fn gitignore_rules_as_go_git_applies_them() {
        let m = Matcher::with_defaults(Some(
            "# a comment\n/*\n!/deploy\ndeploy/**/secret-*.yaml\n!deploy/keep/secret-ok.yaml\n*.md\nbuild/\n",
        ));
        assert!(excluded(&m, "other/x.yaml"), "/* excludes the top level");
        assert!(excluded(&m, "top.yaml"));
        assert!(!excluded(&m, "deploy/app.yaml"), "re-included by !/deploy");
        assert!(
            excluded(&m, "deploy/a/b/secret-db.yaml"),
            "** spans directories"
        );
        assert!(
            excluded(&m, "deploy/secret-db.yaml"),
            "** matches no directory too"
        );
        assert!(
            !excluded(&m, "deploy/keep/secret-ok.yaml"),
            "last match wins"
        );
        assert!(
            excluded(&m, "deploy/README.md"),
            "a slash-less pattern matches any level"
        );
        assert!(
            excluded(&m, "deploy/build/out.yaml"),
            "a directory pattern excludes its content"
        );
        assert!(
            !excluded(&m, "deploy/build"),
            "a directory-only pattern skips files"
        );
        assert!(m.is_excluded("deploy/build", true));
    }

    #[test]
    fn sourceignore_files_apply_below_their_directory() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        let write = |path: &str, text: &str| {
            let file = root.join(path);
            std::fs::create_dir_all(file.parent().expect("parent")).expect("dir");
            std::fs::write(file, text).expect("write");
        };
        write(".sourceignore", "*.txt\n");
        write("apps/.sourceignore", "test/\n!keep.txt\n");
        write("apps/a.yaml", "a");
        write("apps/keep.txt", "k");
        write("apps/drop.txt", "d");
        write("apps/test/t.yaml", "t");
        write("test/t.yaml", "outside the scope of apps/.sourceignore");
        write("logo.png", "png");
        let m = load(root, Some("apps/a.yaml"), &Limits::default()).expect("loads");
        assert!(excluded(&m, "apps/drop.txt"));
        assert!(!excluded(&m, "apps/keep.txt"), "a deeper file overrides");
        assert!(excluded(&m, "apps/test/t.yaml"));
        assert!(!excluded(&m, "test/t.yaml"));
        assert!(excluded(&m, "apps/a.yaml"), "spec.ignore comes last");
        let out = tempfile::tempdir().expect("tmp");
        let dest = out.path().join("artifact");
        materialize(root, &dest, &m, &Limits::default()).expect("materialized");
        assert!(dest.join("apps/keep.txt").is_file());
        assert!(dest.join("test/t.yaml").is_file());
        for gone in [
            "apps/drop.txt",
            "apps/a.yaml",
            "apps/test/t.yaml",
            "logo.png",
        ] {
            assert!(!dest.join(gone).exists(), "{gone}");
        }
    }

    #[test]
    fn adversarial_and_malformed_patterns_never_panic() {
        let star = Matcher::with_defaults(Some(&"*a".repeat(200)));
        let name = "a".repeat(3000);
        assert!(!star.is_excluded(&format!("x/{name}b"), false));
        assert!(star.is_excluded(&format!("x/{name}"), false));
        let malformed = Matcher::with_defaults(Some("[\n[]\n\\\n!\n/\n[a-\n**/**/**\n"));
        assert!(
            malformed.is_excluded("any/path.yaml", false),
            "**/**/** matches all"
        );
        let _ = malformed.is_excluded("", true);
        assert!(glob_match(&['[', '^', 'a', ']'], "b"));
        assert!(
            !glob_match(&['[', 'a'], "a"),
            "an unclosed class matches nothing"
        );
        assert!(glob_match(&['\\', '*'], "*"));
        assert!(!glob_match(&['\\', '*'], "x"));
    }
}
