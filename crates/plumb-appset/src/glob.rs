//! The globbing dialects the Git generator uses: Go's `path.Match` for directories,
//! `git ls-files` pathspecs for files, and bmatcuk/doublestar for files when Argo CD's "new
//! git file globbing" is on.

/// Most alternatives one `{a,b}` pattern may expand to.
const MAX_ALTERNATIVES: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(char),
    Any,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A compiled glob.
#[derive(Debug, Clone)]
pub(crate) enum Glob {
    /// One pattern over the whole path.
    Whole(Pattern),
    /// doublestar: alternatives, each a list of `/`-separated segments where `**` spans
    /// any number of directories.
    Segments(Vec<Vec<Segment>>),
}

#[derive(Debug, Clone)]
pub(crate) enum Segment {
    AnyDirectories,
    Match(Pattern),
}

/// A pattern over one string.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
    /// Whether `*`, `?` may match `/` (git pathspecs) or not (`path.Match`).
    crosses_slash: bool,
    literal: Option<String>,
}

impl Glob {
    /// Go's `path.Match` pattern: `*` and `?` stop at `/`.
    pub(crate) fn path_match(pattern: &str) -> Result<Glob, String> {
        Pattern::path_match(pattern).map(Glob::Whole)
    }

    /// A `git ls-files -- <pattern>` pathspec.
    pub(crate) fn pathspec(pattern: &str) -> Result<Glob, String> {
        Pattern::pathspec(pattern).map(Glob::Whole)
    }

    /// A bmatcuk/doublestar pattern: `*`, `?`, `[...]` within a segment, `**` as a whole
    /// segment for any number of directories, `{a,b}` alternatives.
    pub(crate) fn doublestar(pattern: &str) -> Result<Glob, String> {
        let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
        let mut alternatives = Vec::new();
        for expanded in expand_braces(pattern)? {
            let mut segments = Vec::new();
            for part in expanded.split('/') {
                if part == "**" {
                    if segments
                        .last()
                        .is_some_and(|s| matches!(s, Segment::AnyDirectories))
                    {
                        continue;
                    }
                    segments.push(Segment::AnyDirectories);
                } else {
                    segments.push(Segment::Match(Pattern::path_match(part)?));
                }
            }
            alternatives.push(segments);
        }
        Ok(Glob::Segments(alternatives))
    }

    /// Does the whole of `path` match?
    pub(crate) fn matches(&self, path: &str) -> bool {
        match self {
            Glob::Whole(p) => p.matches(path),
            Glob::Segments(alternatives) => {
                let parts: Vec<&str> = path.split('/').collect();
                alternatives
                    .iter()
                    .any(|segments| match_segments(segments, &parts))
            }
        }
    }
}

/// Segments against path parts, `**` matching zero or more parts (dynamic programming from
/// the end, so many `**` stay linear in the path length).
fn match_segments(segments: &[Segment], parts: &[&str]) -> bool {
    let n = parts.len();
    let mut next = vec![false; n + 1];
    next[n] = true;
    for segment in segments.iter().rev() {
        let mut row = vec![false; n + 1];
        for j in (0..=n).rev() {
            row[j] = match segment {
                Segment::AnyDirectories => next[j] || (j < n && row[j + 1]),
                Segment::Match(p) => j < n && p.matches(parts[j]) && next[j + 1],
            };
        }
        next = row;
    }
    next[0]
}

/// `{a,b}` alternatives (nesting allowed, `\` escapes), expanded into plain patterns.
fn expand_braces(pattern: &str) -> Result<Vec<String>, String> {
    let bad = || format!("syntax error in pattern {pattern:?}");
    let chars: Vec<char> = pattern.chars().collect();
    let mut open = None;
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '{' => {
                if depth == 0 {
                    open = Some(i);
                }
                depth += 1;
            }
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    let start = open.ok_or_else(bad)?;
                    let prefix: String = chars[..start].iter().collect();
                    let suffix: String = chars[i + 1..].iter().collect();
                    let mut out = Vec::new();
                    for choice in split_top_level(&chars[start + 1..i]) {
                        for rest in expand_braces(&format!("{prefix}{choice}{suffix}"))? {
                            out.push(rest);
                            if out.len() > MAX_ALTERNATIVES {
                                return Err(format!(
                                    "pattern {pattern:?} expands to more than {MAX_ALTERNATIVES} alternatives"
                                ));
                            }
                        }
                    }
                    return Ok(out);
                }
            }
            _ => {}
        }
        i += 1;
    }
    if depth > 0 {
        return Err(bad());
    }
    Ok(vec![pattern.to_string()])
}

fn split_top_level(chars: &[char]) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut depth = 0usize;
    let mut escaped = false;
    for &c in chars {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '{' {
            depth += 1;
        } else if c == '}' {
            depth = depth.saturating_sub(1);
        } else if c == ',' && depth == 0 {
            out.push(String::new());
            continue;
        }
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out
}

impl Pattern {
    /// Go's `path.Match` pattern: `*` and `?` stop at `/`.
    fn path_match(pattern: &str) -> Result<Pattern, String> {
        Ok(Pattern {
            tokens: compile(pattern)?,
            crosses_slash: false,
            literal: None,
        })
    }

    /// A `git ls-files -- <pattern>` pathspec: wildcards match across `/`, and a pattern
    /// without wildcards names a file or every file under a directory.
    fn pathspec(pattern: &str) -> Result<Pattern, String> {
        let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
        let tokens = compile(pattern)?;
        let literal = tokens
            .iter()
            .all(|t| matches!(t, Token::Literal(_)))
            .then(|| pattern.trim_end_matches('/').to_string());
        Ok(Pattern {
            tokens,
            crosses_slash: true,
            literal,
        })
    }

