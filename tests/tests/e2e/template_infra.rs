//! Static checks of `template.yaml`'s functions, IAM, queues, logs, tables
//! and schedules: no IAM statement grants every action, every function is
//! built by cargo-lambda from a crate that exists, the worker reports
//! partial batch failures, its queue redrives to a DLQ and hides messages
//! for at least six worker timeouts, every variable a function requires at
//! start-up is set, the token key is usable only by the functions that need
//! it, and the nightly schedule is exactly 02:00 UTC.

use std::collections::BTreeSet;

use hubsync_runtime::{ConfigError, Env, FromEnv};
use serde_json::{json, Value};

use super::template::*;

#[test]
fn no_policy_statement_grants_every_action() {
    let t = template();
    let statements = all_statements(&t);
    assert!(
        statements.len() >= 5,
        "expected the functions' and the key's policy statements, found {}",
        statements.len()
    );
    let mut offending = Vec::new();
    for (path, s) in &statements {
        if s["Effect"] != "Allow" {
            continue;
        }
        if s.get("NotAction").is_some() {
            offending.push(format!("{path}: Allow with NotAction"));
        }
        for action in strings(&s["Action"]) {
            let service_wide = action
                .split_once(':')
                .is_some_and(|(_, operation)| operation == "*");
            if action == "*" || service_wide {
                offending.push(format!("{path}: Action {action}"));
            }
        }
    }
    assert!(
        offending.is_empty(),
        "statements granting every action:\n{}",
        offending.join("\n")
    );
}

#[test]
fn function_policies_name_their_resources() {
    // In a key, queue or topic policy `Resource: "*"` means "this resource";
    // in a function's (identity) policy it means everything in the account.
    let t = template();
    for (id, f) in functions(&t) {
        let mut found = Vec::new();
        statements(&f["Properties"]["Policies"], id, &mut found);
        for (path, s) in found {
            assert!(
                !strings(&s["Resource"]).contains(&"*"),
                "{path} grants on every resource: {s}"
            );
            assert!(!s["Resource"].is_null(), "{path} names no resource: {s}");
        }
    }
}

#[test]
fn every_function_is_built_by_cargo_lambda_from_a_workspace_binary() {
    let t = template();
    for (id, f) in functions(&t) {
        assert_eq!(
            f["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{id} must be built with BuildMethod: rust-cargolambda"
        );
        let binary = f["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} has no BuildProperties.Binary"));
        let manifest = workspace_root()
            .join("functions")
            .join(binary)
            .join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest)
            .unwrap_or_else(|e| panic!("{id}: binary {binary} has no crate ({e})"));
        assert!(
            text.contains(&format!("name = \"{binary}\"")),
            "{id}: {} does not define the package {binary}",
            manifest.display()
        );
        assert_eq!(
            function_property(&t, f, "Handler"),
            "bootstrap",
            "{id}: provided runtimes run `bootstrap`"
        );
        assert_eq!(function_property(&t, f, "Runtime"), "provided.al2023");
    }
}

#[test]
fn worker_reports_partial_batch_failures() {
    let t = template();
    let sources = sqs_sources(&t);
    assert!(!sources.is_empty(), "no function consumes an SQS queue");
    for (id, f, event, _) in sources {
        assert!(
            strings(&event["FunctionResponseTypes"]).contains(&"ReportBatchItemFailures"),
            "{id}: without ReportBatchItemFailures one failed message retries the whole batch"
        );
        let batch = as_u64(&event["BatchSize"]).unwrap_or(10);
        if batch > 10 {
            // A parameter counts with the smallest value it allows.
            let window = &event["MaximumBatchingWindowInSeconds"];
            let window = as_u64(window)
                .or_else(|| ref_name(window).and_then(|p| as_u64(&t["Parameters"][p]["MinValue"])));
            assert!(
                window.unwrap_or(0) >= 1,
                "{id}: BatchSize > 10 needs a batching window of at least 1 s"
            );
        }
        // Each instance takes 1/N of a portal's HubSpot budget: N must be
        // the event source's cap.
        let cap = &event["ScalingConfig"]["MaximumConcurrency"];
        assert!(
            !cap.is_null(),
            "{id}: the SQS source has no MaximumConcurrency"
        );
        assert_eq!(
            &f["Properties"]["Environment"]["Variables"]["HUBSYNC_MAX_CONCURRENCY"], cap,
            "{id}: HUBSYNC_MAX_CONCURRENCY must follow the event source's MaximumConcurrency"
        );
    }
}

