use super::*;
use chrono::TimeZone;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn window(kind: &str, schedule: &str, duration: &str) -> SyncWindow {
    SyncWindow {
        kind: kind.into(),
        schedule: schedule.into(),
        duration: duration.into(),
        applications: vec!["*".into()],
        ..Default::default()
    }
}

fn target() -> WindowTarget {
    WindowTarget {
        application: "guestbook".into(),
        namespace: "prod".into(),
        cluster_name: "in-cluster".into(),
        cluster_server: "https://kubernetes.default.svc".into(),
    }
}

fn decide(windows: &[SyncWindow], now: &str, trigger: Trigger) -> Decision {
    is_sync_allowed(windows, &target(), at(now), trigger).unwrap()
}

#[test]
fn no_windows_or_no_matching_windows_allow() {
    let d = decide(&[], "2026-01-05T12:00:00Z", Trigger::Automated);
    assert!(d.allowed && d.applicable.is_empty() && d.next_change.is_none());
    let mut other = window("deny", "* * * * *", "1h");
    other.applications = vec!["other-*".into()];
    let d = decide(&[other], "2026-01-05T12:00:00Z", Trigger::Automated);
    assert!(d.allowed);
    assert!(d.applicable.is_empty());
    assert_eq!(d.message(), "no sync windows apply");
}

#[test]
fn allow_window_permits_only_inside() {
    // 22:00 for one hour, every day.
    let windows = [window("allow", "0 22 * * *", "1h")];
    let d = decide(&windows, "2026-01-05T22:30:00Z", Trigger::Automated);
    assert!(d.allowed);
    assert_eq!(d.active, [0]);
    assert_eq!(d.next_change, Some(at("2026-01-05T23:00:00Z")));
    let d = decide(&windows, "2026-01-05T23:00:00Z", Trigger::Automated);
    assert!(!d.allowed);
    assert_eq!(d.reason, Some(BlockReason::OutsideAllow));
    assert_eq!(d.blocking, [0]);
    assert_eq!(d.next_change, Some(at("2026-01-06T22:00:00Z")));
    assert_eq!(
        d.message(),
        "sync blocked outside allow window(s) 0 until 2026-01-06T22:00:00Z"
    );
    // The start instant is inside.
    assert!(decide(&windows, "2026-01-06T22:00:00Z", Trigger::Automated).allowed);
}

#[test]
fn deny_wins_over_allow() {
    let windows = [
        window("allow", "0 * * * *", "1h"),
        window("deny", "0 12 * * *", "2h"),
    ];
    let d = decide(&windows, "2026-01-05T12:30:00Z", Trigger::Automated);
    assert!(!d.allowed);
    assert_eq!(d.reason, Some(BlockReason::DenyActive));
    assert_eq!(d.blocking, [1]);
    assert_eq!(d.active, [0, 1]);
    assert_eq!(d.next_change, Some(at("2026-01-05T14:00:00Z")));
    assert!(decide(&windows, "2026-01-05T14:00:00Z", Trigger::Automated).allowed);
}

#[test]
fn manual_sync_passes_deny_windows_only_when_all_allow_it() {
    let mut lenient = window("deny", "0 0 * * *", "24h");
    lenient.manual_sync = true;
    let strict = window("deny", "0 0 * * *", "24h");
    let d = decide(
        std::slice::from_ref(&lenient),
        "2026-01-05T10:00:00Z",
        Trigger::Manual,
    );
    assert!(d.allowed);
    assert!(
        !decide(
            std::slice::from_ref(&lenient),
            "2026-01-05T10:00:00Z",
            Trigger::Automated
        )
        .allowed
    );
    let d = decide(&[lenient, strict], "2026-01-05T10:00:00Z", Trigger::Manual);
    assert!(!d.allowed);
    assert_eq!(d.blocking, [0, 1]);
}

#[test]
fn manual_sync_outside_allow_windows() {
    let mut allow = window("allow", "0 22 * * *", "1h");
    allow.manual_sync = true;
    assert!(
        decide(
            std::slice::from_ref(&allow),
            "2026-01-05T10:00:00Z",
            Trigger::Manual
        )
        .allowed
    );
    assert!(!decide(&[allow], "2026-01-05T10:00:00Z", Trigger::Automated).allowed);
}

