//! `hubsync-local`: hubsync on this machine, against the local stack.
//!
//! `hubsync-local demo` (what `make demo` runs, inside
//! `infra/local/with-stack.sh` so that `AWS_ENDPOINT_URL` points at moto):
//! starts the HubSpot simulator, provisions the tables, queues, KMS key,
//! secrets and event bus like the SAM template, runs the functions with
//! their Lambda handler code, and walks the application's journey through
//! the admin API ([`hubsync_local::demo`]).
//!
//! Everything that operates a deployment (or the local stack as one) —
//! status, re-sync, mappings, DLQs, purge, disconnect, the HubSpot app — is
//! `hubsync-ops`; this binary only runs hubsync locally.

use anyhow::Result;
use clap::{Parser, Subcommand};
use hubspot_sim::WebhookFormat;

#[derive(Parser)]
#[command(
    version,
    about = "Run hubsync locally against moto and the HubSpot simulator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// End-to-end demo of the real-time sync (needs AWS_ENDPOINT_URL).
    Demo {
        /// Records in the portal before it is connected (the initial sync
        /// imports them).
        #[arg(long, default_value_t = 200)]
        companies: usize,
        #[arg(long, default_value_t = 800)]
        contacts: usize,
        #[arg(long, default_value_t = 100)]
        deals: usize,
        /// Random changes (updates, deletes, restores, merges) after the
        /// initial sync, with 10 % of webhooks dropped.
        #[arg(long, default_value_t = 500)]
        changes: usize,
        /// Changes timed one by one (latency from HubSpot to DynamoDB).
        #[arg(long, default_value_t = 20)]
        timed: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// The webhook format the simulator delivers: `generic` (object.*,
        /// what a developer-platform app subscribes to), `classic` or `mixed`.
        #[arg(long, default_value = "generic", value_parser = parse_format)]
        webhook_format: WebhookFormat,
    },
}

fn parse_format(s: &str) -> std::result::Result<WebhookFormat, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("{s:?} is not generic, classic or mixed"))
}

#[tokio::main]
async fn main() -> Result<()> {
    hubsync_runtime::init_tracing();
    // EMF metric lines are for CloudWatch; locally they would drown the
    // demo's report. Set HUBSYNC_PRINT_METRICS=1 to see them.
    if std::env::var_os("HUBSYNC_PRINT_METRICS").is_none() {
        hubsync_runtime::metrics::capture(|_| {});
    }
    match Cli::parse().command {
        Command::Demo {
            companies,
            contacts,
            deals,
            changes,
            timed,
            seed,
            webhook_format,
        } => {
            hubsync_local::demo::run(hubsync_local::demo::DemoOptions {
                companies,
                contacts,
                deals,
                changes,
                timed,
                seed,
                webhook_format,
            })
            .await
        }
    }
}
