//! Table names, read once from the environment at start-up.

use hubsync_runtime::{ConfigError, Env, FromEnv};

/// Environment variable holding the Records table name.
pub const RECORDS_TABLE_VAR: &str = "HUBSYNC_RECORDS_TABLE";
/// Environment variable holding the Control table name.
pub const CONTROL_TABLE_VAR: &str = "HUBSYNC_CONTROL_TABLE";

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
}

impl FromEnv for StoreConfig {
    /// `HUBSYNC_RECORDS_TABLE` and `HUBSYNC_CONTROL_TABLE`; fails naming
    /// the first missing or blank variable (no default table name).
    fn from_vars(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            records_table: env.required(RECORDS_TABLE_VAR)?,
            control_table: env.required(CONTROL_TABLE_VAR)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_tables_are_read_from_their_variables() {
        let env = Env::from_pairs([(RECORDS_TABLE_VAR, "rec"), (CONTROL_TABLE_VAR, "ctl")]);
        assert_eq!(
            StoreConfig::from_vars(&env).unwrap(),
            StoreConfig::new("rec", "ctl")
        );
    }

    #[test]
    fn a_missing_variable_is_named_in_the_error() {
        let err =
            StoreConfig::from_vars(&Env::from_pairs([(RECORDS_TABLE_VAR, "rec")])).unwrap_err();
        assert_eq!(err, ConfigError::Missing(CONTROL_TABLE_VAR));
        assert!(err.to_string().contains("HUBSYNC_CONTROL_TABLE"));
    }

    #[test]
    fn a_blank_variable_is_refused_not_defaulted() {
        let env = Env::from_pairs([(RECORDS_TABLE_VAR, "  "), (CONTROL_TABLE_VAR, "ctl")]);
        let err = StoreConfig::from_vars(&env).unwrap_err();
        assert_eq!(err, ConfigError::Missing(RECORDS_TABLE_VAR));
    }
}
