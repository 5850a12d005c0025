//! `hubsync-local mapping …` end to end: the binary against moto and the
//! simulator, configured only through its flags and environment.

use std::process::{Command, Output};

use hubspot_sim::{ObjectType as SimType, PropertyDef, SeedSpec, SimConfig};
use hubsync_hubspot::{ObjectType, PortalId};
use hubsync_local::{EnvOptions, Environment, QueueSettings};
use hubsync_mapping::{MappingConfig, Rule, ScopeFilter, Transform};
use hubsync_store::MappingConfigStore;

fn run(env: &Environment, args: &[&str]) -> anyhow::Result<Output> {
    let endpoint = hubsync_testkit::aws_endpoint()?;
    Ok(Command::new(env!("CARGO_BIN_EXE_hubsync-local"))
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("HUBSYNC_RECORDS_TABLE", &env.resources.store.records_table)
        .env("HUBSYNC_CONTROL_TABLE", &env.resources.store.control_table)
        .env("HUBSYNC_TOKEN_KEY_ID", &env.resources.kms_key_id)
        .env("HUBSYNC_HUBSPOT_BASE_URL", env.sim.base_url())
        .env("RUST_LOG", "warn")
        .output()?)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_subcommands_validate_save_and_preview() -> anyhow::Result<()> {
    let sim = SimConfig {
        initial_seed: SeedSpec {
            companies: 5,
            contacts: 5,
            deals: 12,
            ..SeedSpec::default()
        },
        ..SimConfig::default()
    };
    let env = Environment::start(
        hubsync_testkit::aws_config().await?,
        EnvOptions {
            prefix: hubsync_testkit::unique_name("mapping-cli"),
            sim,
            queues: QueueSettings::default(),
            batch_size: None,
        },
    )
    .await?;
    let portal = env.sim.state().portal_ids()[0];
    env.connect_portal(portal).await?;
    env.sim.state().create_property(
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
    let dir = std::env::temp_dir().join(hubsync_testkit::unique_name("mapping-cli"));
    std::fs::create_dir_all(&dir)?;
    let portal_arg = portal.to_string();

    // The defaults, as a starting point.
    let out = run(&env, &["mapping", "show-default"])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        MappingConfig::from_json(&text(&out.stdout))?,
        MappingConfig::default()
    );

    // A rule on a property the portal lacks is rejected, naming the rule.
    let mut bad = MappingConfig::default();
    bad.object_mut(ObjectType::Deals).rules.push(Rule::new(
        "seat_count",
        &["seatz"],
        Transform::Integer,
    ));
    let bad_file = dir.join("bad.json");
    std::fs::write(&bad_file, bad.to_json_pretty())?;
    let bad_path = bad_file.to_string_lossy().into_owned();
    for cmd in ["validate", "set"] {
        let out = run(
            &env,
            &["mapping", cmd, "--portal", &portal_arg, "--file", &bad_path],
        )?;
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(
            err.contains(
                "deals.seat_count ← seatz (integer): HubSpot has no deals property `seatz`"
            ),
            "{err}"
        );
    }
    assert_eq!(
        env.runner
            .store()
            .get_mapping_config(PortalId(portal))
            .await?,
        None
    );

    // A good one is saved.
    let mut good = MappingConfig::default();
    let deals = good.object_mut(ObjectType::Deals);
    deals
        .rules
        .push(Rule::new("seat_count", &["seats"], Transform::Integer));
    deals.scope.push(ScopeFilter {
        property: "pipeline".into(),
        values: vec!["default".into()],
    });
    let good_file = dir.join("good.json");
    std::fs::write(&good_file, good.to_json_pretty())?;
    let good_path = good_file.to_string_lossy().into_owned();
    let out = run(
        &env,
        &[
            "mapping",
            "set",
            "--portal",
            &portal_arg,
            "--file",
            &good_path,
        ],
    )?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("saved revision 1"));
    let stored = env
        .runner
        .store()
        .get_mapping_config(PortalId(portal))
        .await?
        .unwrap();
    assert_eq!(stored.config, good);

    // Preview: JSON with mapped samples and skips, per type asked for.
    let out = run(
        &env,
        &[
            "mapping",
            "preview",
            "--portal",
            &portal_arg,
            "--file",
            &good_path,
            "--type",
            "deals",
            "--sample",
            "12",
        ],
    )?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let preview: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let types = preview["types"].as_array().unwrap();
    assert_eq!(types.len(), 1);
    assert_eq!(types[0]["object_type"], "deals");
    let records = types[0]["records"].as_array().unwrap();
    assert_eq!(records.len(), 12);
    let enterprise = env
        .sim
        .state()
        .list_objects(portal, SimType::Deals, false)?
        .iter()
        .filter(|o| o.prop("pipeline") == Some("enterprise"))
        .count();
    assert_eq!(types[0]["mapped"], 12 - enterprise);
    for r in records {
        match r["outcome"].as_str() {
            Some("mapped") => assert!(r["record"].as_object().unwrap().contains_key("seat_count")),
            Some("skipped") => assert_eq!(r["reason"], "out_of_scope"),
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    env.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
