//! Parser for Go's text/template: builds trees for a file and its `define`/`block`s.

use std::collections::HashMap;
use std::rc::Rc;

use super::ParseError;
use super::lex::{Tok, Token, lex};

/// A position in a named template source, for error messages.
#[derive(Clone, Debug)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// A parsed template body.
#[derive(Debug)]
pub struct Tree {
    /// Name the template is registered under.
    pub name: String,
    /// Name of the file it came from (Go's ParseName), used in error locations.
    pub parse_name: String,
    pub root: Vec<Node>,
}

/// A node of the template tree.
#[derive(Debug)]
pub enum Node {
    Text(String),
    Action(Pipe),
    If(Control),
    Range(Control),
    With(Control),
    Template {
        pos: Pos,
        src: String,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

/// `if`/`range`/`with` with their bodies.
#[derive(Debug)]
pub struct Control {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

/// A pipeline, optionally declaring or assigning variables.
#[derive(Debug)]
pub struct Pipe {
    pub pos: Pos,
    pub src: String,
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Cmd>,
}

/// One command of a pipeline.
#[derive(Debug)]
pub struct Cmd {
    pub pos: Pos,
    pub src: String,
    pub args: Vec<Arg>,
}

/// An operand.
#[derive(Debug)]
pub struct Arg {
    pub pos: Pos,
    pub src: String,
    pub kind: ArgKind,
}

/// Operand kinds.
#[derive(Debug)]
pub enum ArgKind {
    /// `.A.B`
    Field(Vec<String>),
    /// `$x.A.B`
    Var(String, Vec<String>),
    Dot,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A function name.
    Func(String),
    /// `(pipeline).A.B`
    Chain(Box<Pipe>, Vec<String>),
}

/// Result of parsing one source: its own tree and the templates it defines.
pub type Parsed = Vec<Rc<Tree>>;

struct Parser<'a> {
    name: &'a str,
    src: &'a str,
    toks: Vec<Token>,
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
    defined: Vec<Rc<Tree>>,
    is_func: &'a dyn Fn(&str) -> bool,
    depth: usize,
    /// Byte offsets of every `\n`, for line/column lookups.
    newlines: Vec<usize>,
}

/// Go's `maxStackDepth`: nesting of parentheses and control structures.
const MAX_PARSE_DEPTH: usize = 10000;

/// Parse `src` (registered as `name`); returns the main tree first, then defined templates.
pub fn parse(name: &str, src: &str, is_func: &dyn Fn(&str) -> bool) -> Result<Parsed, ParseError> {
    let toks = lex(name, src)?;
    let mut p = Parser {
        name,
        src,
        toks,
        i: 0,
        vars: vec!["$".to_string()],
        range_depth: 0,
        defined: Vec::new(),
        is_func,
        depth: 0,
        newlines: src.match_indices('\n').map(|(i, _)| i).collect(),
    };
    let mut root = Vec::new();
    loop {
        if p.peek() == &Tok::Eof {
            break;
        }
        if p.peek() == &Tok::Open && p.peek_at(1) == &Tok::Ident("define".into()) {
            p.i += 2;
            p.parse_define()?;
            continue;
        }
        match p.parse_node()? {
            Item::Node(n) => root.push(n),
            Item::End(off) => return Err(p.err(off, "unexpected {{end}}")),
            Item::Else(off, _) => return Err(p.err(off, "unexpected {{else}}")),
        }
    }
    let mut out = vec![Rc::new(Tree {
        name: name.to_string(),
        parse_name: name.to_string(),
        root,
    })];
    out.append(&mut p.defined);
    Ok(out)
}

enum Item {
    Node(Node),
    End(usize),
    /// `{{else}}` (None) or `{{else if|with ...` (the keyword, not yet consumed).
    Else(usize, Option<String>),
}

impl<'a> Parser<'a> {
    fn err(&self, off: usize, msg: impl Into<String>) -> ParseError {
        ParseError {
            name: self.name.to_string(),
            line: self.pos(off).line,
            msg: msg.into(),
        }
    }
    fn peek(&self) -> &Tok {
        self.peek_at(0)
    }
    fn peek_at(&self, n: usize) -> &Tok {
        self.toks
            .get(self.i + n)
            .map(|t| &t.tok)
            .unwrap_or(&Tok::Eof)
    }
    fn off(&self) -> usize {
        self.toks
            .get(self.i)
            .map(|t| t.off)
            .unwrap_or(self.src.len())
    }
    fn next(&mut self) -> Token {
        let t = self.toks.get(self.i).cloned().unwrap_or(Token {
            tok: Tok::Eof,
            off: self.src.len(),
            space_before: false,
        });
        self.i += 1;
        t
    }
    fn pos(&self, off: usize) -> Pos {
        let off = off.min(self.src.len());
        // Newlines strictly before `off`.
        let before = self.newlines.partition_point(|&n| n < off);
        let line_start = if before == 0 {
            0
        } else {
            self.newlines[before - 1] + 1
        };
        Pos {
            line: before + 1,
            col: off - line_start,
        }
    }
    fn expect_close(&mut self, ctx: &str) -> Result<(), ParseError> {
        let t = self.next();
        if t.tok != Tok::Close {
            return Err(self.err(t.off, format!("unexpected {} in {ctx}", describe(&t.tok))));
        }
        Ok(())
    }

    fn parse_define(&mut self) -> Result<(), ParseError> {
        let t = self.next();
        let Tok::Str(name) = t.tok else {
            return Err(self.err(t.off, "unexpected token in define clause"));
        };
        self.expect_close("define clause")?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let (list, end) = self.parse_list()?;
        self.vars = saved;
        if let Item::Else(off, _) = end {
            return Err(self.err(off, "unexpected {{else}} in define clause"));
        }
        self.defined.push(Rc::new(Tree {
            name,
            parse_name: self.name.to_string(),
            root: list,
        }));
        Ok(())
    }

    /// Parse nodes until `{{end}}` or `{{else}}`.
    fn parse_list(&mut self) -> Result<(Vec<Node>, Item), ParseError> {
        let mut list = Vec::new();
        loop {
            if self.peek() == &Tok::Eof {
                return Err(self.err(self.src.len(), "unexpected EOF"));
            }
            match self.parse_node()? {
                Item::Node(n) => list.push(n),
                other => return Ok((list, other)),
            }
        }
    }

    fn parse_node(&mut self) -> Result<Item, ParseError> {
        let t = self.next();
        match t.tok {
            Tok::Text(s) => Ok(Item::Node(Node::Text(s))),
            Tok::Open => self.parse_action(t.off),
            other => Err(self.err(t.off, format!("unexpected {}", describe(&other)))),
        }
    }

    fn parse_action(&mut self, open_off: usize) -> Result<Item, ParseError> {
        if let Tok::Ident(kw) = self.peek().clone() {
            let kw_off = self.off();
            match kw.as_str() {
                "end" => {
                    self.i += 1;
                    self.expect_close("end")?;
                    return Ok(Item::End(open_off));
                }
                "else" => {
                    self.i += 1;
                    if let Tok::Ident(k) = self.peek().clone()
                        && (k == "if" || k == "with")
                    {
                        return Ok(Item::Else(open_off, Some(k)));
                    }
                    self.expect_close("else")?;
                    return Ok(Item::Else(open_off, None));
                }
                "if" | "range" | "with" => {
                    self.i += 1;
                    return Ok(Item::Node(self.parse_control(&kw, kw_off)?));
                }
                "template" | "block" => {
                    self.i += 1;
                    return Ok(Item::Node(self.parse_template(&kw, kw_off)?));
                }
                "define" => return Err(self.err(kw_off, "unexpected define clause")),
                "break" | "continue" => {
                    self.i += 1;
                    if self.range_depth == 0 {
                        return Err(self.err(kw_off, format!("{{{{{kw}}}}} outside {{{{range}}}}")));
                    }
                    self.expect_close(&kw)?;
                    return Ok(Item::Node(if kw == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    }));
                }
                _ => {}
            }
        }
        let pipe = self.parse_pipe("command", true)?;
        Ok(Item::Node(Node::Action(pipe)))
    }

    fn parse_control(&mut self, kw: &str, kw_off: usize) -> Result<Node, ParseError> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return Err(self.err(kw_off, "max expression depth exceeded"));
        }
        let r = self.parse_control_inner(kw, kw_off);
        self.depth -= 1;
        r
    }

    fn parse_control_inner(&mut self, kw: &str, kw_off: usize) -> Result<Node, ParseError> {
        let mark = self.vars.len();
        let pipe = self.parse_pipe(kw, kw == "range")?;
        if kw == "range" {
            self.range_depth += 1;
        }
        let (list, end) = self.parse_list()?;
        if kw == "range" {
            self.range_depth -= 1;
        }
        let else_list = match end {
            Item::End(_) => None,
            Item::Else(_, None) => {
                let (list, end2) = self.parse_list()?;
                if let Item::Else(off, _) = end2 {
                    return Err(self.err(off, "expected end; found {{else}}"));
                }
                Some(list)
            }
            Item::Else(off, Some(k)) => {
                // Go allows `else if` in if and `else with` in with.
                if !(k == "if" && kw == "if" || k == "with" && kw == "with") {
                    return Err(self.err(off, format!("unexpected {{{{else {k}}}}}")));
                }
                let kw2_off = self.off();
                self.i += 1;
                Some(vec![self.parse_control(&k, kw2_off)?])
            }
            Item::Node(_) => None,
        };
        self.vars.truncate(mark);
        let _ = kw_off;
        let c = Control {
            pipe,
            list,
            else_list,
        };
        Ok(match kw {
            "if" => Node::If(c),
            "range" => Node::Range(c),
            _ => Node::With(c),
        })
    }

    fn parse_template(&mut self, kw: &str, kw_off: usize) -> Result<Node, ParseError> {
        let t = self.next();
        let Tok::Str(name) = t.tok else {
            return Err(self.err(
                t.off,
                format!("unexpected {} in {kw} clause", describe(&t.tok)),
            ));
        };
        let pipe = if self.peek() == &Tok::Close {
            self.i += 1;
            None
        } else {
            Some(self.parse_pipe(kw, false)?)
        };
        if kw == "block" {
            let saved = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
            let (list, end) = self.parse_list()?;
            self.vars = saved;
            if let Item::Else(off, _) = end {
                return Err(self.err(off, "unexpected {{else}} in block clause"));
            }
            self.defined.push(Rc::new(Tree {
                name: name.clone(),
                parse_name: self.name.to_string(),
                root: list,
            }));
        }
        let end = self
            .toks
            .get(self.i.saturating_sub(1))
            .map(|t| t.off)
            .unwrap_or(kw_off);
        Ok(Node::Template {
            pos: self.pos(kw_off),
            src: format!("{{{{{}}}}}", self.src.get(kw_off..end).unwrap_or("").trim()),
            name,
            pipe,
        })
    }

    /// Parse a pipeline up to the closing `}}` (consumed).
    fn parse_pipe(&mut self, ctx: &str, allow_two: bool) -> Result<Pipe, ParseError> {
        let start = self.off();
        let mut decl = Vec::new();
        let mut is_assign = false;
        // Declarations: `$x :=`, `$x =`, `$i, $v :=`.
        if let Tok::Var(v) = self.peek().clone() {
            match self.peek_at(1) {
                Tok::Declare | Tok::Assign => {
                    is_assign = self.peek_at(1) == &Tok::Assign;
                    self.i += 2;
                    decl.push(v);
                }
                Tok::Comma if allow_two => {
                    if let Tok::Var(v2) = self.peek_at(2).clone()
                        && matches!(self.peek_at(3), Tok::Declare | Tok::Assign)
                    {
                        is_assign = self.peek_at(3) == &Tok::Assign;
                        self.i += 4;
                        decl.push(v);
                        decl.push(v2);
                    }
                }
                _ => {}
            }
        }
        for d in &decl {
            if is_assign {
                if !self.vars.contains(d) {
                    return Err(self.err(start, format!("undefined variable \"{d}\"")));
                }
            } else {
                self.vars.push(d.clone());
            }
        }
        let mut cmds = Vec::new();
        loop {
            let cmd = self.parse_cmd(ctx)?;
            cmds.push(cmd);
            let t = self.next();
            match t.tok {
                Tok::Pipe => continue,
                Tok::Close => break,
                other => {
                    return Err(
                        self.err(t.off, format!("unexpected {} in {ctx}", describe(&other)))
                    );
                }
            }
        }
        let end = self
            .toks
            .get(self.i.saturating_sub(1))
            .map(|t| t.off)
            .unwrap_or(start);
        Ok(Pipe {
            pos: self.pos(start),
            src: self.src.get(start..end).unwrap_or("").trim().to_string(),
            decl,
            is_assign,
            cmds,
        })
    }

    /// Parse a pipeline inside parentheses, up to `)` (consumed).
    fn parse_paren_pipe(&mut self) -> Result<Pipe, ParseError> {
        let start = self.off();
        let mut cmds = Vec::new();
        let mut decl = Vec::new();
        let mut is_assign = false;
        if let Tok::Var(v) = self.peek().clone()
            && matches!(self.peek_at(1), Tok::Declare | Tok::Assign)
        {
            is_assign = self.peek_at(1) == &Tok::Assign;
            self.i += 2;
            if !is_assign {
                self.vars.push(v.clone());
            }
            decl.push(v);
        }
        loop {
            cmds.push(self.parse_cmd("parenthesized pipeline")?);
            let t = self.next();
            match t.tok {
                Tok::Pipe => continue,
                Tok::RParen => break,
                other => {
                    return Err(self.err(
                        t.off,
                        format!("unexpected {} in parenthesized pipeline", describe(&other)),
                    ));
                }
            }
        }
        let end = self
            .toks
            .get(self.i.saturating_sub(1))
            .map(|t| t.off)
            .unwrap_or(start);
        Ok(Pipe {
            pos: self.pos(start),
            src: self.src.get(start..end).unwrap_or("").trim().to_string(),
            decl,
            is_assign,
            cmds,
        })
    }

    fn parse_cmd(&mut self, ctx: &str) -> Result<Cmd, ParseError> {
        let start = self.off();
        let mut args = Vec::new();
        loop {
            match self.peek() {
                Tok::Close | Tok::Pipe | Tok::RParen | Tok::Eof => break,
                _ => {}
            }
            if !args.is_empty() && !self.toks[self.i].space_before {
                let t = self.next();
                return Err(self.err(t.off, format!("unexpected {} in operand", describe(&t.tok))));
            }
            args.push(self.parse_operand()?);
        }
        if args.is_empty() {
            return Err(self.err(start, format!("missing value for {ctx}")));
        }
        let end = self.off();
        Ok(Cmd {
            pos: self.pos(start),
            src: self.src.get(start..end).unwrap_or("").trim().to_string(),
            args,
        })
    }

    fn parse_operand(&mut self) -> Result<Arg, ParseError> {
        let t = self.next();
        let start = t.off;
        let kind = match t.tok {
            Tok::Field(f) => ArgKind::Field(vec![f]),
            Tok::Var(v) => {
                if !self.vars.contains(&v) {
                    return Err(self.err(start, format!("undefined variable \"{v}\"")));
                }
                ArgKind::Var(v, Vec::new())
            }
            Tok::Dot => ArgKind::Dot,
            Tok::Nil => ArgKind::Nil,
            Tok::Bool(b) => ArgKind::Bool(b),
            Tok::Str(s) => ArgKind::Str(s),
            Tok::Char(c) => ArgKind::Int(c),
            Tok::Num(n) => parse_number(&n)
                .ok_or_else(|| self.err(start, format!("bad number syntax: {n:?}")))?,
            Tok::Ident(name) => {
                if !(self.is_func)(&name) {
                    return Err(self.err(start, format!("function \"{name}\" not defined")));
                }
                ArgKind::Func(name)
            }
            Tok::LParen => {
                self.depth += 1;
                if self.depth > MAX_PARSE_DEPTH {
                    return Err(self.err(start, "max expression depth exceeded"));
                }
                let p = self.parse_paren_pipe();
                self.depth -= 1;
                let p = p?;
                ArgKind::Chain(Box::new(p), Vec::new())
            }
            other => {
                return Err(self.err(start, format!("unexpected {} in operand", describe(&other))));
            }
        };
        // Field chains directly attached (no space): `.a.b`, `$x.a`, `(..).a`.
        let mut kind = kind;
        let mut pos_off = start;
        let mut chained = false;
        while let Some(tok) = self.toks.get(self.i)
            && let Tok::Field(f) = &tok.tok
            && !tok.space_before
        {
            let f = f.clone();
            if !chained {
                // Go positions a chained field at its first chained element.
                pos_off = tok.off;
                chained = true;
            }
            self.i += 1;
            match &mut kind {
                ArgKind::Field(v) | ArgKind::Var(_, v) | ArgKind::Chain(_, v) => v.push(f),
                _ => return Err(self.err(start, "unexpected . after term")),
            }
        }
        let end = self.off();
        Ok(Arg {
            pos: self.pos(pos_off),
            src: self.src.get(start..end).unwrap_or("").trim().to_string(),
            kind,
        })
    }
}

