//! Turning an expression into tokens, each with its byte offset.

use super::JqError;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Token {
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
    pub(super) fn describe(&self) -> String {
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
pub(super) enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    pub(super) fn as_str(self) -> &'static str {
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
pub(super) const KEYWORDS: &[&str] = &[
    "if", "then", "elif", "else", "end", "reduce", "foreach", "def", "as", "try", "catch", "label",
    "import", "include",
];

pub(super) fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

pub(super) fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

pub(super) fn tokenize(source: &str) -> Result<Vec<(Token, usize)>, JqError> {
    let chars: Vec<(usize, char)> = source.char_indices().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let unsupported = |offset: usize, feature: &str| JqError::Unsupported {
        offset,
        feature: feature.to_string(),
    };
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
            '?' if next == Some('/') => {
                return Err(unsupported(offset, "alternative destructuring '?//'"));
            }
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
            '/' if next == Some('/') => {
                return Err(unsupported(offset, "alternative operator '//'"));
            }
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
                        || ((chars[j].1 == '+' || chars[j].1 == '-')
                            && j > i
                            && matches!(chars[j - 1].1, 'e' | 'E')))
                {
                    j += 1;
                }
                let end = chars.get(j).map(|(o, _)| *o).unwrap_or(source.len());
                let text = &source[offset..end];
                let number: f64 = text.parse().map_err(|_| JqError::Parse {
                    offset,
                    message: format!("invalid number {text:?}"),
                })?;
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
                if j < chars.len()
                    && chars[j].1 == ':'
                    && chars.get(j + 1).map(|c| c.1) == Some(':')
                {
                    return Err(unsupported(offset, "module references"));
                }
                if KEYWORDS.contains(&name.as_str()) {
                    return Err(unsupported(offset, &format!("'{name}'")));
                }
                tokens.push((Token::Ident(name), offset));
                i = j;
            }
            other => {
                return Err(JqError::Parse {
                    offset,
                    message: format!("unexpected character {other:?}"),
                });
            }
        }
    }
    Ok(tokens)
}

pub(super) fn string_literal(
    chars: &[(usize, char)],
    start: usize,
) -> Result<(String, usize), JqError> {
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
                        let hex: String =
                            chars.iter().skip(i + 2).take(4).map(|(_, c)| *c).collect();
                        let code = u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == 4)
                            .ok_or_else(|| JqError::Parse {
                                offset: at,
                                message: "invalid \\u escape".into(),
                            })?;
                        // Lone surrogates become U+FFFD rather than failing.
                        text.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        i += 4;
                    }
                    Some('(') => {
                        return Err(JqError::Unsupported {
                            offset: at,
                            feature: "string interpolation".into(),
                        });
                    }
                    _ => {
                        return Err(JqError::Parse {
                            offset: at,
                            message: "invalid escape in string".into(),
                        });
                    }
                }
                i += 2;
            }
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
    Err(JqError::Parse {
        offset,
        message: "unterminated string".into(),
    })
}
