//! Wording YAML syntax errors the way Helm (sigs.k8s.io/yaml over go-yaml v2) words them:
//! `error converting YAML to JSON: yaml: line N: PROBLEM`. go-yaml numbers scanner errors
//! from 1 but parser errors from 0, and libyaml's problem texts differ from the Rust
//! parser's; the common cases are translated, others keep the Rust parser's text.

/// `error converting YAML to JSON: yaml: line N: MSG` from a parser error.
pub fn go_style(doc: &str, err: &str) -> String {
    let first = err.lines().next().unwrap_or(err).trim();
    let (line, problem) = split_location(first);
    let (line, msg) = if problem.contains("simple key expected ':'")
        || problem.contains("could not find expected ':'")
    {
        // libyaml notices the missing ':' only at the start of the following line.
        let total = doc.lines().count();
        (
            line.map(|l| (l + 1).min(total + 1)),
            "could not find expected ':'".to_string(),
        )
    } else if problem.contains("mapping values are not allowed") {
        (
            line,
            "mapping values are not allowed in this context".to_string(),
        )
    } else if problem.contains("did not find expected '-' indicator") {
        (
            line.map(|l| l.saturating_sub(1)),
            "did not find expected '-' indicator".to_string(),
        )
    } else if problem.contains("did not find expected key") {
        (
            line.map(|l| l.saturating_sub(1)),
            "did not find expected key".to_string(),
        )
    } else if problem.contains("unclosed quote") {
        (line, "found unexpected end of stream".to_string())
    } else if problem.contains("unclosed bracket '['") {
        (
            line.map(|l| l.saturating_sub(1)),
            "did not find expected ',' or ']'".to_string(),
        )
    } else if problem.contains("unclosed bracket '{'") {
        (
            line.map(|l| l.saturating_sub(1)),
            "did not find expected ',' or '}'".to_string(),
        )
    } else {
        (line, problem.to_string())
    };
    match line {
        Some(l) => format!("error converting YAML to JSON: yaml: line {l}: {msg}"),
        None => format!("error converting YAML to JSON: yaml: {msg}"),
    }
}

/// Split `error: line N column M: problem` into (N, problem).
fn split_location(first: &str) -> (Option<usize>, &str) {
    let rest = first.strip_prefix("error: ").unwrap_or(first);
    if let Some(r) = rest.strip_prefix("line ") {
        let digits: String = r.chars().take_while(|c| c.is_ascii_digit()).collect();
        let line = digits.parse().ok();
        let problem = match r.find(": ") {
            Some(i) => &r[i + 2..],
            None => r,
        };
        return (line, problem);
    }
    (None, rest)
}

#[cfg(test)]
mod tests {
    use super::go_style;

    fn e(doc: &str) -> String {
        let err = crate::yaml::parse_documents(doc).err().unwrap_or_default();
        go_style(doc, &err)
    }

    #[test]
    fn libyaml_wording() {
        assert_eq!(
            e("a: 1\ninvalid"),
            "error converting YAML to JSON: yaml: line 3: could not find expected ':'"
        );
        assert_eq!(
            e("a: b: c"),
            "error converting YAML to JSON: yaml: line 1: mapping values are not allowed in this context"
        );
        assert_eq!(
            e("- a\nb: 1"),
            "error converting YAML to JSON: yaml: line 1: did not find expected '-' indicator"
        );
    }
}
