//! Webhook intake: handler time per delivery and SQS requests per delivery
//! (figures printed, not asserted; budgets in DESIGN.md "Budgets").
//!
//! ```sh
//! CARGO_PROFILE_BENCH_LTO=false CARGO_PROFILE_BENCH_CODEGEN_UNITS=16 \
//!     cargo bench -p webhook-intake --bench intake
//! ```
//!
//! 1. **SQS requests per delivery** for typical deliveries, counted by
//!    `MemorySink` (what `plan_requests` would send), then confirmed once
//!    against the local AWS stack (moto, started by `hubsync-testkit` when
//!    `AWS_ENDPOINT_URL` is unset) with the real `SqsSink`: the handler's own
//!    count, plus every HTTP request the SQS client actually transmitted
//!    (an SDK interceptor), plus what landed on the queue.
//! 2. **Handler time** (criterion): `http::respond` for a signed delivery of
//!    1, 10 and 100 events with `MemorySink` + `StaticDirectory` (signature
//!    check, parse, grouping, message building, the 200 body), with and
//!    without a JSON log subscriber like the Lambda's; and its parts.
//!
//! `HUBSYNC_BENCH_SKIP_MOTO=1` skips the moto confirmation (e.g. when only
//! timing).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{black_box, BenchmarkId, Criterion, Throughput};
use http::{HeaderMap, HeaderName, HeaderValue};
use hubsync_hubspot::signature::{
    public_request_uri, sign_v3, WebhookVerifier, HEADER_REQUEST_TIMESTAMP, HEADER_SIGNATURE_V3,
};
use hubsync_hubspot::{parse_delivery, PortalId};
use secrecy::SecretString;
use serde_json::{json, Value};
use webhook_intake::directory::StaticDirectory;
use webhook_intake::http::{respond, HttpReply};
use webhook_intake::sink::{EventSink, MemorySink, SqsSink};
use webhook_intake::{EventBatch, Intake, IntakeConfig};

const SECRET: &str = "bench-client-secret-0000-0000-000000000000";
const PUBLIC_URL: &str = "https://hooks.example.com/prod/webhooks/hubspot";
const APP_ID: u64 = 424_242;
const PORTALS: [u64; 3] = [1_000_001, 1_000_002, 1_000_003];
/// Signing time of every delivery; the handler "receives" it 1.2 s later.
const SIGNED_AT_MS: i64 = 1_750_000_000_000;
const NOW_MS: i64 = SIGNED_AT_MS + 1_200;

/// One delivery as HubSpot would POST it.
struct Delivery {
    name: &'static str,
    body: Vec<u8>,
    headers: HeaderMap,
    events: usize,
}

/// A HubSpot-shaped event mix: contact creations and property changes,
/// company and deal property changes, a deal deletion every ten events.
/// `value_len` > 0 makes every property value that long (a long text
/// property); otherwise values are short (emails, names, amounts).
fn event(i: usize, portal: u64, value_len: usize) -> Value {
    let (kind, id_base, prop) = match i % 10 {
        0 => ("contact.creation", 2_000_000_000u64, None),
        1..=5 => ("contact.propertyChange", 2_000_000_000, Some("email")),
        6 | 7 => ("company.propertyChange", 1_000_000_000, Some("name")),
        8 => ("deal.propertyChange", 3_000_000_000, Some("amount")),
        _ => ("deal.deletion", 3_000_000_000, None),
    };
    let mut e = json!({
        "eventId": 3_100_000_000u64 + i as u64,
        "subscriptionId": 2_400_000 + (i % 10) as u64,
        "portalId": portal,
        "appId": APP_ID,
        "occurredAt": SIGNED_AT_MS - 4_000 + i as i64,
        "subscriptionType": kind,
        "attemptNumber": 0,
        "objectId": id_base + 1 + i as u64,
        "changeSource": "CRM_UI",
        "sourceId": "userId:81234567",
    });
    if let Some(prop) = prop {
        let value = if value_len > 0 {
            // Long free text (a notes/description property): printable, with
            // characters JSON has to escape now and then.
            let unit = "Call notes: customer asked about \"renewal\" terms.\n";
            unit.repeat(value_len / unit.len() + 1)[..value_len].to_string()
        } else {
            match prop {
                "email" => format!("person{i}@example.com"),
                "name" => format!("Company {i} GmbH"),
                _ => format!("{}.50", 1_000 + i),
            }
        };
        e["propertyName"] = json!(prop);
        e["propertyValue"] = json!(value);
        if kind == "contact.propertyChange" {
            e["changeFlag"] = json!("UPDATED");
        }
    }
    e
}