#[test]
fn worker_queue_redrives_to_a_dead_letter_queue() {
    let t = template();
    let res = resources(&t);
    for (_, _, _, queue) in sqs_sources(&t) {
        let redrive = &res[queue]["Properties"]["RedrivePolicy"];
        let (dlq, attribute) = get_att(&redrive["deadLetterTargetArn"])
            .unwrap_or_else(|| panic!("{queue} has no redrive policy to a queue of the template"));
        assert_eq!(attribute, "Arn");
        assert_eq!(res[dlq]["Type"], "AWS::SQS::Queue", "{dlq} is not a queue");
        assert_ne!(dlq, queue);
        let receives = as_u64(&redrive["maxReceiveCount"]).unwrap_or(0);
        assert!(
            (2..=10).contains(&receives),
            "{queue}: maxReceiveCount {receives} (a few retries, then the DLQ)"
        );
        assert!(
            as_u64(&res[dlq]["Properties"]["MessageRetentionPeriod"]).unwrap_or(345_600)
                >= as_u64(&res[queue]["Properties"]["MessageRetentionPeriod"]).unwrap_or(345_600),
            "{dlq} must keep messages at least as long as {queue}"
        );
    }
}

#[test]
fn queue_visibility_timeout_is_at_least_six_worker_timeouts() {
    let t = template();
    let res = resources(&t);
    for (id, f, _, queue) in sqs_sources(&t) {
        let visibility = as_u64(&res[queue]["Properties"]["VisibilityTimeout"]).unwrap_or(30);
        let timeout = as_u64(function_property(&t, f, "Timeout")).unwrap_or(3);
        assert!(
            visibility >= 6 * timeout,
            "{queue}: VisibilityTimeout {visibility} s < 6 x {id}'s Timeout {timeout} s"
        );
    }
}

/// A function's environment as the template sets it (globals, then its
/// own): literal values as they are, a `!Ref` to a parameter as its
/// default, any other intrinsic (an ARN, a URL) as a placeholder.
fn function_env(t: &Value, f: &Value) -> Vec<(String, String)> {
    let scalar = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    };
    let resolve = |v: &Value| -> String {
        scalar(v)
            .or_else(|| {
                let p = &t["Parameters"][v["Ref"].as_str()?];
                // No default: a value the parameter's constraints allow.
                let numeric = p["Type"] == "Number" || p["AllowedPattern"] == "^[0-9]+$";
                let role = p["AllowedPattern"]
                    .as_str()
                    .is_some_and(|a| a.contains(":role/"));
                scalar(&p["Default"])
                    .or_else(|| numeric.then(|| "12345".to_owned()))
                    .or_else(|| role.then(|| "arn:aws:iam::123456789012:role/app".to_owned()))
            })
            .unwrap_or_else(|| "resolved-at-deploy".to_owned())
    };
    let mut vars = std::collections::BTreeMap::new();
    for scope in [
        &t["Globals"]["Function"]["Environment"]["Variables"],
        &f["Properties"]["Environment"]["Variables"],
    ] {
        for (k, v) in scope.as_object().into_iter().flatten() {
            vars.insert(k.clone(), resolve(v));
        }
    }
    vars.into_iter().collect()
}

