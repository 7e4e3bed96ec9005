//! Typed settings read from the environment.
//!
//! A function reads all of its variables through one [`Env`], which records
//! every missing or malformed variable instead of stopping at the first. The
//! handler's init then fails once, with a message that names them all.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// The variables that could not be read, each with what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub problems: Vec<(String, String)>,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid settings: ")?;
        for (i, (name, problem)) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{name} {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SettingsError {}

/// Where variable values come from.
type Source = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Reads variables from a source (the process environment, or a map in tests)
/// and remembers every problem.
pub struct Env {
    source: Source,
    problems: Vec<(String, String)>,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Self {
        Self {
            source: Box::new(|name| std::env::var(name).ok()),
            problems: Vec::new(),
        }
    }

    /// A fixed map, for tests.
    pub fn from_map(vars: HashMap<String, String>) -> Self {
        Self {
            source: Box::new(move |name| vars.get(name).cloned()),
            problems: Vec::new(),
        }
    }

    fn raw(&self, name: &str) -> Option<String> {
        (self.source)(name).filter(|v| !v.trim().is_empty())
    }

    /// A required variable, parsed. Records "is missing" or "is malformed".
    /// Returns `T::default()` as a placeholder when it fails, so reading can go
    /// on and collect every problem; [`Env::finish`] then reports them.
    pub fn required<T>(&mut self, name: &str) -> T
    where
        T: FromStr + Default,
        T::Err: fmt::Display,
    {
        match self.raw(name) {
            None => {
                self.problems
                    .push((name.to_string(), "is missing".to_string()));
                T::default()
            }
            Some(value) => self.parse(name, &value).unwrap_or_default(),
        }
    }

    /// An optional variable, parsed when present.
    pub fn optional<T>(&mut self, name: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let value = self.raw(name)?;
        self.parse(name, &value)
    }

    /// An optional variable with a default.
    pub fn or<T>(&mut self, name: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.optional(name).unwrap_or(default)
    }

    /// A comma-separated list; empty when unset.
    pub fn list(&mut self, name: &str) -> Vec<String> {
        self.raw(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn parse<T>(&mut self, name: &str, value: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match value.trim().parse::<T>() {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                // The value itself is not echoed: it may be a credential.
                self.problems
                    .push((name.to_string(), format!("is malformed ({error})")));
                None
            }
        }
    }

    /// Record a problem found by the caller (e.g. two variables that conflict).
    pub fn problem(&mut self, name: &str, problem: impl Into<String>) {
        self.problems.push((name.to_string(), problem.into()));
    }

    /// `Ok` when every variable read so far was fine.
    /// `LAKEOPS_ENVIRONMENT`: this deployment's environment (template.yaml's
    /// `EnvironmentName`), required and a valid environment name. It bounds
    /// what a function touches where IAM cannot (Lake Formation locations) or
    /// what a spec may ask of the function's own role.
    pub fn lakeops_environment(&mut self) -> String {
        const NAME: &str = "LAKEOPS_ENVIRONMENT";
        let value: String = self.required(NAME);
        if !value.is_empty() && !crate::validate::is_environment_name(&value) {
            self.problems.push((
                NAME.to_string(),
                crate::validate::ENVIRONMENT_NAME_RULE.to_string(),
            ));
        }
        value
    }

    pub fn finish(self) -> Result<(), SettingsError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(SettingsError {
                problems: self.problems,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn names_every_missing_or_malformed_variable_at_once() {
        let mut e = env(&[("BATCH_SIZE", "ten"), ("TABLE", "t")]);
        let _bucket: String = e.required("BUCKET");
        let _batch: u32 = e.required("BATCH_SIZE");
        let _timeout: Option<u64> = e.optional("TIMEOUT");
        let table: String = e.required("TABLE");
        assert_eq!(table, "t");
        let error = e.finish().unwrap_err();
        let text = error.to_string();
        assert_eq!(error.problems.len(), 2, "{text}");
        assert!(text.contains("BUCKET is missing"), "{text}");
        assert!(text.contains("BATCH_SIZE is malformed"), "{text}");
        assert!(!text.contains("ten"), "values are not echoed: {text}");
    }

    #[test]
    fn the_environment_is_required_and_a_valid_name() {
        let mut e = env(&[("LAKEOPS_ENVIRONMENT", "dev")]);
        assert_eq!(e.lakeops_environment(), "dev");
        e.finish().unwrap();
        for bad in [&[][..], &[("LAKEOPS_ENVIRONMENT", "dev-eu")][..]] {
            let mut e = env(bad);
            e.lakeops_environment();
            let text = e.finish().unwrap_err().to_string();
            assert!(text.contains("LAKEOPS_ENVIRONMENT"), "{text}");
        }
    }

    #[test]
    fn lists_and_defaults() {
        let mut e = env(&[("NAMES", " a, b ,,c"), ("BLANK", "  ")]);
        assert_eq!(e.list("NAMES"), vec!["a", "b", "c"]);
        assert_eq!(e.or("BLANK", 7u32), 7);
        assert!(e.list("NONE").is_empty());
        e.finish().unwrap();
    }
}
