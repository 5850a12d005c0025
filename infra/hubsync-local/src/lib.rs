//! hubsync on one machine: the local AWS stack (moto) provisioned like the
//! SAM template, the functions run by [`LocalRunner`] with their Lambda
//! handler code, and HubSpot played by `hubspot-sim`. Used by `make demo`
//! and by the end-to-end tests.

pub mod admin;
pub mod compare;
pub mod demo;
pub mod inbox;
pub mod journal;
pub mod mapping;
pub mod oauth;
pub mod provision;
pub mod reconcile;
pub mod runner;
pub mod streams;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hubspot_sim::{SimConfig, Simulator};
use secrecy::SecretString;

pub use admin::AdminClient;
pub use oauth::{follow, Browser, FlowTrace, Hop};
pub use provision::{provision, QueueSettings, Resources};
pub use runner::{LocalRunner, RunnerConfig, RunnerStats};

/// Options of a local environment.
#[derive(Debug, Clone)]
pub struct EnvOptions {
    /// Unique name prefix of the AWS resources.
    pub prefix: String,
    pub sim: SimConfig,
    pub queues: QueueSettings,
    /// Messages per worker batch (Lambda's `BatchSize`); `None` = default.
    pub batch_size: Option<usize>,
}

/// Simulator + provisioned resources + running functions.
pub struct Environment {
    pub aws: aws_config::SdkConfig,
    pub sim: Simulator,
    pub resources: Resources,
    pub runner: LocalRunner,
}

impl Environment {
    /// Start the simulator, provision the AWS side, start the functions and
    /// point the simulator's webhooks at the intake.
    pub async fn start(aws: aws_config::SdkConfig, options: EnvOptions) -> Result<Self> {
        Self::start_with(aws, options, |_| {}).await
    }

    /// Like [`Environment::start`], with a last say on the runner's
    /// configuration (e.g. the OAuth version or the app's success URL).
    pub async fn start_with(
        aws: aws_config::SdkConfig,
        options: EnvOptions,
        configure: impl FnOnce(&mut RunnerConfig),
    ) -> Result<Self> {
        let sim = Simulator::start(options.sim.clone())
            .await
            .context("start hubspot-sim")?;
        let app = sim.state().config().app;
        let secret = SecretString::from(app.client_secret.clone());
        let resources = provision(&aws, &options.prefix, &secret, options.queues).await?;
        let mut config = RunnerConfig::new(sim.base_url());
        config.app_id = Some(app.app_id);
        config.client_id = app.client_id.clone();
        if let Some(n) = options.batch_size {
            config.batch_size = n.max(1);
        }
        configure(&mut config);
        let runner = LocalRunner::start(&aws, &resources, config).await?;
        sim.state()
            .set_webhook_target(Some(runner.webhook_url()), Some(runner.webhook_url()));
        Ok(Self {
            aws,
            sim,
            resources,
            runner,
        })
    }

    /// Connect a simulator portal the way an admin does: the app's signed
    /// install link → HubSpot's consent (the simulator consents at once) →
    /// `/oauth/callback`, which stores the KMS-encrypted tokens and queues
    /// the initial sync. The tenant is `tenant-{portal}`.
    pub async fn connect_portal(&self, portal: u64) -> Result<()> {
        let trace = self
            .connect_portal_as(portal, &format!("tenant-{portal}"))
            .await?;
        if trace.status != 200 {
            anyhow::bail!(
                "connecting portal {portal} through OAuth ended with HTTP {}",
                trace.status
            );
        }
        Ok(())
    }

    /// Walks the OAuth flow for `portal` as `tenant` and returns every hop
    /// and the final page (whatever its status).
    pub async fn connect_portal_as(&self, portal: u64, tenant: &str) -> Result<FlowTrace> {
        self.sim.state().set_next_authorize_portal(Some(portal));
        follow(&self.install_link(tenant)).await
    }

    /// A signed install link for `tenant`, valid for about five minutes
    /// (what the application would put behind its "Connect HubSpot"
    /// button). Links are single-use, so each one this process makes
    /// expires at a second of its own.
    pub fn install_link(&self, tenant: &str) -> String {
        static LAST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
        let wanted = chrono::Utc::now().timestamp() + 300;
        let previous = LAST
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |last| Some(wanted.max(last + 1)),
            )
            .unwrap_or(wanted - 1);
        oauth_callback::install_url(
            &self.runner.base_url(),
            &self.runner.oauth().config.link_secret,
            tenant,
            wanted.max(previous + 1),
        )
    }

    /// A signed disconnect URL (to POST) for `tenant`'s `portal`.
    pub fn disconnect_link(&self, tenant: &str, portal: u64) -> String {
        oauth_callback::disconnect_url(
            &self.runner.base_url(),
            &self.runner.oauth().config.link_secret,
            tenant,
            portal,
            chrono::Utc::now().timestamp() + 300,
        )
    }

    pub async fn stop(self) {
        self.runner.stop().await;
        self.sim.shutdown().await;
    }
}

/// Poll `check` until it returns `Some`, or fail after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Environment {
    /// Messages in the events queue's DLQ (visible ones, as SQS counts).
    pub async fn dlq_depth(&self) -> Result<u64> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = aws_sdk_sqs::Client::new(&self.aws)
            .get_queue_attributes()
            .queue_url(&self.resources.dlq_url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .send()
            .await
            .context("read the DLQ's depth")?;
        out.attributes()
            .and_then(|a| a.get(&A::ApproximateNumberOfMessages))
            .and_then(|n| n.parse().ok())
            .context("the DLQ has no message count")
    }

    /// Wait until the simulator has delivered every webhook and the
    /// worker's queue is empty (nothing visible or in flight) twice in a
    /// row; fail after `timeout`.
    pub async fn wait_quiet(&self, timeout: Duration) -> Result<()> {
        anyhow::ensure!(
            self.sim.state().wait_webhooks_idle(timeout).await,
            "the simulator still had webhooks to deliver after {timeout:?}"
        );
        let sqs = aws_sdk_sqs::Client::new(&self.aws);
        let deadline = Instant::now() + timeout;
        let mut empty_in_a_row = 0;
        while empty_in_a_row < 2 {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the worker did not go quiet within {timeout:?}"
            );
            let attrs = sqs
                .get_queue_attributes()
                .queue_url(&self.resources.queue_url)
                .attribute_names(
                    aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages,
                )
                .attribute_names(
                    aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                )
                .send()
                .await
                .context("read the worker queue's depth")?;
            let pending: u64 = attrs
                .attributes()
                .map(|a| a.values().filter_map(|v| v.parse::<u64>().ok()).sum())
                .unwrap_or(0);
            empty_in_a_row = if pending == 0 { empty_in_a_row + 1 } else { 0 };
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Ok(())
    }

    /// Wait until the simulator has delivered every webhook and DynamoDB
    /// equals it field by field; fail with the differences after `timeout`.
    pub async fn wait_converged(
        &self,
        portal: u64,
        timeout: Duration,
    ) -> Result<compare::Divergence> {
        self.sim.state().wait_webhooks_idle(timeout).await;
        let deadline = Instant::now() + timeout;
        loop {
            let d = compare::compare_portal(self.sim.state(), self.runner.store(), portal).await?;
            if d.is_empty() {
                return Ok(d);
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "DynamoDB did not converge within {timeout:?}: missing [{}], different [{}], should be archived [{}]",
                    compare::describe(&d.missing, 10),
                    compare::describe(&d.different, 10),
                    compare::describe(&d.should_be_archived, 10)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
