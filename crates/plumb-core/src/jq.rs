//! A small, bounded jq evaluator for the path expressions of `ignoreDifferences`
//! (`jqPathExpressions`), which Argo CD evaluates as `del(<expression>)`.
//!
//! Supported: `.`, `.a`, `."a"`, `.["a"]`, `.[0]`, `.[-1]`, `.[]`, the `?` suffix, `|`, `,`,
//! parentheses, and inside `select(…)`: literals, `==`, `!=`, `<`, `<=`, `>`, `>=`, `and`, `or`,
//! `not`, `has`, `test` (a literal regular expression), `startswith`, `endswith`, `contains`
//! (strings), `length`, `ascii_downcase`, `ascii_upcase`, `empty`.
//!
//! **Guarantees**: parsing and evaluation never panic and never hang: an expression is at most
//! [`MAX_EXPRESSION_LEN`] bytes and [`MAX_NESTING`] levels deep, an evaluation takes at most
//! [`MAX_STEPS`] steps and yields at most [`MAX_OUTPUTS`] paths; there is no recursion (`..`),
//! no function definitions and no variables, so the cost is bounded by the expression and the
//! object. Regular expressions use the `regex` crate (linear time) with a size limit.
//!
//! **Errors**: [`JqError::Parse`] / [`JqError::Unsupported`] when compiling (naming the
//! offending construct and its byte offset), [`JqError::Runtime`] and [`JqError::Limit`] when
//! evaluating.

use serde_json::Value;
use std::cmp::Ordering;

/// Longest expression accepted, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 4096;
/// Deepest nesting of parentheses, brackets and calls.
pub const MAX_NESTING: usize = 64;
/// Most evaluation steps for one expression on one object.
pub const MAX_STEPS: usize = 200_000;
/// Most paths one expression may yield on one object.
pub const MAX_OUTPUTS: usize = 100_000;
const MAX_REGEX_SIZE: usize = 1 << 20;

/// Why an expression cannot be compiled or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JqError {
    /// The text is not valid jq.
    #[error("syntax error at byte {offset}: {message}")]
    Parse {
        /// Byte offset in the expression.
        offset: usize,
        /// What was expected or found.
        message: String,
    },
    /// Valid jq this evaluator does not implement.
    #[error("not supported at byte {offset}: {feature}")]
    Unsupported {
        /// Byte offset in the expression.
        offset: usize,
        /// The construct.
        feature: String,
    },
    /// The expression failed on this object (e.g. indexing a string).
    #[error("{0}")]
    Runtime(String),
    /// A limit was reached.
    #[error("limit reached: {0}")]
    Limit(String),
}

/// One step of a path: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// Object key.
    Key(String),
    /// Array index (non-negative once resolved against an array).
    Index(i64),
}

/// A compiled path expression.
#[derive(Debug, Clone)]
pub struct PathExpression {
    source: String,
    expr: Expr,
}

