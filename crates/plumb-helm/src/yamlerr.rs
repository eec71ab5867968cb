//! Wording YAML syntax errors the way Helm (sigs.k8s.io/yaml over go-yaml v2) words them.

/// `error converting YAML to JSON: yaml: line N: MSG` from a parser error.
pub fn go_style(doc: &str, err: &str) -> String {
    let line = find_line(err).unwrap_or(0);
    let lower = err.to_lowercase();
    // libyaml reports a plain line that is not a key inside a block mapping as a missing
    // ':' at the start of the following line.
    let msg = if lower.contains("could not find expected ':'")
        || lower.contains("simple key")
        || lower.contains("expected ':'")
        || lower.contains("mapping values")
    {
        let total = doc.lines().count();
        let l = (line + 1).min(total + 1);
        return format!(
            "error converting YAML to JSON: yaml: line {l}: could not find expected ':'"
        );
    } else {
        first_line(err)
    };
    if line > 0 {
        format!("error converting YAML to JSON: yaml: line {line}: {msg}")
    } else {
        format!("error converting YAML to JSON: yaml: {msg}")
    }
}

fn first_line(err: &str) -> String {
    err.lines().next().unwrap_or(err).trim().to_string()
}

fn find_line(err: &str) -> Option<usize> {
    let idx = err.find("line ")?;
    let rest = &err[idx + 5..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}
