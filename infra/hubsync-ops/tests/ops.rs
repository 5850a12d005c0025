//! The ops CLI end to end, against moto and the HubSpot simulator: the
//! functions run in the local runner (`hubsync-local`), portals connect
//! through the real OAuth flow, and the reconcile function's job handler
//! consumes the sync-jobs queue the way its SQS event source would.
//!
//! The commands are driven through the library entry ([`hubsync_ops::run_args`])
//! with the test's AWS configuration, and through the real binary with the
//! functions' environment variables.

mod common;

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use hubspot_sim::{props, ObjectType as SimType};
use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_local::reconcile::{local_reconciler, EngineConfig, JobMessage};
use hubsync_local::{wait_for, Environment};
use hubsync_store::{ConnectionStatus, ConnectionStore, RecordKey, RecordStore};

use common::{args, config_env, consume_jobs, environment, ops};

fn company_name(r: &hubsync_store::StoredRecord) -> Option<&str> {
    r.fields.get("name").and_then(|v| v.as_str())
}

async fn events_dlq_depth(env: &Environment) -> Result<u64> {
    let sqs = aws_sdk_sqs::Client::new(&env.aws);
    Ok(hubsync_ops::queues::depth(&sqs, &env.resources.dlq_url)
        .await?
        .total())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_resync_report_purge_and_disconnect_work_against_the_local_stack() -> Result<()> {
    let env = environment("ops-cli", 1).await?;
    let portal = env.sim.state().portal_ids()[0];
    let sim = env.sim.state();
    let store = env.runner.store();
    let mut companies = Vec::new();
    for i in 0..4 {
        companies.push(sim.create_object(
            portal,
            SimType::Companies,
            props([
                ("name", format!("Company {i}")),
                ("domain", format!("c{i}.example.com")),
            ]),
        )?);
    }
    sim.create_object(
        portal,
        SimType::Contacts,
        props([("email", "ann@example.com"), ("firstname", "Ann")]),
    )?;
    env.wait_converged(portal, Duration::from_secs(60)).await?;

    // The initial sync the OAuth callback queued runs through the
    // reconcile function's handler.
    let rec = local_reconciler(&env, None, EngineConfig::default())?;
    ensure!(
        consume_jobs(&env, &rec).await? == 1,
        "the initial sync job was queued"
    );

    // status: the connected portal, its last reconciliation, the queues.
    let status = ops(&env, &["status"]).await?;
    assert!(
        status.contains(
            "connections: 1 (1 active, 0 awaiting_setup, 0 needs_reauth, 0 disconnected)"
        ),
        "{status}"
    );
    assert!(status.contains(&format!("portal {portal}")), "{status}");
    assert!(status.contains("tenant tenant-"), "{status}");
    assert!(status.contains("-initial completed (initial)"), "{status}");
    assert!(status.contains("sync-jobs  backlog 0"), "{status}");
    assert!(status.contains("DLQ "), "{status}");
    assert!(!status.contains("ciphertext"), "{status}");

    // resync --wait: a change HubSpot never announced reaches DynamoDB
    // through the queued job, and the CLI follows its run to the end.
    sim.update_faults(portal, |f| f.webhook_drop_rate = 1.0)?;
    sim.update_object(
        portal,
        SimType::Companies,
        companies[0],
        props([("name", "Renamed while webhooks were lost")]),
    )?;
    sim.wait_webhooks_idle(Duration::from_secs(10)).await;
    let resync_args = args(
        &env,
        &[
            "resync",
            "--portal",
            &portal.to_string(),
            "--object",
            "companies",
            "--wait",
            "--timeout-secs",
            "120",
            "--poll-ms",
            "200",
        ],
    );
    let aws = env.aws.clone();
    let waiting = tokio::spawn(async move {
        let mut out: Vec<u8> = Vec::new();
        let result = hubsync_ops::run_args(resync_args, &aws, &mut out).await;
        (result, String::from_utf8_lossy(&out).into_owned())
    });
    let mut consumed = 0;
    while !waiting.is_finished() {
        consumed += consume_jobs(&env, &rec).await?;
    }
    let (result, out) = waiting.await?;
    println!("$ hubsync-ops resync … --wait\n{out}");
    result.with_context(|| format!("resync --wait failed; output: {out}"))?;
    assert_eq!(consumed, 1, "one re-sync job was queued");
    assert!(
        out.contains(&format!(
            "queued a re-sync of portal {portal} (companies) as run "
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("re-sync of portal {portal} completed")),
        "{out}"
    );
    let run_id = out
        .split_whitespace()
        .find(|w| w.ends_with("-resync"))
        .context("the run id in the output")?
        .to_owned();
    let key = RecordKey::new(
        PortalId(portal),
        ObjectType::Companies,
        ObjectId(companies[0]),
    );
    let renamed = store.get_record(&key).await?.context("company stored")?;
    assert_eq!(
        company_name(&renamed),
        Some("Renamed while webhooks were lost")
    );
    sim.update_faults(portal, |f| f.webhook_drop_rate = 0.0)?;

    // report: printed, and exported as CSV (the latest run by default).
    let printed = ops(
        &env,
        &["report", "--portal", &portal.to_string(), "--run", &run_id],
    )
    .await?;
    assert!(
        printed.contains(&format!(
            "run {run_id} of portal {portal} (resync): completed"
        )),
        "{printed}"
    );
    assert!(
        printed
            .lines()
            .any(|l| l.starts_with("companies ") && l.contains("completed")),
        "{printed}"
    );
    let csv_path = std::env::temp_dir().join(format!(
        "{}.csv",
        hubsync_testkit::unique_name("ops-report")
    ));
    let csv_arg = csv_path.display().to_string();
    let exported = ops(
        &env,
        &["report", "--portal", &portal.to_string(), "--csv", &csv_arg],
    )
    .await?;
    assert!(exported.contains("CSV written to"), "{exported}");
    let csv = std::fs::read_to_string(&csv_path)?;
    std::fs::remove_file(&csv_path)?;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "header and one row (companies): {csv}");
    assert_eq!(lines[0], hubsync_ops::report::CSV_HEADER);
    let header: Vec<&str> = lines[0].split(',').collect();
    let row: Vec<&str> = lines[1].split(',').collect();
    let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap_or(usize::MAX)];
    assert_eq!(col("run_id"), run_id);
    assert_eq!(col("object_type"), "companies");
    assert_eq!(col("status"), "completed");
    assert_eq!(col("updated"), "1", "the one change the webhooks missed");
    assert_eq!(col("drift"), "1");
    assert_eq!(col("listed"), "4");

    // purge: an archived record goes, an active one is refused untouched.
    sim.delete_object(portal, SimType::Companies, companies[1])?;
    let archived_key = RecordKey::new(
        PortalId(portal),
        ObjectType::Companies,
        ObjectId(companies[1]),
    );
    wait_for(
        "the deleted company archived",
        Duration::from_secs(30),
        || async {
            Ok(store
                .get_record(&archived_key)
                .await?
                .filter(|r| r.meta.archived))
        },
    )
    .await?;
    let purged = ops(
        &env,
        &[
            "purge",
            "--portal",
            &portal.to_string(),
            "--object",
            "companies",
            "--id",
            &companies[1].to_string(),
        ],
    )
    .await?;
    assert!(purged.contains("permanently"), "{purged}");
    assert!(
        store.get_record(&archived_key).await?.is_none(),
        "the archived record is gone"
    );

    let active_key = RecordKey::new(
        PortalId(portal),
        ObjectType::Companies,
        ObjectId(companies[2]),
    );
    let before = store
        .get_record(&active_key)
        .await?
        .context("active company stored")?;
    let refused = ops(
        &env,
        &[
            "purge",
            "--portal",
            &portal.to_string(),
            "--object",
            "companies",
            "--id",
            &companies[2].to_string(),
        ],
    )
    .await
    .expect_err("purging an active record must fail");
    assert!(
        format!("{refused:#}").contains("is active, not archived"),
        "{refused:#}"
    );
    assert_eq!(
        store.get_record(&active_key).await?,
        Some(before),
        "the active record is unchanged"
    );
    let missing = ops(
        &env,
        &[
            "purge",
            "--portal",
            &portal.to_string(),
            "--object",
            "companies",
            "--id",
            &companies[1].to_string(),
        ],
    )
    .await
    .expect_err("purging a record that is not stored must fail");
    assert!(
        format!("{missing:#}").contains("no companies record"),
        "{missing:#}"
    );

    // The real binary, configured by the functions' environment variables:
    // status succeeds; a refused purge exits non-zero with the reason.
    let endpoint = hubsync_testkit::aws_endpoint()?;
    let vars = config_env(&env);
    let active_id = companies[2].to_string();
    let (status_run, purge_run) = tokio::task::spawn_blocking(move || -> Result<_> {
        let run = |command: &[&str]| {
            let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hubsync-ops"));
            c.args(command)
                .env("AWS_ENDPOINT_URL", &endpoint)
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_REGION", "us-east-1")
                .env_remove("AWS_PROFILE");
            for (k, v) in &vars {
                c.env(k, v);
            }
            c.output()
        };
        let status = run(&["status"])?;
        let purge = run(&[
            "purge",
            "--portal",
            &portal.to_string(),
            "--object",
            "companies",
            "--id",
            &active_id,
        ])?;
        Ok((status, purge))
    })
    .await??;
    let stdout = String::from_utf8_lossy(&status_run.stdout);
    assert!(
        status_run.status.success(),
        "status: {stdout} {}",
        String::from_utf8_lossy(&status_run.stderr)
    );
    assert!(
        stdout.contains(&format!("portal {portal}")) && stdout.contains("active"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&run_id),
        "the last reconciliation is the re-sync: {stdout}"
    );
    assert_eq!(purge_run.status.code(), Some(1), "a refused purge exits 1");
    let stderr = String::from_utf8_lossy(&purge_run.stderr);
    assert!(
        stderr.contains("error: refused") && stderr.contains("not archived"),
        "{stderr}"
    );
    assert!(purge_run.stdout.is_empty());

    // disconnect: the oauth-callback flow (revoke, tokens deleted), seen
    // by status; a re-sync of a disconnected portal is refused.
    let disconnected = ops(&env, &["disconnect", "--portal", &portal.to_string()]).await?;
    assert!(
        disconnected.contains(&format!("portal {portal} disconnected (was active)")),
        "{disconnected}"
    );
    assert!(
        disconnected.contains("grant revoked at HubSpot: yes"),
        "{disconnected}"
    );
    let connection = store
        .get_connection(PortalId(portal))
        .await?
        .context("connection kept")?;
    assert_eq!(connection.status, ConnectionStatus::Disconnected);
    assert!(
        connection.access_token_ciphertext.is_none()
            && connection.refresh_token_ciphertext.is_none()
    );
    let status = ops(&env, &["status"]).await?;
    assert!(
        status.contains("disconnected (disconnected_by_app)"),
        "{status}"
    );
    let refused = ops(&env, &["resync", "--portal", &portal.to_string()])
        .await
        .expect_err("resync of a disconnected portal");
    assert!(
        format!("{refused:#}").contains("is disconnected"),
        "{refused:#}"
    );
    assert!(
        store.get_record(&active_key).await?.is_some(),
        "records are kept"
    );

    env.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_message_is_replayed_from_the_dlq_after_the_fix() -> Result<()> {
    let env = environment("ops-dlq", 2).await?;
    let portals = env.sim.state().portal_ids();
    let (a, b) = (portals[0], portals[1]);
    let sim = env.sim.state();
    let store = env.runner.store();

    // HubSpot refuses every read of both portals: the worker fails their
    // messages until the queue moves them to the DLQ.
    for p in [a, b] {
        sim.update_faults(p, |f| {
            f.api_error_rate = 1.0;
            f.api_error_status = 400;
        })?;
    }
    let id_a = sim.create_object(a, SimType::Companies, props([("name", "Poisoned A")]))?;
    let id_b = sim.create_object(b, SimType::Companies, props([("name", "Poisoned B")]))?;
    wait_for(
        "both messages in the DLQ",
        Duration::from_secs(90),
        || async { Ok((events_dlq_depth(&env).await? >= 2).then_some(())) },
    )
    .await?;
    let key_a = RecordKey::new(PortalId(a), ObjectType::Companies, ObjectId(id_a));
    let key_b = RecordKey::new(PortalId(b), ObjectType::Companies, ObjectId(id_b));
    assert!(store.get_record(&key_a).await?.is_none());
    assert!(store.get_record(&key_b).await?.is_none());
    let status = ops(&env, &["status"]).await?;
    assert!(
        status.contains("depth 2"),
        "status shows the DLQ depth: {status}"
    );

    // The fix.
    for p in [a, b] {
        sim.update_faults(p, |f| f.api_error_rate = 0.0)?;
    }

    // Only portal A's message moves; B's stays in the DLQ.
    let out = ops(
        &env,
        &[
            "dlq",
            "replay",
            "--portal",
            &a.to_string(),
            "--queue",
            "events",
            "--visibility-secs",
            "30",
        ],
    )
    .await?;
    assert!(
        out.contains(&format!("events: 1 message(s) of portal {a} moved")),
        "{out}"
    );
    assert!(out.contains("1 left in the DLQ"), "{out}");
    let landed = wait_for("portal A's record", Duration::from_secs(30), || async {
        Ok(store.get_record(&key_a).await?)
    })
    .await?;
    assert_eq!(company_name(&landed), Some("Poisoned A"));
    let sqs = aws_sdk_sqs::Client::new(&env.aws);
    let left = hubsync_ops::queues::depth(&sqs, &env.resources.dlq_url).await?;
    assert_eq!(
        (left.visible, left.in_flight),
        (1, 0),
        "B's message is back in view in the DLQ"
    );
    assert!(store.get_record(&key_b).await?.is_none());

    // A sync job that failed its receives sits in the jobs DLQ.
    let job = format!(r#"{{"kind":"resync","portalId":{b},"objectTypes":["companies"]}}"#);
    let jobs_dlq = hubsync_ops::queues::dead_letter_queue(&sqs, &env.resources.sync_jobs_queue_url)
        .await?
        .context("the sync-jobs queue has a DLQ")?;
    assert_eq!(
        jobs_dlq, env.resources.sync_jobs_dlq_url,
        "found through the redrive policy"
    );
    sqs.send_message()
        .queue_url(&jobs_dlq)
        .message_body(&job)
        .send()
        .await?;

    // Then everything, from both DLQs.
    let out = ops(&env, &["dlq", "replay"]).await?;
    assert!(
        out.contains("events: 1 message(s) of every portal moved"),
        "{out}"
    );
    assert!(
        out.contains("sync-jobs: 1 message(s) of every portal moved"),
        "{out}"
    );
    assert!(out.contains("replayed 2 message(s), 0 left"), "{out}");
    assert_eq!(
        hubsync_ops::queues::depth(&sqs, &jobs_dlq).await?.total(),
        0
    );
    // The job is back on the sync-jobs queue (after the two initial syncs
    // the connects queued), readable by the reconcile function.
    let mut bodies = Vec::new();
    for _ in 0..5 {
        let got = sqs
            .receive_message()
            .queue_url(&env.resources.sync_jobs_queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .wait_time_seconds(1)
            .send()
            .await?;
        bodies.extend(
            got.messages()
                .iter()
                .filter_map(|m| m.body().map(str::to_owned)),
        );
        if bodies.len() >= 3 {
            break;
        }
    }
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    assert!(bodies.contains(&job), "{bodies:?}");
    for body in &bodies {
        JobMessage::from_json(body)?;
    }
    let landed = wait_for("portal B's record", Duration::from_secs(30), || async {
        Ok(store.get_record(&key_b).await?)
    })
    .await?;
    assert_eq!(company_name(&landed), Some("Poisoned B"));
    assert_eq!(events_dlq_depth(&env).await?, 0);
    for p in [a, b] {
        env.wait_converged(p, Duration::from_secs(30)).await?;
    }
    env.stop().await;
    Ok(())
}
