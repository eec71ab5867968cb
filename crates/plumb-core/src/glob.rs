//! Glob patterns the way Argo CD matches them (gobwas/glob without separators): `*` any run of
//! characters, `?` one character, `[abc]`, `[a-z]`, `[!a-z]` classes, `{a,b}` alternatives and
//! `\` escapes.
//!
//! **Guarantees**: matching takes time linear in `pattern × text` per alternative; at most
//! [`MAX_ALTERNATIVES`] alternatives are expanded, patterns are at most [`MAX_PATTERN_LEN`]
//! characters and [`MAX_BRACE_DEPTH`] braces deep; a pattern beyond that, or with an unclosed
//! `[` or `{`, is an error, never a hang or a stack overflow.

/// Most alternatives one pattern may expand to.
pub const MAX_ALTERNATIVES: usize = 256;
/// Longest pattern accepted, in characters.
pub const MAX_PATTERN_LEN: usize = 1024;
/// Deepest `{…}` nesting accepted.
pub const MAX_BRACE_DEPTH: usize = 8;

/// A pattern that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid glob {pattern:?}: {problem}")]
pub struct GlobError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong.
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    Any,
    AnyRun,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    alternatives: Vec<Vec<Token>>,
}

impl Glob {
    /// Compiles `pattern`.
    ///
    /// **Errors**: unclosed `[` or `{`, a trailing `\`, or too many alternatives.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let fail = |problem: &str| GlobError {
            pattern: pattern.to_string(),
            problem: problem.to_string(),
        };
        let chars: Vec<char> = pattern.chars().collect();
        if chars.len() > MAX_PATTERN_LEN {
            return Err(fail("longer than 1024 characters"));
        }
        let expanded = expand(&chars, 0).map_err(&fail)?;
        let mut alternatives = Vec::with_capacity(expanded.len());
        for alternative in expanded {
            alternatives.push(tokenize(&alternative).map_err(&fail)?);
        }
        Ok(Glob { alternatives })
    }

    /// Whether `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        self.alternatives
            .iter()
            .any(|tokens| match_tokens(tokens, &text))
    }
}

/// Whether `text` matches `pattern`; an invalid pattern matches only itself, literally (the
/// caller validated patterns it cares about up front).
pub fn matches(pattern: &str, text: &str) -> bool {
    match Glob::new(pattern) {
        Ok(glob) => glob.is_match(text),
        Err(_) => pattern == text,
    }
}

/// Expands `{a,b}` alternatives into plain patterns.
fn expand(chars: &[char], depth: usize) -> Result<Vec<Vec<char>>, &'static str> {
    if depth > MAX_BRACE_DEPTH {
        return Err("'{' nested too deeply");
    }
    let mut results: Vec<Vec<char>> = vec![Vec::new()];
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                let next = chars.get(i + 1).ok_or("trailing backslash")?;
                for r in &mut results {
                    r.push('\\');
                    r.push(*next);
                }
                i += 2;
            }
            '[' => {
                // Copy the class verbatim: braces inside it are literal.
                let end = chars[i + 1..]
                    .iter()
                    .position(|c| *c == ']')
                    .ok_or("unclosed '['")?
                    + i
                    + 1;
                for r in &mut results {
                    r.extend_from_slice(&chars[i..=end]);
                }
                i = end + 1;
            }
            '{' => {
                let end = closing_brace(chars, i).ok_or("unclosed '{'")?;
                let mut options: Vec<Vec<char>> = Vec::new();
                for part in split_top_level(&chars[i + 1..end]) {
                    options.extend(expand(part, depth + 1)?);
                }
                let mut next = Vec::new();
                for prefix in &results {
                    for option in &options {
                        if next.len() >= MAX_ALTERNATIVES {
                            return Err("too many alternatives");
                        }
                        let mut combined = prefix.clone();
                        combined.extend_from_slice(option);
                        next.push(combined);
                    }
                }
                results = next;
                i = end + 1;
            }
            c => {
                for r in &mut results {
                    r.push(c);
                }
                i += 1;
            }
        }
    }
    Ok(results)
}

