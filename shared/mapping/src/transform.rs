//! Transforms: how one app field is computed from one or more HubSpot
//! property values (always strings or null).
//!
//! Every transform is total: it returns an [`Output`] — the value (JSON
//! `null` when there is none) and, when the input was bad, the
//! [`ConvError`] to report as a field error. Nothing panics and a bad value
//! never affects other fields. Empty or whitespace-only input means "no
//! value" for every transform.
//!
//! | transform | JSON value | input |
//! |---|---|---|
//! | `string` | string | trimmed text |
//! | `enumeration` | string | trimmed, matched case-insensitively against the known values and normalised to their spelling; an unknown value is **kept** (trimmed) and reported |
//! | `integer` | number | integral decimal fitting `i64` (`"250.0"` ok, `"2.5"` not) |
//! | `count` | number | as `integer`, non-negative |
//! | `decimal` | string (normalised: `"1000.5"`) | exact decimal, no separators/exponents |
//! | `probability` | number | decimal in `[0, 1]` |
//! | `cents` | number | money amount → integer cents, banker's rounding below a cent |
//! | `date` | string `YYYY-MM-DD` | a date, a date-time (its UTC date) or epoch ms |
//! | `datetime` | string RFC 3339 ms `Z` | ISO-8601, date-only (midnight UTC) or epoch ms |
//! | `boolean` | bool | `true`/`false` (also `yes`/`no`, `1`/`0`), case-insensitive |
//! | `concat` | string | the non-empty trimmed inputs joined by `separator` |
//! | `owner_email`, `owner_name` | string | an owner id, resolved with the portal's owners |
//! | `pipeline_label`, `stage_label` | string | a pipeline / deal stage id, resolved with the portal's pipelines |
//! | `email` | string | an address (contacts' required field) |

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::values::{
    non_empty, parse_cents, parse_count, parse_decimal, parse_email, parse_probability, parse_text,
    parse_timestamp, ConvError, ValueKind,
};
use hubsync_hubspot::{Owners, Pipelines};

/// What transforms resolve ids with: the portal's owners and pipelines
/// (`None`: not loaded — a rule that needs them reports an error).
#[derive(Debug, Clone, Copy, Default)]
pub struct Lookups<'a> {
    pub owners: Option<&'a Owners>,
    pub pipelines: Option<&'a Pipelines>,
}

/// How a rule turns its source values into the app field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    /// Trimmed text.
    String,
    /// A picklist value. `values` are the known option values (filled from
    /// HubSpot's property definition when the config is validated; empty =
    /// accept any value as is).
    Enumeration {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        values: Vec<String>,
    },
    /// A signed integer.
    Integer,
    /// A non-negative integer.
    Count,
    /// An exact decimal.
    Decimal,
    /// A decimal in `[0, 1]`.
    Probability,
    /// A money amount in integer cents.
    Cents,
    /// A calendar date (`YYYY-MM-DD`).
    Date,
    /// A UTC instant.
    Datetime,
    /// A checkbox.
    Boolean,
    /// Several properties joined (e.g. first and last name).
    Concat {
        #[serde(default = "default_separator")]
        separator: String,
    },
    /// An owner id → the owner's email.
    OwnerEmail,
    /// An owner id → the owner's full name.
    OwnerName,
    /// A pipeline id → the pipeline's label (Pipelines API).
    PipelineLabel,
    /// A deal stage id → the stage's label (Pipelines API).
    StageLabel,
    /// An email address.
    Email,
}

fn default_separator() -> String {
    " ".to_owned()
}

