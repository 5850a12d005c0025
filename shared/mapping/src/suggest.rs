//! "Suggest mappings": given the application's fields (name, label, type),
//! rank a portal's HubSpot properties by name and label similarity and type
//! compatibility, and say per field whether it is auto-mapped (high
//! confidence), suggested (candidates with scores) or unmapped.
//! Deterministic and explainable: every candidate carries the parts of its
//! score. No external service.
//!
//! A candidate must have a compatible type (an incompatible property is
//! never proposed). Its score is the better of its name similarity and
//! [`LABEL_WEIGHT`] × its label similarity (normalised: lower case, words
//! split on `_`, `-`, spaces and camelCase, HubSpot's `hs_` prefix dropped;
//! an exact normalised match is 1, otherwise the mean of word overlap and
//! character similarity). Only a name match can reach the auto-map
//! threshold: a label alone makes a suggestion for a person to confirm.

use std::collections::BTreeSet;

use hubsync_hubspot::PropertyDefinition;
use serde::{Deserialize, Serialize};

use crate::Transform;

/// At or above: auto-mapped.
pub const AUTO_THRESHOLD: f64 = 0.9;
/// At or above (and below [`AUTO_THRESHOLD`]): suggested.
pub const SUGGEST_THRESHOLD: f64 = 0.5;
/// How much a label match counts (below [`AUTO_THRESHOLD`] even when
/// exact).
pub const LABEL_WEIGHT: f64 = 0.85;
/// Candidates returned per suggested field.
pub const MAX_CANDIDATES: usize = 3;

/// The application's field types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Email,
    Integer,
    Decimal,
    Money,
    Date,
    Datetime,
    Boolean,
    Enumeration,
    /// A HubSpot owner (stored as the owner's email).
    Owner,
}

impl FieldType {
    /// The transform a rule for this type uses.
    pub fn transform(self) -> Transform {
        match self {
            FieldType::String => Transform::String,
            FieldType::Email => Transform::Email,
            FieldType::Integer => Transform::Integer,
            FieldType::Decimal => Transform::Decimal,
            FieldType::Money => Transform::Cents,
            FieldType::Date => Transform::Date,
            FieldType::Datetime => Transform::Datetime,
            FieldType::Boolean => Transform::Boolean,
            FieldType::Enumeration => Transform::Enumeration { values: Vec::new() },
            FieldType::Owner => Transform::OwnerEmail,
        }
    }
}

/// One field of the application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppField {
    pub name: String,
    #[serde(default)]
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
}

/// A proposed property and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub property: String,
    pub label: String,
    pub score: f64,
    pub name_similarity: f64,
    pub label_similarity: f64,
    pub type_compatible: bool,
}

/// The verdict for one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    AutoMapped,
    Suggested,
    Unmapped,
}

/// One field's suggestion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    pub field: String,
    pub verdict: Verdict,
    /// The best candidates, best first (empty when unmapped).
    pub candidates: Vec<Candidate>,
    /// The rule to save for an auto-mapped or accepted field.
    pub transform: Transform,
}

fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase() || c.is_numeric();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    if out.first().is_some_and(|w| w == "hs") && out.len() > 1 {
        out.remove(0);
    }
    out
}

fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Similarity of two names or labels in [0, 1].
pub fn similarity(a: &str, b: &str) -> f64 {
    let (wa, wb) = (words(a), words(b));
    if wa.is_empty() || wb.is_empty() {
        return 0.0;
    }
    let (ja, jb) = (wa.concat(), wb.concat());
    if ja == jb {
        return 1.0;
    }
    let sa: BTreeSet<&String> = wa.iter().collect();
    let sb: BTreeSet<&String> = wb.iter().collect();
    let overlap = sa.intersection(&sb).count() as f64 / sa.union(&sb).count() as f64;
    let (ca, cb): (Vec<char>, Vec<char>) = (ja.chars().collect(), jb.chars().collect());
    let chars = 1.0 - levenshtein(&ca, &cb) as f64 / ca.len().max(cb.len()) as f64;
    (overlap + chars) / 2.0
}

/// Whether a HubSpot property can feed an app field of `t`.
pub fn compatible(t: FieldType, p: &PropertyDefinition) -> bool {
    let ty = p.prop_type.as_str();
    match t {
        FieldType::String => matches!(ty, "string" | "enumeration" | "phone_number"),
        FieldType::Email => ty == "string",
        FieldType::Integer | FieldType::Decimal | FieldType::Money => ty == "number",
        FieldType::Date | FieldType::Datetime => matches!(ty, "date" | "datetime"),
        FieldType::Boolean => {
            ty == "bool" || (ty == "enumeration" && p.field_type == "booleancheckbox")
        }
        FieldType::Enumeration => ty == "enumeration",
        FieldType::Owner => p.is_owner(),
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Suggests a property for each of `fields` among `properties`.
pub fn suggest(fields: &[AppField], properties: &[PropertyDefinition]) -> Vec<Suggestion> {
    fields
        .iter()
        .map(|f| {
            let label = if f.label.is_empty() {
                &f.name
            } else {
                &f.label
            };
            let mut candidates: Vec<Candidate> = properties
                .iter()
                .filter(|p| compatible(f.field_type, p))
                .map(|p| {
                    let name_similarity = similarity(&f.name, &p.name);
                    let plabel = if p.label.is_empty() {
                        &p.name
                    } else {
                        &p.label
                    };
                    let label_similarity = similarity(label, plabel);
                    Candidate {
                        property: p.name.clone(),
                        label: p.label.clone(),
                        score: round(name_similarity.max(LABEL_WEIGHT * label_similarity)),
                        name_similarity: round(name_similarity),
                        label_similarity: round(label_similarity),
                        type_compatible: true,
                    }
                })
                .filter(|c| c.score >= SUGGEST_THRESHOLD)
                .collect();
            // Best first; ties by the closer name, then by name (stable).
            candidates.sort_by(|a, b| {
                b.score
                    .total_cmp(&a.score)
                    .then(b.name_similarity.total_cmp(&a.name_similarity))
                    .then(a.property.cmp(&b.property))
            });
            candidates.truncate(MAX_CANDIDATES);
            let verdict = match candidates.first() {
                Some(c) if c.score >= AUTO_THRESHOLD => Verdict::AutoMapped,
                Some(_) => Verdict::Suggested,
                None => Verdict::Unmapped,
            };
            if verdict == Verdict::AutoMapped {
                candidates.truncate(1);
            }
            Suggestion {
                field: f.name.clone(),
                verdict,
                candidates,
                transform: f.field_type.transform(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_case_and_separators_and_drop_hs() {
        assert_eq!(words("hs_lead_status"), ["lead", "status"]);
        assert_eq!(words("annualRevenue"), ["annual", "revenue"]);
        assert_eq!(words("Close Date"), ["close", "date"]);
        assert_eq!(words("hs"), ["hs"]);
        assert_eq!(similarity("closedate", "Close Date"), 1.0);
        assert_eq!(similarity("", "x"), 0.0);
        assert!(similarity("company_name", "name") > 0.4);
    }
}
