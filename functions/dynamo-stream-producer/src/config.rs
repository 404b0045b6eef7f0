//! The function's settings, read once from the environment.

use std::time::Duration;

use lambda_stream_kit::config::{ConfigError, Env};
use lambda_stream_kit::kafka::KafkaConfig;

/// The stream event names DynamoDB sends.
pub const KNOWN_EVENT_NAMES: [&str; 3] = ["INSERT", "MODIFY", "REMOVE"];

/// The function's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `TOPIC_NAME`, default `test-topic`.
    pub topic: String,
    /// `EVENT_NAMES`, default `INSERT`.
    pub event_names: Vec<String>,
    /// `KEY_ATTRIBUTE`, default `id`.
    pub key_attribute: String,
    /// `DEAD_LETTER_TOPIC`, optional.
    pub dead_letter_topic: Option<String>,
    /// `DEADLINE_MARGIN_MS`, default 2000: time kept back from the
    /// invocation deadline to answer.
    pub deadline_margin: Duration,
    /// The shared `KAFKA_*` settings.
    pub kafka: KafkaConfig,
}

impl Config {
    /// Reads the settings.
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let event_names = env
            .list("EVENT_NAMES")
            .unwrap_or_else(|| vec!["INSERT".to_owned()]);
        for name in &event_names {
            if !KNOWN_EVENT_NAMES.contains(&name.as_str()) {
                return Err(ConfigError::Invalid {
                    name: "EVENT_NAMES",
                    value: event_names.join(","),
                    reason: "each entry must be INSERT, MODIFY or REMOVE".into(),
                });
            }
        }
        Ok(Self {
            topic: env
                .optional("TOPIC_NAME")
                .unwrap_or_else(|| "test-topic".into()),
            event_names,
            key_attribute: env.optional("KEY_ATTRIBUTE").unwrap_or_else(|| "id".into()),
            dead_letter_topic: env.optional("DEAD_LETTER_TOPIC"),
            deadline_margin: Duration::from_millis(env.parse_or("DEADLINE_MARGIN_MS", 2000u64)?),
            kafka: KafkaConfig::from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_follow_the_original_workshop() {
        let c = Config::from_env(&Env::from_pairs(&[("KAFKA_BOOTSTRAP_SERVERS", "b:1")])).unwrap();
        assert_eq!(c.topic, "test-topic");
        assert_eq!(c.event_names, vec!["INSERT"]);
        assert_eq!(c.key_attribute, "id");
        assert_eq!(c.dead_letter_topic, None);
    }

    #[test]
    fn unknown_event_names_in_config_are_rejected_by_name() {
        let err = Config::from_env(&Env::from_pairs(&[
            ("KAFKA_BOOTSTRAP_SERVERS", "b:1"),
            ("EVENT_NAMES", "INSERT,UPSERT"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("EVENT_NAMES"), "{err}");
    }
}
