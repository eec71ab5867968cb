//! A Go `text/template` engine: lexer, parser and executor with Go's output semantics.

pub mod exec;
pub mod lex;
pub mod parse;

pub use exec::{Engine, ExecError};
pub use parse::{Tree, TreeMap};

/// A template parse error, printed as Go prints it: `template: NAME:LINE: MSG`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("template: {name}:{line}: {msg}")]
pub struct ParseError {
    /// Template (file) name.
    pub name: String,
    /// 1-based line.
    pub line: usize,
    /// What went wrong.
    pub msg: String,
}
