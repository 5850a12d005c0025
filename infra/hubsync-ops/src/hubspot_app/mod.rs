//! The HubSpot app as code: the developer-platform project ops upload with
//! HubSpot's CLI (`hs project upload`), rendered from the deployed stack's
//! outputs and the mapping configs.
//!
//! ```text
//! hsproject.json                          {name, srcDir, platformVersion}
//! src/app/app-hsmeta.json                 OAuth: redirect URL, required and optional scopes
//! src/app/webhooks/webhooks-hsmeta.json   target URL; object.* per type, one
//!                                         object.propertyChange per mapped property;
//!                                         contact.privacyDeletion
//! ```
//!
//! Webhook subscriptions belong to the app, not to a portal, so the
//! property subscriptions are the union of what the default config and
//! every portal's saved config read: adding a mapped property means
//! rendering and uploading again ([`check`] finds a property without a
//! subscription). HubSpot publishes no offline validator for these files
//! (its CLI fetches the schemas with account credentials), so [`check`]
//! verifies what HubSpot's documentation states about each field.
//!
//! Sources: developers.hubspot.com/docs/apps/developer-platform/build-apps/app-configuration
//! and …/add-features/configure-webhooks (platform 2026.09).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use hubsync_hubspot::ObjectType;
use hubsync_store::MappingConfigStore;
use serde_json::{json, Value};

use hubsync_admin::mapping::MappingConfig;

/// The developer platform version the project targets.
pub const PLATFORM_VERSION: &str = "2026.09";

/// Generic subscription kinds every synced type gets (property changes
/// are per property).
const OBJECT_EVENTS: [&str; 5] = [
    "object.creation",
    "object.deletion",
    "object.merge",
    "object.restore",
    "object.associationChange",
];

/// What the project is rendered from: the stack's outputs and the app's
/// identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInputs {
    /// The project's and the app's name (`hsproject.json` `name`).
    pub name: String,
    /// The components' uid prefix (`[A-Za-z0-9_.-]`, ≤ 64 with suffixes).
    pub uid: String,
    /// `private` (installable by allowed accounts) or `marketplace`.
    pub distribution: String,
    pub description: String,
    pub support_email: Option<String>,
    /// Stack output `OAuthRedirectUri`.
    pub redirect_url: String,
    /// Stack output `WebhookUrl`.
    pub webhook_url: String,
    /// Stack output `HubSpotScopes` (space-separated).
    pub required_scopes: Vec<String>,
    /// Stack output `HubSpotOptionalScopes` (`none` = no optional scope).
    pub optional_scopes: Vec<String>,
}

impl AppInputs {
    /// The inputs from a stack's outputs (`OutputKey` → `OutputValue`),
    /// naming any output that is missing.
    pub fn from_outputs(outputs: &BTreeMap<String, String>, name: &str) -> Result<Self> {
        let get = |k: &str| {
            outputs.get(k).cloned().with_context(|| {
                format!("the stack has no output `{k}` (deploy the current template.yaml)")
            })
        };
        let scopes = |s: String| -> Vec<String> {
            s.split_whitespace()
                .filter(|s| *s != "none")
                .map(str::to_owned)
                .collect()
        };
        Ok(Self {
            name: name.to_owned(),
            uid: uid_of(name),
            distribution: "private".into(),
            description:
                "Mirrors HubSpot companies, contacts and deals into the application (hubsync)."
                    .into(),
            support_email: None,
            redirect_url: get("OAuthRedirectUri")?,
            webhook_url: get("WebhookUrl")?,
            required_scopes: scopes(get("HubSpotScopes")?),
            optional_scopes: scopes(get("HubSpotOptionalScopes")?),
        })
    }
}

/// A uid from a name: allowed characters kept, others `_`, at most 40.
fn uid_of(name: &str) -> String {
    let uid: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    if uid.is_empty() {
        "hubsync".into()
    } else {
        uid
    }
}

/// The properties each type's subscriptions must cover: what the default
/// config and every given config read.
pub fn mapped_properties(configs: &[MappingConfig]) -> BTreeMap<ObjectType, BTreeSet<String>> {
    let default = MappingConfig::default();
    let mut out: BTreeMap<ObjectType, BTreeSet<String>> = BTreeMap::new();
    for config in std::iter::once(&default).chain(configs) {
        for t in ObjectType::ALL {
            out.entry(t)
                .or_default()
                .extend(config.object(t).properties(t));
        }
    }
    out
}

/// HubSpot's `objectType` of a synced type (`contact`, …).
fn object_type_name(t: ObjectType) -> &'static str {
    t.subscription_prefix()
}

