//! SQS facts ops need: depth of a queue, and the DLQ behind it (from its
//! redrive policy, so only the source queues must be configured).

use anyhow::{Context, Result};
use aws_sdk_sqs::types::QueueAttributeName;

/// Approximate message counts of a queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    /// Waiting to be received (the backlog).
    pub visible: u64,
    /// Received, not yet deleted (being worked on, or waiting to be
    /// redelivered after a failure).
    pub in_flight: u64,
    /// Delayed.
    pub delayed: u64,
}

impl Depth {
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

/// The depth of `queue_url`.
pub async fn depth(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<Depth> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .with_context(|| format!("read the depth of {queue_url}"))?;
    let get = |name: QueueAttributeName| -> u64 {
        out.attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Depth {
        visible: get(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        delayed: get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    })
}

/// The URL of the DLQ that `queue_url`'s redrive policy names, or `None`
/// when the queue has no redrive policy.
pub async fn dead_letter_queue(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<Option<String>> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .with_context(|| format!("read the redrive policy of {queue_url}"))?;
    let Some(policy) = out
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
    else {
        return Ok(None);
    };
    let policy: serde_json::Value = serde_json::from_str(policy)
        .with_context(|| format!("the redrive policy of {queue_url} is not JSON"))?;
    let arn = policy
        .get("deadLetterTargetArn")
        .and_then(|v| v.as_str())
        .with_context(|| format!("the redrive policy of {queue_url} has no deadLetterTargetArn"))?;
    // arn:aws:sqs:{region}:{account}:{name}
    let parts: Vec<&str> = arn.split(':').collect();
    let [_, _, _, _, account, name] = parts.as_slice() else {
        anyhow::bail!("{queue_url}'s DLQ ARN {arn} is not an SQS queue ARN");
    };
    let url = sqs
        .get_queue_url()
        .queue_name(*name)
        .queue_owner_aws_account_id(*account)
        .send()
        .await
        .with_context(|| format!("find the URL of the DLQ {arn}"))?
        .queue_url()
        .map(str::to_owned)
        .with_context(|| format!("SQS returned no URL for the DLQ {arn}"))?;
    Ok(Some(url))
}

/// The last path segment of a queue URL (its name), for display.
pub fn queue_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}
