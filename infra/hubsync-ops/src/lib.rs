//! `hubsync-ops`: the operator's CLI for a hubsync deployment, on AWS or on
//! the local stack (the AWS endpoint comes from `AWS_ENDPOINT_URL`, which
//! the SDK honours).
//!
//! * `status` — connections and their state, last webhook, last
//!   reconciliation and its summary, queue backlog and DLQ depth;
//! * `resync --portal P [--object T] [--wait]` — queues a re-sync job on
//!   the sync-jobs queue (the same message the OAuth callback and the
//!   nightly fan-out queue) and optionally follows its run report;
//! * `dlq replay [--portal P] [--queue events|jobs|all]` — moves messages
//!   from the DLQs back to their source queues after a fix;
//! * `purge --portal P --object T --id ID` — deletes an archived record
//!   permanently (a conditional delete: an active record is refused);
//! * `disconnect --portal P` — the `oauth-callback` disconnect flow
//!   (revoke at HubSpot, delete tokens, mark `disconnected`);
//! * `report --portal P [--run ID] [--csv FILE]` — a run report, printed
//!   or exported;
//! * `mapping show|validate|set|preview --portal P` — the portal's mapping
//!   config: show it with its revision, validate a file against HubSpot,
//!   save it and queue a re-sync of the changed types, preview it on real
//!   records (read-only);
//! * `hubspot-app render --stack S --out DIR` — the HubSpot developer
//!   project (app, OAuth scopes, webhook subscriptions for every mapped
//!   property) from the stack's outputs and the saved mapping configs;
//!   `hubspot-app check --stack S --dir DIR` finds a mapped property
//!   without a subscription.
//!
//! Configuration uses the functions' variable names (`HUBSYNC_*`); each
//! can also be passed as a flag. [`run`] is the whole CLI behind one call,
//! so tests drive it with their own AWS configuration and output buffer.
#![forbid(unsafe_code)]

pub mod app_cmd;
pub mod dlq;
pub mod hubspot_app;
pub mod mapping;
pub mod ops;
pub mod queues;
pub mod report;
pub mod resync;
pub mod status;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use hubsync_hubspot::ObjectType;

pub use ops::Ops;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "hubsync-ops",
    version,
    about = "Operate a hubsync deployment (AWS, or the local stack through AWS_ENDPOINT_URL)"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: OpsConfig,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the deployment's resources are: the functions' environment