fn parse_number(n: &str) -> Option<ArgKind> {
    let clean: String = n.chars().filter(|&c| c != '_').collect();
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let lower = body.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.chars().all(|c| c.is_ascii_digit())
    {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse::<i64>().ok()
    };
    if let Some(i) = int {
        return Some(ArgKind::Int(if neg { -i } else { i }));
    }
    let f: f64 = lower.parse().ok()?;
    // Go keeps integral float constants usable as ints; we keep floats as written.
    Some(ArgKind::Float(if neg { -f } else { f }))
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Text(_) => "text".into(),
        Tok::Open => "\"{{\"".into(),
        Tok::Close => "\"}}\"".into(),
        Tok::Ident(s) | Tok::Field(s) | Tok::Var(s) | Tok::Num(s) => format!("<{s}>"),
        Tok::Str(s) => format!("{s:?}"),
        Tok::Char(_) => "character constant".into(),
        Tok::Bool(b) => format!("<{b}>"),
        Tok::Nil => "<nil>".into(),
        Tok::Dot => "<.>".into(),
        Tok::Pipe => "<|>".into(),
        Tok::LParen => "<(>".into(),
        Tok::RParen => "<)>".into(),
        Tok::Declare => "<:=>".into(),
        Tok::Assign => "<=>".into(),
        Tok::Comma => "<,>".into(),
        Tok::Eof => "EOF".into(),
    }
}

/// Registry type used by the executor.
pub type TreeMap = HashMap<String, Rc<Tree>>;