#[test]
fn time_zones_shift_the_schedule_and_follow_daylight_saving() {
    // 09:00 in New York: 14:00 UTC in winter, 13:00 UTC in summer.
    let mut w = window("allow", "0 9 * * *", "1h");
    w.time_zone = "America/New_York".into();
    let windows = [w];
    assert!(decide(&windows, "2026-01-05T14:30:00Z", Trigger::Automated).allowed);
    assert!(!decide(&windows, "2026-01-05T13:30:00Z", Trigger::Automated).allowed);
    assert!(decide(&windows, "2026-07-06T13:30:00Z", Trigger::Automated).allowed);
    assert!(!decide(&windows, "2026-07-06T14:30:00Z", Trigger::Automated).allowed);
    let d = decide(&windows, "2026-01-05T16:00:00Z", Trigger::Automated);
    assert_eq!(d.next_change, Some(at("2026-01-06T14:00:00Z")));
}

#[test]
fn windows_spanning_midnight_and_weekdays() {
    // Deny from Friday 18:00 for the whole weekend (60h).
    let windows = [window("deny", "0 18 * * FRI", "60h")];
    // 2026-01-09 is a Friday.
    assert!(decide(&windows, "2026-01-09T17:59:00Z", Trigger::Automated).allowed);
    let d = decide(&windows, "2026-01-10T03:00:00Z", Trigger::Automated);
    assert!(!d.allowed);
    assert_eq!(d.next_change, Some(at("2026-01-12T06:00:00Z")));
    assert!(decide(&windows, "2026-01-12T06:00:00Z", Trigger::Automated).allowed);
}

#[test]
fn overlapping_windows_next_change_skips_non_flipping_boundaries() {
    // Two deny windows overlapping: 10:00-12:00 and 11:00-13:00; the sync opens at 13:00.
    let windows = [
        window("deny", "0 10 * * *", "2h"),
        window("deny", "0 11 * * *", "2h"),
    ];
    let d = decide(&windows, "2026-01-05T10:30:00Z", Trigger::Automated);
    assert!(!d.allowed);
    assert_eq!(d.next_change, Some(at("2026-01-05T13:00:00Z")));
    // A long window re-fired before it ends stays open until the last start's end.
    let windows = [window("deny", "0 * * * *", "90m")];
    let d = decide(&windows, "2026-01-05T10:45:00Z", Trigger::Automated);
    assert!(!d.allowed);
    assert_eq!(
        d.next_change, None,
        "always denied: no change within the horizon"
    );
}

#[test]
fn matching_by_namespace_cluster_and_and_operator() {
    let mut by_ns = window("deny", "* * * * *", "1h");
    by_ns.applications.clear();
    by_ns.namespaces = vec!["prod*".into()];
    assert!(
        !decide(
            std::slice::from_ref(&by_ns),
            "2026-01-05T10:00:00Z",
            Trigger::Automated
        )
        .allowed
    );
    let mut by_cluster = window("deny", "* * * * *", "1h");
    by_cluster.applications.clear();
    by_cluster.clusters = vec!["https://kubernetes.*".into()];
    assert!(
        !decide(
            std::slice::from_ref(&by_cluster),
            "2026-01-05T10:00:00Z",
            Trigger::Automated
        )
        .allowed
    );
    by_cluster.clusters = vec!["in-*".into()];
    assert!(
        !decide(
            std::slice::from_ref(&by_cluster),
            "2026-01-05T10:00:00Z",
            Trigger::Automated
        )
        .allowed
    );
    // OR by default: the application does not match, the namespace does.
    let mut mixed = window("deny", "* * * * *", "1h");
    mixed.applications = vec!["other".into()];
    mixed.namespaces = vec!["prod".into()];
    assert!(
        !decide(
            std::slice::from_ref(&mixed),
            "2026-01-05T10:00:00Z",
            Trigger::Automated
        )
        .allowed
    );
    mixed.use_and_operator = true;
    assert!(
        decide(
            std::slice::from_ref(&mixed),
            "2026-01-05T10:00:00Z",
            Trigger::Automated
        )
        .allowed
    );
    mixed.applications = vec!["guest*".into()];
    assert!(!decide(&[mixed], "2026-01-05T10:00:00Z", Trigger::Automated).allowed);
    // A window that names nothing applies to nothing.
    let mut empty = window("deny", "* * * * *", "1h");
    empty.applications.clear();
    assert!(decide(&[empty], "2026-01-05T10:00:00Z", Trigger::Automated).allowed);
}