impl PathExpression {
    /// Compiles `source`.
    ///
    /// **Errors**: syntax errors, unsupported constructs, limits, and expressions that are
    /// valid jq but not paths (e.g. `.a == 1`).
    pub fn parse(source: &str) -> Result<PathExpression, JqError> {
        if source.len() > MAX_EXPRESSION_LEN {
            return Err(JqError::Limit(format!(
                "expression is {} bytes long, at most {MAX_EXPRESSION_LEN} allowed",
                source.len()
            )));
        }
        let tokens = tokenize(source)?;
        let mut parser = Parser { tokens, position: 0, depth: 0, end: source.len() };
        let expr = parser.pipe()?;
        if let Some((token, offset)) = parser.tokens.get(parser.position) {
            return Err(JqError::Parse { offset: *offset, message: format!("unexpected {}", token.describe()) });
        }
        check_path(&expr)?;
        Ok(PathExpression { source: source.to_string(), expr })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The paths the expression selects in `value`, as `path(<expression>)` would yield them.
    ///
    /// **Errors**: runtime type errors not silenced by `?`, and limits.
    pub fn paths(&self, value: &Value) -> Result<Vec<Vec<PathSegment>>, JqError> {
        let mut eval = Eval { steps: 0 };
        let mut out = Vec::new();
        eval.paths(&self.expr, Vec::new(), Some(value), &mut out)?;
        Ok(out.into_iter().map(|(path, _)| path).collect())
    }

    /// Deletes what the expression selects, as `del(<expression>)` does.
    ///
    /// **Errors**: as [`PathExpression::paths`]; `value` is unchanged then.
    pub fn delete(&self, value: &mut Value) -> Result<(), JqError> {
        let mut paths = self.paths(value)?;
        // Delete the last paths first so array indices stay valid, as jq's delpaths does.
        paths.sort_by(|a, b| compare_paths(b, a));
        paths.dedup();
        for path in paths {
            delete_path(value, &path);
        }
        Ok(())
    }
}

fn compare_paths(a: &[PathSegment], b: &[PathSegment]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let ordering = match (x, y) {
            (PathSegment::Index(i), PathSegment::Index(j)) => i.cmp(j),
            (PathSegment::Key(i), PathSegment::Key(j)) => i.cmp(j),
            (PathSegment::Index(_), PathSegment::Key(_)) => Ordering::Less,
            (PathSegment::Key(_), PathSegment::Index(_)) => Ordering::Greater,
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    a.len().cmp(&b.len())
}

/// Removes the value at `path`; a path that does not exist is a no-op.
pub fn delete_path(value: &mut Value, path: &[PathSegment]) {
    let Some((last, parents)) = path.split_last() else {
        // `del(.)` makes the document null, as in jq.
        *value = Value::Null;
        return;
    };
    let mut current = value;
    for segment in parents {
        let next = match (segment, current) {
            (PathSegment::Key(key), Value::Object(map)) => map.get_mut(key),
            (PathSegment::Index(index), Value::Array(items)) => {
                usize::try_from(*index).ok().and_then(|i| items.get_mut(i))
            }
            _ => None,
        };
        match next {
            Some(next) => current = next,
            None => return,
        }
    }
    match (last, current) {
        (PathSegment::Key(key), Value::Object(map)) => {
            map.shift_remove(key);
        }
        (PathSegment::Index(index), Value::Array(items)) => {
            if let Ok(i) = usize::try_from(*index)
                && i < items.len()
            {
                items.remove(i);
            }
        }
        _ => {}
    }
}

// ---- tokens ----

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Dot,
    Field(String),
    Ident(String),
    Str(String),
    Num(f64),
    LBracket,
    RBracket,
    LParen,
    RParen,
    Pipe,
    Comma,
    Question,
    Semicolon,
    Compare(CompareOp),
    Minus,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Dot => "'.'".into(),
            Token::Field(name) => format!("'.{name}'"),
            Token::Ident(name) => format!("'{name}'"),
            Token::Str(text) => format!("string {text:?}"),
            Token::Num(n) => format!("number {n}"),
            Token::LBracket => "'['".into(),
            Token::RBracket => "']'".into(),
            Token::LParen => "'('".into(),
            Token::RParen => "')'".into(),
            Token::Pipe => "'|'".into(),
            Token::Comma => "','".into(),
            Token::Question => "'?'".into(),
            Token::Semicolon => "';'".into(),
            Token::Compare(op) => format!("'{}'", op.as_str()),
            Token::Minus => "'-'".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

/// jq keywords this evaluator does not implement.
const KEYWORDS: &[&str] = &[
    "if", "then", "elif", "else", "end", "reduce", "foreach", "def", "as", "try", "catch", "label", "import", "include",
];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn tokenize(source: &str) -> Result<Vec<(Token, usize)>, JqError> {
    let chars: Vec<(usize, char)> = source.char_indices().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let unsupported = |offset: usize, feature: &str| JqError::Unsupported { offset, feature: feature.to_string() };
    while i < chars.len() {
        let (offset, c) = chars[i];
        let next = chars.get(i + 1).map(|(_, c)| *c);
        match c {
            c if c.is_whitespace() => i += 1,
            '#' => return Err(unsupported(offset, "comments")),
            '.' if next == Some('.') => return Err(unsupported(offset, "recursive descent '..'")),
            '.' if next.is_some_and(is_ident_start) => {
                let mut j = i + 1;
                let mut name = String::new();
                while j < chars.len() && is_ident_char(chars[j].1) {
                    name.push(chars[j].1);
                    j += 1;
                }
                tokens.push((Token::Field(name), offset));
                i = j;
            }
            '.' => {
                tokens.push((Token::Dot, offset));
                i += 1;
            }
            '[' => {
                tokens.push((Token::LBracket, offset));
                i += 1;
            }
            ']' => {
                tokens.push((Token::RBracket, offset));
                i += 1;
            }
            '(' => {
                tokens.push((Token::LParen, offset));
                i += 1;
            }
            ')' => {
                tokens.push((Token::RParen, offset));
                i += 1;
            }
            '|' if next == Some('=') => return Err(unsupported(offset, "update-assignment '|='")),
            '|' => {
                tokens.push((Token::Pipe, offset));
                i += 1;
            }
            ',' => {
                tokens.push((Token::Comma, offset));
                i += 1;
            }
            '?' if next == Some('/') => return Err(unsupported(offset, "alternative destructuring '?//'")),
            '?' => {
                tokens.push((Token::Question, offset));
                i += 1;
            }
            ';' => {
                tokens.push((Token::Semicolon, offset));
                i += 1;
            }
            '=' if next == Some('=') => {
                tokens.push((Token::Compare(CompareOp::Eq), offset));
                i += 2;
            }
            '!' if next == Some('=') => {
                tokens.push((Token::Compare(CompareOp::Ne), offset));
                i += 2;
            }
            '<' if next == Some('=') => {
                tokens.push((Token::Compare(CompareOp::Le), offset));
                i += 2;
            }
            '>' if next == Some('=') => {
                tokens.push((Token::Compare(CompareOp::Ge), offset));
                i += 2;
            }
            '<' => {
                tokens.push((Token::Compare(CompareOp::Lt), offset));
                i += 1;
            }
            '>' => {
                tokens.push((Token::Compare(CompareOp::Gt), offset));
                i += 1;
            }
            '-' => {
                tokens.push((Token::Minus, offset));
                i += 1;
            }
            '/' if next == Some('/') => return Err(unsupported(offset, "alternative operator '//'")),
            '=' => return Err(unsupported(offset, "assignment '='")),
            '+' | '*' | '/' | '%' => return Err(unsupported(offset, &format!("arithmetic '{c}'"))),
            '$' => return Err(unsupported(offset, "variables")),
            '@' => return Err(unsupported(offset, "formats ('@…')")),
            '{' | '}' => return Err(unsupported(offset, "object construction")),
            ':' => return Err(unsupported(offset, "slices ('[a:b]')")),
            '"' => {
                let (text, end) = string_literal(&chars, i)?;
                tokens.push((Token::Str(text), offset));
                i = end;
            }
            c if c.is_ascii_digit() => {
                let mut j = i;
                while j < chars.len()
                    && (chars[j].1.is_ascii_digit()
                        || chars[j].1 == '.'
                        || chars[j].1 == 'e'
                        || chars[j].1 == 'E'
                        || ((chars[j].1 == '+' || chars[j].1 == '-') && j > i && matches!(chars[j - 1].1, 'e' | 'E')))
                {
                    j += 1;
                }
                let end = chars.get(j).map(|(o, _)| *o).unwrap_or(source.len());
                let text = &source[offset..end];
                let number: f64 =
                    text.parse().map_err(|_| JqError::Parse { offset, message: format!("invalid number {text:?}") })?;
                tokens.push((Token::Num(number), offset));
                i = j;
            }
            c if is_ident_start(c) => {
                let mut j = i;
                let mut name = String::new();
                while j < chars.len() && is_ident_char(chars[j].1) {
                    name.push(chars[j].1);
                    j += 1;
                }
                if j < chars.len() && chars[j].1 == ':' && chars.get(j + 1).map(|c| c.1) == Some(':') {
                    return Err(unsupported(offset, "module references"));
                }
                if KEYWORDS.contains(&name.as_str()) {
                    return Err(unsupported(offset, &format!("'{name}'")));
                }
                tokens.push((Token::Ident(name), offset));
                i = j;
            }
            other => return Err(JqError::Parse { offset, message: format!("unexpected character {other:?}") }),
        }
    }
    Ok(tokens)
}

fn string_literal(chars: &[(usize, char)], start: usize) -> Result<(String, usize), JqError> {
    let offset = chars[start].0;
    let mut text = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let (at, c) = chars[i];
        match c {
            '"' => return Ok((text, i + 1)),
            '\\' => {
                let escaped = chars.get(i + 1).map(|(_, c)| *c);
                match escaped {
                    Some('"') => text.push('"'),
                    Some('\\') => text.push('\\'),
                    Some('/') => text.push('/'),
                    Some('b') => text.push('\u{8}'),
                    Some('f') => text.push('\u{c}'),
                    Some('n') => text.push('\n'),
                    Some('r') => text.push('\r'),
                    Some('t') => text.push('\t'),
                    Some('u') => {
                        let hex: String = chars.iter().skip(i + 2).take(4).map(|(_, c)| *c).collect();
                        let code = u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == 4)
                            .ok_or_else(|| JqError::Parse { offset: at, message: "invalid \\u escape".into() })?;
                        // Lone surrogates become U+FFFD rather than failing.
                        text.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        i += 4;
                    }
                    Some('(') => {
                        return Err(JqError::Unsupported { offset: at, feature: "string interpolation".into() });
                    }
                    _ => return Err(JqError::Parse { offset: at, message: "invalid escape in string".into() }),
                }
                i += 2;
            }
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
    Err(JqError::Parse { offset, message: "unterminated string".into() })
}

// ---- syntax tree ----

#[derive(Debug, Clone)]
enum Expr {
    Pipe(Box<Expr>, Box<Expr>),
    Comma(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Compare(CompareOp, Box<Expr>, Box<Expr>),
    Term(Term),
}

#[derive(Debug, Clone)]
struct Term {
    head: Head,
    suffixes: Vec<Suffix>,
}

#[derive(Debug, Clone)]
enum Head {
    Identity,
    Literal(Value),
    Paren(Box<Expr>),
    Call(Call),
}

#[derive(Debug, Clone)]
enum Call {
    Select(Box<Expr>),
    Not,
    Empty,
    Length,
    AsciiDowncase,
    AsciiUpcase,
    Has(Box<Expr>),
    StartsWith(Box<Expr>),
    EndsWith(Box<Expr>),
    Contains(Box<Expr>),
    Test(Box<regex::Regex>),
}

#[derive(Debug, Clone)]
enum Suffix {
    Field(String, bool),
    Index(Box<Expr>, bool),
    Iterate(bool),
}

impl Suffix {
    fn set_optional(&mut self) {
        match self {
            Suffix::Field(_, optional) | Suffix::Index(_, optional) | Suffix::Iterate(optional) => *optional = true,
        }
    }
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    position: usize,
    depth: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position).map(|(t, _)| t)
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.position).map(|(_, o)| *o).unwrap_or(self.end)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).map(|(t, _)| t.clone());
        self.position += 1;
        token
    }

    fn expect(&mut self, expected: Token) -> Result<(), JqError> {
        let offset = self.offset();
        match self.next() {
            Some(token) if token == expected => Ok(()),
            Some(token) => Err(JqError::Parse {
                offset,
                message: format!("expected {}, found {}", expected.describe(), token.describe()),
            }),
            None => Err(JqError::Parse { offset, message: format!("expected {}, found the end", expected.describe()) }),
        }
    }

    fn enter(&mut self) -> Result<(), JqError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(JqError::Limit(format!("expression nests deeper than {MAX_NESTING} levels")));
        }
        Ok(())
    }

    fn pipe(&mut self) -> Result<Expr, JqError> {
        self.enter()?;
        let left = self.comma()?;
        let result = if self.peek() == Some(&Token::Pipe) {
            self.position += 1;
            Expr::Pipe(Box::new(left), Box::new(self.pipe()?))
        } else {
            left
        };
        self.depth -= 1;
        Ok(result)
    }

    fn comma(&mut self) -> Result<Expr, JqError> {
        let mut left = self.or()?;
        while self.peek() == Some(&Token::Comma) {
            self.position += 1;
            left = Expr::Comma(Box::new(left), Box::new(self.or()?));
        }
        Ok(left)
    }

    fn or(&mut self) -> Result<Expr, JqError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Ident("or".into())) {
            self.position += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, JqError> {
        let mut left = self.compare()?;
        while self.peek() == Some(&Token::Ident("and".into())) {
            self.position += 1;
            left = Expr::And(Box::new(left), Box::new(self.compare()?));
        }
        Ok(left)
    }

    fn compare(&mut self) -> Result<Expr, JqError> {
        let left = self.postfix()?;
        if let Some(Token::Compare(op)) = self.peek().cloned() {
            self.position += 1;
            let right = self.postfix()?;
            if let Some(Token::Compare(_)) = self.peek() {
                return Err(JqError::Parse { offset: self.offset(), message: "comparisons do not chain".into() });
            }
            return Ok(Expr::Compare(op, Box::new(left), Box::new(right)));
        }
        Ok(left)
    }

    fn postfix(&mut self) -> Result<Expr, JqError> {
        let offset = self.offset();
        let mut suffixes = Vec::new();
        let head = match self.next() {
            Some(Token::Dot) => match self.peek() {
                Some(Token::Str(_)) => {
                    let Some(Token::Str(name)) = self.next() else { unreachable_parse(offset)? };
                    suffixes.push(Suffix::Field(name, false));
                    Head::Identity
                }
                Some(Token::LBracket) => Head::Identity,
                _ => Head::Identity,
            },
            Some(Token::Field(name)) => {
                suffixes.push(Suffix::Field(name, false));
                Head::Identity
            }
            Some(Token::Str(text)) => Head::Literal(Value::String(text)),
            Some(Token::Num(n)) => Head::Literal(number(n)),
            Some(Token::Minus) => match self.next() {
                Some(Token::Num(n)) => Head::Literal(number(-n)),
                _ => return Err(JqError::Unsupported { offset, feature: "arithmetic '-'".into() }),
            },
            Some(Token::LParen) => {
                let inner = self.pipe()?;
                self.expect(Token::RParen)?;
                Head::Paren(Box::new(inner))
            }
            Some(Token::LBracket) => {
                return Err(JqError::Unsupported { offset, feature: "array construction".into() });
            }
            Some(Token::Ident(name)) => self.call(&name, offset)?,
            Some(token) => {
                return Err(JqError::Parse { offset, message: format!("unexpected {}", token.describe()) });
            }
            None => return Err(JqError::Parse { offset, message: "expression ends too early".into() }),
        };
        loop {
            match self.peek() {
                Some(Token::Field(_)) => {
                    let Some(Token::Field(name)) = self.next() else { unreachable_parse(offset)? };
                    suffixes.push(Suffix::Field(name, false));
                }
                Some(Token::Dot) => {
                    let dot = self.offset();
                    self.position += 1;
                    match self.next() {
                        Some(Token::Str(name)) => suffixes.push(Suffix::Field(name, false)),
                        Some(Token::LBracket) => {
                            self.position -= 1;
                        }
                        _ => {
                            return Err(JqError::Parse {
                                offset: dot,
                                message: "expected a field name after '.'".into(),
                            });
                        }
                    }
                }
                Some(Token::LBracket) => {
                    self.position += 1;
                    if self.peek() == Some(&Token::RBracket) {
                        self.position += 1;
                        suffixes.push(Suffix::Iterate(false));
                    } else {
                        self.enter()?;
                        let index = self.pipe()?;
                        self.depth -= 1;
                        self.expect(Token::RBracket)?;
                        suffixes.push(Suffix::Index(Box::new(index), false));
                    }
                }
                Some(Token::Question) => {
                    self.position += 1;
                    // `f?` on a bare head silences nothing: the heads allowed here cannot fail
                    // on their own except calls, which stay strict.
                    if let Some(last) = suffixes.last_mut() {
                        last.set_optional();
                    }
                }
                _ => break,
            }
        }
        Ok(Expr::Term(Term { head, suffixes }))
    }

    fn call(&mut self, name: &str, offset: usize) -> Result<Head, JqError> {
        let literal = match name {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            "null" => Some(Value::Null),
            _ => None,
        };
        if let Some(value) = literal {
            return Ok(Head::Literal(value));
        }
        let call = match name {
            "not" => Call::Not,
            "empty" => Call::Empty,
            "length" => Call::Length,
            "ascii_downcase" => Call::AsciiDowncase,
            "ascii_upcase" => Call::AsciiUpcase,
            "select" | "has" | "startswith" | "endswith" | "contains" | "test" => {
                self.expect(Token::LParen)?;
                self.enter()?;
                let argument = self.pipe()?;
                self.depth -= 1;
                if self.peek() == Some(&Token::Semicolon) {
                    return Err(JqError::Unsupported {
                        offset,
                        feature: format!("{name} with more than one argument"),
                    });
                }
                self.expect(Token::RParen)?;
                let argument = Box::new(argument);
                match name {
                    "select" => Call::Select(argument),
                    "has" => Call::Has(argument),
                    "startswith" => Call::StartsWith(argument),
                    "endswith" => Call::EndsWith(argument),
                    "contains" => Call::Contains(argument),
                    _ => {
                        let Expr::Term(Term { head: Head::Literal(Value::String(pattern)), suffixes }) = *argument
                        else {
                            return Err(JqError::Unsupported {
                                offset,
                                feature: "test() with anything but a string literal".into(),
                            });
                        };
                        if !suffixes.is_empty() {
                            return Err(JqError::Unsupported {
                                offset,
                                feature: "test() with anything but a string literal".into(),
                            });
                        }
                        let regex = regex::RegexBuilder::new(&pattern)
                            .size_limit(MAX_REGEX_SIZE)
                            .dfa_size_limit(MAX_REGEX_SIZE)
                            .build()
                            .map_err(|e| JqError::Parse {
                                offset,
                                message: format!("invalid regular expression: {e}"),
                            })?;
                        Call::Test(Box::new(regex))
                    }
                }
            }
            "and" | "or" => {
                return Err(JqError::Parse { offset, message: format!("'{name}' needs a left-hand side") });
            }
            other => return Err(JqError::Unsupported { offset, feature: format!("function '{other}'") }),
        };
        Ok(Head::Call(call))
    }
}

