//! `template.yaml` as CloudFormation reads it, and the helpers the static
//! checks of the template share (`template_infra`, `template_alarms`,
//! `template_admin`): what `cfn-lint` and `sam validate` cannot know about
//! hubsync.
//!
//! The template uses CloudFormation's short-form intrinsics (`!Ref`, `!Sub`,
//! `!GetAtt`, ...). A generic YAML loader would drop those tags, so the
//! template is read from `yaml-rust2`'s event stream into JSON with the long
//! forms (`{"Ref": …}`, `{"Fn::GetAtt": [resource, attribute]}`), exactly
//! what CloudFormation sees.

use std::path::PathBuf;

use serde_json::{json, Map, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

// ------------------------------------------------------------------ loading

pub(crate) fn workspace_root() -> PathBuf {
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
pub(crate) fn intrinsic(tag: &Tag, value: Value) -> Result<Value, String> {
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
pub(crate) fn plain_scalar(s: &str) -> Value {
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

pub(crate) fn cfn_yaml_to_json(text: &str) -> Result<Value, String> {
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
pub(crate) fn statements(v: &Value, path: &str, out: &mut Vec<(String, Value)>) {
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

pub(crate) fn all_statements(t: &Value) -> Vec<(String, Value)> {
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

pub(crate) fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// A function's property, falling back to `Globals.Function`.
pub(crate) fn function_property<'a>(t: &'a Value, function: &'a Value, name: &str) -> &'a Value {
    match &function["Properties"][name] {
        Value::Null => &t["Globals"]["Function"][name],
        v => v,
    }
}

/// Every SQS event source mapping: (function id, function, mapping
/// properties, queue resource id). The template declares them as
/// `AWS::Lambda::EventSourceMapping` resources, not SAM `SQS` events (which
/// would attach `AWSLambdaSQSQueueExecutionRole`, granting on every queue).
pub(crate) fn sqs_sources(t: &Value) -> Vec<(&String, &Value, &Value, &str)> {
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
