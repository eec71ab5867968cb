//! Sync windows: AppProject `spec.syncWindows[]`, deciding whether a sync may run now.
//!
//! Semantics follow Argo CD's `SyncWindows.Matches` and `CanSync`:
//! - A window applies to an application when any of its `applications`, `namespaces` or
//!   `clusters` globs matches (the application name, `destination.namespace`, and
//!   `destination.name` or `destination.server`); with `andOperator: true` every non-empty list
//!   must match. A window with no lists applies to nothing.
//! - A window is active from each time its 5-field cron `schedule` fires (in `timeZone`, default
//!   UTC) for `duration`.
//! - No applicable window: allowed. An active deny window: denied (deny wins), unless the sync
//!   is manual and every active deny window has `manualSync`. Otherwise an active allow window:
//!   allowed. Otherwise, if allow windows apply but none is active: denied, unless the sync is
//!   manual and every one of them has `manualSync`. Otherwise allowed.
//!
//! **Guarantees**: pure (the caller passes `now`); time zones use the IANA database, daylight
//! saving included; the next change is searched for at most [`HORIZON_DAYS`] days and
//! [`MAX_EVENTS`] window boundaries ahead, so a decision is always quick.
//!
//! **Caveats**: a window is active on `[start, start + duration)`; Argo CD's check is strict at
//! the start instant instead (`(start, start + duration]`), which differs only at the exact
//! boundary second. The cron dialect is croner's, a superset of robfig/cron's 5-field syntax
//! (it also accepts `L`, `#` and `W`); `@`-descriptors are rejected as Argo CD rejects them.
//!
//! **Errors**: [`WindowError`] names the window index and field: unknown kind, unparsable
//! schedule, duration or time zone, invalid glob.

use crate::glob::Glob;
use crate::plan::Trigger;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};

/// How far ahead the next change of a decision is searched.
pub const HORIZON_DAYS: i64 = 366;
/// Most window openings and closings examined when searching for the next change, and most
/// steps taken to find where one window's coverage ends.
pub const MAX_EVENTS: usize = 10_000;

/// One entry of AppProject `spec.syncWindows`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncWindow {
    /// `allow` or `deny`.
    #[serde(default)]
    pub kind: String,
    /// When the window opens, 5-field cron.
    #[serde(default)]
    pub schedule: String,
    /// How long it stays open, Go duration (`1h30m`).
    #[serde(default)]
    pub duration: String,
    /// Application name globs.
    #[serde(default)]
    pub applications: Vec<String>,
    /// Destination namespace globs.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Destination cluster name or server globs.
    #[serde(default)]
    pub clusters: Vec<String>,
    /// Let manual syncs through when this window would block them.
    #[serde(default)]
    pub manual_sync: bool,
    /// IANA time zone of the schedule; UTC when empty.
    #[serde(default)]
    pub time_zone: String,
    /// Require every non-empty selector list to match instead of any.
    #[serde(default, rename = "andOperator")]
    pub use_and_operator: bool,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    /// Syncs only inside.
    Allow,
    /// No syncs inside.
    Deny,
}

/// A window that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syncWindows[{index}].{field}: {problem}")]
pub struct WindowError {
    /// Window index.
    pub index: usize,
    /// Field name.
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
}

/// The application a decision is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowTarget {
    /// Application name.
    pub application: String,
    /// `spec.destination.namespace`.
    pub namespace: String,
    /// `spec.destination.name`.
    pub cluster_name: String,
    /// `spec.destination.server`.
    pub cluster_server: String,
}

impl WindowTarget {
    /// The target of Application `name` deploying to `destination` (an empty destination is
    /// the in-cluster one, as Argo CD names it).
    pub fn of_application(name: &str, destination: &crate::application::Destination) -> Self {
        WindowTarget {
            application: name.to_string(),
            namespace: destination.namespace.clone(),
            cluster_name: if destination.name.is_empty() {
                "in-cluster".into()
            } else {
                destination.name.clone()
            },
            cluster_server: if destination.server.is_empty() {
                crate::application::IN_CLUSTER.into()
            } else {
                destination.server.clone()
            },
        }
    }
}

