//! The real function binaries (`webhook-intake`, `record-upsert`) under a
//! Lambda Runtime API emulator, so that their `main.rs` wiring —
//! configuration from the environment, SDK clients, the secret read at cold
//! start, `lambda_http` / `lambda_runtime` event (de)serialisation — runs as
//! in Lambda.
//!
//! Emulator: `cargo lambda watch --only-lambda-apis` from PyPI `cargo-lambda`
//! (installed into `./.venv` by `infra/local/setup.sh`). It serves the
//! Runtime API (`/.rt/2018-06-01/runtime/invocation/next`, `…/response`,
//! `…/error`) and Lambda's Invoke API
//! (`POST /2015-03-31/functions/_/invocations`), works offline and starts in
//! about a second. With `--only-lambda-apis` it neither compiles nor watches
//! anything: the test builds the binaries with cargo and starts them itself,
//! with the variables Lambda would set plus the function's own (as in
//! `template.yaml`). One emulator per function.
//!
//! The events are the JSON Lambda delivers: an API Gateway HTTP API (v2)
//! request signed like HubSpot signs it, and an SQS batch built from the
//! message the intake really queued (moto). HubSpot is `hubspot-sim`.
//!
//! Every child process is killed when its guard drops, and a watchdog kills
//! it if this test process dies first or it outlives `MAX_LIFETIME`.

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use hubspot_sim::{props, ObjectType as SimType, SimConfig, Simulator};
use hubsync_auth::{KmsCipher, TokenCipher};
use hubsync_hubspot::signature::{public_request_uri, sign_v1, sign_v3};
use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_local::{provision, QueueSettings, Resources};
use hubsync_store::{
    Connection, ConnectionStatus, ConnectionStore, DynamoStore, RecordKey, RecordStore,
};
use secrecy::SecretString;
use serde_json::{json, Value};

/// The webhook URL HubSpot calls (signatures are computed over it); the
/// function never sees it in the request behind API Gateway.
const PUBLIC_WEBHOOK_URL: &str = "https://hooks.hubsync.example/webhooks/hubspot";
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
/// Hard cap on every child process of this test.
const MAX_LIFETIME: Duration = Duration::from_secs(240);
/// One invocation, cold start included.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------ processes

