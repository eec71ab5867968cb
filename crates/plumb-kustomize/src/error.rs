//! The build error. Each variant names the file and, where there is one, the kustomization
//! field; `Context` wraps a nested error with the step that led to it (like kustomize's
//! "accumulating resources from 'x'").

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    Load { path: PathBuf, message: String },

    #[error("{path}: refusing to read outside the build root {root}")]
    Escape { path: PathBuf, root: PathBuf },

    #[error("{path}: invalid YAML")]
    Yaml {
        path: PathBuf,
        #[source]
        source: crate::yaml::ParseError,
    },

    #[error("{path}: invalid kustomization: {message}")]
    Kustomization { path: PathBuf, message: String },

    #[error("{path}: field {field}: {message}")]
    Field {
        path: PathBuf,
        field: String,
        message: String,
    },

    #[error("{path}: field {field} is not supported by plumb: {reason}")]
    Unsupported {
        path: PathBuf,
        field: String,
        reason: String,
    },

    #[error("{path}: cycle between kustomizations: {chain}")]
    Cycle { path: PathBuf, chain: String },

    #[error("{id}: {message}")]
    Object { id: String, message: String },

    #[error("limit exceeded: {0}")]
    Limit(String),

    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    pub(crate) fn context(self, context: impl Into<String>) -> Error {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// The whole chain on one line, outermost first ("a: b: c").
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(self);
        while let Some(e) = cur {
            out.push_str(": ");
            out.push_str(&e.to_string());
            cur = e.source();
        }
        out
    }
}

/// Shorthand for errors tied to a kustomization field.
pub(crate) fn field_err(path: &std::path::Path, field: &str, message: impl Into<String>) -> Error {
    Error::Field {
        path: path.to_path_buf(),
        field: field.to_string(),
        message: message.into(),
    }
}