impl Transform {
    /// Its name in configs and messages.
    pub fn name(&self) -> &'static str {
        match self {
            Transform::String => "string",
            Transform::Enumeration { .. } => "enumeration",
            Transform::Integer => "integer",
            Transform::Count => "count",
            Transform::Decimal => "decimal",
            Transform::Probability => "probability",
            Transform::Cents => "cents",
            Transform::Date => "date",
            Transform::Datetime => "datetime",
            Transform::Boolean => "boolean",
            Transform::Concat { .. } => "concat",
            Transform::OwnerEmail => "owner_email",
            Transform::OwnerName => "owner_name",
            Transform::PipelineLabel => "pipeline_label",
            Transform::StageLabel => "stage_label",
            Transform::Email => "email",
        }
    }

    /// The kind of value it expects (for field errors).
    pub fn value_kind(&self) -> ValueKind {
        match self {
            Transform::String | Transform::Concat { .. } => ValueKind::Text,
            Transform::Enumeration { .. } => ValueKind::Enumeration,
            Transform::Integer | Transform::Count => ValueKind::Integer,
            Transform::Decimal => ValueKind::Decimal,
            Transform::Probability => ValueKind::Probability,
            Transform::Cents => ValueKind::Money,
            Transform::Date => ValueKind::Date,
            Transform::Datetime => ValueKind::Timestamp,
            Transform::Boolean => ValueKind::Boolean,
            Transform::OwnerEmail | Transform::OwnerName => ValueKind::Owner,
            Transform::PipelineLabel | Transform::StageLabel => ValueKind::Pipeline,
            Transform::Email => ValueKind::Email,
        }
    }

    /// Whether it reads several properties (only `concat`).
    pub fn takes_many(&self) -> bool {
        matches!(self, Transform::Concat { .. })
    }

    /// Whether it needs the portal's owners.
    pub fn needs_owners(&self) -> bool {
        matches!(self, Transform::OwnerEmail | Transform::OwnerName)
    }

    /// Whether it needs the portal's pipelines.
    pub fn needs_pipelines(&self) -> bool {
        matches!(self, Transform::PipelineLabel | Transform::StageLabel)
    }

    /// Whether it fits a HubSpot property: its type (`string`, `number`,
    /// `date`, `datetime`, `enumeration`, `bool`, `phone_number`, …), field
    /// type, and for owners and pipelines what its values are.
    pub fn fits(&self, def: &hubsync_hubspot::PropertyDefinition) -> bool {
        let (prop_type, field_type) = (def.prop_type.as_str(), def.field_type.as_str());
        let textual = matches!(prop_type, "string" | "phone_number" | "enumeration");
        match self {
            // Any value can be kept as text.
            Transform::String | Transform::Concat { .. } => true,
            Transform::Enumeration { .. } => matches!(prop_type, "enumeration" | "bool"),
            Transform::Integer
            | Transform::Count
            | Transform::Decimal
            | Transform::Probability
            | Transform::Cents => prop_type == "number",
            Transform::Date | Transform::Datetime => matches!(prop_type, "date" | "datetime"),
            Transform::Boolean => {
                prop_type == "bool"
                    || (prop_type == "enumeration" && field_type == "booleancheckbox")
            }
            Transform::OwnerEmail | Transform::OwnerName => def.is_owner(),
            Transform::PipelineLabel => def.name == "pipeline",
            Transform::StageLabel => def.name == "dealstage",
            Transform::Email => textual,
        }
    }

    /// Apply to the rule's source values (in the rule's order).
    pub fn apply(&self, inputs: &[Option<&str>], lookups: Lookups<'_>) -> Output {
        let first = inputs.first().copied().flatten();
        match self {
            Transform::String => Output::ok(opt_str(parse_text(first))),
            Transform::Enumeration { values } => enumeration(first, values),
            Transform::Integer => from_result(parse_integer(first), Value::from),
            Transform::Count => from_result(parse_count(first), Value::from),
            Transform::Decimal => from_result(parse_decimal(first), decimal_value),
            Transform::Probability => from_result(parse_probability(first), number_value),
            Transform::Cents => from_result(parse_cents(first), |c| Value::from(c.get())),
            Transform::Date => from_result(parse_date(first), |d| {
                Value::String(d.format("%Y-%m-%d").to_string())
            }),
            Transform::Datetime => from_result(parse_timestamp(first.unwrap_or("")), |t| {
                Value::String(t.to_rfc3339())
            }),
            Transform::Boolean => from_result(parse_bool(first), Value::Bool),
            Transform::Concat { separator } => {
                let parts: Vec<&str> = inputs.iter().filter_map(|s| non_empty(*s)).collect();
                if parts.is_empty() {
                    Output::ok(Value::Null)
                } else {
                    Output::ok(Value::String(parts.join(separator)))
                }
            }
            Transform::OwnerEmail | Transform::OwnerName => {
                let Some(id) = non_empty(first) else {
                    return Output::ok(Value::Null);
                };
                let Some(owners) = lookups.owners else {
                    return Output::err(ConvError::OwnersUnavailable);
                };
                match owners.get(id) {
                    Some(o) => {
                        let v = if *self == Transform::OwnerEmail {
                            o.email.clone()
                        } else {
                            o.name.clone()
                        };
                        Output::ok(opt_str(v))
                    }
                    None => Output::err(ConvError::UnknownOwner),
                }
            }
            Transform::PipelineLabel | Transform::StageLabel => {
                let Some(id) = non_empty(first) else {
                    return Output::ok(Value::Null);
                };
                let Some(pipelines) = lookups.pipelines else {
                    return Output::err(ConvError::PipelinesUnavailable);
                };
                let label = if *self == Transform::PipelineLabel {
                    pipelines.pipeline_label(id)
                } else {
                    pipelines.stage_label(id)
                };
                match label {
                    Some(l) => Output::ok(Value::String(l.to_owned())),
                    None => Output::err(ConvError::UnknownPipelineValue),
                }
            }
            Transform::Email => from_result(parse_email(first), Value::String),
        }
    }
}