/// The three files, as (path in the project, JSON text).
pub fn render(inputs: &AppInputs, configs: &[MappingConfig]) -> Vec<(String, String)> {
    let mut crm_objects = Vec::new();
    for (t, properties) in mapped_properties(configs) {
        for kind in OBJECT_EVENTS {
            crm_objects.push(json!({
                "subscriptionType": kind,
                "objectType": object_type_name(t),
                "active": true,
            }));
        }
        for p in properties {
            crm_objects.push(json!({
                "subscriptionType": "object.propertyChange",
                "objectType": object_type_name(t),
                "propertyName": p,
                "active": true,
            }));
        }
    }
    let mut support = serde_json::Map::new();
    if let Some(email) = &inputs.support_email {
        support.insert("supportEmail".into(), json!(email));
    }
    let project = json!({
        "name": inputs.name,
        "srcDir": "src",
        "platformVersion": PLATFORM_VERSION,
    });
    let app = json!({
        "uid": format!("{}_app", inputs.uid),
        "type": "app",
        "config": {
            "name": inputs.name,
            "description": inputs.description,
            "distribution": inputs.distribution,
            "auth": {
                "type": "oauth",
                "redirectUrls": [inputs.redirect_url],
                "requiredScopes": inputs.required_scopes,
                "optionalScopes": inputs.optional_scopes,
                "conditionallyRequiredScopes": [],
            },
            "permittedUrls": {"fetch": [], "iframe": [], "img": []},
            "support": support,
        },
    });
    let webhooks = json!({
        "uid": format!("{}_webhooks", inputs.uid),
        "type": "webhooks",
        "config": {
            "settings": {"targetUrl": inputs.webhook_url, "maxConcurrentRequests": 10},
            "subscriptions": {
                "crmObjects": crm_objects,
                "legacyCrmObjects": [],
                "hubEvents": [{"subscriptionType": "contact.privacyDeletion", "active": true}],
            },
        },
    });
    [
        ("hsproject.json", project),
        ("src/app/app-hsmeta.json", app),
        ("src/app/webhooks/webhooks-hsmeta.json", webhooks),
    ]
    .into_iter()
    .map(|(p, v)| {
        let text = serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
        (p.to_owned(), text)
    })
    .collect()
}

fn https(v: &Value) -> bool {
    v.as_str()
        .and_then(|s| url::Url::parse(s).ok())
        .is_some_and(|u| u.scheme() == "https" && u.host().is_some())
}

fn uid_ok(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    })
}

fn strings(v: &Value) -> Option<Vec<&str>> {
    v.as_array()?.iter().map(Value::as_str).collect()
}

