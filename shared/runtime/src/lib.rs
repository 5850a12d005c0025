//! Start-up plumbing shared by the four functions, the local runner and the
//! ops CLI: logging, settings read one way ([`Env`] + [`FromEnv`]: every
//! settings struct — a function's, the store's tables, the token settings —
//! is built from an [`Env`], failing at start with a message that names the
//! variable), EMF metrics, and secrets from Secrets Manager.
//!
//! Secrets never travel in environment variables: the template passes the
//! secret's ARN, and the function reads the value once per cold start.

pub mod metrics;

use secrecy::SecretString;

/// A configuration problem found at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("secret {arn} could not be read: {reason}")]
    Secret { arn: String, reason: String },
}

/// Where settings are read from: the process environment, or given pairs
/// (tests, tools). Every settings struct is built from one of these by
/// [`FromEnv::from_vars`], so configuration is read one way everywhere.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `None`: the process environment.
    given: Option<std::collections::HashMap<String, String>>,
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self { given: None }
    }

    /// Exactly these variables (nothing from the process).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            given: Some(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    /// The variable as set (possibly empty).
    pub fn raw(&self, name: &str) -> Option<String> {
        match &self.given {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
    }

    /// An optional variable, trimmed (empty counts as unset).
    pub fn optional(&self, name: &'static str) -> Option<String> {
        self.raw(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A required, non-empty variable, trimmed.
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    /// An optional variable parsed with `FromStr`.
    pub fn parsed<T>(&self, name: &'static str) -> Result<Option<T>, ConfigError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        self.optional(name)
            .map(|v| {
                v.parse::<T>().map_err(|e| ConfigError::Invalid {
                    name,
                    reason: e.to_string(),
                })
            })
            .transpose()
    }
}

/// A settings struct read from an [`Env`].
pub trait FromEnv: Sized {
    /// Reads the settings, failing on the first missing or invalid
    /// variable (named in the error).
    fn from_vars(env: &Env) -> Result<Self, ConfigError>;

    /// [`FromEnv::from_vars`] on the process environment, once at start-up.
    fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&Env::process())
    }
}

/// Logging: JSON lines inside Lambda (CloudWatch parses them), compact text
/// elsewhere. The level comes from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = if in_lambda {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .without_time()
            .try_init()
    } else {
        builder.compact().try_init()
    };
    // Already initialised (tests, the local runner): keep the first one.
    drop(result);
}

/// The AWS SDK configuration from the environment (credentials, region, and
/// `AWS_ENDPOINT_URL` when pointed at the local stack).
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Read a plain-string secret from Secrets Manager.
pub async fn load_secret(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<SecretString, ConfigError> {
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| ConfigError::Secret {
            arn: arn.to_string(),
            reason: aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
        })?;
    match out.secret_string() {
        Some(s) if !s.trim().is_empty() => Ok(SecretString::from(s.trim().to_string())),
        _ => Err(ConfigError::Secret {
            arn: arn.to_string(),
            reason: "the secret has no string value".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_variable_is_named_in_the_error() {
        let env = Env::from_pairs([("HUBSYNC_OTHER", "x")]);
        let err = env.required("HUBSYNC_TEST_UNSET_VARIABLE").unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable HUBSYNC_TEST_UNSET_VARIABLE is required but not set"
        );
        // Blank counts as unset.
        let env = Env::from_pairs([("HUBSYNC_BLANK", "  ")]);
        assert_eq!(
            env.required("HUBSYNC_BLANK"),
            Err(ConfigError::Missing("HUBSYNC_BLANK"))
        );
        assert_eq!(env.raw("HUBSYNC_BLANK").as_deref(), Some("  "));
    }

    #[test]
    fn unparsable_variable_is_a_precise_error() {
        let env = Env::from_pairs([("BAD_NUMBER", "twelve"), ("GOOD_NUMBER", " 12 ")]);
        let err = env.parsed::<u64>("BAD_NUMBER").unwrap_err();
        assert!(err.to_string().contains("BAD_NUMBER is invalid"), "{err}");
        assert_eq!(env.parsed::<u64>("GOOD_NUMBER").unwrap(), Some(12));
        assert_eq!(env.parsed::<u64>("UNSET_NUMBER").unwrap(), None);
    }

    #[test]
    fn the_process_environment_is_read_when_no_pairs_are_given() {
        let env = Env::process();
        assert_eq!(env.raw("PATH"), std::env::var("PATH").ok());
    }
}
