//! Argo CD `health.lua` scripts, run in a sandboxed Lua 5.1.
//!
//! The contract is Argo CD's: the script sees the live object as the global `obj` and returns a
//! table `{status = "Healthy"|"Progressing"|"Degraded"|"Suspended"|"Missing"|"Unknown",
//! message = "..."}`. Every run gets a fresh interpreter, so nothing a script leaves in its
//! globals reaches the next run.
//!
//! **Guarantees**: a script never reads files, runs programs, loads code or bytecode, or sees
//! the controller's environment. Its run is stopped once it exceeds [`Limits::time`] (checked
//! every [`HOOK_INSTRUCTIONS`] instructions) or allocates more than [`Limits::memory`]; neither
//! can be caught by the script's own `pcall`. Pattern matching and `string.rep`, which run in C
//! where no instruction count is taken, refuse inputs whose worst case is too costly (see
//! [`MAX_PATTERN_STEPS`]). Every failure is a [`ScriptError`], never a panic.
//!
//! **What a script can use**: the base library without `load`, `loadstring`, `dofile`,
//! `loadfile`, `collectgarbage`, `newproxy` and `coroutine` (`print` does nothing); `table`,
//! `string` (without `dump`) and `math`; and `os.time`/`os.date`, the two functions Argo CD's safe
//! `os` offers (in UTC here). `require` knows only `"os"`, `"string"`, `"table"` and `"math"`,
//! as Argo CD's preloaded safe `os` lets scripts write `local os = require("os")`.

use crate::os;
use mlua::chunk::ChunkMode;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, VmState};
use plumb_core::health::{Health, HealthStatus};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How many Lua instructions run between two looks at the clock.
pub const HOOK_INSTRUCTIONS: u32 = 1000;

/// The most steps a pattern match may take in the worst case (an estimate from the subject's
/// length and the pattern's repetitions; see the module docs).
pub const MAX_PATTERN_STEPS: f64 = 5.0e7;

/// Deepest object nesting passed to a script.
pub const MAX_OBJECT_DEPTH: usize = 128;

/// Resource limits of one script run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest a run may take.
    pub time: Duration,
    /// Most bytes a script may allocate beyond the object it is given.
    pub memory: usize,
    /// Longest script accepted, in bytes.
    pub script_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time: Duration::from_millis(100),
            memory: 16 << 20,
            script_size: 256 << 10,
        }
    }
}

/// Why a script gave no health.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// The script is longer than [`Limits::script_size`].
    #[error("health.lua is {size} bytes long, more than the {limit} allowed")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The script does not parse.
    #[error("health.lua does not parse: {message}")]
    Syntax {
        /// Lua's message, with the line.
        message: String,
    },
    /// The script raised an error.
    #[error("health.lua failed: {message}")]
    Runtime {
        /// Lua's message, with the line.
        message: String,
    },
    /// The script ran out of time and was stopped.
    #[error("health.lua ran longer than {} ms and was stopped", limit.as_millis())]
    Timeout {
        /// The limit.
        limit: Duration,
    },
    /// The script allocated too much and was stopped.
    #[error("health.lua allocated more than {limit} bytes and was stopped")]
    Memory {
        /// The limit.
        limit: usize,
    },
    /// The script returned something other than a table.
    #[error("health.lua returned {found}, not a table {{status = ..., message = ...}}")]
    NotATable {
        /// The Lua type returned.
        found: String,
    },
    /// A field of the returned table has the wrong type.
    #[error("health.lua returned a {field} that is a {found}, not a string")]
    FieldType {
        /// `status` or `message`.
        field: &'static str,
        /// The Lua type found.
        found: String,
    },
    /// The returned status is not one of Argo CD's.
    #[error(
        "health.lua returned an invalid health status {found:?} (expected Healthy, Progressing, Degraded, Suspended, Missing or Unknown)"
    )]
    InvalidStatus {
        /// What it returned (empty when it returned none).
        found: String,
    },
    /// The object could not be turned into Lua values.
    #[error("the object cannot be passed to health.lua: {reason}")]
    Object {
        /// Why.
        reason: String,
    },
    /// The interpreter could not be set up.
    #[error("cannot set up the Lua sandbox: {message}")]
    Sandbox {
        /// Why.
        message: String,
    },
}