/// variables (see `template.yaml`), or flags. Each command checks only
/// what it needs and names the missing variable.
#[derive(Debug, Clone, Args)]
pub struct OpsConfig {
    /// The Records table (stack output `RecordsTableName`).
    #[arg(long, env = "HUBSYNC_RECORDS_TABLE", global = true)]
    pub records_table: Option<String>,
    /// The Control table (stack output `ControlTableName`).
    #[arg(long, env = "HUBSYNC_CONTROL_TABLE", global = true)]
    pub control_table: Option<String>,
    /// The webhook events queue (stack output `EventsQueueUrl`); its DLQ is
    /// found through its redrive policy.
    #[arg(long, env = "HUBSYNC_EVENTS_QUEUE_URL", global = true)]
    pub events_queue_url: Option<String>,
    /// The sync-jobs queue (stack output `SyncJobsQueueUrl`); its DLQ is
    /// found through its redrive policy.
    #[arg(long, env = "HUBSYNC_SYNC_JOBS_QUEUE_URL", global = true)]
    pub sync_jobs_queue_url: Option<String>,
    /// `disconnect`, `mapping`: the HubSpot app's client id.
    #[arg(long, env = "HUBSYNC_HUBSPOT_CLIENT_ID", global = true)]
    pub hubspot_client_id: Option<String>,
    /// `disconnect`, `mapping`: the Secrets Manager ARN of the app's client secret.
    #[arg(long, env = "HUBSYNC_CLIENT_SECRET_ARN", global = true)]
    pub client_secret_arn: Option<String>,
    /// `disconnect`, `mapping`: the KMS key of the tokens (stack output
    /// `TokenKeyArn`).
    #[arg(long, env = "HUBSYNC_TOKEN_KEY_ID", global = true)]
    pub token_key_id: Option<String>,
    /// `disconnect`, `mapping`: the app's redirect URI (stack output `OAuthRedirectUri`).
    #[arg(long, env = "HUBSYNC_OAUTH_REDIRECT_URI", global = true)]
    pub oauth_redirect_uri: Option<String>,
    /// `disconnect`, `mapping`: HubSpot's API base URL.
    #[arg(
        long,
        env = "HUBSYNC_HUBSPOT_BASE_URL",
        global = true,
        default_value = "https://api.hubapi.com"
    )]
    pub hubspot_base_url: String,
    /// `disconnect`, `mapping`: HubSpot's OAuth endpoint version (`v1` or `2026-03`).
    #[arg(long, env = "HUBSYNC_OAUTH_VERSION", global = true)]
    pub oauth_version: Option<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connections (active / needs_reauth / disconnected), last webhook,
    /// last reconciliation and its report, queue backlog and DLQ depth.
    Status,
    /// Queue a re-sync of a portal (optionally one object type) on the
    /// sync-jobs queue; the reconcile function runs it.
    Resync {
        #[arg(long)]
        portal: u64,
        /// companies, contacts or deals (default: every type).
        #[arg(long)]
        object: Option<ObjectType>,
        /// Follow the run report with a progress bar until the run ends.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds (the run goes on).
        #[arg(long, default_value_t = 3600)]
        timeout_secs: u64,
        /// With --wait: how often the run report is read.
        #[arg(long, default_value_t = 1000)]
        poll_ms: u64,
    },
    /// Dead-letter queues.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Delete an ARCHIVED record permanently. An active record (or a
    /// privacy tombstone) is refused and nothing changes.
    Purge {
        #[arg(long)]
        portal: u64,
        /// companies, contacts or deals.
        #[arg(long)]
        object: ObjectType,
        /// The HubSpot record id.
        #[arg(long)]
        id: u64,
    },
    /// Disconnect a portal: revoke the grant at HubSpot, delete the tokens,
    /// mark the connection `disconnected` (records are kept).
    Disconnect {
        #[arg(long)]
        portal: u64,
    },
    /// Print a run report (default: the portal's latest run), or export it
    /// as CSV.
    Report {
        #[arg(long)]
        portal: u64,
        /// The run id (as `status` and `resync` print it).
        #[arg(long)]
        run: Option<String>,
        /// Write the report as CSV to this file (`-`: standard output).
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// A portal's mapping config: show it, validate a file, save it (and
    /// queue a re-sync), preview it on real records.
    Mapping {
        #[command(subcommand)]
        action: MappingAction,
    },
    /// The HubSpot app as code: render the developer-platform project
    /// from the deployed stack, or check one.
    HubspotApp {
        #[command(subcommand)]
        action: HubspotAppAction,
    },
}

/// Where `hubspot-app` finds the stack's outputs.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct StackSource {
    /// The deployed stack (CloudFormation DescribeStacks).
    #[arg(long)]
    pub stack: Option<String>,
    /// Or a file with `aws cloudformation describe-stacks --stack-name S` output.
    #[arg(long)]
    pub outputs_file: Option<PathBuf>,
}

impl StackSource {
    fn from(&self) -> app_cmd::OutputsFrom<'_> {
        match (&self.stack, &self.outputs_file) {
            (Some(s), _) => app_cmd::OutputsFrom::Stack(s),
            (None, Some(f)) => app_cmd::OutputsFrom::File(f),
            (None, None) => app_cmd::OutputsFrom::Stack(""),
        }
    }
}

/// `hubspot-app` actions.
#[derive(Debug, Subcommand)]
pub enum HubspotAppAction {
    /// Write hsproject.json, src/app/app-hsmeta.json and
    /// src/app/webhooks/webhooks-hsmeta.json under --out, ready for
    /// `hs project upload`.
    Render {
        #[command(flatten)]
        source: StackSource,
        /// The project directory to write (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// The app's name in HubSpot (its uid is derived from it).
        #[arg(long, default_value = "hubsync")]
        name: String,
        /// `private` or `marketplace`.
        #[arg(long, default_value = "private", value_parser = ["private", "marketplace"])]
        distribution: String,
        /// The app's support email.
        #[arg(long)]
        support_email: Option<String>,
    },
    /// Check a project directory against HubSpot's documented schema and
    /// the deployment's mapping configs (exit 1 naming each problem).
    Check {
        #[command(flatten)]
        source: StackSource,
        #[arg(long)]
        dir: PathBuf,
    },
}

