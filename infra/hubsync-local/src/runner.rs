//! The functions, run locally with the same handler code as in Lambda:
//! an HTTP server for the API routes and an SQS poller that hands batches
//! to the worker the way Lambda's event source mapping does (failed
//! messages stay on the queue, are redelivered after the visibility timeout
//! and land in the DLQ after `maxReceiveCount` receives).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use hubsync_auth::{ConnectionTokens, KmsCipher};
use hubsync_hubspot::signature::WebhookVerifier;
use hubsync_hubspot::{
    ClientConfig, HubSpotClient, InProcessRateLimiter, OAuthClient, OAuthConfig, OAuthVersion,
    RateLimitConfig,
};
use hubsync_store::DynamoStore;
use record_upsert::{BatchStats, HubSpotSource, InboundMessage, Worker};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use webhook_intake::directory::StoreDirectory;
use webhook_intake::sink::SqsSink;
use webhook_intake::{CachedDirectory, Intake, IntakeConfig};

use crate::oauth::LocalOAuth;
use crate::provision::Resources;

/// How the runner talks to HubSpot.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub hubspot_base_url: String,
    pub app_id: Option<u64>,
    pub rate_limit: RateLimitConfig,
    /// Messages per worker batch (Lambda's `BatchSize`; SQS gives ≤ 10 per
    /// receive, the poller gathers up to this many within `batch_window`).
    pub batch_size: usize,
    pub batch_window: Duration,
    /// Connection-state cache of the intake.
    pub directory_ttl: Duration,
    /// The HubSpot app's OAuth client id (the simulator's app).
    pub client_id: String,
    /// HubSpot's consent page (default: `{hubspot_base_url}/oauth/authorize`).
    pub authorize_url: Option<String>,
    /// Token endpoint version (`v1` or `2026-03`).
    pub oauth_version: OAuthVersion,
    /// Where the callback sends the admin after a connect (none: a page).
    pub success_url: Option<String>,
    /// Run the change feed (follow both tables' streams and publish to the
    /// bus). Off by default: the stream polling is moto work that only the
    /// tests of the feed and the demo need.
    pub change_events: bool,
    /// How the poller backs off messages that failed transiently (the
    /// worker Lambda's `HUBSYNC_RETRY_BACKOFF_*`, scaled down).
    pub retry_backoff: hubsync_messages::RetryBackoff,
}

impl RunnerConfig {
    pub fn new(hubspot_base_url: impl Into<String>) -> Self {
        Self {
            hubspot_base_url: hubspot_base_url.into(),
            app_id: None,
            rate_limit: RateLimitConfig::default(),
            batch_size: 50,
            batch_window: Duration::from_millis(200),
            directory_ttl: Duration::from_millis(500),
            client_id: String::new(),
            authorize_url: None,
            oauth_version: OAuthVersion::current(),
            success_url: None,
            change_events: false,
            retry_backoff: hubsync_messages::RetryBackoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(8),
            },
        }
    }
}

/// Totals of what the poller did.
#[derive(Debug, Clone, Default)]
pub struct RunnerStats {
    pub batches: usize,
    pub messages: usize,
    pub failed_messages: usize,
    pub worker: BatchStats,
}

type LocalIntake = Intake<SqsSink, CachedDirectory<StoreDirectory<DynamoStore>>>;
pub type LocalWorker =
    Worker<HubSpotSource<ConnectionTokens<DynamoStore, KmsCipher, OAuthClient>>, DynamoStore>;

/// A running local deployment.
pub struct LocalRunner {
    addr: SocketAddr,
    store: DynamoStore,
    worker: Arc<LocalWorker>,
    oauth: Arc<LocalOAuth>,
    stats: Arc<Mutex<RunnerStats>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl LocalRunner {
    /// Bind 127.0.0.1:0, wire the functions to `resources`, start serving
    /// and polling.
    pub async fn start(
        aws: &aws_config::SdkConfig,
        resources: &Resources,
        config: RunnerConfig,
    ) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind the local runner")?;
        let addr = listener.local_addr()?;
        let public_webhook_url = format!("http://{addr}/webhooks/hubspot");

        // Same start-up path as the Lambda: the secret comes from Secrets
        // Manager, never from the environment.
        let secret = hubsync_runtime::load_secret(
            &aws_sdk_secretsmanager::Client::new(aws),
            &resources.client_secret_arn,
        )
        .await?;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(aws), resources.store.clone());
        let intake: Arc<LocalIntake> = Arc::new(Intake::new(
            WebhookVerifier::new(secret.clone(), public_webhook_url),
            IntakeConfig {
                app_id: config.app_id,
                ..IntakeConfig::default()
            },
            SqsSink::new(aws_sdk_sqs::Client::new(aws), resources.queue_url.clone()),
            CachedDirectory::new(StoreDirectory::new(store.clone()), config.directory_ttl),
        ));

