//! `hubsync-ops mapping …` end to end, against moto and the HubSpot
//! simulator: the portal connects through the real OAuth flow, the CLI
//! reaches HubSpot with the stored KMS-encrypted tokens (the functions'
//! token path), and the reconcile function's job handler runs the re-sync
//! that `mapping set` queues.

mod common;

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use hubspot_sim::{props, ObjectType as SimType, PropertyDef};
use hubsync_admin::mapping::{MappingConfig, Rule, Transform};
use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_local::reconcile::{local_reconciler, EngineConfig};
use hubsync_local::Environment;
use hubsync_ops::Cli;
use hubsync_store::{MappingConfigStore, RecordKey, RecordStore};

use clap::Parser;
use common::{args, config_env, consume_jobs, environment, ops};

/// Messages on the sync-jobs queue (visible, in flight or delayed).
async fn queued_jobs(env: &Environment) -> Result<u64> {
    let sqs = aws_sdk_sqs::Client::new(&env.aws);
    Ok(
        hubsync_ops::queues::depth(&sqs, &env.resources.sync_jobs_queue_url)
            .await?
            .total(),
    )
}

/// Runs a command on an `Ops` the test keeps, so that it can read the
/// store's request counters afterwards.
async fn ops_counted(env: &Environment, command: &[&str]) -> Result<(String, u64, u64)> {
    let cli = Cli::try_parse_from(args(env, command))?;
    let ops = hubsync_ops::Ops::new(env.aws.clone(), cli.config);
    let mut out: Vec<u8> = Vec::new();
    let result = hubsync_ops::execute(&ops, cli.command, &mut out).await;
    let out = String::from_utf8(out)?;
    println!("$ hubsync-ops {}\n{out}", command.join(" "));
    result?;
    let stats = ops.store()?.stats().clone();
    Ok((out, stats.writes(), stats.reads()))
}

