//! The HTTP face of the intake, shared by the Lambda (`lambda_http`) and the
//! local runner (axum): headers and raw body in, status and JSON body out.

use http::HeaderMap;
use hubsync_hubspot::signature::{HEADER_REQUEST_TIMESTAMP, HEADER_SIGNATURE_V3};
use hubsync_runtime::metrics::Metrics;
use serde_json::json;

use crate::{EventSink, Intake, IntakeRequest, PortalDirectory};

/// A reply to HubSpot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    /// JSON.
    pub body: String,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Handle one HTTP request end to end, logging one line (ids and counts,
/// never bodies or secrets).
pub async fn respond<S: EventSink, D: PortalDirectory>(
    intake: &Intake<S, D>,
    method: &str,
    headers: &HeaderMap,
    raw_query: Option<&str>,
    body: &[u8],
    now_ms: i64,
) -> HttpReply {
    let request = IntakeRequest {
        method,
        raw_query,
        body,
        timestamp: header(headers, HEADER_REQUEST_TIMESTAMP),
        signature_v3: header(headers, HEADER_SIGNATURE_V3),
        now_ms,
    };
    match intake.handle(request).await {
        Ok(accepted) => {
            tracing::info!(
                received = accepted.received,
                enqueued = accepted.enqueued,
                sqs_requests = accepted.sqs_requests,
                skipped_unknown_portal = accepted.skipped_unknown_portal,
                skipped_inactive_portal = accepted.skipped_inactive_portal,
                skipped_unknown_type = accepted.skipped_unknown_type,
                skipped_foreign_app = accepted.skipped_foreign_app,
                "delivery accepted"
            );
            emit_accepted(&accepted);
            HttpReply {
                status: 200,
                body: serde_json::to_string(&accepted).unwrap_or_else(|_| "{}".into()),
            }
        }
        Err(rejection) => {
            let status = rejection.status();
            if status >= 500 {
                tracing::error!(status, reason = rejection.reason(), error = %rejection, "delivery not queued; HubSpot will retry");
            } else {
                tracing::warn!(status, reason = rejection.reason(), error = %rejection, "delivery rejected");
            }
            let m = Metrics::new(FUNCTION)
                .dimension("Reason", rejection.reason())
                .count("DeliveriesRejected", 1);
            if status >= 500 {
                m.count("IntakeErrors", 1).emit();
                // The total too, without `Reason`: the intake-errors alarm
                // watches one metric, whatever failed.
                Metrics::new(FUNCTION).count("IntakeErrors", 1).emit();
            } else {
                m.emit();
            }
            HttpReply {
                status,
                body: json!({
                    "status": "error",
                    "reason": rejection.reason(),
                    "message": rejection.to_string(),
                })
                .to_string(),
            }
        }
    }
}

/// The `Function` dimension of the intake's metrics.
pub const FUNCTION: &str = "webhook-intake";

/// EMF: events received / enqueued, SQS requests, skips by reason.
fn emit_accepted(a: &crate::Accepted) {
    Metrics::new(FUNCTION)
        .count("EventsReceived", a.received as u64)
        .count("EventsEnqueued", a.enqueued as u64)
        .count("SqsRequests", a.sqs_requests as u64)
        .emit();
    for (reason, n) in [
        ("unknown_portal", a.skipped_unknown_portal),
        ("inactive_portal", a.skipped_inactive_portal),
        ("unknown_type", a.skipped_unknown_type),
        ("foreign_app", a.skipped_foreign_app),
    ] {
        if n > 0 {
            Metrics::new(FUNCTION)
                .dimension("Reason", reason)
                .count("EventsSkipped", n as u64)
                .emit();
        }
    }
}
