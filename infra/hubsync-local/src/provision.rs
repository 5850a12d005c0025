//! Creates hubsync's AWS resources in the local stack (moto), with the same
//! shapes as `template.yaml`: the two tables, the events queue with its DLQ
//! and redrive policy, the sync-jobs queue with its DLQ, the KMS key for
//! tokens, the client secret and the install-link secret.

use anyhow::{Context, Result};
use aws_sdk_sqs::types::QueueAttributeName;
use hubsync_store::StoreConfig;
use secrecy::{ExposeSecret, SecretString};

/// Names and handles of one provisioned environment.
#[derive(Debug, Clone)]
pub struct Resources {
    pub store: StoreConfig,
    pub queue_url: String,
    pub dlq_url: String,
    pub kms_key_id: String,
    pub client_secret_arn: String,
    /// The sync-jobs queue (initial syncs, re-syncs) and its DLQ.
    pub sync_jobs_queue_url: String,
    pub sync_jobs_dlq_url: String,
    /// The key of the signed install/disconnect links (shared with the app).
    pub link_secret_arn: String,
    /// The change events' bus.
    pub event_bus_name: String,
    /// The application's side of the change feed: a queue that a rule on
    /// the bus (source `hubsync`) fills with every event.
    pub app_inbox_url: String,
}

/// Knobs that tests turn (fast redelivery, few receives before the DLQ).
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    pub visibility_timeout_secs: u32,
    pub max_receive_count: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            visibility_timeout_secs: 2,
            max_receive_count: 3,
        }
    }
}

/// Provision everything under `prefix` (unique per test).
pub async fn provision(
    aws: &aws_config::SdkConfig,
    prefix: &str,
    client_secret: &SecretString,
    queues: QueueSettings,
) -> Result<Resources> {
    let store = StoreConfig::new(format!("{prefix}-records"), format!("{prefix}-control"));
    hubsync_store::create_tables(&aws_sdk_dynamodb::Client::new(aws), &store)
        .await
        .context("create the tables")?;

    let sqs = aws_sdk_sqs::Client::new(aws);
    let (dlq_url, dlq_arn) = plain_queue(&sqs, &format!("{prefix}-events-dlq")).await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": queues.max_receive_count.to_string(),
    })
    .to_string();
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("{prefix}-events"))
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            queues.visibility_timeout_secs.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .context("create the events queue")?
        .queue_url()
        .unwrap_or_default()
        .to_string();

    let kms = aws_sdk_kms::Client::new(aws);
    let kms_key_id = kms
        .create_key()
        .description(format!("{prefix} HubSpot tokens"))
        .send()
        .await
        .context("create the KMS key")?
        .key_metadata()
        .map(|m| m.key_id().to_string())
        .context("KMS returned no key id")?;

    let secrets = aws_sdk_secretsmanager::Client::new(aws);
    let client_secret_arn = secrets
        .create_secret()
        .name(format!("{prefix}/hubspot-client-secret"))
        .secret_string(client_secret.expose_secret())
        .send()
        .await
        .context("store the client secret")?
        .arn()
        .unwrap_or_default()
        .to_string();

    let (sync_jobs_queue_url, sync_jobs_dlq_url) =
        queue_with_dlq(&sqs, &format!("{prefix}-sync-jobs"), queues).await?;
    let link_secret_arn = secrets
        .create_secret()
        .name(format!("{prefix}/install-link-secret"))
        .secret_string(format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        ))
        .send()
        .await
        .context("store the install-link secret")?
        .arn()
        .unwrap_or_default()
        .to_string();

    let (event_bus_name, app_inbox_url) = event_bus(aws, &sqs, prefix).await?;

    Ok(Resources {
        event_bus_name,
        app_inbox_url,
        store,
        queue_url,
        dlq_url,
        kms_key_id,
        client_secret_arn,
        sync_jobs_queue_url,
        sync_jobs_dlq_url,
        link_secret_arn,
    })
}

/// A queue without a redrive policy: its URL and ARN.
async fn plain_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<(String, String)> {
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .with_context(|| format!("create queue {name}"))?
        .queue_url()
        .unwrap_or_default()
        .to_string();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("read the ARN of {name}"))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .with_context(|| format!("{name} has no ARN"))?;
    Ok((url, arn))
}

/// The change events' bus, and the application's inbox: a queue every
/// `hubsync` event on the bus is delivered to (what the application would
/// subscribe).
async fn event_bus(
    aws: &aws_config::SdkConfig,
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
) -> Result<(String, String)> {
    let events = aws_sdk_eventbridge::Client::new(aws);
    let bus = format!("{prefix}-events");
    events
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .context("create the event bus")?;
    let (inbox_url, inbox_arn) = plain_queue(sqs, &format!("{prefix}-app-inbox")).await?;
    events
        .put_rule()
        .name(format!("{prefix}-to-app"))
        .event_bus_name(&bus)
        .event_pattern(r#"{"source":["hubsync"]}"#)
        .send()
        .await
        .context("create the bus rule")?;
    events
        .put_targets()
        .rule(format!("{prefix}-to-app"))
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("app-inbox")
                .arn(inbox_arn)
                .build()
                .context("the rule's target")?,
        )
        .send()
        .await
        .context("target the inbox")?;
    Ok((bus, inbox_url))
}

/// A queue `{name}` with a DLQ `{name}-dlq` and a redrive policy; returns
/// both URLs.
async fn queue_with_dlq(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    queues: QueueSettings,
) -> Result<(String, String)> {
    let dlq_url = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .with_context(|| format!("create {name}-dlq"))?
        .queue_url()
        .unwrap_or_default()
        .to_string();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("read {name}-dlq's ARN"))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .with_context(|| format!("{name}-dlq has no ARN"))?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": queues.max_receive_count.to_string(),
    })
    .to_string();
    let url = sqs
        .create_queue()
        .queue_name(name)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            queues.visibility_timeout_secs.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .with_context(|| format!("create {name}"))?
        .queue_url()
        .unwrap_or_default()
        .to_string();
    Ok((url, dlq_url))
}