fn seat_count(r: &hubsync_store::StoredRecord) -> Option<i64> {
    r.fields.get("seat_count").and_then(|v| v.as_i64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_set_validates_saves_and_resyncs_and_preview_writes_nothing() -> Result<()> {
    let env = environment("ops-mapping", 1).await?;
    let portal = env.sim.state().portal_ids()[0];
    let portal_arg = portal.to_string();
    let sim = env.sim.state();
    let store = env.runner.store();

    // A custom deal property, set on three deals that webhooks bring over.
    sim.create_property(
        portal,
        SimType::Deals,
        PropertyDef {
            name: "seats".into(),
            label: "Seats".into(),
            prop_type: "number".into(),
            field_type: "number".into(),
            ..PropertyDef::default()
        },
    )?;
    let mut deals = Vec::new();
    for i in 0..3u64 {
        deals.push(sim.create_object(
            portal,
            SimType::Deals,
            props([
                ("dealname", format!("Deal {i}")),
                ("amount", format!("{}.50", 1000 + i)),
                ("pipeline", "default".to_owned()),
                ("seats", format!("{}", 10 + i)),
            ]),
        )?);
    }
    env.wait_converged(portal, Duration::from_secs(60)).await?;
    let rec = local_reconciler(&env, None, EngineConfig::default())?;
    ensure!(
        consume_jobs(&env, &rec).await? == 1,
        "the initial sync job was queued"
    );
    let deal_key = |id: u64| RecordKey::new(PortalId(portal), ObjectType::Deals, ObjectId(id));
    for id in &deals {
        let r = store
            .get_record(&deal_key(*id))
            .await?
            .context("deal stored")?;
        assert_eq!(seat_count(&r), None, "the default mapping has no seats");
    }

    // show: nothing stored yet, the default applies (and says so).
    let shown = ops(&env, &["mapping", "show", "--portal", &portal_arg]).await?;
    assert!(
        shown.contains(&format!(
            "portal {portal}: no mapping config is stored; the default (DESIGN.md's field map) applies"
        )),
        "{shown}"
    );
    let shown_config = &shown[shown.find('{').context("the config JSON")?..];
    assert_eq!(
        MappingConfig::from_json(shown_config)?,
        MappingConfig::default()
    );

    let dir = std::env::temp_dir().join(hubsync_testkit::unique_name("ops-mapping"));
    std::fs::create_dir_all(&dir)?;

    // A config naming a property the portal lacks: validate and set both
    // name the rule; set stores nothing and queues nothing.
    let mut bad = MappingConfig::default();
    bad.object_mut(ObjectType::Deals).rules.push(Rule::new(
        "seat_count",
        &["seatz"],
        Transform::Integer,
    ));
    let bad_file = dir.join("bad.json");
    std::fs::write(&bad_file, bad.to_json_pretty())?;
    let bad_path = bad_file.display().to_string();
    let rule = "deals.seat_count ← seatz (integer): HubSpot has no deals property `seatz`";
    for cmd in ["validate", "set"] {
        let err = ops(
            &env,
            &["mapping", cmd, "--portal", &portal_arg, "--file", &bad_path],
        )
        .await
        .expect_err("a config with a non-existent property must be rejected");
        let err = format!("{err:#}");
        assert!(err.contains(rule), "{cmd}: {err}");
        assert!(err.contains("rejected (1 problem)"), "{cmd}: {err}");
    }
    assert_eq!(store.get_mapping_config(PortalId(portal)).await?, None);
    assert_eq!(
        queued_jobs(&env).await?,
        0,
        "a rejected config queues nothing"
    );

    // The real binary, configured by the functions' variables: exit 1 with
    // the rule on stderr, nothing on stdout.
    let endpoint = hubsync_testkit::aws_endpoint()?;
    let mut vars = config_env(&env);
    vars.push((
        "HUBSYNC_OAUTH_REDIRECT_URI",
        format!("{}/oauth/callback", env.runner.base_url()),
    ));
    let bin_args = [
        "mapping",
        "validate",
        "--portal",
        &portal_arg,
        "--file",
        &bad_path,
    ]
    .map(str::to_owned);
    let run = tokio::task::spawn_blocking(move || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hubsync-ops"));
        c.args(&bin_args)
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE");
        for (k, v) in &vars {
            c.env(k, v);
        }
        c.output()
    })
    .await??;
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(rule), "{stderr}");
    assert!(run.stdout.is_empty());

    // The accepted config, previewed first: mapped samples with the custom
    // field, and not a single store write.
    let mut good = MappingConfig::default();
    good.object_mut(ObjectType::Deals).rules.push(Rule::new(
        "seat_count",
        &["seats"],
        Transform::Integer,
    ));
    let good_file = dir.join("good.json");
    std::fs::write(&good_file, good.to_json_pretty())?;
    let good_path = good_file.display().to_string();
    let (previewed, writes, reads) = ops_counted(
        &env,
        &[
            "mapping",
            "preview",
            "--portal",
            &portal_arg,
            "--file",
            &good_path,
            "--object",
            "deals",
            "--sample",
            "10",
        ],
    )
    .await?;
    assert_eq!(writes, 0, "the preview wrote to the store");
    assert!(reads > 0, "the preview read the connection's tokens");
    assert!(
        previewed.contains("deals: 3 sampled, 3 mapped, 0 skipped, 0 field errors"),
        "{previewed}"
    );
    assert!(previewed.contains("seats"), "requested: {previewed}");
    for (i, id) in deals.iter().enumerate() {
        let line = format!("  deals {id}: ");
        let l = previewed
            .lines()
            .find(|l| l.starts_with(&line))
            .with_context(|| format!("deal {id} in the preview: {previewed}"))?;
        assert!(l.contains(&format!("\"seat_count\":{}", 10 + i)), "{l}");
    }
    let (json_preview, writes, _) = ops_counted(
        &env,
        &[
            "mapping",
            "preview",
            "--portal",
            &portal_arg,
            "--file",
            &good_path,
            "--object",
            "deals",
            "--json",
        ],
    )
    .await?;
    assert_eq!(writes, 0, "the JSON preview wrote to the store");
    let p: serde_json::Value = serde_json::from_str(&json_preview)?;
    assert_eq!(p["types"][0]["object_type"], "deals");
    assert_eq!(p["types"][0]["mapped"], 3);
    assert_eq!(store.get_mapping_config(PortalId(portal)).await?, None);
    for id in &deals {
        let r = store.get_record(&deal_key(*id)).await?.context("deal")?;
        assert_eq!(seat_count(&r), None, "the preview changed a stored record");
    }
    assert_eq!(queued_jobs(&env).await?, 0, "the preview queued a job");

    // set: saved, a re-sync of the changed type queued and followed to its
    // end; the custom field lands in DynamoDB.
    let set_args = args(
        &env,
        &[
            "mapping",
            "set",
            "--portal",
            &portal_arg,
            "--file",
            &good_path,
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
        let result = hubsync_ops::run_args(set_args, &aws, &mut out).await;
        (result, String::from_utf8_lossy(&out).into_owned())
    });
    let mut consumed = 0;
    while !waiting.is_finished() {
        consumed += consume_jobs(&env, &rec).await?;
    }
    let (result, out) = waiting.await?;
    println!("$ hubsync-ops mapping set … --wait\n{out}");
    result.with_context(|| format!("mapping set --wait failed; output: {out}"))?;
    assert_eq!(consumed, 1, "one re-sync job was queued");
    assert!(
        out.contains(&format!(
            "saved mapping config revision 1 for portal {portal} (replacing the default); changed: deals"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "queued a re-sync of portal {portal} (deals) as run "
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("re-sync of portal {portal} completed")),
        "{out}"
    );
    // The report's deals row: the three deals were remapped (a mapping
    // change, not drift).
    let row: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("deals "))
        .context("the deals row of the report")?
        .split_whitespace()
        .collect();
    assert_eq!(
        (row[1], row[2], row[5]),
        ("completed", "3/3", "3"),
        "status, done/total, remapped: {out}"
    );
    let stored = store
        .get_mapping_config(PortalId(portal))
        .await?
        .context("the config was saved")?;
    assert_eq!(stored.revision, 1);
    assert_eq!(stored.config, good);
    for (i, id) in deals.iter().enumerate() {
        let r = store.get_record(&deal_key(*id)).await?.context("deal")?;
        assert_eq!(seat_count(&r), Some(10 + i as i64), "deal {id}");
    }

    // show: the stored revision.
    let shown = ops(&env, &["mapping", "show", "--portal", &portal_arg]).await?;
    assert!(
        shown.contains(&format!(
            "portal {portal}: mapping config revision 1, saved "
        )),
        "{shown}"
    );
    let shown_config = &shown[shown.find('{').context("the config JSON")?..];
    assert_eq!(MappingConfig::from_json(shown_config)?, good);
    let shown = ops(
        &env,
        &["mapping", "show", "--portal", &portal_arg, "--json"],
    )
    .await?;
    let v: serde_json::Value = serde_json::from_str(&shown)?;
    assert_eq!(v["revision"], 1);
    assert_eq!(v["default"], false);

    // set --no-resync: saved as revision 2, nothing queued.
    let out = ops(
        &env,
        &[
            "mapping",
            "set",
            "--portal",
            &portal_arg,
            "--file",
            &good_path,
            "--no-resync",
        ],
    )
    .await?;
    assert!(
        out.contains(&format!(
            "saved mapping config revision 2 for portal {portal} (replacing revision 1); changed: nothing"
        )),
        "{out}"
    );
    assert!(out.contains("no re-sync queued (--no-resync)"), "{out}");
    assert_eq!(queued_jobs(&env).await?, 0);

    env.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
