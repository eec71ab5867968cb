use super::*;
use serde_json::json;

/// A cert-manager Certificate check in the style of Argo CD's bundled one (written for plumb):
/// Issuing first, then Ready.
const CERTIFICATE: &str = r#"
local hs = {status = "Progressing", message = "Waiting for certificate"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Issuing" and condition.status == "True" then
    hs.message = condition.message
    return hs
  end
end
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    if condition.status == "True" then
      hs.status = "Healthy"
    elseif condition.status == "False" then
      hs.status = "Degraded"
    end
    hs.message = condition.message
  end
end
return hs
"#;

fn run(script: &str, object: &Value) -> Result<Health, ScriptError> {
    evaluate(script, object, &Limits::default())
}

fn certificate(conditions: Value) -> Value {
    json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "web", "namespace": "apps", "generation": 1},
        "spec": {"secretName": "web-tls"},
        "status": {"conditions": conditions}})
}

#[test]
fn certificate_script_reports_each_state() {
    let issuing = certificate(json!([
        {"type": "Ready", "status": "False", "message": "Issuing certificate as Secret does not exist"},
        {"type": "Issuing", "status": "True", "message": "Issuing certificate"}]));
    assert_eq!(
        run(CERTIFICATE, &issuing),
        Ok(Health {
            status: HealthStatus::Progressing,
            message: "Issuing certificate".into()
        })
    );
    let ready = certificate(
        json!([{"type": "Ready", "status": "True", "message": "Certificate is up to date"}]),
    );
    assert_eq!(
        run(CERTIFICATE, &ready).map(|h| h.status),
        Ok(HealthStatus::Healthy)
    );
    let failed =
        certificate(json!([{"type": "Ready", "status": "False", "message": "issuer not found"}]));
    let health = run(CERTIFICATE, &failed).unwrap();
    assert_eq!(
        (health.status, health.message.as_str()),
        (HealthStatus::Degraded, "issuer not found")
    );
    let fresh = json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "web"}});
    assert_eq!(
        run(CERTIFICATE, &fresh).map(|h| h.status),
        Ok(HealthStatus::Progressing)
    );
}

#[test]
fn object_values_arrive_as_argo_cd_passes_them() {
    let object = json!({"spec": {"replicas": 3, "ratio": 0.5, "paused": false, "gone": null,
        "list": ["a", null, "c"], "empty": {}}});
    let script = r#"
      assert(obj.spec.replicas == 3 and type(obj.spec.replicas) == "number")
      assert(obj.spec.ratio == 0.5)
      assert(obj.spec.paused == false)
      assert(obj.spec.gone == nil)
      assert(obj.spec.list[1] == "a" and obj.spec.list[2] == nil and obj.spec.list[3] == "c")
      assert(next(obj.spec.empty) == nil)
      assert(obj.status == nil)
      return {status = "Healthy", message = tostring(obj.spec.replicas + 1)}
    "#;
    assert_eq!(
        run(script, &object),
        Ok(Health {
            status: HealthStatus::Healthy,
            message: "4".into()
        })
    );
}

