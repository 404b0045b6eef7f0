//! The function's settings, read once from the environment.

use lambda_stream_kit::config::{ConfigError, Env};

/// The environment variable that caps the logged data.
pub const LOG_DATA_MAX_BYTES: &str = "LOG_DATA_MAX_BYTES";

/// The environment variable that caps the lines logged for one aggregate.
pub const LOG_MAX_LINES_PER_AGGREGATE: &str = "LOG_MAX_LINES_PER_AGGREGATE";

/// The environment variable that caps the record lines of one invocation.
pub const LOG_MAX_LINES_PER_INVOCATION: &str = "LOG_MAX_LINES_PER_INVOCATION";

/// CloudWatch Logs takes at most 256 KiB per event, so a larger cap could
/// only produce lines that get cut anyway.
const LOG_DATA_MAX_BYTES_LIMIT: usize = 256 * 1024;

/// The function's settings, read once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How many bytes of each record's data are logged; 0 logs none.
    pub log_data_max_bytes: usize,
    /// How many user records of one KPL aggregate get a line of their own.
    pub max_lines_per_aggregate: usize,
    /// How many record lines one invocation writes at most.
    pub max_lines_per_invocation: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            log_data_max_bytes: Self::DEFAULT_LOG_DATA_MAX_BYTES,
            max_lines_per_aggregate: Self::DEFAULT_MAX_LINES_PER_AGGREGATE,
            max_lines_per_invocation: Self::DEFAULT_MAX_LINES_PER_INVOCATION,
        }
    }
}

impl Config {
    /// The default for [`LOG_DATA_MAX_BYTES`].
    pub const DEFAULT_LOG_DATA_MAX_BYTES: usize = 8192;

    /// The default for [`LOG_MAX_LINES_PER_AGGREGATE`]: a KPL aggregate
    /// holds a few hundred realistic records; far more means tiny ones.
    pub const DEFAULT_MAX_LINES_PER_AGGREGATE: usize = 1000;

    /// The default for [`LOG_MAX_LINES_PER_INVOCATION`]: ten times the
    /// template's batch size of 100 plain records, and about 5 MB of lines
    /// at the default data cap for typical records.
    pub const DEFAULT_MAX_LINES_PER_INVOCATION: usize = 10_000;

    /// Reads `LOG_DATA_MAX_BYTES` (default 8192, at most 262144),
    /// `LOG_MAX_LINES_PER_AGGREGATE` (default 1000) and
    /// `LOG_MAX_LINES_PER_INVOCATION` (default 10000); both caps are at
    /// least 1.
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let at_least_one = |name: &'static str, default: usize| {
            let value: usize = env.parse_or(name, default)?;
            if value == 0 {
                return Err(ConfigError::Invalid {
                    name,
                    value: value.to_string(),
                    reason: "at least 1 (a summary line says what was not logged)".into(),
                });
            }
            Ok(value)
        };
        let max_lines_per_aggregate = at_least_one(
            LOG_MAX_LINES_PER_AGGREGATE,
            Self::DEFAULT_MAX_LINES_PER_AGGREGATE,
        )?;
        let max_lines_per_invocation = at_least_one(
            LOG_MAX_LINES_PER_INVOCATION,
            Self::DEFAULT_MAX_LINES_PER_INVOCATION,
        )?;
        let log_data_max_bytes =
            env.parse_or(LOG_DATA_MAX_BYTES, Self::DEFAULT_LOG_DATA_MAX_BYTES)?;
        if log_data_max_bytes > LOG_DATA_MAX_BYTES_LIMIT {
            return Err(ConfigError::Invalid {
                name: LOG_DATA_MAX_BYTES,
                value: log_data_max_bytes.to_string(),
                reason: format!(
                    "at most {LOG_DATA_MAX_BYTES_LIMIT} (CloudWatch Logs caps an event at 256 KiB)"
                ),
            });
        }
        Ok(Self {
            log_data_max_bytes,
            max_lines_per_aggregate,
            max_lines_per_invocation,
        })
    }
}