#[derive(Debug, Clone)]
struct Compiled {
    kind: WindowKind,
    cron: Cron,
    duration: Duration,
    zone: Tz,
    applications: Vec<Glob>,
    namespaces: Vec<Glob>,
    clusters: Vec<Glob>,
    manual_sync: bool,
    use_and_operator: bool,
}

/// Compiled sync windows of one project.
#[derive(Debug, Clone, Default)]
pub struct SyncWindows {
    windows: Vec<Compiled>,
}

/// Why a sync is blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockReason {
    /// A deny window is active.
    DenyActive,
    /// Allow windows apply, and none is active.
    OutsideAllow,
}

/// Whether a sync may run, and until when that holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the sync may run now.
    pub allowed: bool,
    /// Set when blocked: why.
    pub reason: Option<BlockReason>,
    /// Set when blocked: indices of the windows that block (the active deny windows, or the
    /// inactive allow windows).
    pub blocking: Vec<usize>,
    /// Indices of the applicable windows active now (what `plumb app get` shows).
    pub active: Vec<usize>,
    /// Indices of every window that applies to the application.
    pub applicable: Vec<usize>,
    /// When `allowed` next changes, if within the search horizon.
    pub next_change: Option<DateTime<Utc>>,
}

impl Decision {
    /// A one-line account, e.g. `sync blocked by deny window 0 until 2026-01-01T06:00:00Z`.
    pub fn message(&self) -> String {
        let windows = |indices: &[usize]| {
            indices
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let until = match self.next_change {
            Some(time) => format!(
                " until {}",
                time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            None => String::new(),
        };
        match self.reason {
            None if self.applicable.is_empty() => "no sync windows apply".into(),
            None => format!("sync allowed by sync windows{until}"),
            Some(BlockReason::DenyActive) => {
                format!(
                    "sync blocked by active deny window(s) {}{until}",
                    windows(&self.blocking)
                )
            }
            Some(BlockReason::OutsideAllow) => {
                format!(
                    "sync blocked outside allow window(s) {}{until}",
                    windows(&self.blocking)
                )
            }
        }
    }
}

impl SyncWindows {
    /// Compiles the windows.
    ///
    /// **Errors**: the first invalid field, see the module documentation.
    pub fn compile(windows: &[SyncWindow]) -> Result<SyncWindows, WindowError> {
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let mut compiled = Vec::with_capacity(windows.len());
        for (index, window) in windows.iter().enumerate() {
            let fail = |field: &'static str, problem: String| WindowError {
                index,
                field,
                problem,
            };
            let kind = match window.kind.as_str() {
                "allow" => WindowKind::Allow,
                "deny" => WindowKind::Deny,
                other => {
                    return Err(fail(
                        "kind",
                        format!("{other:?} must be \"allow\" or \"deny\""),
                    ));
                }
            };
            let schedule = window.schedule.trim();
            if schedule.starts_with('@') {
                return Err(fail(
                    "schedule",
                    format!("{schedule:?}: descriptors are not supported, use 5 fields"),
                ));
            }
            if schedule.split_whitespace().count() != 5 {
                return Err(fail(
                    "schedule",
                    format!("{schedule:?} must have 5 fields (minute hour day month weekday)"),
                ));
            }
            let cron = parser
                .parse(schedule)
                .map_err(|e| fail("schedule", format!("{schedule:?}: {e}")))?;
            // Rejected here so decisions never search for a start that does not exist.
            let reference = DateTime::<Utc>::from_timestamp(946_684_800, 0).unwrap_or_default();
            if cron.find_next_occurrence(&reference, false).is_err() {
                return Err(fail("schedule", format!("{schedule:?} never fires")));
            }
            let duration =
                parse_go_duration(&window.duration).map_err(|problem| fail("duration", problem))?;
            let zone = if window.time_zone.is_empty() {
                Tz::UTC
            } else {
                window.time_zone.parse::<Tz>().map_err(|_| {
                    fail(
                        "timeZone",
                        format!("{:?} is not an IANA time zone", window.time_zone),
                    )
                })?
            };
            let globs =
                |field: &'static str, patterns: &[String]| -> Result<Vec<Glob>, WindowError> {
                    patterns
                        .iter()
                        .map(|p| {
                            Glob::new(p).map_err(|e| WindowError {
                                index,
                                field,
                                problem: e.to_string(),
                            })
                        })
                        .collect()
                };
            compiled.push(Compiled {
                kind,
                cron,
                duration,
                zone,
                applications: globs("applications", &window.applications)?,
                namespaces: globs("namespaces", &window.namespaces)?,
                clusters: globs("clusters", &window.clusters)?,
                manual_sync: window.manual_sync,
                use_and_operator: window.use_and_operator,
            });
        }
        Ok(SyncWindows { windows: compiled })
    }

