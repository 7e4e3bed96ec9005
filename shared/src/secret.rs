//! A string that must never be printed: tokens, OAuth secrets, access keys.

use serde::{Deserialize, Deserializer};
use std::fmt;

/// Holds a credential. `Debug` and `Display` print `***`, and there is no
/// `Serialize` impl, so a secret cannot reach a log line, an error message or a
/// Lambda response by accident. Read it with [`Secret::expose`], at the one
/// place where it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub const REDACTED: &'static str = "***";

    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plain value. Call only where the value leaves the process on purpose
    /// (an HTTP header, a Secrets Manager `SecretString`).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::REDACTED)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_prints_its_value(value in "[a-zA-Z0-9]{8,64}") {
            let secret = Secret::new(value.clone());
            let debug = format!("{secret:?}");
            let display = format!("{secret}");
            let nested = format!("{:?}", Some(vec![secret.clone()]));
            prop_assert!(!debug.contains(&value));
            prop_assert!(!display.contains(&value));
            prop_assert!(!nested.contains(&value));
            prop_assert_eq!(secret.expose(), value.as_str());
        }
    }

    #[test]
    fn deserializes_from_a_plain_string() {
        let secret: Secret = serde_json::from_str("\"dapi123\"").unwrap();
        assert_eq!(secret.expose(), "dapi123");
        assert_eq!(format!("{secret:?}"), "***");
    }
}
