//! Support for hubsync's end-to-end tests: the local AWS stack (moto) and
//! helpers to build real AWS SDK clients pointed at it.
//!
//! Tests never skip when the stack is missing: if `AWS_ENDPOINT_URL` is not
//! set (the README's test command sets it), the first test that needs AWS
//! runs `infra/local/setup.sh` (creates `.venv` with the pinned moto) and
//! starts a `moto_server` of its own on a free loopback port. That server is
//! tied to the test process by a watchdog and dies with it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

static ENDPOINT: OnceLock<Result<String, String>> = OnceLock::new();

/// The endpoint of the local AWS stack, starting moto if needed.
pub fn aws_endpoint() -> Result<String> {
    ENDPOINT
        .get_or_init(|| match std::env::var("AWS_ENDPOINT_URL") {
            Ok(url) if !url.is_empty() => Ok(url),
            _ => start_moto().map_err(|e| format!("{e:#}")),
        })
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("bind an ephemeral port")?;
    Ok(listener.local_addr()?.port())
}

/// Starts a moto server of this process's own on a free loopback port (tied
/// to the process by a watchdog); returns its URL.
pub fn start_moto() -> Result<String> {
    let root = workspace_root();
    let status = Command::new("bash")
        .arg(root.join("infra/local/setup.sh"))
        .status()
        .context("run infra/local/setup.sh")?;
    if !status.success() {
        bail!("infra/local/setup.sh failed ({status}); the local stack cannot start");
    }
    let venv = std::env::var("HUBSYNC_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join(".venv"));
    let moto = venv.join("bin/moto_server");
    for _ in 0..3 {
        let port = free_port()?;
        // The watchdog shell kills moto when this test process goes away.
        let script = format!(
            "\"{moto}\" -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
             while kill -0 {parent} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 0.5; done; \
             kill $m 2>/dev/null",
            moto = moto.display(),
            parent = std::process::id(),
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn moto_server")?;
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(url);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    bail!("moto_server did not start on loopback within 30 s (three ports tried)")
}

/// AWS SDK configuration for the local stack: its endpoint, dummy
/// credentials and a fixed region. Never reaches real AWS.
pub async fn aws_config() -> Result<aws_config::SdkConfig> {
    let endpoint = aws_endpoint()?;
    let creds = aws_config::meta::credentials::CredentialsProviderChain::first_try(
        "local-stack",
        aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "local"),
    );
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds);
    // An endpoint from the environment is left to the SDK, which then lets
    // the service-specific variables (`AWS_ENDPOINT_URL_DYNAMODB`, …) take
    // precedence over it, as in production; only a stack this process
    // started itself is set in code (which would override them).
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        loader = loader.endpoint_url(endpoint);
    }
    Ok(loader.load().await)
}

/// A name no other test (or earlier run against the same server) uses.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