/// A child process, killed and reaped on drop; its output goes to `log`.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command) -> Result<Self> {
        let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "{}.log",
            hubsync_testkit::unique_name(&format!("emulator-{name}"))
        ));
        let out = File::create(&log).with_context(|| format!("create {}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let child = cmd.spawn().with_context(|| format!("start {name}"))?;
        // The watchdog kills the child (only while it is alive) when this
        // test process is gone or the child outlived MAX_LIFETIME.
        let script = format!(
            "n=0; while kill -0 {pid} 2>/dev/null; do \
               if ! kill -0 {parent} 2>/dev/null || [ $n -ge {max} ]; then kill -9 {pid} 2>/dev/null; break; fi; \
               sleep 1; n=$((n+1)); \
             done",
            pid = child.id(),
            parent = std::process::id(),
            max = MAX_LIFETIME.as_secs(),
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start a watchdog")?;
        Ok(Self {
            name: name.to_string(),
            child,
            log,
        })
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The end of the process's output, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(30);
        format!(
            "--- last lines of {} ({}) ---\n{}",
            self.name,
            self.log.display(),
            lines[from..].join("\n")
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind an ephemeral port")?;
    Ok(listener.local_addr()?.port())
}

/// Build the two function binaries (a no-op when `cargo test --workspace`
/// built them already) and return their paths.
fn build_binaries() -> Result<(PathBuf, PathBuf)> {
    let output = Command::new(env!("CARGO"))
        .current_dir(hubsync_testkit::workspace_root())
        // `--workspace --tests` selects the same packages and targets as
        // `cargo test --workspace`, so features unify identically and this
        // is a no-op after it (building two packages alone would recompile
        // the AWS SDK with another feature set).
        .args([
            "build",
            "--workspace",
            "--tests",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("run cargo build")?;
    if !output.status.success() {
        bail!(
            "cargo build of the function binaries failed ({})",
            output.status
        );
    }
    let mut intake = None;
    let mut upsert = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let (Some(name), Some(exe)) = (msg["target"]["name"].as_str(), msg["executable"].as_str())
        else {
            continue;
        };
        let is_bin = msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|v| v == "bin"));
        if !is_bin || msg["profile"]["test"].as_bool() != Some(false) {
            continue;
        }
        match name {
            "webhook-intake" => intake = Some(PathBuf::from(exe)),
            "record-upsert" => upsert = Some(PathBuf::from(exe)),
            _ => {}
        }
    }
    Ok((
        intake.context("cargo built no webhook-intake binary")?,
        upsert.context("cargo built no record-upsert binary")?,
    ))
}

fn cargo_lambda() -> Result<PathBuf> {
    let root = hubsync_testkit::workspace_root();
    // Idempotent and fast when the pinned tools are installed.
    let status = Command::new("bash")
        .arg(root.join("infra/local/setup.sh"))
        .status()
        .context("run infra/local/setup.sh")?;
    if !status.success() {
        bail!("infra/local/setup.sh failed ({status})");
    }
    let venv = std::env::var("HUBSYNC_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join(".venv"));
    let bin = venv.join("bin/cargo-lambda");
    if !bin.is_file() {
        bail!("{} is missing after setup", bin.display());
    }
    Ok(bin)
}

/// A running `cargo lambda watch --only-lambda-apis` and the function
/// binary attached to it.
struct LambdaFunction {
    port: u16,
    // Dropped in this order: the function, then its emulator.
    function: Proc,
    emulator: Proc,
    http: reqwest::Client,
}

impl LambdaFunction {
    fn start(
        cargo_lambda: &Path,
        name: &str,
        binary: &Path,
        env: &[(&str, String)],
    ) -> Result<Self> {
        let (emulator, port) = start_emulator(cargo_lambda, name)?;
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            // What Lambda sets for a provided.al2023 function.
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", format!("hubsync-test-{name}"))
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/hubsync-test-{name}"),
            )
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/01/01/[$LATEST]0123456789abcdef",
            )
            .env("AWS_REGION", REGION)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_SESSION_TOKEN", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "info")
            .env("RUST_BACKTRACE", "1");
        // Service-specific endpoints of the test's environment reach the
        // function as they would any process (AWS_ENDPOINT_URL_DYNAMODB, …).
        for (k, v) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_ENDPOINT_URL_")) {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let function = Proc::spawn(name, cmd)?;
        Ok(Self {
            port,
            function,
            emulator,
            http: reqwest::Client::builder().timeout(INVOKE_TIMEOUT).build()?,
        })
    }

    fn context(&self) -> String {
        format!("{}\n{}", self.function.log_tail(), self.emulator.log_tail())
    }

    /// Invoke through the emulator's Lambda Invoke API; the function's
    /// response payload.
    async fn invoke(&mut self, event: &Value) -> Result<Value> {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/_/invocations",
            self.port
        );
        let result = self.http.post(&url).json(event).send().await;
        let response = match result {
            Ok(r) => r,
            Err(e) => bail!("invoke {}: {e}\n{}", self.function.name, self.context()),
        };
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if let Some(exit) = self.function.exited() {
            bail!("{} exited ({exit})\n{}", self.function.name, self.context());
        }
        if !status.is_success() {
            bail!(
                "invoke {}: HTTP {status}: {text}\n{}",
                self.function.name,
                self.context()
            );
        }
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} returned non-JSON: {text}\n{}",
                self.function.name,
                self.context()
            )
        })
    }
}

