//! Rendering, the schema check, and the committed example.
use super::*;
use hubsync_admin::mapping::{Rule, Transform};

fn inputs() -> AppInputs {
    let outputs: BTreeMap<String, String> = [
        ("OAuthRedirectUri", "https://sync.example.com/oauth/callback"),
        ("WebhookUrl", "https://sync.example.com/webhooks/hubspot"),
        (
            "HubSpotScopes",
            "crm.objects.companies.read crm.objects.contacts.read crm.objects.deals.read crm.objects.owners.read",
        ),
        ("HubSpotOptionalScopes", "crm.lists.read"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    AppInputs::from_outputs(&outputs, "Acme hubsync").unwrap()
}

fn custom() -> MappingConfig {
    let mut c = MappingConfig::default();
    c.object_mut(ObjectType::Deals)
        .rules
        .push(Rule::new("region", &["region"], Transform::String));
    c
}

fn edit(files: &mut [(String, String)], path: &str, f: impl FnOnce(&mut Value)) {
    let (_, text) = files.iter_mut().find(|(p, _)| p == path).unwrap();
    let mut v: Value = serde_json::from_str(text).unwrap();
    f(&mut v);
    *text = serde_json::to_string(&v).unwrap();
}

#[test]
fn rendered_files_pass_the_documented_schema() {
    let files = render(&inputs(), &[custom()]);
    assert_eq!(check(&files, &[custom()]), Vec::<String>::new());
    let webhooks: Value = serde_json::from_str(&files[2].1).unwrap();
    let subs = webhooks["config"]["subscriptions"]["crmObjects"]
        .as_array()
        .unwrap();
    assert!(subs
        .iter()
        .any(|s| s["objectType"] == "deal" && s["propertyName"] == "region"));
    assert!(subs
        .iter()
        .any(|s| s["objectType"] == "contact" && s["propertyName"] == "email"));
    assert_eq!(
        webhooks["config"]["settings"]["targetUrl"],
        "https://sync.example.com/webhooks/hubspot"
    );
    let app: Value = serde_json::from_str(&files[1].1).unwrap();
    assert_eq!(app["uid"], "acme_hubsync_app");
    assert_eq!(
        app["config"]["auth"]["optionalScopes"],
        json!(["crm.lists.read"])
    );
}

#[test]
fn a_mapped_property_without_a_subscription_is_found() {
    // Rendered before a portal mapped `region`: the check with the new
    // config names it.
    let files = render(&inputs(), &[]);
    let problems = check(&files, &[custom()]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("deals.region"), "{problems:?}");
    // A removed subscription, too.
    let mut files = render(&inputs(), &[]);
    edit(&mut files, "src/app/webhooks/webhooks-hsmeta.json", |v| {
        let subs = v["config"]["subscriptions"]["crmObjects"]
            .as_array_mut()
            .unwrap();
        subs.retain(|s| !(s["objectType"] == "company" && s["propertyName"] == "name"));
    });
    let problems = check(&files, &[]);
    assert!(
        problems.iter().any(|p| p.contains("companies.name")),
        "{problems:?}"
    );
}

#[test]
fn schema_violations_are_named() {
    let mut files = render(&inputs(), &[]);
    edit(&mut files, "src/app/app-hsmeta.json", |v| {
        v["uid"] = json!("no spaces allowed");
        v["config"]["distribution"] = json!("public");
        v["config"]["auth"]["redirectUrls"] = json!(["http://insecure.example.com/cb"]);
        v["config"]["auth"]["optionalScopes"] = json!(["crm.objects.deals.read"]);
    });
    edit(&mut files, "src/app/webhooks/webhooks-hsmeta.json", |v| {
        v["config"]["settings"]["targetUrl"] = json!("ftp://x");
        v["config"]["subscriptions"]["crmObjects"][0]["subscriptionType"] =
            json!("contact.creation");
        v["config"]["subscriptions"]["hubEvents"] = json!([]);
    });
    files.retain(|(p, _)| p != "hsproject.json");
    let problems = check(&files, &[]).join("\n");
    for expected in [
        "hsproject.json: missing",
        "`uid` must be",
        "`config.distribution`",
        "redirectUrls",
        "both required and optional",
        "targetUrl",
        "is not a generic object.* type",
        "contact.privacyDeletion",
    ] {
        assert!(problems.contains(expected), "{expected} in:\n{problems}");
    }
}

/// `infra/hubspot-app/example` is this renderer's output for
/// `https://sync.example.com` and the default field map; regenerate it
/// with `HUBSYNC_WRITE_EXAMPLE=1 cargo test -p hubsync-ops --lib example`.
#[test]
fn the_committed_example_is_what_render_produces() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../hubspot-app/example");
    let mut inputs = inputs();
    inputs.name = "hubsync example".into();
    inputs.uid = uid_of(&inputs.name);
    let files = render(&inputs, &[]);
    if std::env::var_os("HUBSYNC_WRITE_EXAMPLE").is_some() {
        write(&dir, &files).unwrap();
    }
    assert_eq!(
        read(&dir),
        files,
        "infra/hubspot-app/example is stale: HUBSYNC_WRITE_EXAMPLE=1 cargo test -p hubsync-ops --lib example"
    );
    assert_eq!(check(&read(&dir), &[]), Vec::<String>::new());
}

#[test]
fn missing_stack_outputs_are_named() {
    let err = AppInputs::from_outputs(&BTreeMap::new(), "x").unwrap_err();
    assert!(err.to_string().contains("OAuthRedirectUri"), "{err}");
    assert_eq!(uid_of("My App!"), "my_app_");
}
