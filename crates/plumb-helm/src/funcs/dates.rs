//! Sprig's date functions (UTC only): `now`, `date`, `toDate`, `dateModify`, `duration`, ...

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Func, s, want, want_min};
use crate::value::Value;

/// Civil date from days since the epoch (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Format unix seconds (UTC) with a Go layout.
fn go_date(layout: &str, secs: i64) -> String {
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (h, mi, se) = (sod / 3600, (sod % 3600) / 60, sod % 60);
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ];
    let wd = DAYS[secs.div_euclid(86_400).rem_euclid(7) as usize];
    let month = MONTHS[(mo as usize).saturating_sub(1) % 12];
    let subs: [(&str, String); 20] = [
        ("2006", format!("{y:04}")),
        ("January", month.to_string()),
        ("Monday", wd.to_string()),
        ("Jan", month[..3].to_string()),
        ("Mon", wd[..3].to_string()),
        ("MST", "UTC".into()),
        ("Z07:00", "Z".into()),
        ("-07:00", "+00:00".into()),
        ("-0700", "+0000".into()),
        ("01", format!("{mo:02}")),
        ("02", format!("{d:02}")),
        ("_2", format!("{d:>2}")),
        ("15", format!("{h:02}")),
        (
            "03",
            format!("{:02}", if h % 12 == 0 { 12 } else { h % 12 }),
        ),
        ("04", format!("{mi:02}")),
        ("05", format!("{se:02}")),
        ("06", format!("{:02}", y % 100)),
        ("PM", if h >= 12 { "PM".into() } else { "AM".into() }),
        ("1", mo.to_string()),
        ("2", d.to_string()),
    ];
    let mut out = String::new();
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for (pat, rep) in &subs {
            if let Some(r) = rest.strip_prefix(pat) {
                out.push_str(rep);
                rest = r;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn time_arg(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Obj(o) => o
            .field("Unix")
            .map(|u| super::int(&u))
            .unwrap_or_else(now_secs),
        _ => now_secs(),
    }
}

/// A point in time (`now`), printed like Go's `time.Time`.
#[derive(Debug)]
struct Time(i64);

impl crate::value::Object for Time {
    fn type_name(&self) -> &'static str {
        "time.Time"
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Unix" => Some(Value::Int(self.0)),
            "Year" => Some(Value::Int(civil(self.0.div_euclid(86_400)).0)),
            _ => None,
        }
    }
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        match name {
            "Format" => Some(Ok(Value::str(go_date(
                &args.first().map(s).unwrap_or_default(),
                self.0,
            )))),
            "Unix" => Some(Ok(Value::Int(self.0))),
            _ => None,
        }
    }
    fn display(&self) -> String {
        go_date("2006-01-02 15:04:05 +0000 UTC", self.0)
    }
}

/// Parse a Go duration (`1h30m`, `-2.5s`, `300ms`) into seconds.
fn parse_duration(d: &str) -> Option<f64> {
    let t = d.trim();
    let (neg, mut rest) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if rest == "0" {
        return Some(0.0);
    }
    let mut total = 0.0;
    let mut any = false;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * mult;
        any = true;
    }
    any.then_some(if neg { -total } else { total })
}

/// Go's `time.Duration.String()` for whole seconds.
fn duration_string(secs: i64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let neg = secs < 0;
    let a = secs.unsigned_abs();
    let (h, m, sec) = (a / 3600, (a % 3600) / 60, a % 60);
    let mut out = String::from(if neg { "-" } else { "" });
    if h > 0 {
        out.push_str(&format!("{h}h{m}m{sec}s"));
    } else if m > 0 {
        out.push_str(&format!("{m}m{sec}s"));
    } else {
        out.push_str(&format!("{sec}s"));
    }
    out
}

/// Parse `value` with a Go layout made of the common numeric elements.
fn parse_go_date(layout: &str, value: &str) -> Result<i64, String> {
    let bad = || format!("parsing time {value:?} as {layout:?}: cannot parse");
    let (mut y, mut mo, mut d, mut h, mut mi, mut se, mut off) =
        (1i64, 1i64, 1i64, 0i64, 0i64, 0i64, 0i64);
    let (mut l, mut v) = (layout, value);
    let take = |v: &mut &str, n: usize| -> Result<i64, String> {
        let digits: String = v
            .chars()
            .take(n)
            .take_while(|c| c.is_ascii_digit())
            .collect();
        if digits.is_empty() {
            return Err(bad());
        }
        *v = &v[digits.len()..];
        digits.parse().map_err(|_| bad())
    };
    while !l.is_empty() {
        if let Some(r) = l.strip_prefix("2006") {
            y = take(&mut v, 4)?;
            l = r;
        } else if let Some(r) = l.strip_prefix("Z07:00") {
            if let Some(rest) = v.strip_prefix('Z') {
                v = rest;
            } else {
                let sign = if v.starts_with('-') { -1 } else { 1 };
                v = v.get(1..).ok_or_else(bad)?;
                let oh = take(&mut v, 2)?;
                v = v.strip_prefix(':').ok_or_else(bad)?;
                let om = take(&mut v, 2)?;
                off = sign * (oh * 3600 + om * 60);
            }
            l = r;
        } else if let Some(r) = l.strip_prefix("01") {
            mo = take(&mut v, 2)?;
            l = r;
        } else if let Some(r) = l.strip_prefix("02") {
            d = take(&mut v, 2)?;
            l = r;
        } else if let Some(r) = l.strip_prefix("15") {
            h = take(&mut v, 2)?;
            l = r;
        } else if let Some(r) = l.strip_prefix("04") {
            mi = take(&mut v, 2)?;
            l = r;
        } else if let Some(r) = l.strip_prefix("05") {
            se = take(&mut v, 2)?;
            if let Some(rest) = v.strip_prefix('.') {
                let frac = rest.chars().take_while(|c| c.is_ascii_digit()).count();
                v = &rest[frac..];
            }
            l = r;
        } else {
            let c = l.chars().next().unwrap_or(' ');
            if !v.starts_with(c) {
                return Err(bad());
            }
            l = &l[c.len_utf8()..];
            v = &v[c.len_utf8()..];
        }
    }
    if !v.is_empty() || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    Ok(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - off)
}

