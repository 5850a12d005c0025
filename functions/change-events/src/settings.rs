//! Typed configuration, read once at start-up from the environment.

use hubsync_runtime::{ConfigError, Env, FromEnv};
use hubsync_store::StoreConfig;

/// Everything `main.rs` reads from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The tables (the records table's name tells its stream apart; the
    /// Control table gives record events their tenant).
    pub store: StoreConfig,
    /// The EventBridge bus the events go to.
    pub event_bus: String,
}

impl FromEnv for Settings {
    fn from_vars(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            store: StoreConfig::from_vars(env)?,
            event_bus: env.required("HUBSYNC_EVENT_BUS_NAME")?,
        })
    }
}