fn start_emulator(cargo_lambda: &Path, name: &str) -> Result<(Proc, u16)> {
    let mut last_error = String::new();
    for _ in 0..3 {
        let port = free_port()?;
        let mut cmd = Command::new(cargo_lambda);
        cmd.current_dir(hubsync_testkit::workspace_root())
            .args(["lambda", "watch", "--only-lambda-apis", "--ignore-changes"])
            .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(port.to_string())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1");
        let mut proc = Proc::spawn(&format!("{name}-emulator"), cmd)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok((proc, port));
            }
            if let Some(status) = proc.exited() {
                last_error = format!("exited ({status})\n{}", proc.log_tail());
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if last_error.is_empty() {
            last_error = format!("not listening after 30 s\n{}", proc.log_tail());
        }
    }
    bail!("cargo lambda watch for {name} did not start: {last_error}")
}

// ------------------------------------------------------------ the stack

struct Stack {
    kms: aws_sdk_kms::Client,
    sqs: aws_sdk_sqs::Client,
    sim: Simulator,
    resources: Resources,
    store: DynamoStore,
    secret: SecretString,
    app_id: u64,
    client_id: String,
    portal: u64,
}

async fn stack() -> Result<Stack> {
    let aws = hubsync_testkit::aws_config().await?;
    let sim = Simulator::start(SimConfig::default())
        .await
        .context("start hubspot-sim")?;
    let app = sim.state().config().app;
    let secret = SecretString::from(app.client_secret.clone());
    let resources = provision(
        &aws,
        &hubsync_testkit::unique_name("emulator"),
        &secret,
        QueueSettings::default(),
    )
    .await?;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), resources.store.clone());
    let portal = sim.state().portal_ids()[0];
    let stack = Stack {
        kms: aws_sdk_kms::Client::new(&aws),
        sqs: aws_sdk_sqs::Client::new(&aws),
        sim,
        resources,
        store,
        secret,
        app_id: app.app_id,
        client_id: app.client_id.clone(),
        portal,
    };
    connect_portal(&stack).await?;
    Ok(stack)
}

/// What the OAuth callback stores: the portal's tokens, KMS-encrypted with
/// the portal in the encryption context.
async fn connect_portal(stack: &Stack) -> Result<()> {
    let tokens = stack
        .sim
        .issue_token(stack.portal)
        .map_err(|e| anyhow::anyhow!("issue a token: {e}"))?;
    let cipher = KmsCipher::new(stack.kms.clone(), stack.resources.kms_key_id.clone());
    let portal = PortalId(stack.portal);
    let now = chrono::Utc::now();
    stack
        .store
        .put_connection(&Connection {
            portal_id: portal,
            tenant_id: format!("tenant-{}", stack.portal),
            status: ConnectionStatus::Active,
            scopes: vec![],
            access_token_ciphertext: Some(
                cipher
                    .encrypt(portal, &SecretString::from(tokens.access_token.clone()))
                    .await?,
            ),
            refresh_token_ciphertext: Some(
                cipher
                    .encrypt(portal, &SecretString::from(tokens.refresh_token.clone()))
                    .await?,
            ),
            access_token_expires_at: Some(now.timestamp() + tokens.expires_in as i64),
            created_at: now,
            updated_at: now,
            last_webhook_at: None,
            status_reason: None,
        })
        .await?;
    Ok(())
}

// ------------------------------------------------------------ events

/// The event API Gateway (HTTP API, payload format 2.0) hands the intake
/// for HubSpot's POST of `body`, signed over the public URL.
fn http_api_event(secret: &SecretString, body: &str, signed_body: &str) -> Value {
    let now = chrono::Utc::now();
    let timestamp = now.timestamp_millis();
    let v3 = sign_v3(
        secret,
        "POST",
        &public_request_uri(PUBLIC_WEBHOOK_URL, None),
        signed_body.as_bytes(),
        timestamp,
    );
    let v1 = sign_v1(secret, signed_body.as_bytes());
    let user_agent = "HubSpot Connect 2.0 (http://dev.hubspot.com/) - WebhooksExecutorDaemon";
    json!({
        "version": "2.0",
        "routeKey": "POST /webhooks/hubspot",
        "rawPath": "/webhooks/hubspot",
        "rawQueryString": "",
        "headers": {
            "accept": "*/*",
            "content-length": body.len().to_string(),
            "content-type": "application/json",
            "host": "hooks.hubsync.example",
            "user-agent": user_agent,
            "x-amzn-trace-id": "Root=1-6b000000-0123456789abcdef01234567",
            "x-forwarded-for": "54.174.60.1",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
            "x-hubspot-request-timestamp": timestamp.to_string(),
            "x-hubspot-signature": v1,
            "x-hubspot-signature-v3": v3,
            "x-hubspot-signature-version": "v1",
        },
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "a1b2c3d4e5",
            "domainName": "hooks.hubsync.example",
            "domainPrefix": "hooks",
            "http": {
                "method": "POST",
                "path": "/webhooks/hubspot",
                "protocol": "HTTP/1.1",
                "sourceIp": "54.174.60.1",
                "userAgent": user_agent,
            },
            "requestId": format!("req-{}", now.timestamp_nanos_opt().unwrap_or_default()),
            "routeKey": "POST /webhooks/hubspot",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": timestamp,
        },
        "body": body,
        "isBase64Encoded": false,
    })
}