/// Reads a function's settings the way its `main.rs` does.
fn read_settings(binary: &str, env: &Env) -> Result<(), ConfigError> {
    match binary {
        "oauth-callback" => oauth_callback::Settings::from_vars(env).map(drop),
        "webhook-intake" => webhook_intake::settings::Settings::from_vars(env).map(drop),
        "record-upsert" => record_upsert::settings::Settings::from_vars(env).map(drop),
        "reconcile" => reconcile::settings::Settings::from_vars(env).map(drop),
        "admin-api" => admin_api::Settings::from_vars(env).map(drop),
        "change-events" => change_events::Settings::from_vars(env).map(drop),
        "journal-reader" => journal_reader::Settings::from_vars(env).map(drop),
        other => panic!("{other}: a function this test does not know"),
    }
}

#[test]
fn every_function_reads_its_settings_from_the_template() {
    let t = template();
    for (id, f) in functions(&t) {
        let binary = f["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("a binary name");
        let vars = function_env(&t, f);
        read_settings(binary, &Env::from_pairs(vars.clone()))
            .unwrap_or_else(|e| panic!("{id} ({binary}) cannot start: {e}"));
        // And each variable it requires, removed, is named in the error.
        let mut required = 0;
        for (name, _) in &vars {
            let without = vars.iter().filter(|(k, _)| k != name).cloned();
            if let Err(e) = read_settings(binary, &Env::from_pairs(without)) {
                assert_eq!(e, ConfigError::Missing(leak(name)), "{id}");
                required += 1;
            }
        }
        assert!(
            required >= 3,
            "{id}: only {required} required variables found"
        );
    }
}

fn leak(name: &str) -> &'static str {
    Box::leak(name.to_owned().into_boxed_str())
}

#[test]
fn token_key_is_rotated_and_used_only_by_the_functions_configured_with_it() {
    let t = template();
    let keys = resources_of_type(&t, "AWS::KMS::Key");
    assert_eq!(keys.len(), 1, "one key for the tokens");
    let (key_id, key) = keys[0];
    assert_eq!(key["Properties"]["EnableKeyRotation"], true);
    // The functions that get the key through HUBSYNC_TOKEN_KEY_ID, by the
    // role SAM generates for them (`<Function>Role`).
    let configured: BTreeSet<String> = functions(&t)
        .into_iter()
        .filter(|(_, f)| {
            get_att(&f["Properties"]["Environment"]["Variables"]["HUBSYNC_TOKEN_KEY_ID"])
                .is_some_and(|(r, _)| r == key_id)
        })
        .map(|(id, _)| format!("{id}Role"))
        .collect();
    assert!(
        configured.contains("RecordUpsertFunctionRole"),
        "the worker decrypts tokens"
    );
    let policy = &key["Properties"]["KeyPolicy"]["Statement"];
    let mut users = BTreeSet::new();
    let mut operators = 0;
    for s in policy.as_array().expect("key policy statements") {
        // An optional statement: `!If [Condition, statement, !Ref AWS::NoValue]`.
        let s = match s.get("Fn::If") {
            Some(branches) => {
                assert_eq!(
                    branches[2],
                    json!({"Ref": "AWS::NoValue"}),
                    "{key_id}: a conditional statement has no alternative"
                );
                &branches[1]
            }
            None => s,
        };
        let actions = strings(&s["Action"]);
        let uses = actions.iter().any(|a| {
            matches!(
                *a,
                "kms:Decrypt" | "kms:Encrypt" | "kms:GenerateDataKey" | "kms:ReEncrypt*"
            )
        });
        let principal = &s["Principal"]["AWS"];
        if let Some((role, "Arn")) = get_att(principal) {
            assert!(
                uses,
                "{key_id}: {role} is in the key policy but not as a key user"
            );
            assert!(
                actions
                    .iter()
                    .all(|a| matches!(*a, "kms:Decrypt" | "kms:Encrypt")),
                "{key_id}: {role} may only encrypt and decrypt: {actions:?}"
            );
            assert!(
                !s["Condition"]["ForAnyValue:StringEquals"]["kms:EncryptionContextKeys"].is_null(),
                "{key_id}: {role}'s use is not bound to the portal's encryption context"
            );
            users.insert(role.to_string());
        } else if *principal == json!({"Ref": "OperatorRoleArn"}) {
            // The operators' role (hubsync-ops), bound the same way.
            assert!(
                actions
                    .iter()
                    .all(|a| matches!(*a, "kms:Decrypt" | "kms:Encrypt")),
                "{key_id}: operators may only encrypt and decrypt: {actions:?}"
            );
            assert!(
                !s["Condition"]["ForAnyValue:StringEquals"]["kms:EncryptionContextKeys"].is_null(),
                "{key_id}: the operators' use is not bound to the portal's encryption context"
            );
            operators += 1;
        } else {
            assert!(
                !uses,
                "{key_id}: only the functions' roles may encrypt or decrypt, not {principal}"
            );
        }
    }
    assert_eq!(
        users, configured,
        "key users must be exactly the functions configured with the key"
    );
    assert!(
        operators <= 1,
        "{key_id}: one optional operators' statement"
    );
    // The intake never touches KMS.
    let res = resources(&t);
    let intake = res["WebhookIntakeFunction"].to_string();
    assert!(!intake.contains("kms:"), "the intake has no KMS permission");
    assert!(
        !intake.contains(key_id.as_str()),
        "the intake does not see the key"
    );
}