    fn matches(&self, path: &str) -> bool {
        if let Some(literal) = &self.literal {
            return path == literal
                || literal.is_empty()
                || path
                    .strip_prefix(literal.as_str())
                    .is_some_and(|rest| rest.starts_with('/'));
        }
        let chars: Vec<char> = path.chars().collect();
        let n = chars.len();
        // next[j]: tokens[i+1..] match chars[j..]; computed from the last token backwards.
        let mut next = vec![false; n + 1];
        next[n] = true;
        for token in self.tokens.iter().rev() {
            let mut row = vec![false; n + 1];
            for j in (0..=n).rev() {
                let here = chars.get(j).copied();
                row[j] = match token {
                    Token::Star => {
                        next[j]
                            || here.is_some_and(|c| (self.crosses_slash || c != '/') && row[j + 1])
                    }
                    Token::Any => {
                        here.is_some_and(|c| self.crosses_slash || c != '/') && next[j + 1]
                    }
                    Token::Literal(l) => here == Some(*l) && next[j + 1],
                    Token::Class { negated, ranges } => {
                        here.is_some_and(|c| {
                            ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated
                        }) && next[j + 1]
                    }
                };
            }
            next = row;
        }
        next[0]
    }
}

fn compile(pattern: &str) -> Result<Vec<Token>, String> {
    let bad = || format!("syntax error in pattern {pattern:?}");
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                if tokens.last() != Some(&Token::Star) {
                    tokens.push(Token::Star);
                }
            }
            '?' => tokens.push(Token::Any),
            '\\' => tokens.push(Token::Literal(chars.next().ok_or_else(bad)?)),
            '[' => {
                let negated = chars.peek() == Some(&'^');
                if negated {
                    chars.next();
                }
                let mut ranges = Vec::new();
                loop {
                    let lo = match chars.next().ok_or_else(bad)? {
                        ']' if !ranges.is_empty() => break,
                        '\\' => chars.next().ok_or_else(bad)?,
                        '-' | ']' => return Err(bad()),
                        c => c,
                    };
                    let hi = if chars.peek() == Some(&'-') {
                        chars.next();
                        match chars.next().ok_or_else(bad)? {
                            '\\' => chars.next().ok_or_else(bad)?,
                            '-' | ']' => return Err(bad()),
                            c => c,
                        }
                    } else {
                        lo
                    };
                    if hi < lo {
                        return Err(bad());
                    }
                    ranges.push((lo, hi));
                }
                tokens.push(Token::Class { negated, ranges });
            }
            c => tokens.push(Token::Literal(c)),
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pm(p: &str, s: &str) -> bool {
        Glob::path_match(p).map(|g| g.matches(s)).unwrap_or(false)
    }

    fn ps(p: &str, s: &str) -> bool {
        Glob::pathspec(p).map(|g| g.matches(s)).unwrap_or(false)
    }

    #[test]
    fn path_match_follows_go() {
        assert!(pm("*", "guestbook"));
        assert!(!pm("*", "apps/templates"));
        assert!(pm("apps/*", "apps/templates"));
        assert!(!pm("apps/*", "apps/templates/x"));
        assert!(pm("a?c", "abc"));
        assert!(!pm("a?c", "a/c"));
        assert!(pm("[a-c]x", "bx"));
        assert!(!pm("[^a-c]x", "bx"));
        assert!(pm("\\*", "*"));
        assert!(pm("*guest*", "kustomize-guestbook"));
        assert!(!pm("guestbook", "helm-guestbook"));
        for bad in ["[", "[a-", "\\", "[]", "[z-a]"] {
            assert!(Glob::path_match(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pathspec_is_greedy_like_git() {
        assert!(ps(
            "cluster-config/*/config.json",
            "cluster-config/a/config.json"
        ));
        assert!(ps(
            "cluster-config/*/config.json",
            "cluster-config/a/b/config.json"
        ));
        assert!(ps("**/config.json", "x/y/config.json"));
        assert!(!ps("cluster-config/*/config.json", "other/a/config.json"));
        assert!(ps("apps", "apps/Chart.yaml"));
        assert!(ps("apps/Chart.yaml", "apps/Chart.yaml"));
        assert!(!ps("apps", "apps2/Chart.yaml"));
    }

    fn ds(p: &str, s: &str) -> bool {
        Glob::doublestar(p).map(|g| g.matches(s)).unwrap_or(false)
    }

    #[test]
    fn doublestar_spans_directories_only_with_double_stars() {
        assert!(ds(
            "cluster-config/*/config.json",
            "cluster-config/a/config.json"
        ));
        assert!(!ds(
            "cluster-config/*/config.json",
            "cluster-config/a/b/config.json"
        ));
        assert!(ds(
            "cluster-config/**/config.json",
            "cluster-config/config.json"
        ));
        assert!(ds(
            "cluster-config/**/config.json",
            "cluster-config/a/b/config.json"
        ));
        assert!(ds("**", "a/b/c"));
        assert!(ds("apps/{one,two}/*.yaml", "apps/two/x.yaml"));
        assert!(!ds("apps/{one,two}/*.yaml", "apps/three/x.yaml"));
        assert!(ds("a/{b,{c,d}}/e", "a/d/e"));
        assert!(Glob::doublestar("a/{b").is_err());
        assert!(Glob::doublestar("{a,b}{c,d}{e,f}{g,h}{i,j}{k,l}{m,n}").is_err());
    }

    #[test]
    fn many_stars_stay_fast() {
        let long = "a".repeat(2000);
        assert!(!pm("*a*a*a*a*a*a*a*a*a*a*b", &long));
    }
}
