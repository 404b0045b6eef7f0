//! The function's settings, read once from the environment.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `RESPONSE_TOPIC` | topic for tagged events; required to handle event source mapping batches | — |
//! | `ERROR_TOPIC` | topic for records that cannot be tagged (`ON_ERROR=dlq`) | — |
//! | `ON_ERROR` | `fail`, `log` or `dlq`: what a record that is not JSON or not a page visit does | `dlq` when `ERROR_TOPIC` is set, else `fail` |
//! | `TAG_RULES_FILE` | path of a JSON (`.json`) rules file | the built-in `rules/default.json` |
//! | `PARTIAL_BATCH_RESPONSES` | whether the trigger honours a partial batch response (`ReportBatchItemFailures`, provisioned poller mode); when not, any unpublished record fails the whole invocation | `false` |
//!
//! The Kafka connection comes from the shared `KAFKA_*` variables
//! ([`lambda_stream_kit::kafka::KafkaConfig`]).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use lambda_stream_kit::config::{ConfigError, Env};

use crate::rules::RulesSource;

/// What happens to a record that cannot be tagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Report it as a Kafka batch-item failure, so the mapping retries from
    /// it; in connector mode the whole call fails.
    Fail,
    /// Skip it with a warning log line; in connector mode answer an error
    /// entry in its place.
    Log,
    /// Publish the raw record to `ERROR_TOPIC` with error headers; in
    /// connector mode too, answering a `dead-lettered` entry in its place.
    Dlq,
}

impl FromStr for OnError {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "fail" => Ok(Self::Fail),
            "log" => Ok(Self::Log),
            "dlq" => Ok(Self::Dlq),
            _ => Err("expected fail, log or dlq".into()),
        }
    }
}

impl fmt::Display for OnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fail => "fail",
            Self::Log => "log",
            Self::Dlq => "dlq",
        })
    }
}

/// The settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where tagged events go.
    pub response_topic: Option<String>,
    /// Where dead letters go.
    pub error_topic: Option<String>,
    /// What a bad record does.
    pub on_error: OnError,
    /// Where the tag rules come from.
    pub rules: RulesSource,
    /// Whether the event source mapping acts on a partial batch response.
    /// Without `ReportBatchItemFailures` it commits the whole batch on any
    /// successful answer, so then the handler must fail the invocation
    /// instead of listing what it could not publish.
    pub partial_batch_responses: bool,
}

impl Config {
    /// Reads the settings; see the module doc for the variables.
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let error_topic = env.optional("ERROR_TOPIC");
        let default = if error_topic.is_some() {
            OnError::Dlq
        } else {
            OnError::Fail
        };
        let on_error = env.parse_or("ON_ERROR", default)?;
        if on_error == OnError::Dlq && error_topic.is_none() {
            return Err(ConfigError::Conflict(
                "ON_ERROR=dlq needs ERROR_TOPIC (or choose ON_ERROR=fail or log)".into(),
            ));
        }
        Ok(Self {
            response_topic: env.optional("RESPONSE_TOPIC"),
            error_topic,
            on_error,
            rules: env
                .optional("TAG_RULES_FILE")
                .map_or(RulesSource::Embedded, |p| {
                    RulesSource::File(PathBuf::from(p))
                }),
            // Off unless the deployment says so: failing a whole invocation
            // loses nothing under either kind of mapping; a partial answer
            // loses records under one that ignores it.
            partial_batch_responses: env.flag_or("PARTIAL_BATCH_RESPONSES", false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_env(&Env::from_pairs(pairs))
    }

    #[test]
    fn errors_go_to_the_error_topic_when_one_is_set() {
        let c = config(&[("RESPONSE_TOPIC", "tagged"), ("ERROR_TOPIC", "bad")]).unwrap();
        assert_eq!(c.on_error, OnError::Dlq);
        assert_eq!(c.response_topic.as_deref(), Some("tagged"));
        assert_eq!(c.rules, RulesSource::Embedded);
    }

    #[test]
    fn without_an_error_topic_errors_fail_the_record() {
        assert_eq!(config(&[]).unwrap().on_error, OnError::Fail);
        assert_eq!(
            config(&[("ON_ERROR", "LOG")]).unwrap().on_error,
            OnError::Log
        );
    }

    #[test]
    fn dlq_without_an_error_topic_is_a_config_error() {
        let err = config(&[("ON_ERROR", "dlq")]).unwrap_err();
        assert!(err.to_string().contains("ERROR_TOPIC"), "{err}");
    }

    #[test]
    fn an_unknown_on_error_names_the_variable() {
        let err = config(&[("ON_ERROR", "ignore")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("ON_ERROR=\"ignore\" is invalid"),
            "{err}"
        );
    }

    #[test]
    fn a_rules_file_replaces_the_built_in_rules() {
        let c = config(&[("TAG_RULES_FILE", "/opt/rules.json")]).unwrap();
        assert_eq!(c.rules, RulesSource::File("/opt/rules.json".into()));
    }
}
