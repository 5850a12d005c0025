//! Static checks of `template.yaml`: what `cfn-lint` and `sam validate`
//! cannot know about hubsync. No IAM statement grants every action, every
//! function is built by cargo-lambda from a crate that exists, the worker
//! reports partial batch failures, its queue redrives to a DLQ and hides
//! messages for at least six worker timeouts, every variable a function
//! requires at start-up is set, and the token key is usable only by the
//! functions that need it. Every alarm of issue #7 exists, notifies the alarm
//! topic and links its runbook entry in `docs/OPERATIONS.md`; every
//! `hubsync` metric an alarm or the dashboard reads is one the code emits
//! (found in the functions' and shared crates' sources); the nightly
//! schedule is exactly 02:00 UTC.
//!
//! The template uses CloudFormation's short-form intrinsics (`!Ref`, `!Sub`,
//! `!GetAtt`, ...). A generic YAML loader would drop those tags, so the
//! template is read from `yaml-rust2`'s event stream into JSON with the long
//! forms (`{"Ref": …}`, `{"Fn::GetAtt": [resource, attribute]}`), exactly
//! what CloudFormation sees.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use hubsync_runtime::{ConfigError, Env, FromEnv};
use serde_json::{json, Map, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

// ------------------------------------------------------------------ loading

fn workspace_root() -> PathBuf {
    hubsync_testkit::workspace_root()
}

/// `template.yaml` as CloudFormation sees it (long-form intrinsics).
pub(crate) fn template() -> Value {
    let path = workspace_root().join("template.yaml");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    cfn_yaml_to_json(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

enum Frame {
    Seq(Vec<Value>, Option<Tag>),
    Map {
        map: Map<String, Value>,
        key: Option<String>,
        tag: Option<Tag>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Value>,
    error: Option<String>,
}

/// `!Ref x` → `{"Ref": x}`, `!GetAtt A.B` → `{"Fn::GetAtt": ["A", "B"]}`,
/// `!Condition c` → `{"Condition": c}`, `!Sub …` → `{"Fn::Sub": …}`.
fn intrinsic(tag: &Tag, value: Value) -> Result<Value, String> {
    if tag.handle != "!" {
        // A core-schema tag (`!!str`, ...): keep the value.
        return Ok(value);
    }
    let name = tag.suffix.as_str();
    Ok(match name {
        "Ref" | "Condition" => json!({ name: value }),
        "GetAtt" => match value {
            Value::String(s) => {
                let (resource, attribute) = s
                    .split_once('.')
                    .ok_or_else(|| format!("!GetAtt {s}: expected Resource.Attribute"))?;
                json!({ "Fn::GetAtt": [resource, attribute] })
            }
            other => json!({ "Fn::GetAtt": other }),
        },
        "Base64" | "Cidr" | "Equals" | "FindInMap" | "GetAZs" | "If" | "ImportValue" | "Join"
        | "Not" | "Or" | "And" | "Select" | "Split" | "Sub" | "Transform" | "ToJsonString"
        | "Length" => json!({ format!("Fn::{name}"): value }),
        other => return Err(format!("unknown tag !{other}")),
    })
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn plain_scalar(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => {
            if let Ok(i) = s.parse::<i64>() {
                json!(i)
            } else if let Some(f) = s
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && s.chars().any(|c| c.is_ascii_digit()))
            {
                json!(f)
            } else {
                Value::String(s.to_string())
            }
        }
    }
}

impl Builder {
    fn fail(&mut self, message: String) {
        self.error.get_or_insert(message);
    }

    /// Attach a finished node to its parent; `raw` is a scalar's text (keys
    /// are always strings, whatever they look like).
    fn push(&mut self, value: Value, raw: Option<String>) {
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq(items, _)) => items.push(value),
            Some(Frame::Map { map, key, .. }) => match key.take() {
                Some(k) => {
                    map.insert(k, value);
                }
                None => match raw {
                    Some(k) => *key = Some(k),
                    None => self.fail("a mapping key that is not a scalar".into()),
                },
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(text, style, _, tag) => {
                let value = match style {
                    TScalarStyle::Plain => plain_scalar(&text),
                    _ => Value::String(text.clone()),
                };
                let value = match tag {
                    Some(t) if t.handle == "tag:yaml.org,2002:" && t.suffix == "str" => {
                        Value::String(text.clone())
                    }
                    Some(t) => match intrinsic(&t, value) {
                        Ok(v) => v,
                        Err(e) => return self.fail(format!("line {}: {e}", mark.line())),
                    },
                    None => value,
                };
                self.push(value, Some(text));
            }
            Event::SequenceStart(_, tag) => self.stack.push(Frame::Seq(Vec::new(), tag)),
            Event::MappingStart(_, tag) => self.stack.push(Frame::Map {
                map: Map::new(),
                key: None,
                tag,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, tag) = match self.stack.pop() {
                    Some(Frame::Seq(items, tag)) => (Value::Array(items), tag),
                    Some(Frame::Map { map, tag, .. }) => (Value::Object(map), tag),
                    None => return self.fail("unbalanced YAML events".into()),
                };
                match tag.map(|t| intrinsic(&t, value.clone())).transpose() {
                    Ok(v) => self.push(v.unwrap_or(value), None),
                    Err(e) => self.fail(format!("line {}: {e}", mark.line())),
                }
            }
            Event::Alias(_) => self.fail(format!(
                "line {}: YAML aliases are not used in templates",
                mark.line()
            )),
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

fn cfn_yaml_to_json(text: &str) -> Result<Value, String> {
    let mut builder = Builder::default();
    Parser::new_from_str(text)
        .load(&mut builder, false)
        .map_err(|e| e.to_string())?;
    if let Some(e) = builder.error {
        return Err(e);
    }
    builder.root.ok_or_else(|| "empty document".into())
}

// ------------------------------------------------------------------ helpers

pub(crate) fn resources(t: &Value) -> &Map<String, Value> {
    t["Resources"].as_object().expect("Resources is a mapping")
}

pub(crate) fn resources_of_type<'a>(t: &'a Value, ty: &str) -> Vec<(&'a String, &'a Value)> {
    resources(t)
        .iter()
        .filter(|(_, r)| r["Type"] == ty)
        .collect()
}

pub(crate) fn functions(t: &Value) -> Vec<(&String, &Value)> {
    let found = resources_of_type(t, "AWS::Serverless::Function");
    assert!(!found.is_empty(), "the template defines no function");
    found
}

/// A string or a list of strings, as IAM allows for Action and Resource.
pub(crate) fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// Every policy statement anywhere in the template: inline function
/// policies, IAM roles and policies, key, queue and topic policies.
fn statements(v: &Value, path: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(items)) = map.get("Statement") {
                for (i, s) in items.iter().enumerate() {
                    if s.get("Effect").is_some() {
                        out.push((format!("{path}.Statement[{i}]"), s.clone()));
                    }
                }
            }
            for (k, child) in map {
                statements(child, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                statements(child, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn all_statements(t: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    statements(&t["Resources"], "Resources", &mut out);
    out
}

/// `{"Ref": name}` → name.
pub(crate) fn ref_name(v: &Value) -> Option<&str> {
    v.get("Ref").and_then(Value::as_str)
}

/// `{"Fn::GetAtt": [resource, attribute]}` → (resource, attribute).
pub(crate) fn get_att(v: &Value) -> Option<(&str, &str)> {
    let parts = v.get("Fn::GetAtt")?.as_array()?;
    Some((parts.first()?.as_str()?, parts.get(1)?.as_str()?))
}

fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// A function's property, falling back to `Globals.Function`.
fn function_property<'a>(t: &'a Value, function: &'a Value, name: &str) -> &'a Value {
    match &function["Properties"][name] {
        Value::Null => &t["Globals"]["Function"][name],
        v => v,
    }
}

/// Every SQS event source mapping: (function id, function, mapping
/// properties, queue resource id). The template declares them as
/// `AWS::Lambda::EventSourceMapping` resources, not SAM `SQS` events (which
/// would attach `AWSLambdaSQSQueueExecutionRole`, granting on every queue).
fn sqs_sources(t: &Value) -> Vec<(&String, &Value, &Value, &str)> {
    let res = resources(t);
    let mut out = Vec::new();
    for (mapping, m) in resources_of_type(t, "AWS::Lambda::EventSourceMapping") {
        let p = &m["Properties"];
        let function = ref_name(&p["FunctionName"])
            .unwrap_or_else(|| panic!("{mapping}: FunctionName is not !Ref <function>"));
        let (queue, attribute) = get_att(&p["EventSourceArn"])
            .unwrap_or_else(|| panic!("{mapping}: EventSourceArn is not !GetAtt <source>.Arn"));
        if res[queue]["Type"] != "AWS::SQS::Queue" {
            // A table's stream (the change feed).
            assert_eq!(res[queue]["Type"], "AWS::DynamoDB::Table", "{mapping}");
            assert_eq!(attribute, "StreamArn", "{mapping}");
            continue;
        }
        assert_eq!(attribute, "Arn", "{mapping}");
        let (id, f) = res
            .get_key_value(function)
            .unwrap_or_else(|| panic!("{mapping}: no function {function}"));
        out.push((id, f, p, queue));
    }
    out
}

// ------------------------------------------------------------------ tests

#[test]
fn short_form_intrinsics_are_read_as_cloudformation_long_forms() {
    let v = cfn_yaml_to_json(
        "a: !Ref X\nb: !GetAtt Q.Arn\nc: !Sub \"${A}-b\"\nd: !Not [!Equals [!Ref E, \"\"]]\n\
         e: '0012'\nf: 12\ng: [ReportBatchItemFailures]\n",
    )
    .unwrap();
    assert_eq!(
        v,
        json!({
            "a": {"Ref": "X"},
            "b": {"Fn::GetAtt": ["Q", "Arn"]},
            "c": {"Fn::Sub": "${A}-b"},
            "d": {"Fn::Not": [{"Fn::Equals": [{"Ref": "E"}, ""]}]},
            "e": "0012",
            "f": 12,
            "g": ["ReportBatchItemFailures"],
        })
    );
}

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

// ------------------------------------------------------------------ metrics the code emits

/// One EMF line the code can print: a `Metrics::new(<function>)` chain up to
/// its `.emit()`, with its dimensions (`Function` and each `.dimension("…"`)
/// and metrics (`.count("…"`, `.millis("…"`). CloudWatch keeps a metric per
/// exact dimension set, so alarms and widgets must name one of these sets.
#[derive(Debug, Clone, PartialEq)]
struct Emission {
    function: String,
    dimensions: BTreeSet<String>,
    metrics: BTreeSet<String>,
    file: String,
}

/// The string literals that follow each `marker` (whitespace allowed
/// between them, as rustfmt breaks long calls).
fn literals_after(text: &str, marker: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find(marker) {
        rest = rest[i + marker.len()..].trim_start();
        if let Some(literal) = rest.strip_prefix('"') {
            if let Some(end) = literal.find('"') {
                out.insert(literal[..end].to_string());
            }
        }
    }
    out
}

fn rust_files(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `const NAME: &str = "value";` of a crate's sources.
fn string_consts(texts: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for text in texts {
        for line in text.lines() {
            let Some(rest) = line
                .trim()
                .strip_prefix("pub const ")
                .or_else(|| line.trim().strip_prefix("const "))
            else {
                continue;
            };
            let Some((name, value)) = rest.split_once(": &str =") else {
                continue;
            };
            if let Some(v) = value
                .trim()
                .strip_prefix('"')
                .and_then(|v| v.split('"').next())
            {
                out.insert(name.trim().to_string(), v.to_string());
            }
        }
    }
    out
}

/// Every `Metrics::new(…)…emit()` chain of the functions' and the shared
/// crates' sources (tests excluded: `src/` only).
fn emissions() -> Vec<Emission> {
    let mut out = Vec::new();
    for group in ["functions", "shared"] {
        let dir = workspace_root().join(group);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let mut files = Vec::new();
            rust_files(
                &entry.expect("directory entry").path().join("src"),
                &mut files,
            );
            let texts: Vec<String> = files
                .iter()
                .map(|f| std::fs::read_to_string(f).expect("read a source file"))
                .collect();
            let consts = string_consts(&texts);
            for (file, text) in files.iter().zip(&texts) {
                let mut rest = text.as_str();
                while let Some(i) = rest.find("Metrics::new(") {
                    rest = &rest[i + "Metrics::new(".len()..];
                    let Some(close) = rest.find(')') else { break };
                    let argument = rest[..close].trim();
                    let function = match argument.strip_prefix('"') {
                        Some(literal) => literal.trim_end_matches('"').to_string(),
                        None => {
                            let ident = argument.rsplit("::").next().unwrap_or(argument);
                            match consts.get(ident) {
                                Some(v) => v.clone(),
                                // A parameter (the helper itself, tests).
                                None => continue,
                            }
                        }
                    };
                    let chain = &rest[..rest.find(".emit()").unwrap_or(rest.len())];
                    let mut dimensions = literals_after(chain, ".dimension(");
                    dimensions.insert("Function".into());
                    let mut metrics = literals_after(chain, ".count(");
                    metrics.extend(literals_after(chain, ".millis("));
                    if !metrics.is_empty() {
                        out.push(Emission {
                            function,
                            dimensions,
                            metrics,
                            file: file.display().to_string(),
                        });
                    }
                }
            }
        }
    }
    assert!(
        out.iter().any(|e| e.metrics.contains("RecordsWritten")),
        "the source scan found none of the worker's metrics"
    );
    out
}

/// A metric an alarm or a dashboard widget reads.
#[derive(Debug, Clone)]
struct MetricRef {
    namespace: String,
    name: String,
    /// (dimension, value); values may be intrinsics in alarms.
    dimensions: Vec<(String, Value)>,
}

impl MetricRef {
    fn dimension(&self, name: &str) -> Option<&Value> {
        self.dimensions
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    fn is(&self, namespace: &str, name: &str) -> bool {
        self.namespace == namespace && self.name == name
    }
}

/// A `hubsync` metric must be one some emission prints: its `Function`,
/// its name, and exactly its dimension set.
fn check_emitted(emitted: &[Emission], m: &MetricRef) -> Result<(), String> {
    if m.namespace != "hubsync" {
        return Ok(());
    }
    let function = m
        .dimension("Function")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{m:?}: every hubsync metric has a literal Function dimension"))?;
    let dimensions: BTreeSet<String> = m.dimensions.iter().map(|(k, _)| k.clone()).collect();
    if emitted.iter().any(|e| {
        e.function == function && e.metrics.contains(&m.name) && e.dimensions == dimensions
    }) {
        return Ok(());
    }
    let near: Vec<String> = emitted
        .iter()
        .filter(|e| e.metrics.contains(&m.name))
        .map(|e| format!("Function={} by {:?} ({})", e.function, e.dimensions, e.file))
        .collect();
    Err(format!(
        "{} by {dimensions:?} (Function={function}) is not emitted; the code emits it as: {near:?}",
        m.name
    ))
}

fn alarms(t: &Value) -> Vec<(&String, &Value)> {
    resources_of_type(t, "AWS::CloudWatch::Alarm")
}

fn metric_ref(metric: &Value) -> MetricRef {
    MetricRef {
        namespace: metric["Namespace"].as_str().unwrap_or_default().to_string(),
        name: metric["MetricName"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        dimensions: metric["Dimensions"]
            .as_array()
            .map(|ds| {
                ds.iter()
                    .map(|d| {
                        (
                            d["Name"].as_str().unwrap_or_default().to_string(),
                            d["Value"].clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The metrics an alarm reads: its single metric, or every `MetricStat`
/// of its metric-math `Metrics`.
fn alarm_metrics(alarm: &Value) -> Vec<MetricRef> {
    let p = &alarm["Properties"];
    match p["Metrics"].as_array() {
        Some(queries) => queries
            .iter()
            .filter(|q| !q["MetricStat"].is_null())
            .map(|q| metric_ref(&q["MetricStat"]["Metric"]))
            .collect(),
        None => vec![metric_ref(p)],
    }
}

/// The expression an alarm watches (`ReturnData: true`), `Fn::Sub` text
/// included.
fn alarm_expressions(alarm: &Value) -> String {
    alarm["Properties"]["Metrics"]
        .as_array()
        .map(|qs| {
            qs.iter()
                .filter(|q| !q["Expression"].is_null())
                .map(|q| q["Expression"].to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// The one alarm that reads a metric matching `pred`.
fn alarm_reading<'a>(
    t: &'a Value,
    what: &str,
    pred: impl Fn(&MetricRef) -> bool,
) -> (&'a String, &'a Value) {
    let found: Vec<_> = alarms(t)
        .into_iter()
        .filter(|(_, a)| alarm_metrics(a).iter().any(&pred))
        .collect();
    assert!(!found.is_empty(), "no alarm on {what}");
    found[0]
}

fn is_ref(v: &Value, name: &str) -> bool {
    ref_name(v) == Some(name)
}

#[test]
fn the_alarms_ops_need_exist() {
    let t = template();
    // Intake 5xx: the handler's answered 5xx, its crashes, and the API's.
    let (id, _) = alarm_reading(&t, "the intake's 5xx answers", |m| {
        m.is("hubsync", "IntakeErrors") && m.dimension("Function") == Some(&json!("webhook-intake"))
    });
    let intake = &resources(&t)[id.as_str()];
    assert!(
        alarm_metrics(intake)
            .iter()
            .any(|m| m.is("AWS/Lambda", "Errors")
                && m.dimension("FunctionName")
                    .is_some_and(|v| is_ref(v, "WebhookIntakeFunction"))),
        "{id} also counts the intake's crashes"
    );
    alarm_reading(&t, "the HTTP API's 5xx", |m| {
        m.is("AWS/ApiGateway", "5xx") && m.dimension("ApiId").is_some_and(|v| is_ref(v, "HttpApi"))
    });
    // Worker and reconcile errors and throttles.
    for function in ["RecordUpsertFunction", "ReconcileFunction"] {
        for metric in ["Errors", "Throttles"] {
            alarm_reading(&t, &format!("{function} {metric}"), |m| {
                m.is("AWS/Lambda", metric)
                    && m.dimension("FunctionName")
                        .is_some_and(|v| is_ref(v, function))
            });
        }
    }
    // The webhook path falling behind.
    alarm_reading(&t, "the age of the events queue's oldest message", |m| {
        m.is("AWS/SQS", "ApproximateAgeOfOldestMessage")
            && m.dimension("QueueName")
                == Some(&json!({"Fn::GetAtt": ["EventsQueue", "QueueName"]}))
    });
    // A connection flipped to needs_reauth.
    let (id, a) = alarm_reading(&t, "connections flipping to needs_reauth", |m| {
        m.is("hubsync", "ConnectionsNeedsReauth")
    });
    assert_eq!(
        as_u64(&a["Properties"]["Threshold"]),
        Some(0),
        "{id}: any flip"
    );
    // Nightly drift over the configured threshold (initial syncs excluded).
    let (id, a) = alarm_reading(&t, "nightly drift", |m| {
        m.is("hubsync", "ReconcileDrift") && m.dimension("Kind") == Some(&json!("nightly"))
    });
    let p = &a["Properties"];
    assert!(
        is_ref(&p["Threshold"], "DriftAlertThreshold"),
        "{id}: the threshold parameter"
    );
    assert_eq!(
        p["Statistic"], "Maximum",
        "{id}: one portal and type over the threshold"
    );
    assert_eq!(p["ComparisonOperator"], "GreaterThanThreshold", "{id}");
    // Not finished by the deadline: nightly activity after the deadline hour.
    let (id, a) = alarm_reading(&t, "nightly hand-overs", |m| {
        m.is("hubsync", "ReconcileHandovers") && m.dimension("Kind") == Some(&json!("nightly"))
    });
    assert!(
        alarm_metrics(a)
            .iter()
            .any(|m| m.is("hubsync", "ReconcileRunsFinished")
                && m.dimension("Kind") == Some(&json!("nightly"))),
        "{id}: a nightly run finishing after the deadline is late too"
    );
    let expression = alarm_expressions(a);
    assert!(
        expression.contains("HOUR(") && expression.contains("${ReconcileDeadlineHourUtc}"),
        "{id}: gated on the deadline parameter: {expression}"
    );
    // Not started: a daily heartbeat, missing data breaching.
    let (id, a) = alarm_reading(&t, "the nightly fan-out", |m| {
        m.is("hubsync", "NightlyJobsQueued")
    });
    let p = &a["Properties"];
    assert_eq!(p["TreatMissingData"], "breaching", "{id}: a heartbeat");
    let period = as_u64(&p["Period"]).unwrap_or(0);
    let periods = as_u64(&p["EvaluationPeriods"]).unwrap_or(0);
    assert_eq!(period * periods, 86_400, "{id}: 24 hours without a fan-out");
    assert_eq!(
        as_u64(&p["DatapointsToAlarm"]),
        Some(periods),
        "{id}: all of them missing"
    );
}

#[test]
fn every_alarm_notifies_the_topic_and_links_its_runbook() {
    let t = template();
    let res = resources(&t);
    let runbook = std::fs::read_to_string(workspace_root().join("docs/OPERATIONS.md"))
        .expect("docs/OPERATIONS.md");
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect();
    let all = alarms(&t);
    assert!(all.len() >= 10, "found only {} alarms", all.len());
    for (id, a) in all {
        let p = &a["Properties"];
        for actions in ["AlarmActions", "OKActions"] {
            let topic = p[actions]
                .as_array()
                .and_then(|a| a.first())
                .and_then(ref_name)
                .unwrap_or_else(|| panic!("{id}: no {actions}"));
            assert_eq!(res[topic]["Type"], "AWS::SNS::Topic", "{id}.{actions}");
        }
        assert!(
            matches!(
                p["TreatMissingData"].as_str(),
                Some("breaching" | "notBreaching" | "ignore" | "missing")
            ),
            "{id}: choose TreatMissingData deliberately"
        );
        let description = match &p["AlarmDescription"] {
            Value::String(s) => s.clone(),
            other => other["Fn::Sub"].as_str().unwrap_or_default().to_string(),
        };
        assert!(
            description.len() <= 1024,
            "{id}: CloudWatch takes at most 1024 characters of description"
        );
        let link = description
            .split("docs/OPERATIONS.md#")
            .nth(1)
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_'))
                    .collect::<String>()
            })
            .unwrap_or_else(|| panic!("{id}: the description links no runbook entry"));
        assert!(
            anchors.contains(&link),
            "{id}: docs/OPERATIONS.md has no heading for #{link}"
        );
    }
}

#[test]
fn metric_math_alarms_are_well_formed() {
    // What PutMetricAlarm refuses only at deploy time.
    let t = template();
    let mut math = 0;
    for (id, a) in alarms(&t) {
        let Some(queries) = a["Properties"]["Metrics"].as_array() else {
            continue;
        };
        math += 1;
        assert!(
            a["Properties"]["MetricName"].is_null() && a["Properties"]["Period"].is_null(),
            "{id}: Metrics excludes MetricName/Period"
        );
        let ids: Vec<&str> = queries.iter().filter_map(|q| q["Id"].as_str()).collect();
        assert_eq!(ids.len(), queries.len(), "{id}: every query has an Id");
        for q in &ids {
            assert!(
                q.starts_with(|c: char| c.is_ascii_lowercase())
                    && q.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{id}: Id {q} must start lowercase"
            );
        }
        let returned = queries.iter().filter(|q| q["ReturnData"] == true).count();
        assert_eq!(returned, 1, "{id}: exactly one query returns data");
        let periods: BTreeSet<u64> = queries
            .iter()
            .filter_map(|q| as_u64(&q["MetricStat"]["Period"]))
            .collect();
        assert_eq!(periods.len(), 1, "{id}: one period for all metrics");
        for q in queries {
            let expression = match &q["Expression"] {
                Value::String(e) => e.clone(),
                Value::Null => continue,
                other => other["Fn::Sub"].as_str().unwrap_or_default().to_string(),
            };
            // Every identifier that is not a function, a number or a
            // substitution is a query of this alarm.
            let words = expression
                .split(|c: char| {
                    !(c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '{' || c == '}')
                })
                .filter(|w| !w.is_empty() && !w.starts_with('$'));
            for w in words {
                let function = w.chars().all(|c| c.is_ascii_uppercase() || c == '_');
                let number = w.chars().all(|c| c.is_ascii_digit());
                assert!(
                    function || number || ids.contains(&w),
                    "{id}: {w} in `{expression}` is not a query of the alarm"
                );
            }
        }
    }
    assert!(math >= 4, "the metric-math alarms");
}

// ------------------------------------------------------------------ dashboard

/// `${Name}` / `${Name.Attribute}` of a `Fn::Sub` text.
fn sub_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find('}') {
            out.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    out
}

/// The dashboard's body: the `Fn::Sub` text.
fn dashboard_text(t: &Value) -> &str {
    let dashboards = resources_of_type(t, "AWS::CloudWatch::Dashboard");
    assert_eq!(dashboards.len(), 1, "one dashboard");
    dashboards[0].1["Properties"]["DashboardBody"]["Fn::Sub"]
        .as_str()
        .expect("DashboardBody is a !Sub text")
}

/// The dashboard's body as JSON, each `${name}` replaced by
/// `placeholder(name)` (it must keep the text JSON).
fn dashboard_json(t: &Value, placeholder: impl Fn(&str) -> String) -> Value {
    let mut text = dashboard_text(t).to_string();
    for n in sub_names(dashboard_text(t)) {
        text = text.replace(&format!("${{{n}}}"), &placeholder(&n));
    }
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the dashboard body is not JSON: {e}\n{text}"))
}

/// With numbers for the substitutions (some stand where JSON has a number).
fn dashboard(t: &Value) -> Value {
    dashboard_json(t, |_| "1".into())
}

/// `SEARCH('{ns,Dim,…} Dim="v" MetricName="M"', …)` → the metric it finds.
fn search_ref(expression: &str) -> Option<MetricRef> {
    let inner = expression.split("SEARCH('{").nth(1)?;
    let (schema, query) = inner.split_once('}')?;
    let mut schema = schema.split(',').map(str::trim);
    let namespace = schema.next()?.to_string();
    let value_of = |key: &str| {
        query
            .split(&format!("{key}=\""))
            .nth(1)
            .and_then(|v| v.split('"').next())
            .map(str::to_string)
    };
    Some(MetricRef {
        namespace,
        name: value_of("MetricName")?,
        dimensions: schema
            .map(|d| {
                (
                    d.to_string(),
                    value_of(d).map(Value::String).unwrap_or(Value::Null),
                )
            })
            .collect(),
    })
}

/// Every metric of every metric widget.
fn dashboard_metrics(body: &Value) -> Vec<MetricRef> {
    let mut out = Vec::new();
    for w in body["widgets"].as_array().expect("widgets") {
        let Some(metrics) = w["properties"]["metrics"].as_array() else {
            continue;
        };
        for m in metrics {
            let items = m.as_array().expect("a metric is an array");
            if let Some(expression) = items.first().and_then(|i| i["expression"].as_str()) {
                out.push(
                    search_ref(expression)
                        .unwrap_or_else(|| panic!("not a SEARCH expression: {expression}")),
                );
                continue;
            }
            let strings: Vec<&str> = items.iter().map_while(Value::as_str).collect();
            assert!(
                strings.len() >= 2 && strings.len() % 2 == 0,
                "[namespace, name, dim, value, …]: {m}"
            );
            out.push(MetricRef {
                namespace: strings[0].to_string(),
                name: strings[1].to_string(),
                dimensions: strings[2..]
                    .chunks(2)
                    .map(|kv| (kv[0].to_string(), json!(kv[1])))
                    .collect(),
            });
        }
    }
    out
}

#[test]
fn dashboard_is_json_over_template_resources_and_every_alarm() {
    let t = template();
    let text = dashboard_text(&t);
    for n in sub_names(text) {
        let base = n.split('.').next().unwrap_or_default();
        assert!(
            base.starts_with("AWS::")
                || resources(&t).contains_key(base)
                || !t["Parameters"][base].is_null(),
            "the dashboard substitutes ${{{n}}}, which the template does not define"
        );
    }
    let body = dashboard(&t);
    let widgets = body["widgets"].as_array().expect("widgets");
    assert!(widgets.len() >= 10, "{} widgets", widgets.len());
    let listed: Vec<&str> = widgets
        .iter()
        .filter(|w| w["type"] == "alarm")
        .filter_map(|w| w["properties"]["alarms"].as_array())
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(!listed.is_empty(), "an alarm status widget");
    for (id, _) in alarms(&t) {
        assert!(
            text.contains(&format!("\"${{{id}.Arn}}\"")),
            "the dashboard's alarm widget does not show {id}"
        );
    }
    // Metrics of AWS services are tied to this stack's resources: read the
    // body again with each substitution as a `<name>` string.
    let named = dashboard_metrics(&dashboard_json(&t, |n| {
        if t["Parameters"][n].is_object() {
            "1".into()
        } else {
            format!("<{n}>")
        }
    }));
    for m in named.iter().filter(|m| m.namespace.starts_with("AWS/")) {
        assert!(
            m.dimensions
                .iter()
                .any(|(_, v)| v.as_str().is_some_and(|v| v.starts_with('<'))),
            "{m:?} is not tied to a resource of the stack"
        );
    }
    let shows = |namespace: &str, name: &str, value: &str| {
        named.iter().any(|m| {
            m.is(namespace, name) && m.dimensions.iter().any(|(_, v)| v.as_str() == Some(value))
        })
    };
    for (id, _) in functions(&t) {
        for metric in ["Errors", "Throttles", "Duration"] {
            assert!(
                shows("AWS/Lambda", metric, &format!("<{id}>")),
                "the dashboard lacks {id}'s {metric}"
            );
        }
    }
    for (id, _) in resources_of_type(&t, "AWS::SQS::Queue") {
        assert!(
            shows(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                &format!("<{id}.QueueName>")
            ),
            "the dashboard lacks {id}'s depth"
        );
    }
}

#[test]
fn alarms_and_dashboard_read_only_metrics_the_code_emits() {
    let t = template();
    let emitted = emissions();
    let mut problems = Vec::new();
    let mut read = BTreeSet::new();
    for (id, a) in alarms(&t) {
        for m in alarm_metrics(a) {
            if let Err(e) = check_emitted(&emitted, &m) {
                problems.push(format!("alarm {id}: {e}"));
            }
            read.insert(m.name.clone());
        }
    }
    for m in dashboard_metrics(&dashboard(&t)) {
        if let Err(e) = check_emitted(&emitted, &m) {
            problems.push(format!("dashboard: {e}"));
        }
        read.insert(m.name.clone());
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // What issue #7 asks the dashboard and alarms to show.
    for name in [
        "EventsReceived",
        "DeliveriesRejected",
        "EventsSkipped",
        "RecordsWritten",
        "RecordsSkipped",
        "RecordsArchived",
        "HubSpotCalls",
        "HubSpot429s",
        "TokenRefreshFailures",
        "ConnectionsNeedsReauth",
        "ReconcileDrift",
        "ReconcileDuration",
        "ApproximateNumberOfMessagesVisible",
    ] {
        assert!(
            read.contains(name),
            "neither an alarm nor the dashboard shows {name}"
        );
    }
}

#[test]
fn the_emitted_metric_check_rejects_what_the_code_does_not_emit() {
    let emitted = emissions();
    let m = |name: &str, dims: &[(&str, &str)]| MetricRef {
        namespace: "hubsync".into(),
        name: name.into(),
        dimensions: dims
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect(),
    };
    let worker = ("Function", "record-upsert");
    assert!(check_emitted(&emitted, &m("RecordsWritten", &[worker])).is_ok());
    assert!(check_emitted(&emitted, &m("RecordsWriten", &[worker])).is_err());
    assert!(check_emitted(
        &emitted,
        &m("RecordsWritten", &[("Function", "recordupsert")])
    )
    .is_err());
    assert!(check_emitted(&emitted, &m("RecordsWritten", &[])).is_err());
    // Exact dimension sets: per portal, or not at all.
    assert!(check_emitted(&emitted, &m("HubSpotCalls", &[worker, ("PortalId", "1")])).is_ok());
    assert!(check_emitted(&emitted, &m("HubSpotCalls", &[worker])).is_err());
    assert!(check_emitted(&emitted, &m("RecordsWritten", &[worker, ("PortalId", "1")])).is_err());
    // Constants resolved through paths (`crate::handler::FUNCTION`).
    assert!(check_emitted(
        &emitted,
        &m("NightlyJobsQueued", &[("Function", "reconcile")])
    )
    .is_ok());
    let search = search_ref(
        "SEARCH('{hubsync,Function,Reason} Function=\"webhook-intake\" MetricName=\"DeliveriesRejected\"', 'Sum', 300)",
    )
    .expect("a SEARCH");
    assert_eq!(search.name, "DeliveriesRejected");
    assert_eq!(search.dimension("Function"), Some(&json!("webhook-intake")));
    assert!(check_emitted(&emitted, &search).is_ok());
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
