//! The safe `os` table of Argo CD's Lua sandbox: `os.time` and `os.date`, nothing else.
//!
//! Times are UTC (Argo CD uses the controller's local zone, which in a container is UTC).

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use mlua::{Lua, Table, Value};

/// Years `os.time` accepts, so the arithmetic never overflows.
const YEARS: std::ops::RangeInclusive<i64> = -100_000..=100_000;

/// Conversion specifiers `os.date` formats; any other is written as it is, as Argo CD does.
const SPECIFIERS: &[u8] = b"aAbBcdFHIjmMpSwxXyYzZ";

/// The `os` table.
pub(crate) fn table(lua: &Lua) -> mlua::Result<Table> {
    let os = lua.create_table()?;
    os.raw_set("time", lua.create_function(time)?)?;
    os.raw_set("date", lua.create_function(date)?)?;
    Ok(os)
}

fn time(_: &Lua, fields: Option<Table>) -> mlua::Result<f64> {
    let Some(fields) = fields else {
        return Ok(Utc::now().timestamp() as f64);
    };
    let field = |name: &str, default: Option<i64>| -> mlua::Result<i64> {
        match fields.raw_get::<Value>(name)? {
            Value::Integer(i) => Ok(i),
            Value::Number(n) if n.is_finite() => Ok(n.trunc() as i64),
            Value::Nil => default.ok_or_else(|| {
                mlua::Error::runtime(format!("field '{name}' missing in date table"))
            }),
            _ => Err(mlua::Error::runtime(format!(
                "field '{name}' in date table is not a number"
            ))),
        }
    };
    let year = field("year", None)?;
    let month = field("month", None)?;
    let day = field("day", None)?;
    let hour = field("hour", Some(12))?;
    let minute = field("min", Some(0))?;
    let second = field("sec", Some(0))?;
    if !YEARS.contains(&year) {
        return Err(mlua::Error::runtime("year in date table out of range"));
    }
    // Out-of-range fields carry over as C's mktime does (month 13 is January of next year).
    let months = year * 12 + (month - 1);
    let (year, month0) = (months.div_euclid(12), months.rem_euclid(12));
    let base = i32::try_from(year)
        .ok()
        .and_then(|year| NaiveDate::from_ymd_opt(year, month0 as u32 + 1, 1))
        .ok_or_else(|| mlua::Error::runtime("date table out of range"))?;
    let offset = [
        Duration::try_days(day.saturating_sub(1)),
        Duration::try_hours(hour),
        Duration::try_minutes(minute),
        Duration::try_seconds(second),
    ]
    .into_iter()
    .try_fold(Duration::zero(), |sum, part| sum.checked_add(&part?))
    .ok_or_else(|| mlua::Error::runtime("date table out of range"))?;
    let moment = base
        .and_hms_opt(0, 0, 0)
        .and_then(|start| start.checked_add_signed(offset))
        .ok_or_else(|| mlua::Error::runtime("date table out of range"))?;
    Ok(Utc.from_utc_datetime(&moment).timestamp() as f64)
}

fn date(lua: &Lua, (format, at): (Option<String>, Option<f64>)) -> mlua::Result<Value> {
    let format = format.unwrap_or_else(|| "%c".to_string());
    let format = format.strip_prefix('!').unwrap_or(&format);
    let moment = match at {
        None => Utc::now(),
        Some(seconds) if seconds.is_finite() => DateTime::from_timestamp(seconds as i64, 0)
            .ok_or_else(|| mlua::Error::runtime("time out of range"))?,
        Some(_) => return Err(mlua::Error::runtime("time out of range")),
    };
    if format.starts_with("*t") {
        let fields = lua.create_table()?;
        fields.raw_set("year", moment.year())?;
        fields.raw_set("month", moment.month())?;
        fields.raw_set("day", moment.day())?;
        fields.raw_set("hour", moment.hour())?;
        fields.raw_set("min", moment.minute())?;
        fields.raw_set("sec", moment.second())?;
        fields.raw_set("wday", moment.weekday().number_from_sunday())?;
        fields.raw_set("yday", moment.ordinal())?;
        fields.raw_set("isdst", false)?;
        return Ok(Value::Table(fields));
    }
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(spec) if spec.is_ascii() && SPECIFIERS.contains(&(spec as u8)) => {
                let chrono_spec = match spec {
                    'c' => "%a %b %e %H:%M:%S %Y".to_string(),
                    'x' => "%m/%d/%y".to_string(),
                    'X' => "%H:%M:%S".to_string(),
                    'Z' => "UTC".to_string(),
                    other => format!("%{other}"),
                };
                out.push_str(&moment.format(&chrono_spec).to_string());
            }
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    Ok(Value::String(lua.create_string(&out)?))
}