fn unreachable_parse<T>(offset: usize) -> Result<T, JqError> {
    Err(JqError::Parse { offset, message: "internal parser inconsistency".into() })
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map(Value::Number).unwrap_or(Value::Null)
    }
}

/// Rejects expressions that are valid jq but do not denote paths, before any evaluation.
fn check_path(expr: &Expr) -> Result<(), JqError> {
    let not_path = |what: &str| JqError::Unsupported {
        offset: 0,
        feature: format!("{what} is not a path expression (ignoreDifferences deletes paths)"),
    };
    match expr {
        Expr::Pipe(a, b) | Expr::Comma(a, b) => {
            check_path(a)?;
            check_path(b)
        }
        Expr::Or(..) | Expr::And(..) => Err(not_path("'and'/'or'")),
        Expr::Compare(op, ..) => Err(not_path(&format!("comparison '{}'", op.as_str()))),
        Expr::Term(term) => match &term.head {
            Head::Identity => Ok(()),
            Head::Paren(inner) => check_path(inner),
            Head::Call(Call::Select(_) | Call::Empty) => Ok(()),
            Head::Call(_) => Err(not_path("a function call other than select() or empty")),
            Head::Literal(_) => Err(not_path("a literal")),
        },
    }
}

// ---- evaluation ----

