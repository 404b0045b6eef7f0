//! Typed configuration read once from the environment.
//!
//! Every function reads its settings through [`Env`], which wraps a lookup
//! function. In production it reads the process environment; tests build one
//! from pairs, so no test ever mutates the process environment.

use std::fmt;
use std::str::FromStr;

/// A configuration value that is missing or cannot be used. It always names
/// the variable, so a failed start-up says exactly what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{name} must be set")]
    Missing {
        /// The variable's name.
        name: &'static str,
    },
    /// A variable is set to something that cannot be used.
    #[error("{name}={value:?} is invalid: {reason}")]
    Invalid {
        /// The variable's name.
        name: &'static str,
        /// The offending value (never used for secrets).
        value: String,
        /// What was expected.
        reason: String,
    },
    /// Two variables contradict each other, or one needs another.
    #[error("{0}")]
    Conflict(String),
}

type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + Send + Sync + 'a>;

/// Where configuration values come from.
pub struct Env<'a> {
    lookup: Lookup<'a>,
}

impl fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env").finish_non_exhaustive()
    }
}

impl Env<'static> {
    /// Reads the process environment.
    pub fn process() -> Self {
        Self {
            lookup: Box::new(|name| std::env::var(name).ok()),
        }
    }

    /// Reads only the given pairs; for tests and tools.
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Self {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        Self {
            lookup: Box::new(move |name| {
                owned
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            }),
        }
    }
}

impl Env<'_> {
    /// The trimmed value of `name`, or `None` when it is unset or blank.
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The trimmed value of `name`, which must be set.
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing { name })
    }

    /// Parses `name` with [`FromStr`], or gives `default` when it is unset.
    pub fn parse_or<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(value) => value.parse().map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: e.to_string(),
                value,
            }),
        }
    }

    /// Reads a boolean (`true`/`false`, `1`/`0`, `yes`/`no`), or `default`.
    pub fn flag_or(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(value) => match value.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(ConfigError::Invalid {
                    name,
                    value,
                    reason: "expected true or false".into(),
                }),
            },
        }
    }

    /// Splits a comma-separated list, dropping blank entries; `None` when unset.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        self.optional(name).map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
    }
}

/// A string that must never reach a log line: its `Debug` and `Display` print
/// a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_count_as_unset() {
        let env = Env::from_pairs(&[("A", "  "), ("B", " x ")]);
        assert_eq!(env.optional("A"), None);
        assert_eq!(env.optional("B").as_deref(), Some("x"));
        assert_eq!(env.required("A"), Err(ConfigError::Missing { name: "A" }));
    }

    #[test]
    fn invalid_numbers_name_the_variable() {
        let env = Env::from_pairs(&[("N", "ten")]);
        let err = env.parse_or::<u32>("N", 1).unwrap_err();
        assert!(err.to_string().starts_with("N=\"ten\" is invalid"), "{err}");
        assert_eq!(env.parse_or::<u32>("M", 7), Ok(7));
    }

    #[test]
    fn flags_accept_common_spellings_and_reject_others() {
        let env = Env::from_pairs(&[("A", "TRUE"), ("B", "0"), ("C", "maybe")]);
        assert_eq!(env.flag_or("A", false), Ok(true));
        assert_eq!(env.flag_or("B", true), Ok(false));
        assert_eq!(env.flag_or("Z", true), Ok(true));
        assert!(env.flag_or("C", true).is_err());
    }

    #[test]
    fn lists_split_on_commas_and_drop_blanks() {
        let env = Env::from_pairs(&[("L", "a, b,,c ")]);
        assert_eq!(
            env.list("L"),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(env.list("none"), None);
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(<redacted>) <redacted>");
        assert_eq!(s.expose(), "hunter2");
    }
}