fn delivery(name: &'static str, events: usize, portals: &[u64], value_len: usize) -> Delivery {
    let array: Vec<Value> = (0..events)
        .map(|i| event(i, portals[i % portals.len()], value_len))
        .collect();
    let body = serde_json::to_vec(&array).expect("serialise a delivery");
    let secret = SecretString::from(SECRET);
    let uri = public_request_uri(PUBLIC_URL, None);
    let signature = sign_v3(&secret, "POST", &uri, &body, SIGNED_AT_MS);
    let mut headers = HeaderMap::new();
    let mut put = |name: &str, value: String| {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(&value).expect("header value"),
        );
    };
    put("content-type", "application/json".into());
    put(HEADER_SIGNATURE_V3, signature);
    put(HEADER_REQUEST_TIMESTAMP, SIGNED_AT_MS.to_string());
    put(
        "x-hubspot-signature",
        "ignored-v1-signature-of-same-length-0000000000000000000000000000".into(),
    );
    put("x-hubspot-signature-version", "v1".into());
    put(
        "user-agent",
        "HubSpot Connect 2.0 (http://dev.hubspot.com/)".into(),
    );
    Delivery {
        name,
        body,
        headers,
        events,
    }
}

fn deliveries() -> Vec<Delivery> {
    vec![
        delivery("1 event, 1 portal", 1, &PORTALS[..1], 0),
        delivery("10 events, 1 portal", 10, &PORTALS[..1], 0),
        delivery("100 events, 1 portal", 100, &PORTALS[..1], 0),
        delivery("100 events, 3 portals", 100, &PORTALS, 0),
        delivery(
            "100 events, 1 portal, 3,000-byte values",
            100,
            &PORTALS[..1],
            3_000,
        ),
        delivery(
            "100 events, 3 portals, 3,000-byte values",
            100,
            &PORTALS,
            3_000,
        ),
    ]
}

fn intake<S: EventSink>(sink: S) -> Intake<S, StaticDirectory> {
    Intake::new(
        WebhookVerifier::new(SecretString::from(SECRET), PUBLIC_URL),
        IntakeConfig {
            app_id: Some(APP_ID),
            ..IntakeConfig::default()
        },
        sink,
        StaticDirectory {
            active: PORTALS.iter().copied().map(PortalId).collect(),
            inactive: vec![],
        },
    )
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn accepted(reply: &HttpReply) -> Value {
    assert_eq!(reply.status, 200, "delivery refused: {}", reply.body);
    serde_json::from_str(&reply.body).expect("200 body is JSON")
}

fn count(v: &Value, field: &str) -> u64 {
    v[field].as_u64().unwrap_or(0)
}

// ------------------------------------------------------------------ SQS requests

fn sqs_requests_memory(rt: &tokio::runtime::Runtime, all: &[Delivery]) {
    println!("== SQS requests per webhook delivery (MemorySink: plan_requests) ==");
    println!(
        "{:<44} {:>6} {:>10} {:>9} {:>9} {:>14}",
        "delivery", "events", "body B", "messages", "requests", "largest msg B"
    );
    for d in all {
        let intake = intake(MemorySink::default());
        let reply = rt.block_on(respond(&intake, "POST", &d.headers, None, &d.body, NOW_MS));
        let v = accepted(&reply);
        let requests = *intake.sink().requests.lock().expect("counter");
        let messages = intake.sink().messages();
        let largest = messages.iter().map(|m| m.body.len()).max().unwrap_or(0);
        assert_eq!(count(&v, "enqueued") as usize, d.events);
        assert_eq!(count(&v, "sqs_requests") as usize, requests);
        println!(
            "{:<44} {:>6} {:>10} {:>9} {:>9} {:>14}",
            d.name,
            d.events,
            d.body.len(),
            messages.len(),
            requests,
            largest
        );
    }
    println!();
}

/// Counts every HTTP request the SQS client transmits (retries included),
/// with its `X-Amz-Target` and body size.
#[derive(Debug, Clone, Default)]
struct TransmitLog(Arc<Mutex<Vec<(String, usize)>>>);

impl TransmitLog {
    fn take(&self) -> Vec<(String, usize)> {
        std::mem::take(&mut *self.0.lock().expect("log"))
    }
}

impl aws_sdk_sqs::config::Intercept for TransmitLog {
    fn name(&self) -> &'static str {
        "bench-transmit-log"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_sqs::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_sqs::config::RuntimeComponents,
        _cfg: &mut aws_sdk_sqs::config::ConfigBag,
    ) -> Result<(), aws_sdk_sqs::error::BoxError> {
        let request = context.request();
        let target = request
            .headers()
            .get("x-amz-target")
            .unwrap_or("(query protocol)")
            .to_string();
        let size = request.body().bytes().map_or(0, <[u8]>::len);
        self.0.lock().expect("log").push((target, size));
        Ok(())
    }
}

