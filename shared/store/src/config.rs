//! Table names, read once from the environment at start-up.

/// Environment variable holding the Records table name.
pub const RECORDS_TABLE_VAR: &str = "HUBSYNC_RECORDS_TABLE";
/// Environment variable holding the Control table name.
pub const CONTROL_TABLE_VAR: &str = "HUBSYNC_CONTROL_TABLE";

/// Why the store's configuration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The variable is not set (or not valid Unicode).
    #[error("environment variable {name} is not set; it must name the DynamoDB table")]
    MissingVar {
        /// The variable's name.
        name: &'static str,
    },
    /// The variable is set but empty or blank.
    #[error("environment variable {name} is empty; it must name the DynamoDB table")]
    EmptyVar {
        /// The variable's name.
        name: &'static str,
    },
}

/// The DynamoDB tables the store uses. There is deliberately no `Default`:
/// an empty table name must fail at start-up, not at the first write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The `Records` table (what the application reads).
    pub records_table: String,
    /// The `Control` table (connections, states, checkpoints, ...).
    pub control_table: String,
}

impl StoreConfig {
    /// Both names given explicitly (tests, tools).
    pub fn new(records_table: impl Into<String>, control_table: impl Into<String>) -> Self {
        Self {
            records_table: records_table.into(),
            control_table: control_table.into(),
        }
    }

    /// Reads `HUBSYNC_RECORDS_TABLE` and `HUBSYNC_CONTROL_TABLE`; fails
    /// naming the first missing or empty variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`StoreConfig::from_env`], reading variables through `lookup`
    /// (so tests need not mutate the process environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let read = |name: &'static str| -> Result<String, ConfigError> {
            match lookup(name) {
                None => Err(ConfigError::MissingVar { name }),
                Some(v) if v.trim().is_empty() => Err(ConfigError::EmptyVar { name }),
                Some(v) => Ok(v.trim().to_owned()),
            }
        };
        Ok(Self {
            records_table: read(RECORDS_TABLE_VAR)?,
            control_table: read(CONTROL_TABLE_VAR)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_tables_are_read_from_their_variables() {
        let cfg = StoreConfig::from_lookup(|n| match n {
            RECORDS_TABLE_VAR => Some("rec".into()),
            CONTROL_TABLE_VAR => Some("ctl".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(cfg, StoreConfig::new("rec", "ctl"));
    }

    #[test]
    fn a_missing_variable_is_named_in_the_error() {
        let err = StoreConfig::from_lookup(|n| (n == RECORDS_TABLE_VAR).then(|| "rec".into()))
            .unwrap_err();
        assert_eq!(
            err,
            ConfigError::MissingVar {
                name: CONTROL_TABLE_VAR
            }
        );
        assert!(err.to_string().contains("HUBSYNC_CONTROL_TABLE"));
    }

    #[test]
    fn an_empty_variable_is_refused_not_defaulted() {
        let err = StoreConfig::from_lookup(|_| Some("  ".into())).unwrap_err();
        assert_eq!(
            err,
            ConfigError::EmptyVar {
                name: RECORDS_TABLE_VAR
            }
        );
    }
}