#[test]
fn every_dead_letter_queue_raises_an_alarm_when_not_empty() {
    let t = template();
    let res = resources(&t);
    let dlqs: BTreeSet<&str> = resources_of_type(&t, "AWS::SQS::Queue")
        .into_iter()
        .filter_map(|(_, q)| get_att(&q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]))
        .map(|(dlq, _)| dlq)
        .collect();
    assert!(
        dlqs.contains("EventsDeadLetterQueue"),
        "the events queue's DLQ"
    );
    let alarms = resources_of_type(&t, "AWS::CloudWatch::Alarm");
    for dlq in dlqs {
        let found = alarms.iter().find(|(_, a)| {
            let p = &a["Properties"];
            p["Namespace"] == "AWS/SQS"
                && p["MetricName"] == "ApproximateNumberOfMessagesVisible"
                && p["Dimensions"].as_array().is_some_and(|d| {
                    d.iter()
                        .any(|d| get_att(&d["Value"]) == Some((dlq, "QueueName")))
                })
        });
        let (id, alarm) = found.unwrap_or_else(|| panic!("no alarm on {dlq}'s visible messages"));
        let p = &alarm["Properties"];
        assert_eq!(p["ComparisonOperator"], "GreaterThanThreshold", "{id}");
        assert_eq!(as_u64(&p["Threshold"]), Some(0), "{id}: any message alarms");
        let topic = p["AlarmActions"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(ref_name)
            .unwrap_or_else(|| panic!("{id} notifies no topic"));
        assert_eq!(res[topic]["Type"], "AWS::SNS::Topic", "{id}");
    }
    // The e-mail subscription exists only when an address is given.
    for (sid, s) in resources_of_type(&t, "AWS::SNS::Subscription") {
        let condition = s["Condition"].as_str().unwrap_or_else(|| {
            panic!("{sid} must be conditional on the optional AlarmEmail parameter")
        });
        assert!(t["Conditions"][condition]
            .to_string()
            .contains("AlarmEmail"));
    }
}

// ------------------------------------------------------------------ SQS permissions