/// Checks rendered (or hand-edited) files against HubSpot's documented
/// schema and against `configs`: every problem, each naming its file and
/// field. Empty = fine.
pub fn check(files: &[(String, String)], configs: &[MappingConfig]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut parsed: BTreeMap<&str, Value> = BTreeMap::new();
    for (path, text) in files {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => {
                parsed.insert(path.as_str(), v);
            }
            Err(e) => problems.push(format!("{path}: not JSON ({e})")),
        }
    }
    let mut need = |path: &str| -> Option<Value> {
        let v = parsed.get(path).cloned();
        if v.is_none() {
            problems.push(format!("{path}: missing"));
        }
        v
    };
    let project = need("hsproject.json");
    let app = need("src/app/app-hsmeta.json");
    let webhooks = need("src/app/webhooks/webhooks-hsmeta.json");
    let mut found = Vec::new();
    let mut bad = |ok: bool, what: String| {
        if !ok {
            found.push(what);
        }
    };
    if let Some(p) = project {
        bad(
            p["name"].as_str().is_some_and(|s| !s.is_empty()),
            "hsproject.json: `name` must be a non-empty string".into(),
        );
        bad(
            p["srcDir"] == "src",
            "hsproject.json: `srcDir` must be `src` (the components live in src/app)".into(),
        );
        bad(
            p["platformVersion"].as_str().is_some_and(|v| ["2025.2", "2026.03", "2026.09"].contains(&v)),
            "hsproject.json: `platformVersion` must be a current developer platform version (2025.2, 2026.03, 2026.09)".into(),
        );
    }
    if let Some(a) = app {
        let f = "src/app/app-hsmeta.json";
        bad(
            uid_ok(&a["uid"]),
            format!("{f}: `uid` must be 1–64 characters of [A-Za-z0-9_.-]"),
        );
        bad(a["type"] == "app", format!("{f}: `type` must be `app`"));
        let c = &a["config"];
        bad(
            c["name"].as_str().is_some_and(|s| !s.is_empty()),
            format!("{f}: `config.name` is required"),
        );
        bad(
            matches!(c["distribution"].as_str(), Some("private" | "marketplace")),
            format!("{f}: `config.distribution` must be `private` or `marketplace`"),
        );
        let auth = &c["auth"];
        bad(
            auth["type"] == "oauth",
            format!("{f}: `config.auth.type` must be `oauth` (hubsync installs through OAuth)"),
        );
        let redirects = auth["redirectUrls"].as_array();
        bad(
            redirects.is_some_and(|r| !r.is_empty() && r.iter().all(https)),
            format!("{f}: `config.auth.redirectUrls` must list https URLs"),
        );
        let required = strings(&auth["requiredScopes"]);
        let optional = strings(&auth["optionalScopes"]);
        bad(
            required.as_ref().is_some_and(|r| !r.is_empty()),
            format!("{f}: `config.auth.requiredScopes` must be a non-empty list of scopes"),
        );
        bad(
            optional.is_some(),
            format!("{f}: `config.auth.optionalScopes` must be a list of scopes"),
        );
        if let (Some(r), Some(o)) = (&required, &optional) {
            for s in o.iter().filter(|s| r.contains(s)) {
                bad(
                    false,
                    format!("{f}: scope {s} is both required and optional"),
                );
            }
            for t in ObjectType::ALL {
                let scope = format!("crm.objects.{}.read", t.as_api_path());
                bad(
                    r.contains(&scope.as_str()),
                    format!("{f}: `requiredScopes` lacks {scope}, which syncing {t} needs"),
                );
            }
        }
    }
    if let Some(w) = webhooks {
        let f = "src/app/webhooks/webhooks-hsmeta.json";
        bad(
            uid_ok(&w["uid"]),
            format!("{f}: `uid` must be 1–64 characters of [A-Za-z0-9_.-]"),
        );
        bad(
            w["type"] == "webhooks",
            format!("{f}: `type` must be `webhooks`"),
        );
        let settings = &w["config"]["settings"];
        bad(
            https(&settings["targetUrl"]),
            format!("{f}: `settings.targetUrl` must be an https URL"),
        );
        bad(
            settings["maxConcurrentRequests"]
                .as_u64()
                .is_some_and(|n| (5..=20).contains(&n)),
            format!(
                "{f}: `settings.maxConcurrentRequests` must be a number (HubSpot's default is 10)"
            ),
        );
        let subs = &w["config"]["subscriptions"];
        let mut covered: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for (i, s) in subs["crmObjects"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let kind = s["subscriptionType"].as_str().unwrap_or("");
            let object = s["objectType"].as_str().unwrap_or("");
            bad(
                OBJECT_EVENTS.contains(&kind) || kind == "object.propertyChange",
                format!(
                    "{f}: crmObjects[{i}].subscriptionType `{kind}` is not a generic object.* type"
                ),
            );
            bad(
                ObjectType::ALL
                    .iter()
                    .any(|t| object_type_name(*t) == object),
                format!(
                    "{f}: crmObjects[{i}].objectType `{object}` is not contact, company or deal"
                ),
            );
            bad(
                s["active"].is_boolean(),
                format!("{f}: crmObjects[{i}].active must be true or false"),
            );
            let prop = s["propertyName"].as_str();
            bad(
                (kind == "object.propertyChange") == prop.is_some(),
                format!("{f}: crmObjects[{i}]: `propertyName` goes with object.propertyChange, and only there"),
            );
            if s["active"] == true {
                covered
                    .entry((object.to_owned(), kind.to_owned()))
                    .or_default()
                    .insert(prop.unwrap_or("").to_owned());
            }
        }
        for (i, s) in subs["hubEvents"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            bad(
                s["subscriptionType"] == "contact.privacyDeletion",
                format!("{f}: hubEvents[{i}]: only contact.privacyDeletion is expected"),
            );
        }
        bad(
            subs["hubEvents"].as_array().is_some_and(|h| h.iter().any(|s| s["active"] == true)),
            format!("{f}: hubEvents must subscribe to contact.privacyDeletion (GDPR deletes are purged from DynamoDB)"),
        );
        for (t, properties) in mapped_properties(configs) {
            let object = object_type_name(t).to_owned();
            for kind in OBJECT_EVENTS {
                bad(
                    covered.contains_key(&(object.clone(), kind.to_owned())),
                    format!("{f}: no active {kind} subscription for {object}"),
                );
            }
            let subscribed = covered
                .get(&(object.clone(), "object.propertyChange".to_owned()))
                .cloned()
                .unwrap_or_default();
            for p in properties.difference(&subscribed) {
                bad(
                    false,
                    format!("{f}: the mapping reads {t}.{p} but no object.propertyChange subscription covers it: render the app again"),
                );
            }
        }
    }
    problems.extend(found);
    problems
}

/// Every saved mapping config of the deployment (the Control table).
pub async fn saved_configs(store: &impl MappingConfigStore) -> Result<Vec<MappingConfig>> {
    Ok(store
        .list_mapping_configs()
        .await
        .context("reading the mapping configs")?
        .into_iter()
        .map(|(_, s)| s.config)
        .collect())
}

/// Writes `files` under `dir` (directories created; existing files of the
/// same names replaced).
pub fn write(dir: &std::path::Path, files: &[(String, String)]) -> Result<()> {
    if dir.as_os_str().is_empty() {
        bail!("--out needs a directory");
    }
    for (path, text) in files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(())
}

/// Reads a project directory's three files back (for `check`).
pub fn read(dir: &std::path::Path) -> Vec<(String, String)> {
    [
        "hsproject.json",
        "src/app/app-hsmeta.json",
        "src/app/webhooks/webhooks-hsmeta.json",
    ]
    .into_iter()
    .filter_map(|p| {
        std::fs::read_to_string(dir.join(p))
            .ok()
            .map(|t| (p.to_owned(), t))
    })
    .collect()
}

#[cfg(test)]
mod tests;