/// Checks that `script` parses, without running it.
///
/// **Errors**: [`ScriptError::TooLarge`], [`ScriptError::Syntax`].
pub fn check(script: &str, limits: &Limits) -> Result<(), ScriptError> {
    if script.len() > limits.script_size {
        return Err(ScriptError::TooLarge {
            size: script.len(),
            limit: limits.script_size,
        });
    }
    let lua = Lua::new_with(StdLib::NONE, LuaOptions::default()).map_err(sandbox_error)?;
    let _ = lua.set_memory_limit(limits.memory.saturating_add(1 << 20));
    compile(&lua, script).map(|_| ())
}

/// Runs `script` on `object` and returns the health it reports.
///
/// **Errors**: every way a script can fail, as a [`ScriptError`]; the run is bounded by
/// `limits`.
pub fn evaluate(script: &str, object: &Value, limits: &Limits) -> Result<Health, ScriptError> {
    if script.len() > limits.script_size {
        return Err(ScriptError::TooLarge {
            size: script.len(),
            limit: limits.script_size,
        });
    }
    let stop = Stop::default();
    let lua = sandbox(&stop, limits).map_err(sandbox_error)?;
    let obj = to_lua(&lua, object, 0).map_err(|error| ScriptError::Object {
        reason: error_message(&error),
    })?;
    lua.globals()
        .set("obj", obj)
        .map_err(|error| ScriptError::Object {
            reason: error_message(&error),
        })?;
    // The object is the input, not the script's allocation: the limit starts from here.
    let _ = lua.set_memory_limit(lua.used_memory().saturating_add(limits.memory));
    let function = compile(&lua, script)?;
    let deadline = Instant::now() + limits.time;
    let timed_out = stop.time.clone();
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(HOOK_INSTRUCTIONS),
        move |_, _| {
            if timed_out.load(Ordering::Relaxed) || Instant::now() >= deadline {
                timed_out.store(true, Ordering::Relaxed);
                Err(mlua::Error::runtime("time limit exceeded"))
            } else {
                Ok(VmState::Continue)
            }
        },
    )
    .map_err(sandbox_error)?;
    let returned = function.call::<MultiValue>(());
    lua.remove_hook();
    let returned = match returned {
        Ok(values) => values,
        Err(error) => return Err(stop.classify(&error, limits)),
    };
    health_of(returned.into_iter().last().unwrap_or(mlua::Value::Nil))
}

/// Which limit stopped a run; set where the limit is hit, so a script's `pcall` cannot hide it.
#[derive(Default, Clone)]
struct Stop {
    time: Arc<AtomicBool>,
    memory: Arc<AtomicBool>,
}

impl Stop {
    fn any(&self) -> bool {
        self.time.load(Ordering::Relaxed) || self.memory.load(Ordering::Relaxed)
    }

    fn classify(&self, error: &mlua::Error, limits: &Limits) -> ScriptError {
        if self.memory.load(Ordering::Relaxed) || is_memory_error(error) {
            ScriptError::Memory {
                limit: limits.memory,
            }
        } else if self.time.load(Ordering::Relaxed) {
            ScriptError::Timeout { limit: limits.time }
        } else {
            ScriptError::Runtime {
                message: hint(error_message(error)),
            }
        }
    }
}

fn is_memory_error(error: &mlua::Error) -> bool {
    match error {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } => is_memory_error(cause),
        mlua::Error::WithContext { cause, .. } => is_memory_error(cause),
        _ => false,
    }
}

fn compile(lua: &Lua, script: &str) -> Result<Function, ScriptError> {
    lua.load(script)
        .set_name("=health.lua")
        .set_mode(ChunkMode::Text)
        .into_function()
        .map_err(|error| match error {
            mlua::Error::SyntaxError { message, .. } => ScriptError::Syntax { message },
            mlua::Error::MemoryError(_) => ScriptError::Memory {
                limit: lua_memory_limit(lua),
            },
            other => ScriptError::Syntax {
                message: error_message(&other),
            },
        })
}

