//! Executes parsed templates against [`Value`]s with Go's semantics.

use std::collections::HashMap;
use std::rc::Rc;

use super::ParseError;
use super::parse::{Arg, ArgKind, Cmd, Control, Node, Pipe, Pos, Tree, TreeMap, parse};
use crate::funcs;
use crate::value::Value;

/// An execution error, already formatted the way Go formats it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ExecError(pub String);

/// Limits protecting the renderer from hostile charts.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Maximum nesting of `template`/`include`/`tpl` calls.
    pub max_depth: usize,
    /// Maximum bytes one template may produce.
    pub max_output: usize,
    /// Wall-clock budget for one `template()` call (all templates together).
    pub max_duration: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 1000,
            max_output: 64 << 20,
            max_duration: std::time::Duration::from_secs(60),
        }
    }
}

/// A set of named templates plus execution state shared by nested calls.
pub struct Engine {
    layers: Vec<Rc<TreeMap>>,
    depth: usize,
    /// Limits applied to every execution.
    pub limits: Limits,
    /// Names of the templates whose functions are running (innermost last).
    pub current_template: Vec<String>,
    /// Cluster access for `lookup`; `None` renders offline (empty results).
    pub lookup: Option<crate::Lookup>,
    started: std::time::Instant,
    steps: u64,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

struct Frame {
    vars: Vec<(String, Value)>,
    out: String,
}

type Res<T> = Result<T, ExecError>;

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    /// An empty template set.
    pub fn new() -> Self {
        Engine {
            layers: vec![Rc::new(HashMap::new())],
            depth: 0,
            limits: Limits::default(),
            current_template: Vec::new(),
            lookup: None,
            started: std::time::Instant::now(),
            steps: 0,
        }
    }

    /// Parse `src` as template `name` and add it (and its `define`s) to the set.
    /// Later definitions replace earlier ones, except that an empty body never replaces.
    pub fn add(&mut self, name: &str, src: &str) -> Result<(), ParseError> {
        let trees = parse(name, src, &|f| funcs::exists(f))?;
        let map = Rc::make_mut(&mut self.layers[0]);
        for t in trees {
            let empty = t
                .root
                .iter()
                .all(|n| matches!(n, Node::Text(s) if s.trim().is_empty()));
            if empty && t.name != name && map.contains_key(&t.name) {
                continue;
            }
            map.insert(t.name.clone(), t);
        }
        Ok(())
    }

    /// Current nesting of template calls.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Is a template by this name defined?
    pub fn has(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }

    fn lookup(&self, name: &str) -> Option<Rc<Tree>> {
        self.layers.iter().rev().find_map(|l| l.get(name).cloned())
    }

    /// Execute the named template with `data` as dot.
    pub fn execute(&mut self, name: &str, data: &Value) -> Res<String> {
        let tree = self.lookup(name).ok_or_else(|| {
            ExecError(format!(
                "template: no template {name:?} associated with template \"gotpl\""
            ))
        })?;
        self.run_tree(&tree, data)
    }

    /// Parse `src` as a temporary template named `name` (overlaying the set) and execute it;
    /// used by Helm's `tpl`.
    pub fn execute_text(&mut self, name: &str, src: &str, data: &Value) -> Result<String, String> {
        let trees = parse(name, src, &|f| funcs::exists(f)).map_err(|e| e.to_string())?;
        let mut layer = TreeMap::new();
        for t in trees {
            layer.insert(t.name.clone(), t);
        }
        let main = layer.get(name).cloned();
        self.layers.push(Rc::new(layer));
        let r = match main {
            Some(t) => self.run_tree(&t, data).map_err(|e| e.0),
            None => Ok(String::new()),
        };
        self.layers.pop();
        r
    }

    fn run_tree(&mut self, tree: &Rc<Tree>, data: &Value) -> Res<String> {
        if self.depth >= self.limits.max_depth {
            return Err(ExecError(format!(
                "template: {}: exceeded maximum template depth ({})",
                tree.name, self.limits.max_depth
            )));
        }
        self.depth += 1;
        let mut frame = Frame {
            vars: vec![("$".to_string(), data.clone())],
            out: String::new(),
        };
        let r = self.walk_list(tree, &mut frame, data, &tree.root);
        self.depth -= 1;
        r.map(|_| frame.out)
    }

    fn err(&self, tree: &Tree, pos: &Pos, at: &str, msg: impl std::fmt::Display) -> ExecError {
        ExecError(format!(
            "template: {}:{}:{}: executing \"{}\" at <{}>: {}",
            tree.parse_name, pos.line, pos.col, tree.name, at, msg
        ))
    }