type Path = Vec<PathSegment>;

struct Eval {
    steps: usize,
}

fn type_name(value: Option<&Value>) -> &'static str {
    match value {
        None | Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

fn truthy(value: &Value) -> bool {
    !matches!(value, Value::Null | Value::Bool(false))
}

impl Eval {
    fn tick(&mut self) -> Result<(), JqError> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(JqError::Limit(format!("evaluation took more than {MAX_STEPS} steps")));
        }
        Ok(())
    }

    fn emit<'a>(out: &mut Vec<(Path, Option<&'a Value>)>, item: (Path, Option<&'a Value>)) -> Result<(), JqError> {
        if out.len() >= MAX_OUTPUTS {
            return Err(JqError::Limit(format!("expression selects more than {MAX_OUTPUTS} paths")));
        }
        out.push(item);
        Ok(())
    }

    fn paths<'a>(
        &mut self,
        expr: &Expr,
        path: Path,
        value: Option<&'a Value>,
        out: &mut Vec<(Path, Option<&'a Value>)>,
    ) -> Result<(), JqError> {
        self.tick()?;
        match expr {
            Expr::Pipe(a, b) => {
                let mut left = Vec::new();
                self.paths(a, path, value, &mut left)?;
                for (p, v) in left {
                    self.paths(b, p, v, out)?;
                }
                Ok(())
            }
            Expr::Comma(a, b) => {
                self.paths(a, path.clone(), value, out)?;
                self.paths(b, path, value, out)
            }
            Expr::Or(..) | Expr::And(..) | Expr::Compare(..) => Err(JqError::Runtime("invalid path expression".into())),
            Expr::Term(term) => self.term_paths(term, path, value, out),
        }
    }

    fn term_paths<'a>(
        &mut self,
        term: &Term,
        path: Path,
        value: Option<&'a Value>,
        out: &mut Vec<(Path, Option<&'a Value>)>,
    ) -> Result<(), JqError> {
        let mut current = Vec::new();
        match &term.head {
            Head::Identity => current.push((path, value)),
            Head::Paren(inner) => self.paths(inner, path, value, &mut current)?,
            Head::Call(Call::Select(condition)) => {
                let input = value.unwrap_or(&Value::Null);
                let mut results = Vec::new();
                self.values(condition, input, &mut results)?;
                for result in results {
                    if truthy(&result) {
                        Eval::emit(&mut current, (path.clone(), value))?;
                    }
                }
            }
            Head::Call(Call::Empty) => {}
            Head::Call(_) | Head::Literal(_) => {
                return Err(JqError::Runtime("invalid path expression".into()));
            }
        }
        for suffix in &term.suffixes {
            let mut next = Vec::new();
            for (p, v) in current {
                self.suffix_paths(suffix, p, v, value, &mut next)?;
            }
            current = next;
        }
        for item in current {
            Eval::emit(out, item)?;
        }
        Ok(())
    }

    fn suffix_paths<'a>(
        &mut self,
        suffix: &Suffix,
        path: Path,
        value: Option<&'a Value>,
        term_input: Option<&'a Value>,
        out: &mut Vec<(Path, Option<&'a Value>)>,
    ) -> Result<(), JqError> {
        self.tick()?;
        match suffix {
            Suffix::Field(name, optional) => match value {
                None | Some(Value::Null) => Eval::emit(out, (with(&path, PathSegment::Key(name.clone())), None)),
                Some(Value::Object(map)) => {
                    Eval::emit(out, (with(&path, PathSegment::Key(name.clone())), map.get(name)))
                }
                Some(_) if *optional => Ok(()),
                other => Err(JqError::Runtime(format!("cannot index {} with {name:?}", type_name(other)))),
            },
            Suffix::Iterate(optional) => match value {
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        self.tick()?;
                        Eval::emit(out, (with(&path, PathSegment::Index(i as i64)), Some(item)))?;
                    }
                    Ok(())
                }
                Some(Value::Object(map)) => {
                    for (key, item) in map {
                        self.tick()?;
                        Eval::emit(out, (with(&path, PathSegment::Key(key.clone())), Some(item)))?;
                    }
                    Ok(())
                }
                _ if *optional => Ok(()),
                other => Err(JqError::Runtime(format!("cannot iterate over {}", type_name(other)))),
            },
            Suffix::Index(index, optional) => {
                let mut indices = Vec::new();
                self.values(index, term_input.unwrap_or(&Value::Null), &mut indices)?;
                for index in indices {
                    match (&index, value) {
                        (Value::String(key), None | Some(Value::Null)) => {
                            Eval::emit(out, (with(&path, PathSegment::Key(key.clone())), None))?
                        }
                        (Value::String(key), Some(Value::Object(map))) => {
                            Eval::emit(out, (with(&path, PathSegment::Key(key.clone())), map.get(key)))?
                        }
                        (Value::Number(n), None | Some(Value::Null)) => {
                            let i = integer(n)?;
                            Eval::emit(out, (with(&path, PathSegment::Index(i)), None))?
                        }
                        (Value::Number(n), Some(Value::Array(items))) => {
                            let mut i = integer(n)?;
                            if i < 0 {
                                i += items.len() as i64;
                            }
                            let item = usize::try_from(i).ok().and_then(|i| items.get(i));
                            if i < 0 {
                                // jq: a negative index past the start is out of range.
                                if !optional {
                                    return Err(JqError::Runtime("out of bounds negative array index".into()));
                                }
                                continue;
                            }
                            Eval::emit(out, (with(&path, PathSegment::Index(i)), item))?
                        }
                        _ if *optional => {}
                        (index, other) => {
                            return Err(JqError::Runtime(format!(
                                "cannot index {} with {}",
                                type_name(other),
                                type_name(Some(index))
                            )));
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Evaluates `expr` for its values (used inside `select` and indices).
    fn values(&mut self, expr: &Expr, input: &Value, out: &mut Vec<Value>) -> Result<(), JqError> {
        self.tick()?;
        if out.len() >= MAX_OUTPUTS {
            return Err(JqError::Limit(format!("expression produces more than {MAX_OUTPUTS} values")));
        }
        match expr {
            Expr::Pipe(a, b) => {
                let mut left = Vec::new();
                self.values(a, input, &mut left)?;
                for value in left {
                    self.values(b, &value, out)?;
                }
                Ok(())
            }
            Expr::Comma(a, b) => {
                self.values(a, input, out)?;
                self.values(b, input, out)
            }
            Expr::Or(a, b) | Expr::And(a, b) => {
                let is_or = matches!(expr, Expr::Or(..));
                let mut left = Vec::new();
                self.values(a, input, &mut left)?;
                for l in left {
                    if truthy(&l) == is_or {
                        out.push(Value::Bool(is_or));
                        continue;
                    }
                    let mut right = Vec::new();
                    self.values(b, input, &mut right)?;
                    out.extend(right.iter().map(|r| Value::Bool(truthy(r))));
                }
                Ok(())
            }
            Expr::Compare(op, a, b) => {
                let mut right = Vec::new();
                self.values(b, input, &mut right)?;
                let mut left = Vec::new();
                self.values(a, input, &mut left)?;
                for r in &right {
                    for l in &left {
                        self.tick()?;
                        let ordering = compare_values(l, r);
                        let result = match op {
                            CompareOp::Eq => ordering == Ordering::Equal,
                            CompareOp::Ne => ordering != Ordering::Equal,
                            CompareOp::Lt => ordering == Ordering::Less,
                            CompareOp::Le => ordering != Ordering::Greater,
                            CompareOp::Gt => ordering == Ordering::Greater,
                            CompareOp::Ge => ordering != Ordering::Less,
                        };
                        out.push(Value::Bool(result));
                    }
                }
                Ok(())
            }
            Expr::Term(term) => {
                let mut current: Vec<Value> = Vec::new();
                match &term.head {
                    Head::Identity => {
                        if term.suffixes.is_empty() {
                            out.push(input.clone());
                            return Ok(());
                        }
                        // Walk the suffixes by reference and clone only the results.
                        let mut paths = Vec::new();
                        self.term_paths(term, Vec::new(), Some(input), &mut paths)?;
                        out.extend(paths.into_iter().map(|(_, v)| v.cloned().unwrap_or(Value::Null)));
                        return Ok(());
                    }
                    Head::Literal(value) => current.push(value.clone()),
                    Head::Paren(inner) => self.values(inner, input, &mut current)?,
                    Head::Call(call) => self.call(call, input, &mut current)?,
                }
                for suffix in &term.suffixes {
                    let mut next = Vec::new();
                    for value in &current {
                        let mut paths = Vec::new();
                        self.suffix_paths(suffix, Vec::new(), Some(value), Some(input), &mut paths)?;
                        next.extend(paths.into_iter().map(|(_, v)| v.cloned().unwrap_or(Value::Null)));
                    }
                    current = next;
                }
                out.extend(current);
                Ok(())
            }
        }
    }

    fn call(&mut self, call: &Call, input: &Value, out: &mut Vec<Value>) -> Result<(), JqError> {
        let string_argument = |eval: &mut Eval, argument: &Expr, name: &str| -> Result<Vec<String>, JqError> {
            let mut values = Vec::new();
            eval.values(argument, input, &mut values)?;
            values
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    other => Err(JqError::Runtime(format!("{name}() needs a string, got {}", type_name(Some(&other))))),
                })
                .collect()
        };
        let input_string = |name: &str| -> Result<&str, JqError> {
            input.as_str().ok_or_else(|| {
                JqError::Runtime(format!("{name}() needs a string input, got {}", type_name(Some(input))))
            })
        };
        match call {
            Call::Select(condition) => {
                let mut results = Vec::new();
                self.values(condition, input, &mut results)?;
                for result in results {
                    if truthy(&result) {
                        out.push(input.clone());
                    }
                }
            }
            Call::Not => out.push(Value::Bool(!truthy(input))),
            Call::Empty => {}
            Call::Length => out.push(match input {
                Value::Null => Value::from(0),
                Value::Bool(_) => return Err(JqError::Runtime("boolean has no length".into())),
                Value::Number(n) => number(n.as_f64().unwrap_or(0.0).abs()),
                Value::String(s) => Value::from(s.chars().count()),
                Value::Array(items) => Value::from(items.len()),
                Value::Object(map) => Value::from(map.len()),
            }),
            Call::AsciiDowncase => out.push(Value::String(input_string("ascii_downcase")?.to_ascii_lowercase())),
            Call::AsciiUpcase => out.push(Value::String(input_string("ascii_upcase")?.to_ascii_uppercase())),
            Call::Has(argument) => {
                let mut keys = Vec::new();
                self.values(argument, input, &mut keys)?;
                for key in keys {
                    out.push(Value::Bool(match (input, &key) {
                        (Value::Object(map), Value::String(k)) => map.contains_key(k),
                        (Value::Array(items), Value::Number(n)) => {
                            integer(n).is_ok_and(|i| i >= 0 && (i as usize) < items.len())
                        }
                        _ => {
                            return Err(JqError::Runtime(format!(
                                "cannot check whether {} has a {} key",
                                type_name(Some(input)),
                                type_name(Some(&key))
                            )));
                        }
                    }));
                }
            }
            Call::StartsWith(argument) => {
                let text = input_string("startswith")?;
                for prefix in string_argument(self, argument, "startswith")? {
                    out.push(Value::Bool(text.starts_with(&prefix)));
                }
            }
            Call::EndsWith(argument) => {
                let text = input_string("endswith")?;
                for suffix in string_argument(self, argument, "endswith")? {
                    out.push(Value::Bool(text.ends_with(&suffix)));
                }
            }
            Call::Contains(argument) => {
                let text = input_string("contains")?;
                for part in string_argument(self, argument, "contains")? {
                    out.push(Value::Bool(text.contains(&part)));
                }
            }
            Call::Test(regex) => out.push(Value::Bool(regex.is_match(input_string("test")?))),
        }
        Ok(())
    }
}

fn with(path: &Path, segment: PathSegment) -> Path {
    let mut path = path.clone();
    path.push(segment);
    path
}

fn integer(n: &serde_json::Number) -> Result<i64, JqError> {
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f.is_finite() && f.abs() < 9.0e15 {
        // jq floors fractional indices.
        Ok(f.floor() as i64)
    } else {
        Err(JqError::Runtime(format!("index {n} is out of range")))
    }
}

fn type_rank(value: &Value) -> u8 {
    match value {
        Value::Null => 0,
        Value::Bool(false) => 1,
        Value::Bool(true) => 2,
        Value::Number(_) => 3,
        Value::String(_) => 4,
        Value::Array(_) => 5,
        Value::Object(_) => 6,
    }
}

/// jq's total order: null < false < true < numbers < strings < arrays < objects.
fn compare_values(a: &Value, b: &Value) -> Ordering {
    let rank = type_rank(a).cmp(&type_rank(b));
    if rank != Ordering::Equal {
        return rank;
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.as_f64().unwrap_or(0.0).partial_cmp(&y.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let ordering = compare_values(p, q);
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xk: Vec<&String> = x.keys().collect();
            let mut yk: Vec<&String> = y.keys().collect();
            xk.sort();
            yk.sort();
            let keys = xk.cmp(&yk);
            if keys != Ordering::Equal {
                return keys;
            }
            for key in xk {
                let ordering = match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) => compare_values(p, q),
                    _ => Ordering::Equal,
                };
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
            Ordering::Equal
        }
        _ => Ordering::Equal,
    }
}

#[cfg(test)]
#[path = "jq_tests.rs"]
mod tests;