/// `mapping` actions. They call HubSpot with the portal's stored tokens
/// (KMS-decrypted, refreshed like the functions do), except `show`.
#[derive(Debug, Subcommand)]
pub enum MappingAction {
    /// Print the portal's stored config and its revision, or the default
    /// (DESIGN.md's field map) when none is stored.
    Show {
        #[arg(long)]
        portal: u64,
        /// Print {portal_id, revision, updated_at, default, config} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validate a config file against the portal's HubSpot properties and
    /// lists; every bad rule is named (exit 1). Stores nothing.
    Validate {
        #[arg(long)]
        portal: u64,
        /// The config (JSON; types left out keep their defaults).
        #[arg(long)]
        file: PathBuf,
        /// Print the validated config (or the errors) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validate and save a config (nothing is stored when it is rejected),
    /// then queue a re-sync of the types whose mapping changed.
    Set {
        #[arg(long)]
        portal: u64,
        /// The config (JSON; types left out keep their defaults).
        #[arg(long)]
        file: PathBuf,
        /// Re-sync only this type (default: the types whose mapping changed).
        #[arg(long, conflicts_with = "no_resync")]
        object: Option<ObjectType>,
        /// Save only; stored records change at the next reconciliation.
        #[arg(long)]
        no_resync: bool,
        /// Follow the re-sync with a progress bar until it ends.
        #[arg(long, conflicts_with = "no_resync")]
        wait: bool,
        /// With --wait: give up after this many seconds (the run goes on).
        #[arg(long, default_value_t = 3600)]
        timeout_secs: u64,
        /// With --wait: how often the run report is read.
        #[arg(long, default_value_t = 1000)]
        poll_ms: u64,
    },
    /// Map a sample of the portal's records with a config (default: the
    /// one it maps with now) and print the app records and every field
    /// error ("Test sync"). Writes nothing.
    Preview {
        #[arg(long)]
        portal: u64,
        /// The config to try (default: the stored one, else the default).
        #[arg(long)]
        file: Option<PathBuf>,
        /// companies, contacts or deals (default: every type).
        #[arg(long)]
        object: Option<ObjectType>,
        /// Records per type (at most 100).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
        sample: u32,
        /// Print the preview as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `dlq` actions.
#[derive(Debug, Subcommand)]
pub enum DlqAction {
    /// Move messages from the DLQ(s) back to their source queue (after the
    /// cause was fixed). With --portal only that portal's messages move;
    /// the others stay in the DLQ.
    Replay {
        #[arg(long)]
        portal: Option<u64>,
        /// Which DLQ: the worker's (events), the sync jobs', or both.
        #[arg(long, value_enum, default_value_t = QueueChoice::All)]
        queue: QueueChoice,
        /// How long messages left in the DLQ stay hidden while the replay
        /// runs (they are made visible again at the end).
        #[arg(long, default_value_t = 120)]
        visibility_secs: i32,
    },
}

/// Which queue(s) a DLQ command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueueChoice {
    Events,
    Jobs,
    All,
}

/// Parses `args` (the first being the program name) and runs the command.
pub async fn run_args<I, T>(
    args: I,
    aws: &aws_config::SdkConfig,
    out: &mut (dyn Write + Send),
) -> Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args).context("invalid command line")?;
    run(cli, aws, out).await
}

/// Runs one command with `aws` (endpoint, region, credentials), writing
/// its report to `out` (progress bars go to a terminal's stderr only).
pub async fn run(
    cli: Cli,
    aws: &aws_config::SdkConfig,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    if let Command::HubspotApp { action } = &cli.command {
        return match action {
            HubspotAppAction::Render {
                source,
                out: dir,
                name,
                distribution,
                support_email,
            } => {
                let options = app_cmd::RenderOptions {
                    name: name.clone(),
                    distribution: distribution.clone(),
                    support_email: support_email.clone(),
                };
                app_cmd::render(aws, source.from(), &options, dir, out).await
            }
            HubspotAppAction::Check { source, dir } => {
                app_cmd::check(aws, source.from(), dir, out).await
            }
        };
    }
    let ops = Ops::new(aws.clone(), cli.config);
    execute(&ops, cli.command, out).await
}

fn wait_options(timeout_secs: u64, poll_ms: u64) -> resync::WaitOptions {
    resync::WaitOptions {
        timeout: std::time::Duration::from_secs(timeout_secs),
        poll: std::time::Duration::from_millis(poll_ms.max(50)),
    }
}

/// Runs one command on a configured deployment (the caller keeps `ops`,
/// e.g. to read its store's counters afterwards).
pub async fn execute(ops: &Ops, command: Command, out: &mut (dyn Write + Send)) -> Result<()> {
    match command {
        Command::Status => status::status(ops, out).await,
        Command::Resync {
            portal,
            object,
            wait,
            timeout_secs,
            poll_ms,
        } => {
            let wait = wait.then(|| wait_options(timeout_secs, poll_ms));
            resync::resync(ops, portal, object, wait, out).await
        }
        Command::Dlq {
            action:
                DlqAction::Replay {
                    portal,
                    queue,
                    visibility_secs,
                },
        } => dlq::replay_command(ops, portal, queue, visibility_secs, out).await,
        Command::Purge { portal, object, id } => ops::purge(ops, portal, object, id, out).await,
        Command::Disconnect { portal } => ops::disconnect(ops, portal, out).await,
        Command::Report { portal, run, csv } => {
            report::report_command(ops, portal, run.as_deref(), csv.as_deref(), out).await
        }
        Command::HubspotApp { .. } => {
            anyhow::bail!("hubspot-app runs from the stack's outputs: use `run`")
        }
        Command::Mapping { action } => match action {
            MappingAction::Show { portal, json } => mapping::show(ops, portal, json, out).await,
            MappingAction::Validate { portal, file, json } => {
                mapping::validate(ops, portal, &file, json, out).await
            }
            MappingAction::Set {
                portal,
                file,
                object,
                no_resync,
                wait,
                timeout_secs,
                poll_ms,
            } => {
                let after = mapping::AfterSave {
                    resync: !no_resync,
                    object,
                    wait: wait.then(|| wait_options(timeout_secs, poll_ms)),
                };
                mapping::set(ops, portal, &file, after, out).await
            }
            MappingAction::Preview {
                portal,
                file,
                object,
                sample,
                json,
            } => {
                mapping::preview_command(ops, portal, file.as_ref(), object, sample, json, out)
                    .await
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offline_aws() -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build()
    }

    async fn error_of(args: &[&str]) -> String {
        let mut out = Vec::new();
        let err = run_args(args, &offline_aws(), &mut out)
            .await
            .expect_err("the command must fail");
        assert!(out.is_empty(), "nothing printed on failure");
        format!("{err:#}")
    }

    #[tokio::test]
    async fn a_missing_setting_is_named_before_anything_is_called() {
        let empty = ["--records-table", "", "--control-table", ""];
        let status = [&["hubsync-ops"][..], &empty, &["status"]].concat();
        let err = error_of(&status).await;
        assert!(
            err.contains("HUBSYNC_RECORDS_TABLE is not set (nor --records-table)"),
            "{err}"
        );
        let replay = [
            &["hubsync-ops", "--events-queue-url", " "][..],
            &["dlq", "replay", "--queue", "events"],
        ]
        .concat();
        let err = error_of(&replay).await;
        assert!(err.contains("HUBSYNC_EVENTS_QUEUE_URL"), "{err}");
        let disconnect = [
            &["hubsync-ops", "--hubspot-client-id", ""][..],
            &["disconnect", "--portal", "1"],
        ]
        .concat();
        let err = error_of(&disconnect).await;
        assert!(err.contains("HUBSYNC_HUBSPOT_CLIENT_ID"), "{err}");
    }

    #[tokio::test]
    async fn mapping_commands_check_their_file_and_settings_before_calling_anything() {
        let dir = std::env::temp_dir().join(format!("hubsync-ops-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_a_config = dir.join("not-a-config.json");
        std::fs::write(&not_a_config, r#"{"tickets": {"rules": []}}"#).unwrap();
        let default = dir.join("default.json");
        std::fs::write(
            &default,
            hubsync_admin::mapping::MappingConfig::default().to_json_pretty(),
        )
        .unwrap();
        let file = |p: &std::path::Path| p.display().to_string();

        let bad = file(&not_a_config);
        let err = error_of(&[
            "hubsync-ops",
            "mapping",
            "validate",
            "--portal",
            "1",
            "--file",
            &bad,
        ])
        .await;
        assert!(err.contains("is not a mapping config"), "{err}");

        let good = file(&default);
        let err = error_of(&[
            "hubsync-ops",
            "--token-key-id",
            "",
            "mapping",
            "preview",
            "--portal",
            "1",
            "--file",
            &good,
        ])
        .await;
        assert!(
            err.contains("HUBSYNC_TOKEN_KEY_ID is not set (nor --token-key-id)"),
            "{err}"
        );

        let err = error_of(&[
            "hubsync-ops",
            "mapping",
            "set",
            "--portal",
            "1",
            "--file",
            &good,
            "--no-resync",
            "--wait",
        ])
        .await;
        assert!(err.contains("invalid command line"), "{err}");
        assert!(err.contains("--no-resync"), "{err}");
        let err = error_of(&[
            "hubsync-ops",
            "mapping",
            "preview",
            "--portal",
            "1",
            "--sample",
            "0",
        ])
        .await;
        assert!(err.contains("invalid command line"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn an_unknown_object_type_is_a_command_line_error() {
        let err = error_of(&[
            "hubsync-ops",
            "purge",
            "--portal",
            "1",
            "--object",
            "tickets",
            "--id",
            "2",
        ])
        .await;
        assert!(err.contains("invalid command line"), "{err}");
        assert!(err.contains("tickets"), "{err}");
    }
}
