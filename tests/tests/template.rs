//! Static checks of `template.yaml`: what `cfn-lint` and `sam validate`
//! cannot know about hubsync. No IAM statement grants every action, every
//! function is built by cargo-lambda from a crate that exists, the worker
//! reports partial batch failures, its queue redrives to a DLQ and hides
//! messages for at least six worker timeouts, every variable a function
//! requires at start-up is set, and the token key is usable only by the
//! functions that need it.
//!
//! The template uses CloudFormation's short-form intrinsics (`!Ref`, `!Sub`,
//! `!GetAtt`, ...). A generic YAML loader would drop those tags, so the
//! template is read from `yaml-rust2`'s event stream into JSON with the long
//! forms (`{"Ref": …}`, `{"Fn::GetAtt": [resource, attribute]}`), exactly
//! what CloudFormation sees.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{json, Map, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

// ------------------------------------------------------------------ loading

fn workspace_root() -> PathBuf {
    hubsync_testkit::workspace_root()
}

/// `template.yaml` as CloudFormation sees it (long-form intrinsics).
fn template() -> Value {
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

fn resources(t: &Value) -> &Map<String, Value> {
    t["Resources"].as_object().expect("Resources is a mapping")
}

fn resources_of_type<'a>(t: &'a Value, ty: &str) -> Vec<(&'a String, &'a Value)> {
    resources(t)
        .iter()
        .filter(|(_, r)| r["Type"] == ty)
        .collect()
}

fn functions(t: &Value) -> Vec<(&String, &Value)> {
    let found = resources_of_type(t, "AWS::Serverless::Function");
    assert!(!found.is_empty(), "the template defines no function");
    found
}

/// A string or a list of strings, as IAM allows for Action and Resource.
fn strings(v: &Value) -> Vec<&str> {
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
fn ref_name(v: &Value) -> Option<&str> {
    v.get("Ref").and_then(Value::as_str)
}

/// `{"Fn::GetAtt": [resource, attribute]}` → (resource, attribute).
fn get_att(v: &Value) -> Option<(&str, &str)> {
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

/// Every SQS event source: (function id, function, event properties).
fn sqs_sources(t: &Value) -> Vec<(&String, &Value, &Value)> {
    let mut out = Vec::new();
    for (id, f) in functions(t) {
        if let Some(events) = f["Properties"]["Events"].as_object() {
            for event in events.values().filter(|e| e["Type"] == "SQS") {
                out.push((id, f, &event["Properties"]));
            }
        }
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
    for (id, f, event) in sources {
        assert!(
            strings(&event["FunctionResponseTypes"]).contains(&"ReportBatchItemFailures"),
            "{id}: without ReportBatchItemFailures one failed message retries the whole batch"
        );
        let batch = as_u64(&event["BatchSize"]).unwrap_or(10);
        if batch > 10 {
            assert!(
                as_u64(&event["MaximumBatchingWindowInSeconds"]).unwrap_or(0) >= 1,
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
    for (id, _, event) in sqs_sources(&t) {
        let (queue, _) = get_att(&event["Queue"])
            .unwrap_or_else(|| panic!("{id}: the SQS event's Queue is not !GetAtt <queue>.Arn"));
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
    for (id, f, event) in sqs_sources(&t) {
        let (queue, _) = get_att(&event["Queue"]).expect("Queue is !GetAtt <queue>.Arn");
        let visibility = as_u64(&res[queue]["Properties"]["VisibilityTimeout"]).unwrap_or(30);
        let timeout = as_u64(function_property(&t, f, "Timeout")).unwrap_or(3);
        assert!(
            visibility >= 6 * timeout,
            "{queue}: VisibilityTimeout {visibility} s < 6 x {id}'s Timeout {timeout} s"
        );
    }
}

/// The variables a function's crate requires at start-up
/// (`required_env("…")` in its sources, plus the tables when it builds a
/// store from the environment).
fn required_variables(binary: &str) -> BTreeSet<String> {
    let src = workspace_root().join("functions").join(binary).join("src");
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display())) {
        let path = entry.expect("directory entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read a source file");
        let mut rest = text.as_str();
        while let Some(i) = rest.find("required_env(\"") {
            rest = &rest[i + "required_env(\"".len()..];
            if let Some(end) = rest.find('"') {
                names.insert(rest[..end].to_string());
            }
        }
        if text.contains("StoreConfig::from_env") {
            names.insert("HUBSYNC_RECORDS_TABLE".into());
            names.insert("HUBSYNC_CONTROL_TABLE".into());
        }
    }
    names
}

#[test]
fn every_variable_a_function_requires_is_set() {
    let t = template();
    let globals = &t["Globals"]["Function"]["Environment"]["Variables"];
    for (id, f) in functions(&t) {
        let binary = f["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("a binary name");
        let own = &f["Properties"]["Environment"]["Variables"];
        let required = required_variables(binary);
        assert!(!required.is_empty(), "{binary}: no required_env found");
        for name in required {
            assert!(
                !own[&name].is_null() || !globals[&name].is_null(),
                "{id}: {name} is required by {binary} but not set"
            );
        }
    }
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
    for s in policy.as_array().expect("key policy statements") {
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