    fn walk_list(&mut self, t: &Tree, f: &mut Frame, dot: &Value, list: &[Node]) -> Res<Flow> {
        for n in list {
            match self.walk(t, f, dot, n)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    /// Count a step of work; every few thousand steps compare against the time budget.
    fn tick(&mut self, t: &Tree) -> Res<()> {
        self.steps += 1;
        if self.steps.is_multiple_of(4096) && self.started.elapsed() > self.limits.max_duration {
            return Err(ExecError(format!(
                "template: {}: rendering exceeded the time limit of {:?}",
                t.name, self.limits.max_duration
            )));
        }
        Ok(())
    }

    fn walk(&mut self, t: &Tree, f: &mut Frame, dot: &Value, node: &Node) -> Res<Flow> {
        self.tick(t)?;
        match node {
            Node::Text(s) => f.out.push_str(s),
            Node::Action(p) => {
                let v = self.eval_pipe(t, f, dot, p, true)?;
                if p.decl.is_empty() {
                    f.out.push_str(&v.to_template_string());
                }
            }
            Node::If(c) => {
                let mark = f.vars.len();
                let v = self.eval_pipe(t, f, dot, &c.pipe, true)?;
                let r = if v.truthy() {
                    self.walk_list(t, f, dot, &c.list)?
                } else if let Some(e) = &c.else_list {
                    self.walk_list(t, f, dot, e)?
                } else {
                    Flow::Normal
                };
                f.vars.truncate(mark);
                return Ok(r);
            }
            Node::With(c) => {
                let mark = f.vars.len();
                let v = self.eval_pipe(t, f, dot, &c.pipe, true)?;
                let r = if v.truthy() {
                    self.walk_list(t, f, &v, &c.list)?
                } else if let Some(e) = &c.else_list {
                    self.walk_list(t, f, dot, e)?
                } else {
                    Flow::Normal
                };
                f.vars.truncate(mark);
                return Ok(r);
            }
            Node::Range(c) => return self.walk_range(t, f, dot, c),
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
            Node::Template {
                pos,
                src,
                name,
                pipe,
            } => {
                let data = match pipe {
                    Some(p) => self.eval_pipe(t, f, dot, p, false)?,
                    None => Value::Nil,
                };
                let Some(tree) = self.lookup(name) else {
                    return Err(self.err(t, pos, src, format!("template {name:?} not defined")));
                };
                let out = self.run_tree(&tree, &data)?;
                f.out.push_str(&out);
            }
        }
        if f.out.len() > self.limits.max_output {
            return Err(ExecError(format!(
                "template: {}: output exceeds the limit of {} bytes",
                t.name, self.limits.max_output
            )));
        }
        Ok(Flow::Normal)
    }

    fn walk_range(&mut self, t: &Tree, f: &mut Frame, dot: &Value, c: &Control) -> Res<Flow> {
        let mark = f.vars.len();
        let v = self.eval_pipe(t, f, dot, &c.pipe, false)?;
        let items: Vec<(Value, Value)> = match &v {
            Value::List(l) => l
                .borrow()
                .iter()
                .enumerate()
                .map(|(i, x)| (Value::Int(i as i64), x.clone()))
                .collect(),
            Value::Map(m) => m
                .borrow()
                .iter()
                .map(|(k, x)| (Value::str(k.as_str()), x.clone()))
                .collect(),
            Value::Int(n) => (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
            Value::Obj(o) if o.entries().is_some() => o.entries().unwrap_or_default(),
            Value::Nil => Vec::new(),
            other => {
                return Err(self.err(
                    t,
                    &c.pipe.pos,
                    &c.pipe.src,
                    format!("range can't iterate over {}", other.to_go_string()),
                ));
            }
        };
        if items.is_empty() {
            if let Some(e) = &c.else_list {
                let r = self.walk_list(t, f, dot, e)?;
                f.vars.truncate(mark);
                return Ok(r);
            }
            return Ok(Flow::Normal);
        }
        for (k, elem) in items {
            self.tick(t)?;
            match c.pipe.decl.len() {
                1 => set_or_push(f, &c.pipe.decl[0], elem.clone(), c.pipe.is_assign, mark),
                2 => {
                    set_or_push(f, &c.pipe.decl[0], k, c.pipe.is_assign, mark);
                    set_or_push(f, &c.pipe.decl[1], elem.clone(), c.pipe.is_assign, mark + 1);
                }
                _ => {}
            }
            let body_mark = f.vars.len();
            let r = self.walk_list(t, f, &elem, &c.list)?;
            f.vars.truncate(body_mark);
            if matches!(r, Flow::Break) {
                break;
            }
        }
        f.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    fn eval_pipe(
        &mut self,
        t: &Tree,
        f: &mut Frame,
        dot: &Value,
        p: &Pipe,
        declare: bool,
    ) -> Res<Value> {
        let mut val: Option<Value> = None;
        for cmd in &p.cmds {
            val = Some(self.eval_cmd(t, f, dot, cmd, val)?);
        }
        let v = val.unwrap_or_default();
        if declare {
            for name in &p.decl {
                if p.is_assign {
                    if let Some(slot) = f.vars.iter_mut().rev().find(|(n, _)| n == name) {
                        slot.1 = v.clone();
                    }
                } else {
                    f.vars.push((name.clone(), v.clone()));
                }
            }
        }
        Ok(v)
    }

    fn eval_cmd(
        &mut self,
        t: &Tree,
        f: &mut Frame,
        dot: &Value,
        cmd: &Cmd,
        fin: Option<Value>,
    ) -> Res<Value> {
        let first = &cmd.args[0];
        let rest = &cmd.args[1..];
        match &first.kind {
            ArgKind::Func(name) => self.call_func(t, f, dot, cmd, name, rest, fin),
            ArgKind::Field(idents) => {
                self.eval_chain(t, f, dot, first, dot.clone(), false, idents, rest, fin)
            }
            ArgKind::Var(name, idents) => {
                let v = lookup_var(f, name);
                if idents.is_empty() {
                    self.not_func(t, first, rest, &fin)?;
                    return Ok(v);
                }
                self.eval_chain(t, f, dot, first, v, false, idents, rest, fin)
            }
            ArgKind::Chain(p, idents) => {
                let v = self.eval_pipe(t, f, dot, p, true)?;
                if idents.is_empty() {
                    self.not_func(t, first, rest, &fin)?;
                    return Ok(v);
                }
                self.eval_chain(t, f, dot, first, v, false, idents, rest, fin)
            }
            ArgKind::Nil => Err(self.err(t, &first.pos, &first.src, "nil is not a command")),
            _ => {
                self.not_func(t, first, rest, &fin)?;
                self.eval_arg(t, f, dot, first)
            }
        }
    }

    fn not_func(&self, t: &Tree, first: &Arg, rest: &[Arg], fin: &Option<Value>) -> Res<()> {
        if !rest.is_empty() || fin.is_some() {
            return Err(self.err(
                t,
                &first.pos,
                &first.src,
                format!("can't give argument to non-function {}", first.src),
            ));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_chain(
        &mut self,
        t: &Tree,
        f: &mut Frame,
        dot: &Value,
        node: &Arg,
        mut recv: Value,
        mut typed: bool,
        idents: &[String],
        args: &[Arg],
        fin: Option<Value>,
    ) -> Res<Value> {
        let n = idents.len();
        for (i, name) in idents.iter().enumerate() {
            let last = i + 1 == n;
            let call_args = if last && (!args.is_empty() || fin.is_some()) {
                let mut vals = Vec::new();
                for a in args {
                    vals.push(self.eval_arg(t, f, dot, a)?);
                }
                if let Some(v) = &fin {
                    vals.push(v.clone());
                }
                Some(vals)
            } else {
                None
            };
            recv = match &recv {
                Value::Nil => {
                    if typed {
                        return Err(self.err(
                            t,
                            &node.pos,
                            &node.src,
                            format!("nil pointer evaluating interface {{}}.{name}"),
                        ));
                    }
                    Value::Nil
                }
                Value::Map(m) => {
                    if call_args.is_some() {
                        return Err(self.err(
                            t,
                            &node.pos,
                            &node.src,
                            format!("{name} is not a method but has arguments"),
                        ));
                    }
                    m.borrow().get(name).cloned().unwrap_or_default()
                }
                Value::Obj(o) => match call_args {
                    None => match o.field(name) {
                        Some(v) => v,
                        None => match o.call(name, &[]) {
                            Some(r) => r.map_err(|e| {
                                self.err(
                                    t,
                                    &node.pos,
                                    &node.src,
                                    format!("error calling {name}: {e}"),
                                )
                            })?,
                            None => {
                                return Err(self.err(
                                    t,
                                    &node.pos,
                                    &node.src,
                                    format!(
                                        "can't evaluate field {name} in type {}",
                                        o.type_name()
                                    ),
                                ));
                            }
                        },
                    },
                    Some(a) => match o.call(name, &a) {
                        Some(r) => r.map_err(|e| {
                            self.err(
                                t,
                                &node.pos,
                                &node.src,
                                format!("error calling {name}: {e}"),
                            )
                        })?,
                        None => {
                            return Err(self.err(
                                t,
                                &node.pos,
                                &node.src,
                                format!("can't evaluate field {name} in type {}", o.type_name()),
                            ));
                        }
                    },
                },
                other => {
                    let ty = if typed {
                        "interface {}"
                    } else {
                        other.type_name()
                    };
                    return Err(self.err(
                        t,
                        &node.pos,
                        &node.src,
                        format!("can't evaluate field {name} in type {ty}"),
                    ));
                }
            };
            typed = true;
        }
        Ok(recv)
    }

    fn eval_arg(&mut self, t: &Tree, f: &mut Frame, dot: &Value, a: &Arg) -> Res<Value> {
        Ok(match &a.kind {
            ArgKind::Dot => dot.clone(),
            ArgKind::Nil => Value::Nil,
            ArgKind::Bool(b) => Value::Bool(*b),
            ArgKind::Int(i) => Value::Int(*i),
            ArgKind::Float(x) => Value::Float(*x),
            ArgKind::Str(s) => Value::str(s.as_str()),
            ArgKind::Field(idents) => {
                self.eval_chain(t, f, dot, a, dot.clone(), false, idents, &[], None)?
            }
            ArgKind::Var(name, idents) => {
                let v = lookup_var(f, name);
                self.eval_chain(t, f, dot, a, v, false, idents, &[], None)?
            }
            ArgKind::Chain(p, idents) => {
                let v = self.eval_pipe(t, f, dot, p, true)?;
                self.eval_chain(t, f, dot, a, v, false, idents, &[], None)?
            }
            ArgKind::Func(name) => {
                let cmd = Cmd {
                    pos: a.pos.clone(),
                    src: a.src.clone(),
                    args: Vec::new(),
                };
                self.call_func(t, f, dot, &cmd, name, &[], None)?
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn call_func(
        &mut self,
        t: &Tree,
        f: &mut Frame,
        dot: &Value,
        cmd: &Cmd,
        name: &str,
        args: &[Arg],
        fin: Option<Value>,
    ) -> Res<Value> {
        if name == "and" || name == "or" {
            let total = args.len() + usize::from(fin.is_some());
            if total == 0 {
                return Err(self.err(
                    t,
                    &cmd.pos,
                    &cmd.src,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut last = Value::Nil;
            for a in args {
                last = self.eval_arg(t, f, dot, a)?;
                if last.truthy() != (name == "and") {
                    return Ok(last);
                }
            }
            if let Some(v) = fin {
                last = v;
            }
            return Ok(last);
        }
        let strs = funcs::string_params(name);
        let mut vals = Vec::with_capacity(args.len() + 1);
        for (i, a) in args.iter().enumerate() {
            let v = self.eval_arg(t, f, dot, a)?;
            if v.is_nil() && strs.contains(&i) {
                // Go refuses nil for a string parameter before calling the function.
                return Err(self.err(t, &a.pos, &a.src, "invalid value; expected string"));
            }
            vals.push(v);
        }
        if let Some(v) = fin {
            if v.is_nil() && strs.contains(&args.len()) {
                let head = &cmd.args[0];
                return Err(self.err(t, &head.pos, &head.src, "invalid value; expected string"));
            }
            vals.push(v);
        }
        let Some(func) = funcs::get(name) else {
            return Err(self.err(
                t,
                &cmd.pos,
                &cmd.src,
                format!("function {name:?} not defined"),
            ));
        };
        self.current_template.push(t.name.clone());
        let r = func(self, &vals);
        self.current_template.pop();
        r.map_err(|e| self.err(t, &cmd.pos, &cmd.src, format!("error calling {name}: {e}")))
    }
}

fn lookup_var(f: &Frame, name: &str) -> Value {
    f.vars
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn set_or_push(f: &mut Frame, name: &str, v: Value, assign: bool, _mark: usize) {
    if assign && let Some(slot) = f.vars.iter_mut().rev().find(|(n, _)| n == name) {
        slot.1 = v;
        return;
    }
    // Re-declared per iteration: replace this iteration's binding if present.
    if let Some(slot) = f.vars.iter_mut().skip(_mark).find(|(n, _)| n == name) {
        slot.1 = v;
    } else {
        f.vars.push((name.to_string(), v));
    }
}
