//! Errors of ApplicationSet generation, each naming the field of the set it concerns.

/// Why an ApplicationSet could not be turned into Applications.
///
/// Every variant carries `field`, the JSON path inside the ApplicationSet (for example
/// `spec.generators[1].git.directories[0].path`), so the condition a user sees points at
/// the line to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field has the wrong shape or an invalid value.
    #[error("{field}: {message}")]
    Invalid {
        /// Path of the offending field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A generator or option Argo CD has but this crate does not implement.
    #[error("{field}: not supported yet: {feature}")]
    Unsupported {
        /// Path of the field that asks for it.
        field: String,
        /// The missing feature.
        feature: String,
    },
    /// A template (in the Application template, a generator or `templatePatch`) failed.
    #[error("{field}: template error at {at}: {message}")]
    Template {
        /// The templated field (`spec.template`, `spec.templatePatch`, a generator).
        field: String,
        /// Where inside it (a path such as `metadata.name`, or `.` for the whole string).
        at: String,
        /// The parse or execution error, worded as Argo CD words it.
        message: String,
    },
    /// The engine could not provide what a generator reads (a repository, cluster Secrets).
    #[error("{field}: {message}")]
    Context {
        /// Path of the generator that asked.
        field: String,
        /// The engine's explanation.
        message: String,
    },
    /// A repository file or directory could not be read.
    #[error("{field}: cannot read {path}")]
    Io {
        /// Path of the generator that read it.
        field: String,
        /// Repository-relative path.
        path: String,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// Two generated Applications share a name.
    #[error("ApplicationSet {set} contains applications with duplicate name: {name}")]
    DuplicateName {
        /// Name of the ApplicationSet.
        set: String,
        /// The repeated Application name.
        name: String,
    },
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn unsupported(field: impl Into<String>, feature: impl Into<String>) -> Error {
        Error::Unsupported {
            field: field.into(),
            feature: feature.into(),
        }
    }
}