        // The connect flow (same wiring as the oauth-callback Lambda).
        let cipher = KmsCipher::new(aws_sdk_kms::Client::new(aws), resources.kms_key_id.clone());
        let mut oauth_config = OAuthConfig::new(
            config.hubspot_base_url.clone(),
            config.client_id.clone(),
            secret.clone(),
            format!("http://{addr}/oauth/callback"),
        );
        oauth_config.version = config.oauth_version.clone();
        let oauth_client = OAuthClient::new(oauth_config)?;
        let link_secret = hubsync_runtime::load_secret(
            &aws_sdk_secretsmanager::Client::new(aws),
            &resources.link_secret_arn,
        )
        .await?;
        let mut flow = oauth_callback::FlowConfig::new(
            config.client_id.clone(),
            config.authorize_url.clone().unwrap_or_else(|| {
                format!(
                    "{}/oauth/authorize",
                    config.hubspot_base_url.trim_end_matches('/')
                )
            }),
            format!("http://{addr}/oauth/callback"),
            link_secret.clone(),
        );
        flow.success_url = config.success_url.clone();
        let oauth = Arc::new(oauth_callback::OAuthService {
            config: flow,
            store: store.clone(),
            hubspot: oauth_client.clone(),
            cipher: cipher.clone(),
            jobs: oauth_callback::SqsJobQueue::new(
                aws_sdk_sqs::Client::new(aws),
                resources.sync_jobs_queue_url.clone(),
            ),
        });

        let client = HubSpotClient::with_rate_limiter(
            ClientConfig::new(config.hubspot_base_url.clone()),
            Arc::new(InProcessRateLimiter::new(config.rate_limit)),
        )?;
        // The application's admin API (same wiring as the admin-api Lambda;
        // this process plays API Gateway's IAM authorizer).
        let admin = Arc::new(admin_api::AdminApi {
            config: admin_api::ApiConfig::new(
                admin_api::CallerPolicy::parse(crate::admin::LOCAL_APP_ROLE)
                    .map_err(anyhow::Error::msg)?,
                link_secret.clone(),
                format!("http://{addr}"),
            ),
            store: store.clone(),
            hubspot: client.clone(),
            tokens: ConnectionTokens::new(store.clone(), cipher.clone())
                .with_refresher(oauth_client.clone()),
            jobs: oauth_callback::SqsJobQueue::new(
                aws_sdk_sqs::Client::new(aws),
                resources.sync_jobs_queue_url.clone(),
            ),
            cipher: cipher.clone(),
            revoker: oauth_client.clone(),
        });
        let tokens = ConnectionTokens::new(store.clone(), cipher).with_refresher(oauth_client);
        let worker = Arc::new(Worker::new(
            HubSpotSource::new(client, tokens),
            store.clone(),
        ));