    /// Whether window `index` is open at `now` (regardless of which applications it applies to).
    pub fn is_active(&self, index: usize, now: DateTime<Utc>) -> bool {
        self.windows.get(index).is_some_and(|w| w.is_active(now))
    }

    /// Decides whether a sync of `target` triggered by `trigger` may run at `now`.
    pub fn decide(&self, target: &WindowTarget, now: DateTime<Utc>, trigger: Trigger) -> Decision {
        let applicable: Vec<usize> = (0..self.windows.len())
            .filter(|&i| self.windows[i].applies_to(target))
            .collect();
        let mut decision = self.decide_at(&applicable, now, trigger);
        decision.next_change = self.next_change(&applicable, now, trigger, decision.allowed);
        decision
    }

    fn decide_at(&self, applicable: &[usize], now: DateTime<Utc>, trigger: Trigger) -> Decision {
        let manual = trigger == Trigger::Manual;
        let active: Vec<usize> = applicable
            .iter()
            .copied()
            .filter(|&i| self.windows[i].is_active(now))
            .collect();
        let mut decision = Decision {
            allowed: true,
            reason: None,
            blocking: Vec::new(),
            active: active.clone(),
            applicable: applicable.to_vec(),
            next_change: None,
        };
        let of_kind = |indices: &[usize], kind: WindowKind| -> Vec<usize> {
            indices
                .iter()
                .copied()
                .filter(|&i| self.windows[i].kind == kind)
                .collect()
        };
        let all_manual = |indices: &[usize]| indices.iter().all(|&i| self.windows[i].manual_sync);
        let active_deny = of_kind(&active, WindowKind::Deny);
        if !active_deny.is_empty() {
            if !(manual && all_manual(&active_deny)) {
                decision.allowed = false;
                decision.reason = Some(BlockReason::DenyActive);
                decision.blocking = active_deny;
            }
            return decision;
        }
        if !of_kind(&active, WindowKind::Allow).is_empty() {
            return decision;
        }
        let inactive_allow = of_kind(applicable, WindowKind::Allow);
        let manual_passes = manual && all_manual(&inactive_allow);
        if !inactive_allow.is_empty() && !manual_passes {
            decision.allowed = false;
            decision.reason = Some(BlockReason::OutsideAllow);
            decision.blocking = inactive_allow;
        }
        decision
    }

    /// The first window boundary after `now` at which `allowed` flips.
    fn next_change(
        &self,
        applicable: &[usize],
        now: DateTime<Utc>,
        trigger: Trigger,
        allowed: bool,
    ) -> Option<DateTime<Utc>> {
        if applicable.is_empty() {
            return None;
        }
        let horizon = later(now, Duration::days(HORIZON_DAYS));
        let mut cursor = now;
        for _ in 0..MAX_EVENTS {
            let next = applicable
                .iter()
                .filter_map(|&i| self.windows[i].next_flip(cursor, horizon))
                .min()?;
            if next > horizon {
                return None;
            }
            if self.decide_at(applicable, next, trigger).allowed != allowed {
                return Some(next);
            }
            cursor = next;
        }
        None
    }
}