fn lua_memory_limit(lua: &Lua) -> usize {
    lua.set_memory_limit(0)
        .and_then(|limit| lua.set_memory_limit(limit))
        .unwrap_or(0)
}

fn sandbox_error(error: mlua::Error) -> ScriptError {
    ScriptError::Sandbox {
        message: error_message(&error),
    }
}

/// Lua's own message, without mlua's wrapping of callback errors and the traceback it adds.
fn error_message(error: &mlua::Error) -> String {
    match error {
        mlua::Error::RuntimeError(message) | mlua::Error::MemoryError(message) => message
            .split_once("\nstack traceback:")
            .map_or(message.as_str(), |(message, _)| message)
            .to_string(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::CallbackError { cause, .. } => error_message(cause),
        mlua::Error::WithContext { cause, .. } => error_message(cause),
        other => other.to_string(),
    }
}

/// Globals Argo CD's `useOpenLibs` would offer and plumb never does.
const NEVER_AVAILABLE: [&str; 8] = [
    "io",
    "debug",
    "package",
    "load",
    "loadstring",
    "dofile",
    "loadfile",
    "coroutine",
];

fn hint(message: String) -> String {
    for name in NEVER_AVAILABLE {
        if message.contains(&format!("global '{name}'")) {
            return format!("{message} ({name} is not available in plumb's Lua sandbox)");
        }
    }
    message
}

/// Sets the libraries up (see the module docs).
fn sandbox(stop: &Stop, limits: &Limits) -> mlua::Result<Lua> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::default(),
    )?;
    // Generous while the sandbox is built and the object converted; tightened before the run.
    lua.set_memory_limit(limits.memory.saturating_add(64 << 20))?;
    let globals = lua.globals();
    for name in [
        "load",
        "loadstring",
        "dofile",
        "loadfile",
        "collectgarbage",
        "newproxy",
        "coroutine",
        "gcinfo",
        "module",
        "require",
        "package",
    ] {
        globals.raw_set(name, mlua::Value::Nil)?;
    }
    globals.raw_set("print", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    let string: Table = globals.get("string")?;
    string.raw_set("dump", mlua::Value::Nil)?;

    let stopped = {
        let stop = stop.clone();
        lua.create_function(move |_, (ok, error): (mlua::Value, mlua::Value)| {
            if !ok.as_boolean().unwrap_or(true)
                && error
                    .as_string()
                    .is_some_and(|message| message.as_bytes().starts_with(b"not enough memory"))
            {
                stop.memory.store(true, Ordering::Relaxed);
            }
            Ok(stop.any())
        })?
    };
    let (pcall, xpcall): (Function, Function) = lua
        .load(GUARDED_PCALL)
        .set_name("=sandbox")
        .set_mode(ChunkMode::Text)
        .call((
            globals.get::<Function>("pcall")?,
            globals.get::<Function>("xpcall")?,
            stopped,
        ))?;
    globals.raw_set("pcall", pcall)?;
    globals.raw_set("xpcall", xpcall)?;

    let memory = limits.memory;
    let pattern_problem =
        lua.create_function(|_, (subject, pattern): (mlua::Value, mlua::Value)| {
            Ok(pattern_problem(&subject, &pattern))
        })?;
    let rep_problem =
        lua.create_function(move |_, (subject, count): (mlua::Value, mlua::Value)| {
            Ok(rep_problem(&subject, &count, memory))
        })?;
    lua.load(GUARDED_STRING)
        .set_name("=sandbox")
        .set_mode(ChunkMode::Text)
        .call::<()>((string.clone(), pattern_problem, rep_problem))?;

    let os = os::table(&lua)?;
    globals.raw_set("os", os.clone())?;
    let math: Table = globals.get("math")?;
    let table: Table = globals.get("table")?;
    let require = lua.create_function(move |_, name: mlua::Value| {
        let name = name.as_string().map(|s| s.to_string_lossy()).unwrap_or_default();
        match name.as_str() {
            "os" => Ok(os.clone()),
            "string" => Ok(string.clone()),
            "table" => Ok(table.clone()),
            "math" => Ok(math.clone()),
            _ => Err(mlua::Error::runtime(format!(
                "module {name:?} not found (plumb's Lua sandbox offers only os, string, table and math)"
            ))),
        }
    })?;
    globals.raw_set("require", require)?;
    Ok(lua)
}

