//! The one error taxonomy of lakeops.
//!
//! Every failure a handler returns is one of three kinds, and each kind has a
//! stable name that Step Functions `Retry` and `Catch` blocks match on
//! (`ErrorEquals: ["Lakeops.Retryable"]`). The Lambda runtime reports the name
//! as `errorType`.

use std::fmt;

/// Stable error names, as Step Functions sees them.
pub const RETRYABLE: &str = "Lakeops.Retryable";
pub const TERMINAL: &str = "Lakeops.Terminal";
pub const INVALID_INPUT: &str = "Lakeops.InvalidInput";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum ErrorKind {
    /// A transient fault (throttling, 429, 503, eventual consistency). Running
    /// the same step again later is expected to succeed.
    Retryable,
    /// A fault that repeating will not fix (permission denied, conflict with a
    /// resource we do not own, a bug).
    Terminal,
    /// The input is wrong. The message names every offending field.
    InvalidInput,
}

impl ErrorKind {
    pub fn error_name(self) -> &'static str {
        match self {
            ErrorKind::Retryable => RETRYABLE,
            ErrorKind::Terminal => TERMINAL,
            ErrorKind::InvalidInput => INVALID_INPUT,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.error_name())
    }
}

/// A handler-level error: a kind, and a message that never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Retryable,
            message: message.into(),
        }
    }

    pub fn terminal(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Terminal,
            message: message.into(),
        }
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidInput,
            message: message.into(),
        }
    }

    /// Invalid input described by a list of problems, each naming its field.
    pub fn invalid_fields(problems: &crate::validate::Problems) -> Self {
        Self::invalid_input(problems.to_string())
    }

    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Retryable
    }

    pub fn error_name(&self) -> &'static str {
        self.kind.error_name()
    }

    /// Prefix the message with what was being done, keeping the kind.
    pub fn context(self, what: impl fmt::Display) -> Self {
        Self {
            kind: self.kind,
            message: format!("{what}: {}", self.message),
        }
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: error.error_name().to_string(),
            error_message: error.message,
        }
    }
}

impl From<crate::validate::Problems> for Error {
    fn from(problems: crate::validate::Problems) -> Self {
        Self::invalid_fields(&problems)
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Self::invalid_input(format!("malformed JSON: {error}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable() {
        assert_eq!(Error::retryable("x").error_name(), "Lakeops.Retryable");
        assert_eq!(Error::terminal("x").error_name(), "Lakeops.Terminal");
        assert_eq!(
            Error::invalid_input("x").error_name(),
            "Lakeops.InvalidInput"
        );
    }

    #[test]
    fn diagnostic_carries_the_name() {
        let diagnostic: lambda_runtime::Diagnostic =
            Error::terminal("boom").context("stage workspace").into();
        assert_eq!(diagnostic.error_type, "Lakeops.Terminal");
        assert_eq!(diagnostic.error_message, "stage workspace: boom");
    }
}