impl Compiled {
    fn applies_to(&self, target: &WindowTarget) -> bool {
        let any = |globs: &[Glob], values: &[&str]| {
            globs
                .iter()
                .any(|g| values.iter().any(|v| !v.is_empty() && g.is_match(v)))
        };
        let applications = any(&self.applications, &[&target.application]);
        let namespaces = any(&self.namespaces, &[&target.namespace]);
        let clusters = any(
            &self.clusters,
            &[&target.cluster_name, &target.cluster_server],
        );
        if self.use_and_operator {
            let lists = [
                (self.applications.is_empty(), applications),
                (self.namespaces.is_empty(), namespaces),
                (self.clusters.is_empty(), clusters),
            ];
            lists.iter().any(|(empty, _)| !empty)
                && lists.iter().all(|(empty, matched)| *empty || *matched)
        } else {
            applications || namespaces || clusters
        }
    }

    /// The latest start at or before `now`.
    fn last_start(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&self.zone);
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.last_start(now)
            .is_some_and(|start| now < later(start, self.duration))
    }

    /// The first instant strictly after `after` at which this window opens or closes, within
    /// `horizon`.
    fn next_flip(&self, after: DateTime<Utc>, horizon: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.duration <= Duration::zero() {
            return None;
        }
        let Some(mut end) = self
            .last_start(after)
            .map(|start| later(start, self.duration))
            .filter(|end| *end > after)
        else {
            let local = after.with_timezone(&self.zone);
            return self
                .cron
                .find_next_occurrence(&local, false)
                .ok()
                .map(|t| t.with_timezone(&Utc));
        };
        // Open now: it closes at the end of its coverage, which a start before the current end
        // extends. Each step jumps by up to the duration.
        for _ in 0..MAX_EVENTS {
            if end > horizon {
                return None;
            }
            match self.last_start(end) {
                Some(start) if later(start, self.duration) > end => {
                    end = later(start, self.duration)
                }
                _ => return Some(end),
            }
        }
        None
    }
}

/// `time + duration`, saturating at the end of representable time instead of panicking.
fn later(time: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    time.checked_add_signed(duration)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Whether a sync may run, compiling `windows` on the way; see [`SyncWindows::decide`].
///
/// **Errors**: as [`SyncWindows::compile`].
pub fn is_sync_allowed(
    windows: &[SyncWindow],
    target: &WindowTarget,
    now: DateTime<Utc>,
    trigger: Trigger,
) -> Result<Decision, WindowError> {
    Ok(SyncWindows::compile(windows)?.decide(target, now, trigger))
}

/// Parses a Go duration strictly (`time.ParseDuration`): a sequence of decimal numbers with
/// units `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`; `0` alone is allowed.
///
/// **Errors**: empty text, a number without unit, an unknown unit, a negative or huge value.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::zero());
    }
    if text.is_empty() {
        return Err("missing (e.g. \"1h\")".into());
    }
    if text.starts_with('-') {
        return Err(format!("{text:?} is negative"));
    }
    let body = text.strip_prefix('+').unwrap_or(text);
    let mut total_ns: f64 = 0.0;
    let mut rest = body;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_end == 0 {
            return Err(format!("{text:?} is not a Go duration"));
        }
        let number: f64 = rest[..number_end]
            .parse()
            .map_err(|_| format!("{text:?} is not a Go duration"))?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("{text:?}: missing unit")),
            other => return Err(format!("{text:?}: unknown unit {other:?}")),
        };
        total_ns += number * factor;
        rest = &rest[unit_end..];
    }
    // Go durations are int64 nanoseconds (about 292 years).
    if !total_ns.is_finite() || total_ns > 9.2e18 {
        return Err(format!("{text:?} is too long"));
    }
    Ok(Duration::nanoseconds(total_ns.round() as i64))
}

#[cfg(test)]
#[path = "windows_tests.rs"]
mod tests;