#[test]
fn queues_are_consumed_through_mappings_with_queue_scoped_permissions() {
    let t = template();
    for (id, f) in functions(&t) {
        // A SAM `SQS` event attaches AWSLambdaSQSQueueExecutionRole, whose
        // statement has `Resource: "*"`; a managed policy named in
        // `Policies` cannot be checked here at all.
        if let Some(events) = f["Properties"]["Events"].as_object() {
            for (name, e) in events {
                assert_ne!(
                    e["Type"], "SQS",
                    "{id}.Events.{name}: use an AWS::Lambda::EventSourceMapping and a queue-scoped statement"
                );
            }
        }
        if let Some(policies) = f["Properties"]["Policies"].as_array() {
            for p in policies {
                assert!(
                    p.get("Statement").is_some(),
                    "{id}: only inline policy documents, not {p}"
                );
            }
        }
    }
    let sources = sqs_sources(&t);
    let consumers: BTreeSet<&str> = sources.iter().map(|(id, ..)| id.as_str()).collect();
    assert_eq!(
        consumers,
        BTreeSet::from(["ReconcileFunction", "RecordUpsertFunction"]),
        "the worker consumes the events queue, reconcile the sync jobs"
    );
    for (id, f, _, queue) in sources {
        let mut found = Vec::new();
        statements(&f["Properties"]["Policies"], id, &mut found);
        for action in [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ChangeMessageVisibility",
        ] {
            let granted: Vec<&Value> = found
                .iter()
                .filter(|(_, s)| s["Effect"] == "Allow" && strings(&s["Action"]).contains(&action))
                .map(|(_, s)| &s["Resource"])
                .collect();
            assert!(!granted.is_empty(), "{id} lacks {action} on {queue}");
            for resource in granted {
                assert_eq!(
                    get_att(resource),
                    Some((queue, "Arn")),
                    "{id}: {action} only on its own queue {queue}, not {resource}"
                );
            }
        }
    }
}

// ------------------------------------------------------------------ globals, logs, tables, schedule

#[test]
fn globals_run_arm64_al2023_with_json_logs_and_tracing() {
    let t = template();
    let g = &t["Globals"]["Function"];
    assert_eq!(g["Runtime"], "provided.al2023");
    assert_eq!(g["Architectures"], json!(["arm64"]));
    assert_eq!(g["Tracing"], "Active");
    assert_eq!(g["LoggingConfig"]["LogFormat"], "JSON");
    assert_eq!(
        ref_name(&g["LoggingConfig"]["ApplicationLogLevel"]),
        Some("LogLevel")
    );
    for (id, f) in functions(&t) {
        for key in ["Runtime", "Architectures", "Tracing"] {
            assert!(
                f["Properties"][key].is_null(),
                "{id} overrides Globals.Function.{key}"
            );
        }
    }
    for name in [
        "Stage",
        "HubSpotAppId",
        "HubSpotClientId",
        "HubSpotClientSecretArn",
        "PublicBaseUrl",
        "LogLevel",
        "AlarmEmail",
        "DriftAlertThreshold",
        "ReconcileDeadlineHourUtc",
    ] {
        assert!(
            t["Parameters"][name].is_object(),
            "parameter {name} is missing"
        );
    }
    // Secrets enter as Secrets Manager ARNs, never as values.
    for (name, p) in t["Parameters"].as_object().expect("parameters") {
        if name.to_ascii_lowercase().contains("secret") {
            assert!(
                name.ends_with("Arn")
                    && p["AllowedPattern"]
                        .as_str()
                        .is_some_and(|a| a.starts_with("^arn:")),
                "parameter {name} must be a Secrets Manager ARN"
            );
        }
    }
}

#[test]
fn every_function_logs_to_its_own_group_with_retention() {
    let t = template();
    let res = resources(&t);
    let mut groups = BTreeSet::new();
    for (id, f) in functions(&t) {
        let group = ref_name(&f["Properties"]["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{id}: LoggingConfig.LogGroup is not !Ref <log group>"));
        assert_eq!(res[group]["Type"], "AWS::Logs::LogGroup", "{id}");
        assert!(
            !res[group]["Properties"]["RetentionInDays"].is_null(),
            "{group} keeps logs forever"
        );
        assert!(groups.insert(group), "{group} is shared by two functions");
    }
}

