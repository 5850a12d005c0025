//! Start-up plumbing shared by the four functions and the local runner:
//! logging, typed configuration from the environment (failing at start with a
//! message that names the variable), and secrets from Secrets Manager.
//!
//! Secrets never travel in environment variables: the template passes the
//! secret's ARN, and the function reads the value once per cold start.

pub mod metrics;

use secrecy::SecretString;

/// A configuration problem found at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("secret {arn} could not be read: {reason}")]
    Secret { arn: String, reason: String },
}

/// A required, non-empty environment variable.
pub fn required_env(name: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ConfigError::Missing(name)),
    }
}

/// An optional environment variable (empty counts as unset).
pub fn optional_env(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// An optional environment variable parsed with `FromStr`.
pub fn parsed_env<T>(name: &'static str) -> Result<Option<T>, ConfigError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    optional_env(name)
        .map(|v| {
            v.trim().parse::<T>().map_err(|e| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            })
        })
        .transpose()
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
        let err = required_env("HUBSYNC_TEST_SURELY_UNSET_VARIABLE").unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable HUBSYNC_TEST_SURELY_UNSET_VARIABLE is required but not set"
        );
    }

    #[test]
    fn unparsable_variable_is_a_precise_error() {
        std::env::set_var("HUBSYNC_TEST_BAD_NUMBER", "twelve");
        let err = parsed_env::<u64>("HUBSYNC_TEST_BAD_NUMBER").unwrap_err();
        assert!(err
            .to_string()
            .contains("HUBSYNC_TEST_BAD_NUMBER is invalid"));
        std::env::set_var("HUBSYNC_TEST_GOOD_NUMBER", " 12 ");
        assert_eq!(
            parsed_env::<u64>("HUBSYNC_TEST_GOOD_NUMBER").unwrap(),
            Some(12)
        );
        assert_eq!(
            parsed_env::<u64>("HUBSYNC_TEST_UNSET_NUMBER").unwrap(),
            None
        );
    }
}