#[test]
fn invalid_windows_name_index_and_field() {
    let cases = [
        (window("block", "* * * * *", "1h"), "syncWindows[0].kind"),
        (window("deny", "* * * *", "1h"), "syncWindows[0].schedule"),
        (
            window("deny", "0 0 * * * *", "1h"),
            "syncWindows[0].schedule",
        ),
        (
            window("deny", "61 * * * *", "1h"),
            "syncWindows[0].schedule",
        ),
        (window("deny", "@daily", "1h"), "syncWindows[0].schedule"),
        (window("deny", "* * * * *", "1"), "syncWindows[0].duration"),
        (window("deny", "* * * * *", "1d"), "syncWindows[0].duration"),
        (window("deny", "* * * * *", ""), "syncWindows[0].duration"),
        (
            window("deny", "* * * * *", "-1h"),
            "syncWindows[0].duration",
        ),
        (
            SyncWindow {
                time_zone: "Mars/Olympus".into(),
                ..window("deny", "* * * * *", "1h")
            },
            "syncWindows[0].timeZone",
        ),
        (
            SyncWindow {
                namespaces: vec!["[x".into()],
                ..window("deny", "* * * * *", "1h")
            },
            "syncWindows[0].namespaces",
        ),
    ];
    for (w, prefix) in cases {
        let error = SyncWindows::compile(&[w]).unwrap_err().to_string();
        assert!(error.starts_with(prefix), "{error}");
    }
}

#[test]
fn go_durations() {
    assert_eq!(parse_go_duration("1h30m").unwrap(), Duration::minutes(90));
    assert_eq!(parse_go_duration("1.5h").unwrap(), Duration::minutes(90));
    assert_eq!(parse_go_duration("0").unwrap(), Duration::zero());
    assert_eq!(
        parse_go_duration("250ms").unwrap(),
        Duration::milliseconds(250)
    );
    assert!(parse_go_duration("h").is_err());
    assert!(parse_go_duration("99999999999h").is_err());
}

#[test]
fn impossible_schedule_is_rejected() {
    let error = SyncWindows::compile(&[window("allow", "0 0 30 2 *", "1h")]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "syncWindows[0].schedule: \"0 0 30 2 *\" never fires"
    );
}

#[test]
fn zero_duration_window_is_never_active() {
    let windows = [window("deny", "* * * * *", "0")];
    let d = decide(&windows, "2026-01-05T10:00:00Z", Trigger::Automated);
    assert!(d.allowed && d.active.is_empty());
    assert_eq!(d.next_change, None);
}

#[test]
fn parses_the_project_form() {
    let json = serde_json::json!([{"kind": "deny", "schedule": "0 22 * * *", "duration": "1h",
        "applications": ["*-prod"], "manualSync": true, "timeZone": "Europe/Berlin", "andOperator": true}]);
    let windows: Vec<SyncWindow> = serde_json::from_value(json).unwrap();
    assert!(windows[0].manual_sync && windows[0].use_and_operator);
    let compiled = SyncWindows::compile(&windows).unwrap();
    // 22:00 Berlin in January is 21:00 UTC.
    assert!(compiled.is_active(0, Utc.with_ymd_and_hms(2026, 1, 5, 21, 30, 0).unwrap()));
    assert!(!compiled.is_active(0, Utc.with_ymd_and_hms(2026, 1, 5, 22, 30, 0).unwrap()));
}

#[test]
fn extreme_times_do_not_panic() {
    let windows = SyncWindows::compile(&[window("deny", "0 0 * * *", "2500000h")]).unwrap();
    let end_of_time = DateTime::<Utc>::MAX_UTC;
    let d = windows.decide(&target(), end_of_time, Trigger::Automated);
    assert!(d.next_change.is_none() || d.next_change > Some(end_of_time - Duration::days(1)));
    let start_of_time = DateTime::<Utc>::MIN_UTC;
    let _ = windows.decide(&target(), start_of_time, Trigger::Manual);
}
