//! Typed configuration of the function, read once at start-up.

use std::time::Duration;

use hubsync_auth::wiring::AppCredentials;
use hubsync_runtime::{ConfigError, Env, FromEnv};
use hubsync_store::StoreConfig;

#[derive(Debug, Clone)]
pub struct Settings {
    pub store: StoreConfig,
    /// The app's client id and secret (the journal's token).
    pub app: AppCredentials,
    /// Where the events go (the worker's queue, as the intake's).
    pub events_queue_url: String,
    /// Where re-sync jobs go when an offset expired.
    pub sync_jobs_queue_url: String,
    /// Time kept free at the end of an invocation (the pass stops reading
    /// new files then).
    pub deadline_reserve: Duration,
}

impl FromEnv for Settings {
    /// `HUBSYNC_EVENTS_QUEUE_URL`, `HUBSYNC_SYNC_JOBS_QUEUE_URL`,
    /// `HUBSYNC_DEADLINE_RESERVE_SECS` (default 20), the store's tables
    /// and the app's credentials.
    fn from_vars(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            store: StoreConfig::from_vars(env)?,
            app: AppCredentials::from_vars(env)?,
            events_queue_url: env.required("HUBSYNC_EVENTS_QUEUE_URL")?,
            sync_jobs_queue_url: env.required("HUBSYNC_SYNC_JOBS_QUEUE_URL")?,
            deadline_reserve: Duration::from_secs(
                env.parsed::<u64>("HUBSYNC_DEADLINE_RESERVE_SECS")?
                    .unwrap_or(20),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(extra: &[(&str, &str)]) -> Env {
        let mut pairs = vec![
            ("HUBSYNC_RECORDS_TABLE", "r"),
            ("HUBSYNC_CONTROL_TABLE", "c"),
            ("HUBSYNC_HUBSPOT_CLIENT_ID", "id"),
            ("HUBSYNC_CLIENT_SECRET_ARN", "arn:secret"),
            ("HUBSYNC_EVENTS_QUEUE_URL", "https://sqs/events"),
            ("HUBSYNC_SYNC_JOBS_QUEUE_URL", "https://sqs/jobs"),
        ];
        pairs.extend_from_slice(extra);
        Env::from_pairs(pairs)
    }

    #[test]
    fn reads_the_template_variables() {
        let s = Settings::from_vars(&env(&[])).unwrap();
        assert_eq!(s.events_queue_url, "https://sqs/events");
        assert_eq!(s.deadline_reserve, Duration::from_secs(20));
        assert_eq!(s.app.hubspot_base_url, "https://api.hubapi.com");
    }

    #[test]
    fn v1_oauth_and_missing_queues_are_named() {
        let err = Settings::from_vars(&env(&[("HUBSYNC_OAUTH_VERSION", "v1")])).unwrap_err();
        assert!(err.to_string().contains("HUBSYNC_OAUTH_VERSION"), "{err}");
        let err = Settings::from_vars(&Env::from_pairs([
            ("HUBSYNC_RECORDS_TABLE", "r"),
            ("HUBSYNC_CONTROL_TABLE", "c"),
            ("HUBSYNC_HUBSPOT_CLIENT_ID", "id"),
            ("HUBSYNC_CLIENT_SECRET_ARN", "arn"),
        ]))
        .unwrap_err();
        assert_eq!(err, ConfigError::Missing("HUBSYNC_EVENTS_QUEUE_URL"));
    }
}
