//! Cold initialisation of every function binary: process start → its first
//! request to the Lambda Runtime API (`GET /2018-06-01/runtime/invocation/next`),
//! which a Lambda function makes once its `main` has read its settings,
//! built its SDK clients and read its secrets. That span is what a cold
//! start adds before the first event is handled (Lambda's own sandbox and
//! download time come on top and are not ours to measure).
//!
//! `cargo bench -p hubsync-local --bench cold_init` (figures printed, not
//! asserted). The binaries are the **release** profile (opt-level "z", fat
//! LTO, stripped — what `sam build` deploys), built for this machine's
//! architecture by `cargo build --release` (a no-op when built already; cold
//! it takes several minutes). Each function runs with the environment the
//! template gives it, pointed at a local stack: moto (started here unless
//! `AWS_ENDPOINT_URL` is set) holds its tables, queues, KMS key and secrets,
//! and a fake Runtime API on loopback records when the first request
//! arrives; the process is then killed.
//!
//! Left out, said plainly: moto answers Secrets Manager on loopback in
//! about a millisecond where AWS takes ~10–30 ms in-region; the process is
//! not throttled to a 256 MB Lambda's CPU share; the binary is x86_64 (the
//! arm64 sizes come from `make sizes`) and in the page cache after the
//! first run (the first run's figure is printed separately).
//!
//! Knobs: `COLD_INIT_RUNS` (default 7 per function).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hubsync_local::{provision, QueueSettings, Resources};
use secrecy::SecretString;
use serde_json::Value;

/// The function packages, as `template.yaml` deploys them.
const FUNCTIONS: [&str; 7] = [
    "webhook-intake",
    "record-upsert",
    "reconcile",
    "oauth-callback",
    "admin-api",
    "change-events",
    "journal-reader",
];
/// How long one start may take before the run counts as failed.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const RUNTIME_NEXT: &str = "GET /2018-06-01/runtime/invocation/next";

/// Builds the release binaries; their paths by package name.
fn release_binaries() -> Result<BTreeMap<String, PathBuf>> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(hubsync_testkit::workspace_root())
        .args(["build", "--release", "--locked", "--bins"])
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit());
    for f in FUNCTIONS {
        cmd.args(["-p", f]);
    }
    let output = cmd.output().context("run cargo build --release")?;
    if !output.status.success() {
        bail!("cargo build --release failed ({})", output.status);
    }
    let mut found = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let (Some(name), Some(exe)) =
            (msg["target"]["name"].as_str(), msg["executable"].as_str())
        {
            if FUNCTIONS.contains(&name) {
                found.insert(name.to_string(), PathBuf::from(exe));
            }
        }
    }
    for f in FUNCTIONS {
        if !found.contains_key(f) {
            bail!("cargo built no {f} binary");
        }
    }
    Ok(found)
}

/// The environment `template.yaml` gives the functions (the union of their
/// `Variables`: each reads its own and ignores the rest), pointed at the
/// local stack.
fn function_env(r: &Resources) -> Vec<(&'static str, String)> {
    let public = "https://hooks.hubsync.example".to_string();
    vec![
        ("HUBSYNC_RECORDS_TABLE", r.store.records_table.clone()),
        ("HUBSYNC_CONTROL_TABLE", r.store.control_table.clone()),
        // Never called during initialisation; nothing listens there.
        ("HUBSYNC_HUBSPOT_BASE_URL", "http://127.0.0.1:9".into()),
        ("HUBSYNC_HUBSPOT_API_VERSION", "2026-03".into()),
        ("HUBSYNC_EVENTS_QUEUE_URL", r.queue_url.clone()),
        ("HUBSYNC_SYNC_JOBS_QUEUE_URL", r.sync_jobs_queue_url.clone()),
        (
            "HUBSYNC_PUBLIC_WEBHOOK_URL",
            format!("{public}/webhooks/hubspot"),
        ),
        ("HUBSYNC_PUBLIC_BASE_URL", public.clone()),
        ("HUBSYNC_CLIENT_SECRET_ARN", r.client_secret_arn.clone()),
        ("HUBSYNC_LINK_SECRET_ARN", r.link_secret_arn.clone()),
        ("HUBSYNC_HUBSPOT_APP_ID", "1234567".into()),
        ("HUBSYNC_HUBSPOT_CLIENT_ID", "bench-client-id".into()),
        ("HUBSYNC_TOKEN_KEY_ID", r.kms_key_id.clone()),
        (
            "HUBSYNC_OAUTH_REDIRECT_URI",
            format!("{public}/oauth/callback"),
        ),
        (
            "HUBSYNC_OAUTH_AUTHORIZE_URL",
            "https://app.hubspot.com/oauth/authorize".into(),
        ),
        ("HUBSYNC_OAUTH_VERSION", "2026-03".into()),
        ("HUBSYNC_DEADLINE_RESERVE_SECS", "20".into()),
        (
            "HUBSYNC_OAUTH_SCOPES",
            "crm.objects.companies.read crm.objects.contacts.read crm.objects.deals.read".into(),
        ),
        ("HUBSYNC_RATE_LIMITER", "shared".into()),
        ("HUBSYNC_MAX_CONCURRENCY", "5".into()),
        ("HUBSYNC_GROUP_CONCURRENCY", "4".into()),
        ("HUBSYNC_HUBSPOT_TIMEOUT_MS", "10000".into()),
        ("HUBSYNC_RETRY_BACKOFF_BASE_SECS", "30".into()),
        ("HUBSYNC_RETRY_BACKOFF_MAX_SECS", "7200".into()),
        ("HUBSYNC_DRIFT_ALERT_THRESHOLD", "100".into()),
        ("HUBSYNC_HANDOVER_RESERVE_SECS", "60".into()),
        (
            "HUBSYNC_ADMIN_CALLER_ROLE_ARNS",
            "arn:aws:iam::123456789012:role/application".into(),
        ),
        ("HUBSYNC_EVENT_BUS_NAME", r.event_bus_name.clone()),
        ("RUST_LOG", "info".into()),
    ]
}