/// `pcall`/`xpcall` that rethrow once a limit was hit, so a script cannot catch its own stop.
const GUARDED_PCALL: &str = r#"
local raw_pcall, raw_xpcall, stopped = ...
local error = error
local function finish(...)
  local ok, err = ...
  if stopped(ok, err) then error("stopped by plumb's limits", 0) end
  return ...
end
-- Lua 5.1 runs a handler for an error raised inside the handler (the hook's stop) with hooks
-- off: once stopped, the handler must not run the script's code again.
return function(f, ...) return finish(raw_pcall(f, ...)) end,
       function(f, handler)
         local function guarded(e)
           if stopped(true, nil) then return e end
           return handler(e)
         end
         return finish(raw_xpcall(f, guarded))
       end
"#;

/// Pattern functions and `string.rep` checked before they run in C (see [`MAX_PATTERN_STEPS`]).
const GUARDED_STRING: &str = r#"
local string, pattern_problem, rep_problem = ...
local error = error
local find, match, gmatch, gsub, rep = string.find, string.match, string.gmatch, string.gsub, string.rep
string.find = function(s, p, init, plain)
  if not plain then
    local problem = pattern_problem(s, p)
    if problem then error(problem, 2) end
  end
  return find(s, p, init, plain)
end
string.match = function(s, p, init)
  local problem = pattern_problem(s, p)
  if problem then error(problem, 2) end
  return match(s, p, init)
end
string.gmatch = function(s, p)
  local problem = pattern_problem(s, p)
  if problem then error(problem, 2) end
  return gmatch(s, p)
end
string.gsub = function(s, p, r, n)
  local problem = pattern_problem(s, p)
  if problem then error(problem, 2) end
  return gsub(s, p, r, n)
end
string.rep = function(s, n)
  local problem = rep_problem(s, n)
  if problem then error(problem, 2) end
  return rep(s, n)
end
"#;

/// The length in bytes of a value Lua would coerce to a string.
fn string_length(value: &mlua::Value) -> Option<usize> {
    match value {
        mlua::Value::String(s) => Some(s.as_bytes().len()),
        mlua::Value::Integer(_) | mlua::Value::Number(_) => Some(24),
        _ => None,
    }
}

fn pattern_problem(subject: &mlua::Value, pattern: &mlua::Value) -> Option<String> {
    let length = string_length(subject)?;
    let pattern = match pattern {
        mlua::Value::String(s) => s.as_bytes().to_vec(),
        _ => return None,
    };
    let steps = pattern_cost(length, &pattern);
    (steps > MAX_PATTERN_STEPS).then(|| {
        format!(
            "pattern {:?} on a {length}-byte string could take too long (plumb refuses matches estimated above {MAX_PATTERN_STEPS:e} steps)",
            String::from_utf8_lossy(&pattern)
        )
    })
}

/// A worst-case estimate of a Lua pattern match: every start position (one when anchored) times
/// the subject's length for each `*`, `+`, `-` and `%b`, and two for each `?`.
pub(crate) fn pattern_cost(length: usize, pattern: &[u8]) -> f64 {
    let n = (length + 1) as f64;
    let mut factor = 1.0f64;
    let mut i = 0;
    let anchored = pattern.first() == Some(&b'^');
    if anchored {
        i = 1;
    }
    while i < pattern.len() {
        // Skip one single-character class, then look at what follows it.
        match pattern[i] {
            b'%' => {
                if pattern.get(i + 1) == Some(&b'b') {
                    factor *= n;
                    i += 4;
                    continue;
                }
                i += 2;
            }
            b'[' => {
                i += 1;
                if pattern.get(i) == Some(&b'^') {
                    i += 1;
                }
                // A `]` right after the opening is a literal.
                if pattern.get(i) == Some(&b']') {
                    i += 1;
                }
                while i < pattern.len() && pattern[i] != b']' {
                    i += if pattern[i] == b'%' { 2 } else { 1 };
                }
                i += 1;
            }
            b'(' | b')' => {
                i += 1;
                continue;
            }
            _ => i += 1,
        }
        match pattern.get(i) {
            Some(b'*' | b'+' | b'-') => {
                factor *= n;
                i += 1;
            }
            Some(b'?') => {
                factor *= 2.0;
                i += 1;
            }
            _ => {}
        }
        if factor.is_infinite() {
            break;
        }
    }
    if anchored { factor } else { factor * n }
}

fn rep_problem(subject: &mlua::Value, count: &mlua::Value, memory: usize) -> Option<String> {
    let length = string_length(subject)?;
    let count = match count {
        mlua::Value::Integer(i) => *i as f64,
        mlua::Value::Number(n) => *n,
        mlua::Value::String(s) => s.to_str().ok()?.trim().parse().ok()?,
        _ => return None,
    };
    // An empty string repeated still loops `count` times in C.
    let bytes = (length.max(1) as f64) * count;
    (bytes > memory as f64).then(|| {
        format!("string.rep would build {bytes:e} bytes, more than the {memory}-byte memory limit")
    })
}

/// Argo CD passes numbers as Lua numbers, `null` as `nil`, arrays as sequences.
fn to_lua(lua: &Lua, value: &Value, depth: usize) -> mlua::Result<mlua::Value> {
    if depth > MAX_OBJECT_DEPTH {
        return Err(mlua::Error::runtime(format!(
            "nested deeper than {MAX_OBJECT_DEPTH} levels"
        )));
    }
    Ok(match value {
        Value::Null => mlua::Value::Nil,
        Value::Bool(b) => mlua::Value::Boolean(*b),
        Value::Number(n) => mlua::Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => mlua::Value::String(lua.create_string(s)?),
        Value::Array(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (index, item) in items.iter().enumerate() {
                table.raw_set(index + 1, to_lua(lua, item, depth + 1)?)?;
            }
            mlua::Value::Table(table)
        }
        Value::Object(fields) => {
            let table = lua.create_table_with_capacity(0, fields.len())?;
            for (key, item) in fields {
                table.raw_set(key.as_str(), to_lua(lua, item, depth + 1)?)?;
            }
            mlua::Value::Table(table)
        }
    })
}

/// The type as Lua 5.1's `type()` names it (mlua tells integers apart; Lua 5.1 does not).
fn lua_type(value: &mlua::Value) -> &'static str {
    match value {
        mlua::Value::Integer(_) => "number",
        other => other.type_name(),
    }
}