#[test]
fn data_tables_are_retained_protected_and_recoverable() {
    let t = template();
    let tables = resources_of_type(&t, "AWS::DynamoDB::Table");
    assert!(tables.len() >= 2, "the Records and Control tables");
    for (id, table) in tables {
        let p = &table["Properties"];
        assert_eq!(table["DeletionPolicy"], "Retain", "{id}");
        assert_eq!(table["UpdateReplacePolicy"], "Retain", "{id}");
        assert_eq!(p["DeletionProtectionEnabled"], true, "{id}");
        assert_eq!(
            p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true,
            "{id}"
        );
    }
    let control = &resources(&t)["ControlTable"]["Properties"]["TimeToLiveSpecification"];
    assert_eq!(control["Enabled"], true);
    assert_eq!(
        control["AttributeName"],
        hubsync_store::CONTROL_TTL_ATTRIBUTE,
        "the TTL attribute the store writes"
    );
}

#[test]
fn nightly_schedule_is_exactly_0200_utc_daily() {
    let t = template();
    let schedules = resources_of_type(&t, "AWS::Scheduler::Schedule");
    let nightly: Vec<_> = schedules
        .iter()
        .filter(|(_, s)| {
            get_att(&s["Properties"]["Target"]["Arn"]) == Some(("ReconcileFunction", "Arn"))
        })
        .collect();
    assert_eq!(nightly.len(), 1, "one nightly schedule");
    let p = &nightly[0].1["Properties"];
    assert_eq!(p["ScheduleExpression"], "cron(0 2 * * ? *)");
    assert_eq!(p["ScheduleExpressionTimezone"], "UTC");
    assert_eq!(p["State"], "ENABLED");
    assert_eq!(p["FlexibleTimeWindow"]["Mode"], "OFF");
    assert_eq!(
        get_att(&p["Target"]["Arn"]),
        Some(("ReconcileFunction", "Arn"))
    );
    let input: Value = serde_json::from_str(p["Target"]["Input"].as_str().expect("Input"))
        .expect("the target input is JSON");
    assert_eq!(input["schedule"], "nightly");
    // The schedule invokes asynchronously: a failed fan-out is retried, but
    // not so late that the run misses its deadline.
    let retries = &resources(&t)["ReconcileFunction"]["Properties"]["EventInvokeConfig"];
    assert!(as_u64(&retries["MaximumRetryAttempts"]).is_some_and(|n| n >= 1));
    assert!(as_u64(&retries["MaximumEventAgeInSeconds"]).is_some_and(|s| s <= 3600));
}

#[test]
fn journal_reader_runs_every_period_one_instance_at_a_time() {
    let t = template();
    let schedules = resources_of_type(&t, "AWS::Scheduler::Schedule");
    let journal: Vec<_> = schedules
        .iter()
        .filter(|(_, s)| {
            get_att(&s["Properties"]["Target"]["Arn"]) == Some(("JournalReaderFunction", "Arn"))
        })
        .collect();
    assert_eq!(journal.len(), 1, "one journal schedule");
    let expr = &journal[0].1["Properties"]["ScheduleExpression"];
    assert_eq!(
        expr["Fn::Sub"], "rate(${JournalReaderPeriodMinutes} minutes)",
        "{expr}"
    );
    // rate() wants "minutes" from 2 on ("1 minute" is the singular form).
    let period = &t["Parameters"]["JournalReaderPeriodMinutes"];
    assert!(as_u64(&period["MinValue"]).is_some_and(|m| m >= 2));
    let f = &resources(&t)["JournalReaderFunction"]["Properties"];
    assert_eq!(as_u64(&f["ReservedConcurrentExecutions"]), Some(1));
    // A pass ends before the next one starts.
    let timeout = as_u64(&f["Timeout"]).expect("Timeout");
    assert!(timeout <= 2 * 60, "timeout {timeout} s");
}