/// A fake Runtime API: the instant the first `invocation/next` request
/// arrives. Other requests (none are expected before it) are ignored.
fn runtime_api() -> Result<(u16, mpsc::Receiver<Instant>)> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind the fake Runtime API")?;
    let port = listener.local_addr()?.port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Connections are kept open (never answered) until the function is
        // killed, so the runtime client waits instead of retrying.
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut line = String::new();
            if BufReader::new(&stream).read_line(&mut line).is_ok()
                && line.starts_with(RUNTIME_NEXT)
            {
                let _ = tx.send(Instant::now());
                held.push(stream);
                return;
            }
            held.push(stream);
        }
    });
    Ok((port, rx))
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One cold start: spawn → first `invocation/next`.
fn cold_start(name: &str, binary: &PathBuf, env: &[(&str, String)]) -> Result<Duration> {
    let (port, first_next) = runtime_api()?;
    let endpoint = hubsync_testkit::aws_endpoint()?;
    let log = std::env::temp_dir().join(hubsync_testkit::unique_name(&format!("cold-{name}")));
    let out = std::fs::File::create(&log)?;
    let mut cmd = Command::new(binary);
    cmd.env_clear()
        // What Lambda sets for a provided.al2023 function.
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", format!("hubsync-bench-{name}"))
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_SESSION_TOKEN", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", &endpoint)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = Killed(cmd.spawn().with_context(|| format!("start {name}"))?);
    let deadline = started + START_TIMEOUT;
    loop {
        match first_next.recv_timeout(Duration::from_millis(20)) {
            Ok(at) => {
                drop(child);
                let _ = std::fs::remove_file(&log);
                return Ok(at - started);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the fake Runtime API stopped"),
        }
        let exited = child.0.try_wait()?;
        if exited.is_some() || Instant::now() > deadline {
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "{name} did not reach the Runtime API ({}); its output ({}):\n{output}",
                exited.map_or("timed out".to_string(), |s| s.to_string()),
                log.display()
            );
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn main() -> Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let runs: usize = std::env::var("COLD_INIT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(7);
    let binaries = release_binaries()?;
    let rt = tokio::runtime::Runtime::new()?;
    let resources = rt.block_on(async {
        let aws = hubsync_testkit::aws_config().await?;
        provision(
            &aws,
            &hubsync_testkit::unique_name("cold-init"),
            &SecretString::from("bench-client-secret".to_string()),
            QueueSettings::default(),
        )
        .await
    })?;
    let env = function_env(&resources);

    println!("cold initialisation: process start → first Runtime API request ({runs} runs each, release build, moto on loopback)");
    println!(
        "{:<16} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "function", "size MiB", "first ms", "min ms", "median", "max ms"
    );
    for name in FUNCTIONS {
        let binary = &binaries[name];
        let size = std::fs::metadata(binary)?.len() as f64 / (1024.0 * 1024.0);
        let mut times = (0..runs)
            .map(|_| cold_start(name, binary, &env))
            .collect::<Result<Vec<_>>>()?;
        let first = times[0];
        times.sort();
        println!(
            "{:<16} {:>10.2} {:>9} {:>9} {:>9} {:>9}",
            name,
            size,
            ms(first),
            ms(times[0]),
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1]),
        );
    }
    println!("(x86_64 sizes of this machine's build; the arm64 sizes Lambda runs: `make sizes`)");
    Ok(())
}