/// One record of the SQS event Lambda's event source mapping delivers.
fn sqs_record(message: &aws_sdk_sqs::types::Message, queue_arn: &str) -> Value {
    let attributes: serde_json::Map<String, Value> = message
        .attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_string(), json!(v)))
                .collect()
        })
        .unwrap_or_default();
    let message_attributes: serde_json::Map<String, Value> = message
        .message_attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        json!({
                            "stringValue": v.string_value(),
                            "stringListValues": [],
                            "binaryListValues": [],
                            "dataType": v.data_type(),
                        }),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "messageId": message.message_id(),
        "receiptHandle": message.receipt_handle(),
        "body": message.body(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    })
}

fn status_of(response: &Value) -> Option<u64> {
    response["statusCode"].as_u64()
}

fn failures(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["itemIdentifier"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

// ------------------------------------------------------------ the test

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_binaries_take_a_signed_webhook_through_sqs_into_dynamodb() -> Result<()> {
    let (intake_bin, upsert_bin) = tokio::task::spawn_blocking(build_binaries).await??;
    let cargo_lambda = tokio::task::spawn_blocking(cargo_lambda).await??;
    let started = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(120),
        scenario(&cargo_lambda, &intake_bin, &upsert_bin),
    )
    .await
    .context("the scenario took longer than 120 s")??;
    eprintln!(
        "lambda emulator scenario: {:.1} s after the build",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn scenario(cargo_lambda: &Path, intake_bin: &Path, upsert_bin: &Path) -> Result<()> {
    let stack = stack().await?;
    let endpoint = hubsync_testkit::aws_endpoint()?;
    let r = &stack.resources;
    let tables = [
        ("HUBSYNC_RECORDS_TABLE", r.store.records_table.clone()),
        ("HUBSYNC_CONTROL_TABLE", r.store.control_table.clone()),
    ];

    // --- webhook-intake, configured as in template.yaml
    let mut intake_env = vec![
        ("AWS_ENDPOINT_URL", endpoint.clone()),
        ("HUBSYNC_EVENTS_QUEUE_URL", r.queue_url.clone()),
        ("HUBSYNC_PUBLIC_WEBHOOK_URL", PUBLIC_WEBHOOK_URL.to_string()),
        ("HUBSYNC_CLIENT_SECRET_ARN", r.client_secret_arn.clone()),
        ("HUBSYNC_HUBSPOT_APP_ID", stack.app_id.to_string()),
    ];
    intake_env.extend(tables.iter().cloned());
    let mut intake =
        LambdaFunction::start(cargo_lambda, "webhook-intake", intake_bin, &intake_env)?;

    // A change in HubSpot, and the events HubSpot emitted for it.
    let sim = stack.sim.state();
    let company = sim.create_object(
        stack.portal,
        SimType::Companies,
        props([("name", "Acme Emulated"), ("domain", "acme.example")]),
    )?;
    let events: Vec<_> = sim
        .events()
        .into_iter()
        .filter(|e| e.portal_id == stack.portal && e.object_id == company)
        .collect();
    assert!(!events.is_empty(), "the simulator emitted no event");
    let body = serde_json::to_string(&events)?;

    // Signed → 200 and the batch on the queue.
    let response = intake
        .invoke(&http_api_event(&stack.secret, &body, &body))
        .await?;
    assert_eq!(status_of(&response), Some(200), "intake: {response}");
    let accepted: Value = serde_json::from_str(response["body"].as_str().unwrap_or("{}"))?;
    assert_eq!(
        accepted["enqueued"],
        json!(events.len()),
        "intake: {accepted}"
    );

    // Tampered body (signature over the original) → 401, nothing queued.
    let tampered = body
        .replace("Acme", "Evil")
        .replace(&company.to_string(), &(company + 1).to_string());
    assert_ne!(tampered, body);
    let response = intake
        .invoke(&http_api_event(&stack.secret, &tampered, &body))
        .await?;
    assert_eq!(status_of(&response), Some(401), "tampered: {response}");

    let sqs = &stack.sqs;
    let mut messages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while messages.is_empty() && Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(&r.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(30)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await?;
        messages.extend(out.messages().iter().cloned());
    }
    assert_eq!(
        messages.len(),
        1,
        "one delivery of one portal → one message"
    );
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&r.queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .context("the queue has no ARN")?;
    let queued = sqs_record(&messages[0], &queue_arn);

    // --- record-upsert, configured as in template.yaml
    let mut upsert_env = vec![
        ("AWS_ENDPOINT_URL", endpoint.clone()),
        ("HUBSYNC_HUBSPOT_BASE_URL", stack.sim.base_url()),
        ("HUBSYNC_TOKEN_KEY_ID", r.kms_key_id.clone()),
        ("HUBSYNC_HUBSPOT_CLIENT_ID", stack.client_id.clone()),
        ("HUBSYNC_CLIENT_SECRET_ARN", r.client_secret_arn.clone()),
        (
            "HUBSYNC_OAUTH_REDIRECT_URI",
            "https://hooks.example.com/oauth/callback".to_string(),
        ),
        ("HUBSYNC_MAX_CONCURRENCY", "2".to_string()),
        ("HUBSYNC_GROUP_CONCURRENCY", "4".to_string()),
        ("HUBSYNC_HUBSPOT_TIMEOUT_MS", "10000".to_string()),
        // Failed messages are backed off on the events queue.
        ("HUBSYNC_EVENTS_QUEUE_URL", r.queue_url.clone()),
    ];
    upsert_env.extend(tables.iter().cloned());
    let mut upsert = LambdaFunction::start(cargo_lambda, "record-upsert", upsert_bin, &upsert_env)?;

    let response = upsert
        .invoke(&json!({ "Records": [queued.clone()] }))
        .await?;
    assert_eq!(
        failures(&response),
        Vec::<String>::new(),
        "worker: {response}"
    );
    let key = RecordKey::new(
        PortalId(stack.portal),
        ObjectType::Companies,
        ObjectId(company),
    );
    let record = stack
        .store
        .get_record(&key)
        .await?
        .context("the company is not in the Records table")?;
    assert_eq!(record.fields["name"], json!("Acme Emulated"));
    assert_eq!(record.fields["domain"], json!("acme.example"));
    assert!(!record.meta.archived);

    // A poisoned message next to the same (already applied) one: only the
    // poisoned id comes back; the record is unchanged.
    let mut poisoned = queued.clone();
    poisoned["messageId"] = json!("0b7c5f3e-poisoned-message");
    poisoned["receiptHandle"] = json!("AQEB-poisoned");
    poisoned["body"] = json!("{\"v\":1,\"portalId\":\"not a batch\"");
    let response = upsert
        .invoke(&json!({ "Records": [queued, poisoned] }))
        .await?;
    assert_eq!(
        failures(&response),
        vec!["0b7c5f3e-poisoned-message".to_string()],
        "worker: {response}"
    );
    let again = stack.store.get_record(&key).await?.context("record gone")?;
    assert_eq!(again.fields, record.fields);

    drop(upsert);
    drop(intake);
    stack.sim.shutdown().await;
    Ok(())
}
