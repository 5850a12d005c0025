//! One change of a DynamoDB stream, whichever way it arrived (a Lambda
//! stream event, or the local runner reading the stream itself): the event
//! name, the sequence number and the old and new images in DynamoDB's JSON
//! form (`{"S": "…"}`, `{"N": "…"}`, `{"BOOL": true}`, …).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// An item image: attribute name → DynamoDB JSON value.
pub type Image = BTreeMap<String, Value>;

/// What happened to the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Modify,
    Remove,
}

impl ChangeKind {
    /// From the stream's `eventName`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "INSERT" => Some(Self::Insert),
            "MODIFY" => Some(Self::Modify),
            "REMOVE" => Some(Self::Remove),
            _ => None,
        }
    }
}

/// Which table the stream belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Records,
    Control,
}

/// One stream record.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamChange {
    pub table: Table,
    pub kind: ChangeKind,
    /// The stream's sequence number (what a partial batch failure names).
    pub sequence: String,
    /// When DynamoDB made the change (to the second).
    pub at: DateTime<Utc>,
    pub old: Option<Image>,
    pub new: Option<Image>,
}

/// Typed reads of an image's attributes.
pub trait Attr {
    fn s(&self, name: &str) -> Option<&str>;
    fn n<T: std::str::FromStr>(&self, name: &str) -> Option<T>;
    fn flag(&self, name: &str) -> bool;
}

impl Attr for Image {
    fn s(&self, name: &str) -> Option<&str> {
        self.get(name)?.get("S")?.as_str()
    }

    fn n<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.get(name)?.get("N")?.as_str()?.parse().ok()
    }

    fn flag(&self, name: &str) -> bool {
        self.get(name)
            .and_then(|v| v.get("BOOL"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// NULL, `false` and absent are the same to the application (an active
/// record carries `archived = false`; a new one has no "before").
pub fn is_null(v: Option<&Value>) -> bool {
    match v {
        None => true,
        Some(v) => v.get("NULL").is_some() || v.get("BOOL") == Some(&Value::Bool(false)),
    }
}

/// The image of an item in DynamoDB's JSON form, from a Lambda stream
/// event's `serde_dynamo` item.
pub fn from_lambda_item(item: &serde_dynamo::Item) -> Image {
    match serde_json::to_value(item) {
        Ok(Value::Object(m)) => m.into_iter().collect(),
        _ => Image::new(),
    }
}