/// A transform's result: the value (`null` for none) and the error to
/// report, if any. An unknown enumeration value has both.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub value: Value,
    pub error: Option<ConvError>,
}

impl Output {
    fn ok(value: Value) -> Self {
        Self { value, error: None }
    }

    fn err(e: ConvError) -> Self {
        Self {
            value: Value::Null,
            error: Some(e),
        }
    }
}

fn opt_str(s: Option<String>) -> Value {
    s.map(Value::String).unwrap_or(Value::Null)
}

fn decimal_value(d: Decimal) -> Value {
    Value::String(d.normalize().to_string())
}

/// A decimal in `[0, 1]` as a JSON number (HubSpot's probabilities have a
/// few digits: the nearest `f64` is what an application reads); `0` and `1`
/// as integers, the way DynamoDB gives them back.
fn number_value(d: Decimal) -> Value {
    use rust_decimal::prelude::ToPrimitive;
    let d = d.normalize();
    if d.fract().is_zero() {
        return d.to_i64().map(Value::from).unwrap_or(Value::Null);
    }
    d.to_f64()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn from_result<T>(r: Result<Option<T>, ConvError>, f: impl FnOnce(T) -> Value) -> Output {
    match r {
        Ok(Some(v)) => Output::ok(f(v)),
        Ok(None) => Output::ok(Value::Null),
        Err(e) => Output::err(e),
    }
}

fn enumeration(raw: Option<&str>, values: &[String]) -> Output {
    let Some(s) = non_empty(raw) else {
        return Output::ok(Value::Null);
    };
    if values.is_empty() {
        return Output::ok(Value::String(s.to_owned()));
    }
    match values.iter().find(|v| v.trim().eq_ignore_ascii_case(s)) {
        Some(known) => Output::ok(Value::String(known.trim().to_owned())),
        None => Output {
            value: Value::String(s.to_owned()),
            error: Some(ConvError::UnknownEnumValue),
        },
    }
}

/// A signed integer: an integral plain decimal that fits `i64`.
pub fn parse_integer(raw: Option<&str>) -> Result<Option<i64>, ConvError> {
    use rust_decimal::prelude::ToPrimitive;
    let Some(d) = parse_decimal(raw)? else {
        return Ok(None);
    };
    if !d.fract().is_zero() {
        return Err(ConvError::NotAnInteger);
    }
    d.to_i64()
        .map(Some)
        .ok_or(ConvError::OutOfRange("integer does not fit in i64"))
}

/// A date: `YYYY-MM-DD`, or any instant [`parse_timestamp`] accepts (its
/// UTC date). Years outside 1..=9999 are out of range.
pub fn parse_date(raw: Option<&str>) -> Result<Option<NaiveDate>, ConvError> {
    Ok(parse_timestamp(raw.unwrap_or(""))?.map(|t| t.as_datetime().date_naive()))
}

/// A boolean: `true`/`false`, `yes`/`no`, `1`/`0` (case-insensitive).
pub fn parse_bool(raw: Option<&str>) -> Result<Option<bool>, ConvError> {
    let Some(s) = non_empty(raw) else {
        return Ok(None);
    };
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(Some(true)),
        "false" | "no" | "0" => Ok(Some(false)),
        _ => Err(ConvError::NotABoolean),
    }
}

#[cfg(test)]
mod tests;
