//! Unquoted timestamps. Kustomize reads resources with go-yaml v3, which turns a plain scalar
//! such as `2024-01-02` into a `time.Time` that comes out of its JSON round trip as
//! `"2024-01-02T00:00:00Z"`; quoted ones stay as written. serde-saphyr does not say whether a
//! string was quoted, so a pass over the parser events finds the plain timestamps' paths.

use serde_json::Value;
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

enum Frame {
    Map { key: Option<String> },
    Seq { index: usize },
}

/// Cheap pre-check: is there anything that could be a timestamp at all?
pub(crate) fn may_contain_timestamps(text: &str) -> bool {
    let b = text.as_bytes();
    b.windows(5)
        .any(|w| w[..4].iter().all(u8::is_ascii_digit) && w[4] == b'-')
}

/// For each document of the stream (null documents included), the paths of plain scalars in
/// value position that go-yaml v3 would read as timestamps, with their converted text.
pub(crate) fn plain_timestamps(text: &str) -> Vec<Vec<(Vec<Seg>, String)>> {
    let mut docs = Vec::new();
    let mut current: Vec<(Vec<Seg>, String)> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut path: Vec<Seg> = Vec::new();
    for item in Parser::new_from_str(text) {
        let Ok((event, _span)) = item else { break };
        match event {
            Event::DocumentStart(..) => {
                current = Vec::new();
                stack.clear();
                path.clear();
            }
            Event::DocumentEnd => docs.push(std::mem::take(&mut current)),
            Event::Scalar(value, style, _, tag) => {
                if let Some(Frame::Map { key }) = stack.last_mut()
                    && key.is_none()
                {
                    *key = Some(value.into_owned());
                    continue;
                }
                if style == ScalarStyle::Plain
                    && tag.is_none()
                    && let Some(converted) = convert(&value)
                {
                    let mut p = path.clone();
                    if let Some(seg) = position(&stack) {
                        p.push(seg);
                    }
                    current.push((p, converted));
                }
                advance(&mut stack);
            }
            Event::Alias(_) => {
                if let Some(Frame::Map { key }) = stack.last_mut()
                    && key.is_none()
                {
                    *key = Some(String::new());
                    continue;
                }
                advance(&mut stack);
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if let Some(Frame::Map { key: None }) = stack.last() {
                    // A collection used as a key: nothing kustomize-relevant, stop tracking.
                    return docs;
                }
                if let Some(seg) = position(&stack) {
                    path.push(seg);
                }
                stack.push(if matches!(event, Event::MappingStart(..)) {
                    Frame::Map { key: None }
                } else {
                    Frame::Seq { index: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                if !stack.is_empty() {
                    path.pop();
                }
                advance(&mut stack);
            }
            _ => {}
        }
    }
    docs
}

fn position(stack: &[Frame]) -> Option<Seg> {
    match stack.last()? {
        Frame::Map { key } => Some(Seg::Key(key.clone().unwrap_or_default())),
        Frame::Seq { index } => Some(Seg::Index(*index)),
    }
}

fn advance(stack: &mut [Frame]) {
    match stack.last_mut() {
        Some(Frame::Map { key }) => *key = None,
        Some(Frame::Seq { index }) => *index += 1,
        None => {}
    }
}

/// Replace the strings at `paths` in `doc` by their converted text.
pub(crate) fn apply(doc: &mut Value, paths: &[(Vec<Seg>, String)]) {
    for (path, text) in paths {
        if let Some(target) = lookup(doc, path)
            && target.is_string()
        {
            *target = Value::String(text.clone());
        }
    }
}

fn lookup<'v>(v: &'v mut Value, path: &[Seg]) -> Option<&'v mut Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(v);
    };
    let next = match (first, v) {
        (Seg::Key(k), Value::Object(m)) => m.get_mut(k)?,
        (Seg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
        _ => return None,
    };
    lookup(next, rest)
}

/// go-yaml v3's timestamp layouts, rendered as Go's RFC 3339 (nanosecond) JSON form.
pub(crate) fn convert(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(p) => (&s[..p], Some((&s[p..p + 1], &s[p + 1..]))),
        None => (s, None),
    };
    let mut dp = date.split('-');
    let (y, m, d) = (dp.next()?, dp.next()?, dp.next()?);
    if dp.next().is_some() || y.len() != 4 {
        return None;
    }
    let num = |x: &str, max: u32| -> Option<u32> {
        if x.is_empty() || x.len() > 2 || !x.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        x.parse::<u32>().ok().filter(|v| *v <= max)
    };
    let (mo, da) = (num(m, 12)?, num(d, 31)?);
    if mo == 0 || da == 0 {
        return None;
    }
    let Some((sep, time)) = rest else {
        return Some(format!("{y}-{mo:02}-{da:02}T00:00:00Z"));
    };
    // Layouts: "T"/"t" need a zone (Z or ±hh:mm); " " takes none.
    let (clock, zone) = if sep == " " {
        (time, None)
    } else if let Some(c) = time.strip_suffix('Z') {
        (c, Some("Z".to_string()))
    } else {
        let p = time.rfind(['+', '-'])?;
        let z = &time[p..];
        let (zh, zm) = z[1..].split_once(':')?;
        let (zh, zm) = (num(zh, 23)?, num(zm, 59)?);
        let zone = if zh == 0 && zm == 0 {
            "Z".to_string()
        } else {
            format!("{}{zh:02}:{zm:02}", &z[..1])
        };
        (&time[..p], Some(zone))
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((h, f)) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|c| c.is_ascii_digit()) => {
            (h, f.trim_end_matches('0'))
        }
        Some(_) => return None,
        None => (clock, ""),
    };
    let mut hp = hms.split(':');
    let (h, mi, se) = (
        num(hp.next()?, 23)?,
        num(hp.next()?, 59)?,
        num(hp.next()?, 59)?,
    );
    if hp.next().is_some() {
        return None;
    }
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    Some(format!(
        "{y}-{mo:02}-{da:02}T{h:02}:{mi:02}:{se:02}{frac}{}",
        zone.unwrap_or_else(|| "Z".into())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_like_go_yaml_v3() {
        assert_eq!(
            convert("2024-01-02").as_deref(),
            Some("2024-01-02T00:00:00Z")
        );
        assert_eq!(
            convert("2001-12-14t21:59:43.10-05:00").as_deref(),
            Some("2001-12-14T21:59:43.1-05:00")
        );
        assert_eq!(
            convert("2001-12-14 21:59:43.10").as_deref(),
            Some("2001-12-14T21:59:43.1Z")
        );
        assert_eq!(
            convert("2001-2-3T04:05:06+00:00").as_deref(),
            Some("2001-02-03T04:05:06Z")
        );
        assert_eq!(convert("2024-13-01"), None);
        assert_eq!(convert("12:30:45"), None);
        assert_eq!(convert("2024-01-02T10:00:00"), None);
    }

    #[test]
    fn finds_plain_values_only() {
        let docs =
            plain_timestamps("a: 2024-01-02\nb: '2024-01-02'\nc:\n- 2024-01-03\n---\nd: x\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[0],
            vec![
                (
                    vec![Seg::Key("a".into())],
                    "2024-01-02T00:00:00Z".to_string()
                ),
                (
                    vec![Seg::Key("c".into()), Seg::Index(0)],
                    "2024-01-03T00:00:00Z".to_string()
                ),
            ]
        );
    }
}
