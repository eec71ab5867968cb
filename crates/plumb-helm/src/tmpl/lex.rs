//! Lexer for Go's text/template syntax: text, `{{ }}` actions, trim markers and comments.

use super::ParseError;

/// Token kinds inside and between actions.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Text(String),
    Open,
    Close,
    Ident(String),
    Field(String),
    Var(String),
    Str(String),
    Num(String),
    Char(i64),
    Bool(bool),
    Nil,
    Dot,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Eof,
}

/// A token, its byte offset in the source, and whether whitespace preceded it.
#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    pub off: usize,
    pub space_before: bool,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// 1-based line of a byte offset.
pub fn line_of(src: &str, off: usize) -> usize {
    1 + src.as_bytes()[..off.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    out: Vec<Token>,
    name: &'a str,
}

/// Tokenize a template source.
pub fn lex(name: &str, src: &str) -> Result<Vec<Token>, ParseError> {
    let mut l = Lexer {
        src,
        b: src.as_bytes(),
        pos: 0,
        out: Vec::new(),
        name,
    };
    l.run()?;
    Ok(l.out)
}

impl<'a> Lexer<'a> {
    fn err(&self, off: usize, msg: impl Into<String>) -> ParseError {
        ParseError {
            name: self.name.to_string(),
            line: line_of(self.src, off),
            msg: msg.into(),
        }
    }

    fn push(&mut self, tok: Tok, off: usize, space_before: bool) {
        self.out.push(Token {
            tok,
            off,
            space_before,
        });
    }

    fn run(&mut self) -> Result<(), ParseError> {
        let mut trim_next = false;
        loop {
            let rest = &self.src[self.pos..];
            let (text_end, found) = match rest.find("{{") {
                Some(i) => (self.pos + i, true),
                None => (self.src.len(), false),
            };
            let mut text = &self.src[self.pos..text_end];
            if trim_next {
                text = text.trim_start_matches([' ', '\t', '\r', '\n']);
            }
            let mut after_open = text_end + 2;
            let left_trim = found
                && self.b.get(after_open) == Some(&b'-')
                && self.b.get(after_open + 1).is_some_and(|&c| is_space(c));
            if left_trim {
                text = text.trim_end_matches([' ', '\t', '\r', '\n']);
                after_open += 2;
            }
            if !text.is_empty() {
                let off = self.pos;
                self.push(Tok::Text(text.to_string()), off, false);
            }
            if !found {
                self.push(Tok::Eof, self.src.len(), false);
                return Ok(());
            }
            // Comments: `{{/* ... */}}`, optionally with trim markers around.
            let mut p = after_open;
            while left_trim && p < self.b.len() && is_space(self.b[p]) {
                p += 1;
            }
            if self.src[p..].starts_with("/*") {
                let end = self.src[p + 2..]
                    .find("*/")
                    .map(|i| p + 2 + i + 2)
                    .ok_or_else(|| self.err(text_end, "unclosed comment"))?;
                let after = &self.src[end..];
                if after.starts_with("}}") {
                    self.pos = end + 2;
                    trim_next = false;
                } else if after.len() >= 4
                    && is_space(after.as_bytes()[0])
                    && after[1..].starts_with("-}}")
                {
                    self.pos = end + 4;
                    trim_next = true;
                } else {
                    return Err(self.err(end, "comment ends before closing delimiter"));
                }
                continue;
            }
            self.push(Tok::Open, text_end, false);
            self.pos = after_open;
            trim_next = self.lex_action(text_end)?;
        }
    }

    /// Lex inside an action; returns whether the closing delimiter had a trim marker.
    fn lex_action(&mut self, open_off: usize) -> Result<bool, ParseError> {
        let mut space = false;
        let mut paren = 0i32;
        loop {
            let Some(&c) = self.b.get(self.pos) else {
                return Err(self.err(open_off, "unclosed action"));
            };
            let start = self.pos;
            if is_space(c) {
                while self.pos < self.b.len() && is_space(self.b[self.pos]) {
                    self.pos += 1;
                }
                if self.src[self.pos..].starts_with("-}}") {
                    self.push(Tok::Close, self.pos, true);
                    self.pos += 3;
                    return Ok(true);
                }
                space = true;
                continue;
            }
            if self.src[self.pos..].starts_with("}}") {
                if paren > 0 {
                    return Err(self.err(start, "unclosed left paren"));
                }
                self.push(Tok::Close, start, space);
                self.pos += 2;
                return Ok(false);
            }
            let tok = match c {
                b'|' => {
                    self.pos += 1;
                    Tok::Pipe
                }
                b'(' => {
                    self.pos += 1;
                    paren += 1;
                    Tok::LParen
                }
                b')' => {
                    self.pos += 1;
                    paren -= 1;
                    if paren < 0 {
                        return Err(self.err(start, "unexpected right paren"));
                    }
                    Tok::RParen
                }
                b',' => {
                    self.pos += 1;
                    Tok::Comma
                }
                b'=' => {
                    self.pos += 1;
                    Tok::Assign
                }
                b':' => {
                    if self.b.get(self.pos + 1) != Some(&b'=') {
                        return Err(self.err(start, "expected :="));
                    }
                    self.pos += 2;
                    Tok::Declare
                }
                b'"' => Tok::Str(self.lex_quote()?),
                b'`' => {
                    let end = self.src[self.pos + 1..]
                        .find('`')
                        .ok_or_else(|| self.err(start, "unterminated raw quoted string"))?;
                    let s = self.src[self.pos + 1..self.pos + 1 + end].to_string();
                    self.pos += end + 2;
                    Tok::Str(s)
                }
                b'\'' => Tok::Char(self.lex_char()?),
                b'$' => {
                    self.pos += 1;
                    let name = self.ident();
                    Tok::Var(format!("${name}"))
                }
                b'.' => {
                    let next = self.b.get(self.pos + 1).copied();
                    if next.is_some_and(|n| n.is_ascii_digit()) {
                        Tok::Num(self.number())
                    } else {
                        self.pos += 1;
                        let name = self.ident();
                        if name.is_empty() {
                            Tok::Dot
                        } else {
                            Tok::Field(name)
                        }
                    }
                }
                b'0'..=b'9' | b'-' | b'+' => Tok::Num(self.number()),
                c if c == b'_' || c.is_ascii_alphabetic() || c >= 0x80 => {
                    let name = self.ident();
                    match name.as_str() {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        _ => Tok::Ident(name),
                    }
                }
                _ => {
                    let ch = self.src[self.pos..].chars().next().unwrap_or('?');
                    return Err(self.err(start, format!("unexpected {ch:?} in command")));
                }
            };
            self.push(tok, start, space);
            space = false;
        }
    }

    fn ident(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.src[self.pos..].chars().next() {
            if c == '_' || c.is_alphanumeric() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
        self.src[start..self.pos].to_string()
    }

    fn number(&mut self) -> String {
        let start = self.pos;
        if matches!(self.b.get(self.pos), Some(b'-' | b'+')) {
            self.pos += 1;
        }
        while let Some(&c) = self.b.get(self.pos) {
            let prev = self.b[self.pos - 1];
            let exp_sign = matches!(c, b'-' | b'+') && matches!(prev, b'e' | b'E' | b'p' | b'P');
            if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exp_sign {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.src[start..self.pos].to_string()
    }

    fn lex_quote(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.src[self.pos..].chars().next() else {
                return Err(self.err(start, "unterminated quoted string"));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\n' => return Err(self.err(start, "unterminated quoted string")),
                '\\' => {
                    let e = self.escape(start)?;
                    out.push_str(&e);
                }
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self, start: usize) -> Result<String, ParseError> {
        let Some(c) = self.src[self.pos..].chars().next() else {
            return Err(self.err(start, "unterminated quoted string"));
        };
        self.pos += c.len_utf8();
        let simple = match c {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            '\\' => Some('\\'),
            '"' => Some('"'),
            '\'' => Some('\''),
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'v' => Some('\x0b'),
            _ => None,
        };
        if let Some(s) = simple {
            return Ok(s.to_string());
        }
        let digits = match c {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            '0'..='7' => {
                let oct = &self.src[self.pos - 1..(self.pos + 2).min(self.src.len())];
                self.pos += 2;
                let v = u32::from_str_radix(oct, 8)
                    .map_err(|_| self.err(start, "invalid syntax in quoted string"))?;
                return Ok(char::from_u32(v).map(String::from).unwrap_or_default());
            }
            _ => return Err(self.err(start, "invalid syntax in quoted string")),
        };
        let hex = self
            .src
            .get(self.pos..self.pos + digits)
            .ok_or_else(|| self.err(start, "invalid syntax in quoted string"))?;
        self.pos += digits;
        let v = u32::from_str_radix(hex, 16)
            .map_err(|_| self.err(start, "invalid syntax in quoted string"))?;
        Ok(char::from_u32(v).map(String::from).unwrap_or_default())
    }

    fn lex_char(&mut self) -> Result<i64, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let Some(c) = self.src[self.pos..].chars().next() else {
            return Err(self.err(start, "unterminated character constant"));
        };
        self.pos += c.len_utf8();
        let v = if c == '\\' {
            let e = self.escape(start)?;
            e.chars().next().map(|c| c as i64).unwrap_or(0)
        } else {
            c as i64
        };
        if self.b.get(self.pos) != Some(&b'\'') {
            return Err(self.err(start, "unterminated character constant"));
        }
        self.pos += 1;
        Ok(v)
    }
}
