//! The syntax tree and the recursive-descent parser, depth-limited.

use super::lexer::{CompareOp, Token};
use super::{JqError, MAX_NESTING, MAX_REGEX_SIZE};
use serde_json::Value;

#[derive(Debug, Clone)]
pub(super) enum Expr {
    Pipe(Box<Expr>, Box<Expr>),
    // Chains are flat so a long `a, b, c, …` never deepens evaluation's recursion.
    Comma(Vec<Expr>),
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Compare(CompareOp, Box<Expr>, Box<Expr>),
    Term(Term),
}

#[derive(Debug, Clone)]
pub(super) struct Term {
    pub(super) head: Head,
    pub(super) suffixes: Vec<Suffix>,
}

#[derive(Debug, Clone)]
pub(super) enum Head {
    Identity,
    Literal(Value),
    Paren(Box<Expr>),
    Call(Call),
}

#[derive(Debug, Clone)]
pub(super) enum Call {
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
pub(super) enum Suffix {
    Field(String, bool),
    Index(Box<Expr>, bool),
    Iterate(bool),
}

impl Suffix {
    fn set_optional(&mut self) {
        match self {
            Suffix::Field(_, optional) | Suffix::Index(_, optional) | Suffix::Iterate(optional) => {
                *optional = true
            }
        }
    }
}

pub(super) struct Parser {
    pub(super) tokens: Vec<(Token, usize)>,
    pub(super) position: usize,
    pub(super) depth: usize,
    pub(super) end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position).map(|(t, _)| t)
    }

    fn offset(&self) -> usize {
        self.tokens
            .get(self.position)
            .map(|(_, o)| *o)
            .unwrap_or(self.end)
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
                message: format!(
                    "expected {}, found {}",
                    expected.describe(),
                    token.describe()
                ),
            }),
            None => Err(JqError::Parse {
                offset,
                message: format!("expected {}, found the end", expected.describe()),
            }),
        }
    }

    fn enter(&mut self) -> Result<(), JqError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(JqError::Limit(format!(
                "expression nests deeper than {MAX_NESTING} levels"
            )));
        }
        Ok(())
    }

    pub(super) fn pipe(&mut self) -> Result<Expr, JqError> {
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
        let mut items = vec![self.or()?];
        while self.peek() == Some(&Token::Comma) {
            self.position += 1;
            items.push(self.or()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Comma(items)
        })
    }

    fn or(&mut self) -> Result<Expr, JqError> {
        let mut items = vec![self.and()?];
        while self.peek() == Some(&Token::Ident("or".into())) {
            self.position += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, JqError> {
        let mut items = vec![self.compare()?];
        while self.peek() == Some(&Token::Ident("and".into())) {
            self.position += 1;
            items.push(self.compare()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn compare(&mut self) -> Result<Expr, JqError> {
        let left = self.postfix()?;
        if let Some(Token::Compare(op)) = self.peek().cloned() {
            self.position += 1;
            let right = self.postfix()?;
            if let Some(Token::Compare(_)) = self.peek() {
                return Err(JqError::Parse {
                    offset: self.offset(),
                    message: "comparisons do not chain".into(),
                });
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
                    let Some(Token::Str(name)) = self.next() else {
                        unreachable_parse(offset)?
                    };
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
                _ => {
                    return Err(JqError::Unsupported {
                        offset,
                        feature: "arithmetic '-'".into(),
                    });
                }
            },
            Some(Token::LParen) => {
                let inner = self.pipe()?;
                self.expect(Token::RParen)?;
                Head::Paren(Box::new(inner))
            }
            Some(Token::LBracket) => {
                return Err(JqError::Unsupported {
                    offset,
                    feature: "array construction".into(),
                });
            }
            Some(Token::Ident(name)) => self.call(&name, offset)?,
            Some(token) => {
                return Err(JqError::Parse {
                    offset,
                    message: format!("unexpected {}", token.describe()),
                });
            }
            None => {
                return Err(JqError::Parse {
                    offset,
                    message: "expression ends too early".into(),
                });
            }
        };
        loop {
            match self.peek() {
                Some(Token::Field(_)) => {
                    let Some(Token::Field(name)) = self.next() else {
                        unreachable_parse(offset)?
                    };
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
                        let Expr::Term(Term {
                            head: Head::Literal(Value::String(pattern)),
                            suffixes,
                        }) = *argument
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
                return Err(JqError::Parse {
                    offset,
                    message: format!("'{name}' needs a left-hand side"),
                });
            }
            other => {
                return Err(JqError::Unsupported {
                    offset,
                    feature: format!("function '{other}'"),
                });
            }
        };
        Ok(Head::Call(call))
    }
}

pub(super) fn unreachable_parse<T>(offset: usize) -> Result<T, JqError> {
    Err(JqError::Parse {
        offset,
        message: "internal parser inconsistency".into(),
    })
}

pub(super) fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

/// Rejects expressions that are valid jq but do not denote paths, before any evaluation.
pub(super) fn check_path(expr: &Expr) -> Result<(), JqError> {
    let not_path = |what: &str| JqError::Unsupported {
        offset: 0,
        feature: format!("{what} is not a path expression (ignoreDifferences deletes paths)"),
    };
    match expr {
        Expr::Pipe(a, b) => {
            check_path(a)?;
            check_path(b)
        }
        Expr::Comma(items) => items.iter().try_for_each(check_path),
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
