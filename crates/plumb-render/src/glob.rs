//! Argo CD's `directory.include`/`exclude` patterns: `*`, `?`, `[...]`, `**` and `{a,b}`.

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Glob {
    alternatives: Vec<Vec<char>>,
}

impl Glob {
    /// Compiles `pattern`; `None` when braces are unbalanced.
    pub fn new(pattern: &str) -> Option<Glob> {
        Some(Glob {
            alternatives: expand(pattern)?
                .into_iter()
                .map(|p| p.chars().collect())
                .collect(),
        })
    }

    /// Whether the relative path matches (either as a whole or by its file name).
    pub fn is_match(&self, path: &str) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        let path: Vec<char> = path.chars().collect();
        let name: Vec<char> = name.chars().collect();
        self.alternatives
            .iter()
            .any(|p| matches(p, &path) || matches(p, &name))
    }
}

fn expand(pattern: &str) -> Option<Vec<String>> {
    let Some(open) = pattern.find('{') else {
        if pattern.contains('}') {
            return None;
        }
        return Some(vec![pattern.to_string()]);
    };
    let mut depth = 0;
    let mut close = None;
    for (i, c) in pattern[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close?;
    let (prefix, body, suffix) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    let mut out = Vec::new();
    for part in parts {
        out.extend(expand(&format!("{prefix}{part}{suffix}"))?);
    }
    Some(out)
}

fn matches(pattern: &[char], text: &[char]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some('*') if pattern.get(1) == Some(&'*') => {
            let rest = &pattern[2..];
            let rest = if rest.first() == Some(&'/') {
                &rest[1..]
            } else {
                rest
            };
            (0..=text.len()).any(|i| matches(rest, &text[i..]))
        }
        Some('*') => (0..=text.len())
            .take_while(|&i| i == 0 || text[i - 1] != '/')
            .any(|i| matches(&pattern[1..], &text[i..])),
        Some('?') => !text.is_empty() && text[0] != '/' && matches(&pattern[1..], &text[1..]),
        Some('[') => {
            let Some(end) = pattern.iter().position(|&c| c == ']') else {
                return !text.is_empty() && text[0] == '[' && matches(&pattern[1..], &text[1..]);
            };
            let Some(&c) = text.first() else { return false };
            let class = &pattern[1..end];
            let (negate, class) = match class.first() {
                Some('!' | '^') => (true, &class[1..]),
                _ => (false, class),
            };
            let mut found = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    found |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    found |= class[i] == c;
                    i += 1;
                }
            }
            found != negate && matches(&pattern[end + 1..], &text[1..])
        }
        Some(&p) => text.first() == Some(&p) && matches(&pattern[1..], &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn globs() {
        let g = Glob::new("{config.yaml,env-*.yaml}").unwrap();
        assert!(g.is_match("config.yaml"));
        assert!(g.is_match("sub/env-prod.yaml"));
        assert!(!g.is_match("other.yaml"));
        assert!(Glob::new("**/*.json").unwrap().is_match("a/b/c.json"));
        assert!(Glob::new("[a-c]?.yaml").unwrap().is_match("bx.yaml"));
        assert!(!Glob::new("[!a-c]?.yaml").unwrap().is_match("bx.yaml"));
        assert!(Glob::new("{a,b").is_none());
    }
}