        let (shutdown, rx) = watch::channel(false);
        let app = Router::new()
            .route("/webhooks/hubspot", post(webhook))
            .with_state(intake)
            .merge(crate::oauth::routes(oauth.clone()))
            .merge(crate::admin::routes(admin));
        let mut srx = rx.clone();
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = srx.changed().await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "local runner HTTP server stopped");
            }
        });
        // The change feed: both tables' streams → the bus.
        let mut tasks = if config.change_events {
            crate::streams::start(
                aws,
                &store,
                &resources.store.records_table,
                &resources.store.control_table,
                &resources.event_bus_name,
                rx.clone(),
            )
            .await?
        } else {
            Vec::new()
        };
        let stats = Arc::new(Mutex::new(RunnerStats::default()));
        let poller = tokio::spawn(poll(
            aws_sdk_sqs::Client::new(aws),
            resources.queue_url.clone(),
            worker.clone(),
            stats.clone(),
            config,
            rx,
        ));
        tracing::info!(%addr, "local runner serving /webhooks/hubspot, /oauth/* and /v1/*, polling the events queue");
        Ok(Self {
            addr,
            store,
            worker,
            oauth,
            stats,
            shutdown,
            tasks: {
                tasks.extend([server, poller]);
                tasks
            },
        })
    }

    /// The webhook URL to give HubSpot (the simulator).
    pub fn webhook_url(&self) -> String {
        format!("http://{}/webhooks/hubspot", self.addr)
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn store(&self) -> &DynamoStore {
        &self.store
    }

    pub fn worker(&self) -> &LocalWorker {
        &self.worker
    }

    /// The connect flow behind `/oauth/*`.
    pub fn oauth(&self) -> &LocalOAuth {
        &self.oauth
    }

    pub fn stats(&self) -> RunnerStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stop serving and polling (an in-flight batch finishes first).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

async fn webhook(
    State(intake): State<Arc<LocalIntake>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> impl IntoResponse {
    let reply = webhook_intake::http::respond(
        &intake,
        "POST",
        &headers,
        query.as_deref(),
        &body,
        chrono::Utc::now().timestamp_millis(),
    )
    .await;
    (
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json")],
        reply.body,
    )
}

async fn poll(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    worker: Arc<LocalWorker>,
    stats: Arc<Mutex<RunnerStats>>,
    config: RunnerConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let mut received = Vec::new();
        let window_end = tokio::time::Instant::now() + config.batch_window;
        while received.len() < config.batch_size {
            let want = (config.batch_size - received.len()).min(10) as i32;
            let wait = if received.is_empty() { 1 } else { 0 };
            let got = tokio::select! {
                r = sqs.receive_message()
                    .queue_url(&queue_url)
                    .message_system_attribute_names(
                        aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
                    )
                    .max_number_of_messages(want)
                    .wait_time_seconds(wait)
                    .send() => r,
                _ = shutdown.changed() => return,
            };
            match got {
                Ok(out) => {
                    let n = out.messages().len();
                    received.extend(out.messages.unwrap_or_default());
                    if n == 0 && (!received.is_empty() || tokio::time::Instant::now() >= window_end)
                    {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "receive failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            }
            if tokio::time::Instant::now() >= window_end {
                break;
            }
        }
        if received.is_empty() {
            continue;
        }
        let inbound: Vec<InboundMessage> = received
            .iter()
            .map(|m| InboundMessage {
                message_id: m.message_id().unwrap_or_default().to_string(),
                body: m.body().unwrap_or_default().to_string(),
            })
            .collect();
        let outcome = record_upsert::lambda::process_and_report(&worker, inbound, None).await;
        // Back off what failed transiently, as the Lambda does.
        let retries: Vec<hubsync_messages::Retry> = received
            .iter()
            .filter(|m| {
                outcome
                    .retry_later
                    .iter()
                    .any(|f| Some(f.as_str()) == m.message_id())
            })
            .filter_map(|m| {
                Some(hubsync_messages::Retry {
                    receipt_handle: m.receipt_handle()?.to_owned(),
                    receive_count: hubsync_messages::receive_count(
                        m.attributes()
                            .and_then(|a| {
                                a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                            })
                            .map(String::as_str),
                    ),
                })
            })
            .collect();
        hubsync_messages::delay_retries(&sqs, &queue_url, config.retry_backoff, &retries).await;
        // Acknowledge (delete) what succeeded; failures stay on the queue.
        let done: Vec<(String, String)> = received
            .iter()
            .filter(|m| {
                !outcome
                    .failed
                    .iter()
                    .any(|f| Some(f.as_str()) == m.message_id())
            })
            .filter_map(|m| Some((m.message_id()?.to_string(), m.receipt_handle()?.to_string())))
            .collect();
        for chunk in done.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, (_, handle))| {
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .build()
                        .ok()
                })
                .collect();
            if let Err(e) = sqs
                .delete_message_batch()
                .queue_url(&queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "delete failed; messages will be redelivered (idempotent)");
            }
        }
        if let Ok(mut s) = stats.lock() {
            s.batches += 1;
            s.messages += received.len();
            s.failed_messages += outcome.failed.len();
            s.worker.absorb(&outcome.stats);
        }
    }
}