/// The key prefixes a function's DynamoDB statements on the Control table
/// allow (`dynamodb:LeadingKeys`), or `None` when a statement has no such
/// condition (any item).
fn control_key_prefixes(t: &Value, function: &str) -> Option<BTreeSet<String>> {
    let f = &resources(t)[function];
    let mut out = Vec::new();
    statements(&f["Properties"]["Policies"], function, &mut out);
    let mut prefixes = BTreeSet::new();
    for (_, s) in out {
        let on_control = match &s["Resource"] {
            Value::Array(items) => items
                .iter()
                .any(|r| get_att(r).is_some_and(|(r, _)| r == "ControlTable")),
            r => get_att(r).is_some_and(|(r, _)| r == "ControlTable"),
        };
        let dynamo = strings(&s["Action"])
            .iter()
            .any(|a| a.starts_with("dynamodb:"));
        if !(on_control && dynamo) {
            continue;
        }
        let keys = &s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
        let keys = strings(keys);
        if keys.is_empty() {
            return None;
        }
        prefixes.extend(keys.into_iter().map(str::to_owned));
    }
    Some(prefixes)
}

#[test]
fn the_intake_and_the_oauth_function_reach_only_their_own_control_items() {
    let t = template();
    assert_eq!(
        control_key_prefixes(&t, "WebhookIntakeFunction"),
        Some(BTreeSet::from(["CONN#*".to_owned()])),
        "the intake reads (and heartbeats) connection items only"
    );
    assert_eq!(
        control_key_prefixes(&t, "OAuthCallbackFunction"),
        Some(BTreeSet::from([
            "CONN#*".to_owned(),
            "OAUTH_LINK#*".to_owned(),
            "OAUTH_STATE#*".to_owned(),
        ])),
        "the OAuth function: states, used links and connections"
    );
    // The prefixes are the store's own key prefixes.
    assert_eq!(
        hubsync_store::oauth_state::OAUTH_STATE_PK_PREFIX,
        "OAUTH_STATE#"
    );
    assert_eq!(
        hubsync_store::oauth_state::OAUTH_LINK_PK_PREFIX,
        "OAUTH_LINK#"
    );
}

#[test]
fn each_route_has_its_own_throttle_and_the_public_functions_reserve_concurrency() {
    let t = template();
    let api = &resources(&t)["HttpApi"]["Properties"];
    let routes = api["RouteSettings"]
        .as_object()
        .expect("per-route settings");
    for (route, rate, burst) in [
        (
            "POST /webhooks/hubspot",
            "WebhookRateLimit",
            "WebhookBurstLimit",
        ),
        ("GET /oauth/install", "OAuthRateLimit", "OAuthBurstLimit"),
        ("GET /oauth/callback", "OAuthRateLimit", "OAuthBurstLimit"),
        (
            "POST /oauth/disconnect",
            "OAuthRateLimit",
            "OAuthBurstLimit",
        ),
    ] {
        let r = &routes[route];
        assert_eq!(ref_name(&r["ThrottlingRateLimit"]), Some(rate), "{route}");
        assert_eq!(ref_name(&r["ThrottlingBurstLimit"]), Some(burst), "{route}");
        assert!(as_u64(&t["Parameters"][rate]["Default"]).is_some_and(|v| v > 0));
    }
    // The OAuth routes are sized far below the webhook route.
    let default = |p: &str| as_u64(&t["Parameters"][p]["Default"]).unwrap_or(0);
    assert!(default("OAuthRateLimit") * 10 <= default("WebhookRateLimit"));
    // Every route the functions serve has its own setting.
    for (id, f) in functions(&t) {
        for (_, e) in f["Properties"]["Events"].as_object().into_iter().flatten() {
            if e["Type"] == "HttpApi" {
                let key = format!(
                    "{} {}",
                    e["Properties"]["Method"].as_str().unwrap_or_default(),
                    e["Properties"]["Path"].as_str().unwrap_or_default()
                );
                assert!(routes.contains_key(&key), "{id}: {key} has no throttle");
            }
        }
    }
    for (function, parameter) in [
        ("WebhookIntakeFunction", "IntakeReservedConcurrency"),
        ("OAuthCallbackFunction", "OAuthReservedConcurrency"),
    ] {
        let reserved = &resources(&t)[function]["Properties"]["ReservedConcurrentExecutions"];
        assert!(
            reserved.to_string().contains(parameter),
            "{function}: reserved concurrency from {parameter}: {reserved}"
        );
        assert!(default(parameter) > 0, "{parameter} reserves by default");
    }
}
