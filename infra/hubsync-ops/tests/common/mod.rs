//! Helpers shared by the ops CLI's end-to-end tests: a local environment
//! with connected portals, the deployment's settings as flags and
//! variables, running a command, and playing the reconcile function's SQS
//! event source.
// Each test binary uses a subset of these helpers.
#![allow(dead_code)]

use anyhow::Result;
use hubspot_sim::SimConfig;
use hubsync_local::reconcile::{drain, LocalReconciler, SliceLimit};
use hubsync_local::{EnvOptions, Environment, QueueSettings};

pub async fn environment(name: &str, portals: usize) -> Result<Environment> {
    let aws = hubsync_testkit::aws_config().await?;
    let env = Environment::start(
        aws,
        EnvOptions {
            prefix: hubsync_testkit::unique_name(name),
            sim: SimConfig {
                portal_count: portals,
                ..SimConfig::default()
            },
            queues: QueueSettings::default(),
            batch_size: None,
        },
    )
    .await?;
    for portal in env.sim.state().portal_ids() {
        env.connect_portal(portal).await?;
    }
    Ok(env)
}

/// The deployment's settings as flags (what the functions read from
/// `HUBSYNC_*`).
pub fn config_args(env: &Environment) -> Vec<String> {
    let r = &env.resources;
    let app = env.sim.state().config().app;
    [
        ("--records-table", r.store.records_table.clone()),
        ("--control-table", r.store.control_table.clone()),
        ("--events-queue-url", r.queue_url.clone()),
        ("--sync-jobs-queue-url", r.sync_jobs_queue_url.clone()),
        ("--hubspot-client-id", app.client_id.clone()),
        ("--client-secret-arn", r.client_secret_arn.clone()),
        ("--token-key-id", r.kms_key_id.clone()),
        (
            "--oauth-redirect-uri",
            format!("{}/oauth/callback", env.runner.base_url()),
        ),
        ("--hubspot-base-url", env.sim.base_url()),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_owned(), value])
    .collect()
}

/// The same settings as the environment variables the functions use.
pub fn config_env(env: &Environment) -> Vec<(&'static str, String)> {
    let r = &env.resources;
    let app = env.sim.state().config().app;
    vec![
        ("HUBSYNC_RECORDS_TABLE", r.store.records_table.clone()),
        ("HUBSYNC_CONTROL_TABLE", r.store.control_table.clone()),
        ("HUBSYNC_EVENTS_QUEUE_URL", r.queue_url.clone()),
        ("HUBSYNC_SYNC_JOBS_QUEUE_URL", r.sync_jobs_queue_url.clone()),
        ("HUBSYNC_HUBSPOT_CLIENT_ID", app.client_id.clone()),
        ("HUBSYNC_CLIENT_SECRET_ARN", r.client_secret_arn.clone()),
        ("HUBSYNC_TOKEN_KEY_ID", r.kms_key_id.clone()),
        ("HUBSYNC_HUBSPOT_BASE_URL", env.sim.base_url()),
    ]
}

pub fn args(env: &Environment, command: &[&str]) -> Vec<String> {
    let mut a = vec!["hubsync-ops".to_owned()];
    a.extend(config_args(env));
    a.extend(command.iter().map(|s| (*s).to_owned()));
    a
}

/// Runs a command through the library entry; its output, or its error.
pub async fn ops(env: &Environment, command: &[&str]) -> Result<String> {
    let mut out: Vec<u8> = Vec::new();
    let result = hubsync_ops::run_args(args(env, command), &env.aws, &mut out).await;
    let out = String::from_utf8(out)?;
    // Shown when a test fails (or with --nocapture).
    println!("$ hubsync-ops {}\n{out}", command.join(" "));
    if let Err(e) = &result {
        println!("error: {e:#}");
    }
    result.map(|()| out)
}

/// Plays the reconcile function's SQS event source: takes the jobs on the
/// sync-jobs queue and runs them (splits and continuations included).
pub async fn consume_jobs(env: &Environment, rec: &LocalReconciler) -> Result<usize> {
    let jobs = hubsync_local::reconcile::take_sync_jobs(env).await?;
    let n = jobs.len();
    for job in jobs {
        rec.queue().enqueue_now(job);
    }
    if n > 0 {
        drain(rec, SliceLimit::unlimited()).await?;
    }
    Ok(n)
}
