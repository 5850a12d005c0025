//! Backing off failed messages. A message that failed for a transient
//! reason (HubSpot down or rate limiting, DynamoDB throttling) is made
//! visible again only after a delay that grows with its receive count —
//! `base · 4^(receives − 1)`, capped — so that an outage of hours spends a
//! handful of receives instead of the whole receive budget in minutes and
//! landing in the DLQ. The queue's own visibility timeout applies to
//! everything else.

use std::time::Duration;

/// The delay schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBackoff {
    pub base: Duration,
    pub max: Duration,
}

impl RetryBackoff {
    /// SQS's longest visibility timeout.
    pub const SQS_MAX: Duration = Duration::from_secs(12 * 3600);

    /// How long a message received `receive_count` times (≥ 1) stays
    /// invisible after failing.
    pub fn delay(&self, receive_count: u32) -> Duration {
        let exp = receive_count.saturating_sub(1).min(16);
        self.base
            .saturating_mul(4u32.saturating_pow(exp))
            .min(self.max)
            .min(Self::SQS_MAX)
    }
}

/// A failed message to back off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    pub receipt_handle: String,
    /// SQS's `ApproximateReceiveCount` (1 on the first receive).
    pub receive_count: u32,
}

impl Retry {
    /// The retry of an SQS message: its receipt handle (none: nothing to
    /// back off) and its `ApproximateReceiveCount` attribute.
    pub fn of_message(
        receipt_handle: Option<&str>,
        attributes: &std::collections::HashMap<String, String>,
    ) -> Option<Self> {
        Some(Retry {
            receipt_handle: receipt_handle?.to_owned(),
            receive_count: receive_count(
                attributes
                    .get("ApproximateReceiveCount")
                    .map(String::as_str),
            ),
        })
    }
}

/// The receive count from an SQS message's attributes (1 when absent).
pub fn receive_count(attributes: Option<&str>) -> u32 {
    attributes.and_then(|v| v.parse().ok()).unwrap_or(1).max(1)
}

/// Sets each message's visibility to its backoff delay. Failures are
/// logged: the message then comes back after the queue's visibility
/// timeout, as without backoff.
pub async fn delay_retries(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    backoff: RetryBackoff,
    retries: &[Retry],
) {
    for r in retries {
        let delay = backoff.delay(r.receive_count);
        let secs = i32::try_from(delay.as_secs()).unwrap_or(i32::MAX);
        if let Err(e) = sqs
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(&r.receipt_handle)
            .visibility_timeout(secs)
            .send()
            .await
        {
            tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), receive_count = r.receive_count,
                "could not delay a failed message; it returns after the queue's visibility timeout");
        } else {
            tracing::info!(
                receive_count = r.receive_count,
                delay_secs = secs,
                "failed message backed off"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_retry_carries_its_handle_and_receive_count() {
        let attrs = std::collections::HashMap::from([(
            "ApproximateReceiveCount".to_owned(),
            "3".to_owned(),
        )]);
        assert_eq!(
            Retry::of_message(Some("h"), &attrs),
            Some(Retry {
                receipt_handle: "h".into(),
                receive_count: 3
            })
        );
        assert_eq!(
            Retry::of_message(Some("h"), &Default::default()).map(|r| r.receive_count),
            Some(1)
        );
        assert_eq!(Retry::of_message(None, &attrs), None);
    }

    #[test]
    fn the_delay_grows_fourfold_up_to_the_cap() {
        let b = RetryBackoff {
            base: Duration::from_secs(30),
            max: Duration::from_secs(7200),
        };
        let secs: Vec<u64> = (1..=7).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(secs, [30, 120, 480, 1920, 7200, 7200, 7200]);
        assert_eq!(b.delay(0).as_secs(), 30);
        assert_eq!(b.delay(u32::MAX).as_secs(), 7200);
        let uncapped = RetryBackoff {
            base: Duration::from_secs(3600),
            max: Duration::from_secs(u64::MAX),
        };
        assert_eq!(uncapped.delay(5), RetryBackoff::SQS_MAX);
        assert_eq!(receive_count(Some("3")), 3);
        assert_eq!(receive_count(Some("x")), 1);
        assert_eq!(receive_count(None), 1);
    }
}