/// Days since the epoch for a civil date (inverse of [`civil`]).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn time(secs: i64) -> Value {
    Value::Obj(std::rc::Rc::new(Time(secs)))
}

pub(super) fn register(m: &mut HashMap<&'static str, Func>) {
    m.insert("now", |_, _| {
        Ok(Value::Obj(std::rc::Rc::new(Time(now_secs()))))
    });
    m.insert("unixEpoch", |_, a| {
        want(a, 1)?;
        Ok(Value::str(time_arg(&a[0]).to_string()))
    });
    m.insert("date", |_, a| {
        want(a, 2)?;
        Ok(Value::str(go_date(&s(&a[0]), time_arg(&a[1]))))
    });
    m.insert("dateInZone", |_, a| {
        want_min(a, 2)?;
        Ok(Value::str(go_date(&s(&a[0]), time_arg(&a[1]))))
    });
    m.insert("htmlDate", |_, a| {
        want(a, 1)?;
        Ok(Value::str(go_date("2006-01-02", time_arg(&a[0]))))
    });
    m.insert("htmlDateInZone", |_, a| {
        want_min(a, 1)?;
        Ok(Value::str(go_date("2006-01-02", time_arg(&a[0]))))
    });
    for name in ["toDate", "mustToDate"] {
        m.insert(name, |_, a| {
            want(a, 2)?;
            parse_go_date(&s(&a[0]), &s(&a[1])).map(time)
        });
    }
    for name in ["dateModify", "mustDateModify"] {
        m.insert(name, |_, a| {
            want(a, 2)?;
            let d = parse_duration(&s(&a[0]))
                .ok_or_else(|| format!("time: invalid duration {:?}", s(&a[0])))?;
            Ok(time(time_arg(&a[1]) + d as i64))
        });
    }
    // Sprig's deprecated snake_case spellings.
    m.insert("date_in_zone", |e, a| {
        super::get("dateInZone").ok_or("dateInZone")?(e, a)
    });
    m.insert("date_modify", |e, a| {
        super::get("dateModify").ok_or("dateModify")?(e, a)
    });
    m.insert("must_date_modify", |e, a| {
        super::get("dateModify").ok_or("dateModify")?(e, a)
    });
    m.insert("duration", |_, a| {
        want(a, 1)?;
        Ok(Value::str(duration_string(super::int(&a[0]))))
    });
    m.insert("ago", |_, a| {
        want(a, 1)?;
        Ok(Value::str(duration_string(now_secs() - time_arg(&a[0]))))
    });
    m.insert("durationRound", |_, a| {
        want(a, 1)?;
        let secs = match &a[0] {
            Value::Str(x) => parse_duration(x).unwrap_or(0.0) as i64,
            Value::Obj(_) => now_secs() - time_arg(&a[0]),
            other => super::int(other),
        }
        .unsigned_abs();
        let (year, month, day, hour, minute) = (31_536_000, 2_592_000, 86_400, 3600, 60);
        Ok(Value::str(match secs {
            x if x > year => format!("{}y", x / year),
            x if x > month => format!("{}mo", x / month),
            x if x > day => format!("{}d", x / day),
            x if x > hour => format!("{}h", x / hour),
            x if x > minute => format!("{}m", x / minute),
            x => format!("{x}s"),
        }))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_dates_and_durations() {
        assert_eq!(
            go_date("2006-01-02T15:04:05Z07:00", 0),
            "1970-01-01T00:00:00Z"
        );
        let t = parse_go_date("2006-01-02", "2024-02-29").unwrap_or_default();
        assert_eq!(go_date("Jan 2, 2006 15:04", t), "Feb 29, 2024 00:00");
        let t2 = parse_go_date("2006-01-02T15:04:05Z07:00", "2024-02-29T10:30:00+02:00")
            .unwrap_or_default();
        assert_eq!(go_date("2006-01-02 15:04:05", t2), "2024-02-29 08:30:00");
        assert_eq!(parse_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_duration("-90s"), Some(-90.0));
        assert_eq!(duration_string(3661), "1h1m1s");
        assert_eq!(duration_string(59), "59s");
        assert_eq!(duration_string(0), "0s");
        assert!(parse_go_date("2006-01-02", "2024-13-01").is_err());
    }
}