async fn sqs_requests_moto(all: &[Delivery]) -> anyhow::Result<()> {
    use aws_sdk_sqs::types::QueueAttributeName;
    println!("== SQS requests per webhook delivery, confirmed on moto (SqsSink) ==");
    let aws = hubsync_testkit::aws_config().await?;
    let log = TransmitLog::default();
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&aws)
            .interceptor(log.clone())
            .build(),
    );
    println!(
        "{:<44} {:>9} {:>13} {:>16} {:>10} {:>10}",
        "delivery", "handler", "HTTP sends", "largest send B", "on queue", "events"
    );
    for d in all {
        let queue_url = sqs
            .create_queue()
            .queue_name(hubsync_testkit::unique_name("bench-intake"))
            .send()
            .await?
            .queue_url()
            .unwrap_or_default()
            .to_string();
        log.take();
        let intake = intake(SqsSink::new(sqs.clone(), queue_url.clone()));
        let reply = respond(&intake, "POST", &d.headers, None, &d.body, NOW_MS).await;
        let v = accepted(&reply);
        let sends = log.take();
        let batch_sends: Vec<usize> = sends
            .iter()
            .filter(|(t, _)| t.ends_with("SendMessageBatch"))
            .map(|(_, s)| *s)
            .collect();
        let on_queue: u64 = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await?
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        // Read everything back: the bodies are the worker's contract.
        let mut events = 0usize;
        loop {
            let out = sqs
                .receive_message()
                .queue_url(&queue_url)
                .max_number_of_messages(10)
                .send()
                .await?;
            let received = out.messages();
            if received.is_empty() {
                break;
            }
            for m in received {
                let batch = EventBatch::from_json(m.body().unwrap_or_default())?;
                events += batch.events.len();
            }
        }
        println!(
            "{:<44} {:>9} {:>13} {:>16} {:>10} {:>10}",
            d.name,
            count(&v, "sqs_requests"),
            format!("{} of {}", batch_sends.len(), sends.len()),
            batch_sends.iter().max().copied().unwrap_or(0),
            on_queue,
            events
        );
        sqs.delete_queue().queue_url(&queue_url).send().await?;
    }
    println!("(handler = Accepted.sqs_requests; HTTP sends = SendMessageBatch requests of all requests transmitted by the SQS client; on queue = messages)");
    println!();
    Ok(())
}

// ------------------------------------------------------------------ handler time

fn handler_time(c: &mut Criterion, rt: &tokio::runtime::Runtime, all: &[Delivery]) {
    let mut group = c.benchmark_group("intake/respond");
    for d in all {
        let intake = intake(MemorySink::default());
        accepted(&rt.block_on(respond(&intake, "POST", &d.headers, None, &d.body, NOW_MS)));
        group.throughput(Throughput::Elements(d.events as u64));
        group.bench_function(BenchmarkId::from_parameter(d.name), |b| {
            b.iter(|| {
                let reply = rt.block_on(respond(
                    &intake,
                    "POST",
                    &d.headers,
                    None,
                    black_box(&d.body),
                    NOW_MS,
                ));
                // What a real sink does with the messages: drop them.
                intake.sink().sent.lock().expect("sink").clear();
                reply
            })
        });
    }
    group.finish();

    // The Lambda logs one JSON line per delivery (hubsync_runtime::init_tracing).
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_target(false)
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .without_time()
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mut group = c.benchmark_group("intake/respond+json-log");
        for d in all.iter().filter(|d| d.name == "100 events, 1 portal") {
            let intake = intake(MemorySink::default());
            group.throughput(Throughput::Elements(d.events as u64));
            group.bench_function(BenchmarkId::from_parameter(d.name), |b| {
                b.iter(|| {
                    let reply = rt.block_on(respond(
                        &intake,
                        "POST",
                        &d.headers,
                        None,
                        black_box(&d.body),
                        NOW_MS,
                    ));
                    intake.sink().sent.lock().expect("sink").clear();
                    reply
                })
            });
        }
        group.finish();
    });

    // Where the time of a 100-event delivery goes.
    let d = all
        .iter()
        .find(|d| d.name == "100 events, 1 portal")
        .expect("the 100-event delivery");
    let verifier = WebhookVerifier::new(SecretString::from(SECRET), PUBLIC_URL);
    let signature = d
        .headers
        .get(HEADER_SIGNATURE_V3)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let timestamp = SIGNED_AT_MS.to_string();
    let events = parse_delivery(&d.body).expect("parse");
    let mut group = c.benchmark_group("intake/parts (100 events)");
    group.bench_function("verify v3 signature", |b| {
        b.iter(|| {
            verifier.verify(
                "POST",
                None,
                black_box(&d.body),
                Some(&timestamp),
                signature.as_deref(),
                NOW_MS,
            )
        })
    });
    group.bench_function("parse_delivery", |b| {
        b.iter(|| parse_delivery(black_box(&d.body)))
    });
    group.bench_function("EventBatch::into_messages", |b| {
        b.iter_batched(
            || EventBatch::new(PortalId(PORTALS[0]), NOW_MS, events.clone()),
            |batch| batch.into_messages(webhook_intake::sink::SQS_MAX_REQUEST_BYTES),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn main() {
    let skip_moto = std::env::var_os("HUBSYNC_BENCH_SKIP_MOTO").is_some_and(|v| v == "1");
    let rt = current_thread();
    let all = deliveries();

    sqs_requests_memory(&rt, &all);
    let moto = if skip_moto {
        println!("(moto confirmation skipped: HUBSYNC_BENCH_SKIP_MOTO=1)\n");
        Ok(())
    } else {
        rt.block_on(sqs_requests_moto(&all))
    };
    if let Err(e) = &moto {
        println!("moto confirmation FAILED: {e:#}\n");
    }

    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    handler_time(&mut criterion, &rt, &all);
    criterion.final_summary();

    if moto.is_err() {
        std::process::exit(1);
    }
}
