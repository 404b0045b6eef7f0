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
    /// A variable meant for local runs only (an inline secret) is set in a
    /// Lambda execution environment.
    #[error("{name} is for local runs only and is refused in Lambda; put the value in Secrets Manager and set {instead} to its ARN")]
    LocalOnly {
        /// The local-only variable.
        name: &'static str,
        /// The variable to use instead.
        instead: &'static str,
    },
    /// None of a set of alternative variables is set.
    #[error("{name} must be set (or {alternative}, {purpose})")]
    MissingOneOf {
        /// The usual variable.
        name: &'static str,
        /// The variable that can stand in for it.
        alternative: &'static str,
        /// What the alternative does instead, in a few words.
        purpose: &'static str,
    },
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

    /// Whether this is a real Lambda execution environment, as opposed to a
    /// local run: plain `cargo run`, tests, or an emulator such as
    /// `cargo lambda watch`.
    ///
    /// The rule: `AWS_LAMBDA_FUNCTION_NAME` is set, and so is
    /// `AWS_LAMBDA_INITIALIZATION_TYPE` or `AWS_EXECUTION_ENV`. The function
    /// name alone is not enough: `cargo lambda watch` sets it (with
    /// `AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_VERSION` and
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`) but neither of the other two.
    /// Lambda sets `AWS_LAMBDA_INITIALIZATION_TYPE` (`on-demand`,
    /// `provisioned-concurrency`, …) in every runtime, and reserves it, so a
    /// function's configuration cannot unset it; `AWS_EXECUTION_ENV` is only
    /// set by the managed runtimes, not by `provided.al2023`, and is accepted
    /// as a second sign.
    pub fn in_lambda(&self) -> bool {
        self.optional("AWS_LAMBDA_FUNCTION_NAME").is_some()
            && (self.optional("AWS_LAMBDA_INITIALIZATION_TYPE").is_some()
                || self.optional("AWS_EXECUTION_ENV").is_some())
    }

    /// Refuses `name`, a secret given inline, when running in Lambda
    /// ([`Env::in_lambda`]): a secret in a function's environment is readable
    /// by everyone who can read its configuration, and lands in deployment
    /// templates and logs of the deployment tools. `instead` names the
    /// variable that holds a Secrets Manager ARN.
    pub fn local_only_secret(
        &self,
        name: &'static str,
        instead: &'static str,
    ) -> Result<(), ConfigError> {
        if self.in_lambda() && self.optional(name).is_some() {
            return Err(ConfigError::LocalOnly { name, instead });
        }
        Ok(())
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
    fn only_a_function_name_with_a_lambda_only_variable_counts_as_lambda() {
        let name = ("AWS_LAMBDA_FUNCTION_NAME", "f");
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[], false),
            // What `cargo lambda watch` sets.
            (
                &[
                    name,
                    ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9000"),
                    ("AWS_LAMBDA_FUNCTION_VERSION", "1"),
                    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096"),
                ],
                false,
            ),
            (
                &[name, ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")],
                true,
            ),
            (&[name, ("AWS_EXECUTION_ENV", "AWS_Lambda_java21")], true),
            (&[("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")], false),
        ];
        for (pairs, expected) in cases {
            assert_eq!(Env::from_pairs(pairs).in_lambda(), *expected, "{pairs:?}");
        }
    }

    #[test]
    fn a_local_only_secret_is_refused_in_lambda_naming_the_arn_variable() {
        let lambda = [
            ("AWS_LAMBDA_FUNCTION_NAME", "f"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ("PASSWORD", "p"),
        ];
        let err = Env::from_pairs(&lambda)
            .local_only_secret("PASSWORD", "PASSWORD_SECRET_ARN")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "PASSWORD is for local runs only and is refused in Lambda; \
             put the value in Secrets Manager and set PASSWORD_SECRET_ARN to its ARN"
        );
        let emulator = Env::from_pairs(&[("AWS_LAMBDA_FUNCTION_NAME", "f"), ("PASSWORD", "p")]);
        assert_eq!(emulator.local_only_secret("PASSWORD", "X"), Ok(()));
        let unset = Env::from_pairs(&lambda[..2]);
        assert_eq!(unset.local_only_secret("PASSWORD", "X"), Ok(()));
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(<redacted>) <redacted>");
        assert_eq!(s.expose(), "hunter2");
    }
}