fn closing_brace(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn split_top_level(chars: &[char]) -> Vec<&[char]> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&chars[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(&chars[start.min(chars.len())..]);
    parts
}

fn tokenize(chars: &[char]) -> Result<Vec<Token>, &'static str> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                tokens.push(Token::Literal(
                    *chars.get(i + 1).ok_or("trailing backslash")?,
                ));
                i += 2;
            }
            '*' => {
                if tokens.last() != Some(&Token::AnyRun) {
                    tokens.push(Token::AnyRun);
                }
                i += 1;
            }
            '?' => {
                tokens.push(Token::Any);
                i += 1;
            }
            '[' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|c| *c == ']')
                    .ok_or("unclosed '['")?
                    + i
                    + 1;
                let mut body = &chars[i + 1..end];
                let negated = body.first() == Some(&'!');
                if negated {
                    body = &body[1..];
                }
                let mut ranges = Vec::new();
                let mut j = 0;
                while j < body.len() {
                    if j + 2 < body.len() && body[j + 1] == '-' {
                        ranges.push((body[j], body[j + 2]));
                        j += 3;
                    } else {
                        ranges.push((body[j], body[j]));
                        j += 1;
                    }
                }
                tokens.push(Token::Class { negated, ranges });
                i = end + 1;
            }
            c => {
                tokens.push(Token::Literal(c));
                i += 1;
            }
        }
    }
    Ok(tokens)
}

fn matches_one(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(l) => *l == c,
        Token::Any => true,
        Token::AnyRun => true,
        Token::Class { negated, ranges } => {
            ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated
        }
    }
}

/// Classic wildcard matching with one backtrack point per `*`: O(pattern × text).
fn match_tokens(tokens: &[Token], text: &[char]) -> bool {
    let (mut t, mut s) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while s < text.len() {
        if t < tokens.len() && tokens[t] == Token::AnyRun {
            star = Some((t, s));
            t += 1;
        } else if t < tokens.len() && matches_one(&tokens[t], text[s]) {
            t += 1;
            s += 1;
        } else if let Some((star_t, star_s)) = star {
            t = star_t + 1;
            s = star_s + 1;
            star = Some((star_t, star_s + 1));
        } else {
            return false;
        }
    }
    while t < tokens.len() && tokens[t] == Token::AnyRun {
        t += 1;
    }
    t == tokens.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_questions_classes_and_alternatives() {
        assert!(matches("*", ""));
        assert!(matches("*", "anything.at/all"));
        assert!(matches("prod-*", "prod-eu"));
        assert!(!matches("prod-*", "staging-eu"));
        assert!(matches("*-db", "orders-db"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("[a-c]x", "bx"));
        assert!(!matches("[!a-c]x", "bx"));
        assert!(matches("{prod,stage}-*", "stage-1"));
        assert!(!matches("{prod,stage}-*", "dev-1"));
        assert!(matches("https://*.example.com", "https://k8s.example.com"));
        assert!(matches(r"a\*", "a*"));
        assert!(!matches(r"a\*", "ab"));
        assert!(matches("", ""));
        assert!(!matches("", "apps"));
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!(Glob::new("[abc").is_err());
        assert!(Glob::new("{a,b").is_err());
        assert!(Glob::new("a\\").is_err());
        assert!(Glob::new(&"{a,b}".repeat(9)).is_err());
        assert!(Glob::new(&format!("{}x{}", "{".repeat(5000), "}".repeat(5000))).is_err());
        assert!(Glob::new(&"a".repeat(2000)).is_err());
        assert!(Glob::new("{a,{b,{c,d}}}").is_ok());
    }

    proptest::proptest! {
        #[test]
        fn random_patterns_never_panic(pattern in "[a-c*?\\[\\]{},!\\\\-]{0,24}", text in "[a-c]{0,12}") {
            if let Ok(glob) = Glob::new(&pattern) {
                let _ = glob.is_match(&text);
            }
        }
    }

    #[test]
    fn many_stars_stay_fast() {
        let pattern = "*a".repeat(200);
        let text = "a".repeat(199);
        assert!(!matches(&pattern, &text));
    }
}
