//! `hubsync-ops hubspot-app render|check` against moto: a CloudFormation
//! stack whose outputs are a deployment's (URLs, scopes, tables), and the
//! deployment's saved mapping configs. Rendering writes the HubSpot
//! project; a property mapped afterwards makes `check` fail naming it.

use std::collections::BTreeMap;

use anyhow::Result;
use hubsync_admin::mapping::{MappingConfig, Rule, Transform};
use hubsync_hubspot::{ObjectType, PortalId};
use hubsync_store::{DynamoStore, MappingConfigStore, StoreConfig};
use serde_json::Value;

/// A stack in moto whose outputs point at freshly provisioned tables.
async fn stack(aws: &aws_config::SdkConfig, name: &str) -> Result<(String, DynamoStore)> {
    let tables = hubsync_testkit::unique_name(name);
    let store_config = StoreConfig::new(format!("{tables}-records"), format!("{tables}-control"));
    hubsync_store::create_tables(&aws_sdk_dynamodb::Client::new(aws), &store_config).await?;
    let outputs: BTreeMap<&str, String> = [
        ("WebhookUrl", "https://sync.example.com/webhooks/hubspot".to_owned()),
        ("OAuthRedirectUri", "https://sync.example.com/oauth/callback".to_owned()),
        (
            "HubSpotScopes",
            "crm.objects.companies.read crm.objects.contacts.read crm.objects.deals.read crm.objects.owners.read"
                .to_owned(),
        ),
        ("HubSpotOptionalScopes", "crm.lists.read".to_owned()),
        ("RecordsTableName", store_config.records_table.clone()),
        ("ControlTableName", store_config.control_table.clone()),
    ]
    .into_iter()
    .collect();
    let mut template = String::from(
        "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  Marker:\n    Type: AWS::SQS::Queue\nOutputs:\n",
    );
    for (k, v) in &outputs {
        template.push_str(&format!("  {k}:\n    Value: \"{v}\"\n"));
    }
    let stack_name = hubsync_testkit::unique_name(name);
    aws_sdk_cloudformation::Client::new(aws)
        .create_stack()
        .stack_name(&stack_name)
        .template_body(template)
        .send()
        .await?;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(aws), store_config);
    Ok((stack_name, store))
}

async fn ops(aws: &aws_config::SdkConfig, args: &[&str]) -> Result<String> {
    let mut out = Vec::new();
    let mut all = vec!["hubsync-ops"];
    all.extend_from_slice(args);
    let result = hubsync_ops::run_args(all, aws, &mut out).await;
    let out = String::from_utf8(out)?;
    println!("$ hubsync-ops {}\n{out}", args.join(" "));
    result.map(|_| out)
}

#[tokio::test]
async fn render_from_a_stack_then_check_finds_a_newly_mapped_property() -> Result<()> {
    let aws = hubsync_testkit::aws_config().await?;
    let (stack_name, store) = stack(&aws, "hs-app").await?;
    let mut config = MappingConfig::default();
    config.object_mut(ObjectType::Deals).rules.push(Rule::new(
        "region",
        &["region"],
        Transform::String,
    ));
    store.put_mapping_config(PortalId(7001), &config).await?;

    let dir = std::env::temp_dir().join(hubsync_testkit::unique_name("hs-app-project"));
    let dir_arg = dir.to_string_lossy().into_owned();
    let out = ops(
        &aws,
        &[
            "hubspot-app",
            "render",
            "--stack",
            &stack_name,
            "--out",
            &dir_arg,
            "--name",
            "Acme Sync",
        ],
    )
    .await?;
    assert!(out.contains("hs project upload"), "{out}");
    let project: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("hsproject.json"))?)?;
    assert_eq!(project["platformVersion"], "2026.09");
    let app: Value = serde_json::from_str(&std::fs::read_to_string(
        dir.join("src/app/app-hsmeta.json"),
    )?)?;
    assert_eq!(
        app["config"]["auth"]["redirectUrls"][0],
        "https://sync.example.com/oauth/callback"
    );
    assert_eq!(app["config"]["auth"]["optionalScopes"][0], "crm.lists.read");
    let hooks: Value = serde_json::from_str(&std::fs::read_to_string(
        dir.join("src/app/webhooks/webhooks-hsmeta.json"),
    )?)?;
    assert_eq!(
        hooks["config"]["settings"]["targetUrl"],
        "https://sync.example.com/webhooks/hubspot"
    );
    let subs = hooks["config"]["subscriptions"]["crmObjects"]
        .as_array()
        .unwrap();
    assert!(subs
        .iter()
        .any(|s| s["objectType"] == "deal" && s["propertyName"] == "region"));

    let ok = ops(
        &aws,
        &[
            "hubspot-app",
            "check",
            "--stack",
            &stack_name,
            "--dir",
            &dir_arg,
        ],
    )
    .await?;
    assert!(ok.contains("covers every mapped property"), "{ok}");

    // Another portal maps a property the rendered app does not subscribe to.
    let mut other = MappingConfig::default();
    other
        .object_mut(ObjectType::Companies)
        .rules
        .push(Rule::new("tier", &["customer_tier"], Transform::String));
    store.put_mapping_config(PortalId(7002), &other).await?;
    let err = ops(
        &aws,
        &[
            "hubspot-app",
            "check",
            "--stack",
            &stack_name,
            "--dir",
            &dir_arg,
        ],
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("companies.customer_tier"),
        "{err:#}"
    );

    // Rendering again covers it.
    ops(
        &aws,
        &[
            "hubspot-app",
            "render",
            "--stack",
            &stack_name,
            "--out",
            &dir_arg,
        ],
    )
    .await?;
    ops(
        &aws,
        &[
            "hubspot-app",
            "check",
            "--stack",
            &stack_name,
            "--dir",
            &dir_arg,
        ],
    )
    .await?;

    // The same from a saved `describe-stacks` answer; a stack without the
    // outputs is refused naming the missing one.
    let described = aws_sdk_cloudformation::Client::new(&aws)
        .describe_stacks()
        .stack_name(&stack_name)
        .send()
        .await?;
    let outputs: Vec<Value> = described.stacks()[0]
        .outputs()
        .iter()
        .filter(|o| o.output_key() != Some("WebhookUrl"))
        .map(|o| serde_json::json!({"OutputKey": o.output_key(), "OutputValue": o.output_value()}))
        .collect();
    let file = dir.join("describe-stacks.json");
    std::fs::write(
        &file,
        serde_json::json!({"Stacks": [{"Outputs": outputs}]}).to_string(),
    )?;
    let err = ops(
        &aws,
        &[
            "hubspot-app",
            "render",
            "--outputs-file",
            &file.to_string_lossy(),
            "--out",
            &dir_arg,
        ],
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("WebhookUrl"), "{err:#}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