#[test]
fn a_script_that_loops_forever_is_stopped() {
    let limits = Limits {
        time: Duration::from_millis(50),
        ..Limits::default()
    };
    for script in [
        "while true do end",
        "local i = 0 repeat i = i + 1 until false",
        // The script's own pcall cannot swallow the stop.
        "while true do pcall(function() while true do end end) end",
        "while true do xpcall(function() while true do end end, function(e) return e end) end",
        // Nor can an error handler that loops.
        "xpcall(function() error('x') end, function() while true do end end) while true do end",
        "local function f() return f() end return f()",
        "string.gsub(string.rep('a', 100000), 'a', function() while true do end end)",
    ] {
        let started = Instant::now();
        let result = evaluate(script, &json!({}), &limits);
        assert_eq!(
            result,
            Err(ScriptError::Timeout { limit: limits.time }),
            "{script}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{script} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_script_that_allocates_without_end_is_stopped() {
    let limits = Limits {
        memory: 4 << 20,
        time: Duration::from_secs(10),
        ..Limits::default()
    };
    for script in [
        "local t = {} local i = 0 while true do i = i + 1 t[i] = {i, i, i} end",
        "local s = 'x' while true do s = s .. s end",
        "local t = {} while true do t[#t + 1] = string.rep('y', 1000) .. #t end",
        // Caught by the script's pcall: still stopped.
        "local keep = {} while true do pcall(function() local t = {} while true do t[#t+1] = {} end end) keep[#keep+1] = {} end",
        "local t = {} for i = 1, 1e9 do t[i] = tostring(i) end",
    ] {
        let started = Instant::now();
        let result = evaluate(script, &json!({}), &limits);
        assert_eq!(
            result,
            Err(ScriptError::Memory {
                limit: limits.memory
            }),
            "{script}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{script} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn the_memory_limit_does_not_count_the_object() {
    // A 2 MiB object under a 1 MiB limit: the limit is for what the script allocates.
    let big = "z".repeat(2 << 20);
    let limits = Limits {
        memory: 1 << 20,
        ..Limits::default()
    };
    let result = evaluate(
        "return {status = 'Healthy', message = tostring(#obj.data.blob)}",
        &json!({"data": {"blob": big}}),
        &limits,
    );
    assert_eq!(result.map(|h| h.message), Ok((2usize << 20).to_string()));
}

#[test]
fn syntax_errors_name_the_line() {
    let error = run("local hs = {}\nif obj then\nreturn hs", &json!({})).unwrap_err();
    match &error {
        ScriptError::Syntax { message } => assert!(message.contains("health.lua:3"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        check("return {", &Limits::default()),
        Err(ScriptError::Syntax { .. })
    ));
    assert_eq!(check(CERTIFICATE, &Limits::default()), Ok(()));
}

#[test]
fn bytecode_is_refused() {
    let error = run("\x1bLua\x51\x00garbage", &json!({})).unwrap_err();
    assert!(matches!(error, ScriptError::Syntax { .. }), "{error:?}");
}

#[test]
fn oversized_scripts_are_refused() {
    let limits = Limits {
        script_size: 10,
        ..Limits::default()
    };
    let script = "return {status = 'Healthy'}";
    assert_eq!(
        evaluate(script, &json!({}), &limits),
        Err(ScriptError::TooLarge {
            size: script.len(),
            limit: 10
        })
    );
    assert!(matches!(
        check(script, &limits),
        Err(ScriptError::TooLarge { .. })
    ));
}

#[test]
fn garbage_results_are_errors() {
    let cases: [(&str, ScriptError); 6] = [
        (
            "return 42",
            ScriptError::NotATable {
                found: "number".into(),
            },
        ),
        (
            "local x = 1",
            ScriptError::NotATable {
                found: "nil".into(),
            },
        ),
        (
            "return 'Healthy'",
            ScriptError::NotATable {
                found: "string".into(),
            },
        ),
        (
            "return {status = {}}",
            ScriptError::FieldType {
                field: "status",
                found: "table".into(),
            },
        ),
        (
            "return {status = 'Fine'}",
            ScriptError::InvalidStatus {
                found: "Fine".into(),
            },
        ),
        (
            "return {message = 'no status'}",
            ScriptError::InvalidStatus { found: "".into() },
        ),
    ];
    for (script, expected) in cases {
        assert_eq!(run(script, &json!({})), Err(expected), "{script}");
    }
    assert!(matches!(
        run(
            "return {status = 'Healthy', message = function() end}",
            &json!({})
        ),
        Err(ScriptError::FieldType {
            field: "message",
            ..
        })
    ));
    // Argo CD reads the last value returned.
    assert_eq!(
        run("return 1, {status = 'Suspended'}", &json!({})).map(|h| h.status),
        Ok(HealthStatus::Suspended)
    );
}

#[test]
fn runtime_errors_keep_lua_s_message() {
    let error = run("local x = obj.status.conditions[1]", &json!({})).unwrap_err();
    match error {
        ScriptError::Runtime { message } => {
            assert!(message.contains("health.lua:1"), "{message}");
            assert!(message.contains("status"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        run("error('boom', 0)", &json!({})),
        Err(ScriptError::Runtime {
            message: "boom".into()
        })
    );
}

#[test]
fn the_sandbox_has_no_way_out() {
    for (script, needle) in [
        ("return io.open('/etc/passwd')", "io is not available"),
        ("return os.execute('true')", "execute"),
        ("return os.getenv('HOME')", "getenv"),
        ("return os.exit(1)", "exit"),
        ("return require('io')", "module \"io\" not found"),
        ("return load('return 1')", "load is not available"),
        (
            "return loadstring('return 1')",
            "loadstring is not available",
        ),
        ("return dofile('/etc/passwd')", "dofile is not available"),
        (
            "return loadfile('/etc/passwd')",
            "loadfile is not available",
        ),
        ("return debug.getinfo(1)", "debug is not available"),
        (
            "return package.loadlib('x', 'y')",
            "package is not available",
        ),
        ("return string.dump(function() end)", "dump"),
        (
            "return coroutine.create(function() end)",
            "coroutine is not available",
        ),
        ("return newproxy(true)", "newproxy"),
        ("return collectgarbage('count')", "collectgarbage"),
    ] {
        match run(script, &json!({})) {
            Err(ScriptError::Runtime { message }) => {
                assert!(message.contains(needle), "{script}: {message}")
            }
            other => panic!("{script}: {other:?}"),
        }
    }
}

#[test]
fn argo_cd_s_safe_libraries_are_there() {
    let script = r##"
      local os2 = require("os")
      assert(os2.time == os.time)
      assert(os.time({year = 2024, month = 1, day = 2, hour = 0}) == 1704153600)
      assert(os.time({year = 2024, month = 13, day = 1, hour = 0}) == 1735689600)
      assert(os.date("!%Y-%m-%d %H:%M:%S", 1704153600) == "2024-01-02 00:00:00")
      local t = os.date("!*t", 1704153600)
      assert(t.year == 2024 and t.month == 1 and t.day == 2 and t.wday == 3)
      assert(os.date("%Q%%", 0) == "%Q%")
      assert(type(os.time()) == "number")
      assert(string.find("Ready: True", "True", 1, true) == 8)
      assert(("abc"):upper() == "ABC")
      assert(string.format("%d/%d", 1, 2) == "1/2")
      assert(table.concat({"a", "b"}, ",") == "a,b")
      assert(math.floor(2.5) == 2)
      assert(select("#", 1, 2) == 2)
      assert(tonumber("3") == 3)
      local ok, err = pcall(error, "caught")
      assert(not ok and err == "caught")
      print("printing is allowed and goes nowhere")
      local version = string.match("v1.2.3", "^v(%d+)%.(%d+)")
      assert(version == "1")
      return {status = "Healthy"}
    "##;
    assert_eq!(
        run(script, &json!({})).map(|h| h.status),
        Ok(HealthStatus::Healthy)
    );
    assert!(matches!(
        run("return os.time({year = 2024})", &json!({})),
        Err(ScriptError::Runtime { .. })
    ));
    assert!(matches!(
        run(
            "return os.time({year = 1e300, month = 1, day = 1})",
            &json!({})
        ),
        Err(ScriptError::Runtime { .. })
    ));
    assert!(matches!(
        run("return os.date('%Y', 1e300)", &json!({})),
        Err(ScriptError::Runtime { .. })
    ));
}

#[test]
fn globals_do_not_leak_between_runs() {
    let first = run(
        "hs = {status = 'Degraded'} leaked = true return hs",
        &json!({}),
    );
    assert_eq!(first.map(|h| h.status), Ok(HealthStatus::Degraded));
    let second = run(
        "if leaked then return {status = 'Degraded'} end return {status = 'Healthy'}",
        &json!({}),
    );
    assert_eq!(second.map(|h| h.status), Ok(HealthStatus::Healthy));
}

#[test]
fn costly_patterns_and_repeats_are_refused_quickly() {
    let object = json!({"message": "a".repeat(100_000)});
    for script in [
        "return string.find(obj.message, '.-.-.-.-x')",
        "return obj.message:match('(a*)(a*)(a*)b')",
        "for w in string.gmatch(obj.message, 'a-a-a-b') do end",
        "return string.gsub(obj.message, '.-.-.-b', '')",
        "return string.rep('', 1e15)",
        "return ('ab'):rep(1e12)",
    ] {
        let started = Instant::now();
        match run(script, &object) {
            Err(ScriptError::Runtime { message }) => assert!(
                message.contains("too long") || message.contains("memory limit"),
                "{script}: {message}"
            ),
            other => panic!("{script}: {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(1), "{script}");
    }
    // Cheap ones still run, and a refusal can be caught like any error.
    let script = r#"
      assert(string.find(obj.message, "b", 1, true) == nil)
      assert(string.find(obj.message, "aaa") == 1)
      local ok = pcall(string.find, obj.message, ".-.-.-.-x")
      assert(not ok)
      return {status = "Healthy", message = string.rep("ab", 3)}
    "#;
    assert_eq!(run(script, &object).map(|h| h.message), Ok("ababab".into()));
}

#[test]
fn pattern_cost_counts_repetitions() {
    assert_eq!(pattern_cost(9, b"abc"), 10.0);
    assert_eq!(pattern_cost(9, b"^abc"), 1.0);
    assert_eq!(pattern_cost(9, b"a*"), 100.0);
    assert_eq!(pattern_cost(9, b"^%d+%.%d+"), 100.0);
    assert_eq!(pattern_cost(9, b"[%]*]-"), 100.0);
    assert_eq!(pattern_cost(9, b"%bxy"), 100.0);
    assert_eq!(pattern_cost(9, b"a?b?"), 40.0);
    assert_eq!(pattern_cost(9, b"%"), 10.0);
    assert_eq!(pattern_cost(9, b"[^"), 10.0);
}

#[test]
fn deep_objects_are_refused_not_overflowed() {
    let mut object = json!("leaf");
    for _ in 0..(MAX_OBJECT_DEPTH + 5) {
        object = json!({"x": object});
    }
    assert!(matches!(
        run("return {status = 'Healthy'}", &object),
        Err(ScriptError::Object { .. })
    ));
}