fn health_of(returned: mlua::Value) -> Result<Health, ScriptError> {
    let table = match returned {
        mlua::Value::Table(table) => table,
        other => {
            return Err(ScriptError::NotATable {
                found: lua_type(&other).to_string(),
            });
        }
    };
    let field = |name: &'static str| -> Result<String, ScriptError> {
        match table.raw_get::<mlua::Value>(name) {
            Ok(mlua::Value::Nil) => Ok(String::new()),
            Ok(mlua::Value::String(s)) => Ok(s.to_string_lossy()),
            Ok(mlua::Value::Integer(i)) if name == "message" => Ok(i.to_string()),
            Ok(mlua::Value::Number(n)) if name == "message" => Ok(n.to_string()),
            Ok(other) => Err(ScriptError::FieldType {
                field: name,
                found: lua_type(&other).to_string(),
            }),
            Err(error) => Err(ScriptError::FieldType {
                field: name,
                found: error_message(&error),
            }),
        }
    };
    let status = field("status")?;
    let message = field("message")?;
    let status = match status.as_str() {
        "Healthy" => HealthStatus::Healthy,
        "Progressing" => HealthStatus::Progressing,
        "Degraded" => HealthStatus::Degraded,
        "Suspended" => HealthStatus::Suspended,
        "Missing" => HealthStatus::Missing,
        "Unknown" => HealthStatus::Unknown,
        _ => return Err(ScriptError::InvalidStatus { found: status }),
    };
    Ok(Health { status, message })
}

#[cfg(test)]
#[path = "lua_tests.rs"]
mod tests;
