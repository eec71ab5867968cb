//! The two globbing dialects the Git generator uses: Go's `path.Match` for directories and
//! `git ls-files` pathspecs for files.

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(char),
    Any,
    Star,
    Class { negated: bool, ranges: Vec<(char, char)> },
}

/// A compiled glob.
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    tokens: Vec<Token>,
    /// Whether `*`, `?` may match `/` (git pathspecs) or not (`path.Match`).
    crosses_slash: bool,
    literal: Option<String>,
}

impl Glob {
    /// Go's `path.Match` pattern: `*` and `?` stop at `/`.
    pub(crate) fn path_match(pattern: &str) -> Result<Glob, String> {
        Ok(Glob { tokens: compile(pattern)?, crosses_slash: false, literal: None })
    }

    /// A `git ls-files -- <pattern>` pathspec: wildcards match across `/`, and a pattern
    /// without wildcards names a file or every file under a directory.
    pub(crate) fn pathspec(pattern: &str) -> Result<Glob, String> {
        let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
        let tokens = compile(pattern)?;
        let literal =
            tokens.iter().all(|t| matches!(t, Token::Literal(_))).then(|| pattern.trim_end_matches('/').to_string());
        Ok(Glob { tokens, crosses_slash: true, literal })
    }

    /// Does the whole of `path` match?
    pub(crate) fn matches(&self, path: &str) -> bool {
        if let Some(literal) = &self.literal {
            return path == literal
                || literal.is_empty()
                || path.strip_prefix(literal.as_str()).is_some_and(|rest| rest.starts_with('/'));
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
                    Token::Star => next[j] || here.is_some_and(|c| (self.crosses_slash || c != '/') && row[j + 1]),
                    Token::Any => here.is_some_and(|c| self.crosses_slash || c != '/') && next[j + 1],
                    Token::Literal(l) => here == Some(*l) && next[j + 1],
                    Token::Class { negated, ranges } => {
                        here.is_some_and(|c| ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated)
                            && next[j + 1]
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
        assert!(ps("cluster-config/*/config.json", "cluster-config/a/config.json"));
        assert!(ps("cluster-config/*/config.json", "cluster-config/a/b/config.json"));
        assert!(ps("**/config.json", "x/y/config.json"));
        assert!(!ps("cluster-config/*/config.json", "other/a/config.json"));
        assert!(ps("apps", "apps/Chart.yaml"));
        assert!(ps("apps/Chart.yaml", "apps/Chart.yaml"));
        assert!(!ps("apps", "apps2/Chart.yaml"));
    }

    #[test]
    fn many_stars_stay_fast() {
        let long = "a".repeat(2000);
        assert!(!pm("*a*a*a*a*a*a*a*a*a*a*b", &long));
    }
}
