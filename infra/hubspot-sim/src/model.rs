//! Compact record storage, object types, property definitions.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

mod properties;
pub use properties::*;

/// The three CRM object types the simulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectType {
    #[serde(alias = "company", alias = "COMPANY", alias = "0-2")]
    Companies,
    #[serde(alias = "contact", alias = "CONTACT", alias = "0-1")]
    Contacts,
    #[serde(alias = "deal", alias = "DEAL", alias = "0-3")]
    Deals,
}

impl ObjectType {
    pub const ALL: [ObjectType; 3] = [Self::Companies, Self::Contacts, Self::Deals];

    /// Accepts HubSpot's spellings: `companies`, `company`, `0-2`, …
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "companies" | "company" | "0-2" => Some(Self::Companies),
            "contacts" | "contact" | "0-1" => Some(Self::Contacts),
            "deals" | "deal" | "0-3" => Some(Self::Deals),
            _ => None,
        }
    }

    pub fn index(self) -> usize {
        match self {
            Self::Companies => 0,
            Self::Contacts => 1,
            Self::Deals => 2,
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Self::Companies => "companies",
            Self::Contacts => "contacts",
            Self::Deals => "deals",
        }
    }

    /// Used in `subscriptionType` (`company.creation`).
    pub fn singular(self) -> &'static str {
        match self {
            Self::Companies => "company",
            Self::Contacts => "contact",
            Self::Deals => "deal",
        }
    }

    /// HubSpot's object type id (`0-2`), in generic webhook events.
    pub fn object_type_id(self) -> &'static str {
        match self {
            Self::Companies => "0-2",
            Self::Contacts => "0-1",
            Self::Deals => "0-3",
        }
    }

    /// Used in error messages and association types (`COMPANY`).
    pub fn upper(self) -> &'static str {
        match self {
            Self::Companies => "COMPANY",
            Self::Contacts => "CONTACT",
            Self::Deals => "DEAL",
        }
    }

    /// The property HubSpot's search filters on for "modified since".
    pub fn modified_property(self) -> &'static str {
        match self {
            Self::Contacts => "lastmodifieddate",
            _ => "hs_lastmodifieddate",
        }
    }

    /// Properties HubSpot returns even when a request names others.
    pub fn always_properties(self) -> [&'static str; 3] {
        ["createdate", self.modified_property(), "hs_object_id"]
    }

    /// Requested names plus [`Self::always_properties`]; the default set when none requested.
    pub fn effective_properties(self, requested: &[String]) -> Vec<String> {
        if requested.is_empty() {
            return self
                .default_properties()
                .iter()
                .map(|s| s.to_string())
                .collect();
        }
        let mut v = requested.to_vec();
        for a in self.always_properties() {
            if !v.iter().any(|n| n == a) {
                v.push(a.to_string());
            }
        }
        v
    }

    /// Properties returned when a request names none.
    pub fn default_properties(self) -> &'static [&'static str] {
        match self {
            Self::Companies => &[
                "createdate",
                "domain",
                "hs_lastmodifieddate",
                "hs_object_id",
                "name",
            ],
            Self::Contacts => &[
                "createdate",
                "email",
                "firstname",
                "hs_object_id",
                "lastmodifieddate",
                "lastname",
            ],
            Self::Deals => &[
                "amount",
                "closedate",
                "createdate",
                "dealname",
                "dealstage",
                "hs_lastmodifieddate",
                "hs_object_id",
                "pipeline",
            ],
        }
    }
}

/// How a property name resolves for one object type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropRef {
    /// `hs_object_id`
    Id,
    /// `createdate`
    Created,
    /// `hs_lastmodifieddate` / `lastmodifieddate`
    Modified,
    /// Stored value, interned index.
    Stored(u16),
}

/// Whether a property name is derived from record metadata.
pub fn derived_prop(ty: ObjectType, name: &str) -> Option<PropRef> {
    match name {
        "hs_object_id" => Some(PropRef::Id),
        "createdate" => Some(PropRef::Created),
        "hs_lastmodifieddate" => Some(PropRef::Modified),
        "lastmodifieddate" if ty == ObjectType::Contacts => Some(PropRef::Modified),
        _ => None,
    }
}

/// Property-name interner shared by all portals and types (indexes fit a u16).
#[derive(Debug, Default)]
pub struct Interner {
    names: Vec<Arc<str>>,
    map: HashMap<Arc<str>, u16>,
}

impl Interner {
    pub fn get(&self, name: &str) -> Option<u16> {
        self.map.get(name).copied()
    }

    pub fn intern(&mut self, name: &str) -> u16 {
        if let Some(i) = self.map.get(name) {
            return *i;
        }
        let idx = u16::try_from(self.names.len()).unwrap_or(u16::MAX);
        let a: Arc<str> = Arc::from(name);
        self.names.push(a.clone());
        self.map.insert(a, idx);
        idx
    }

    pub fn name(&self, idx: u16) -> Option<&str> {
        self.names.get(idx as usize).map(|s| &**s)
    }
}

/// Property values packed in one allocation: repeated `[idx u16][len u32][utf8 bytes]`,
/// sorted by idx. Absent = null.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PropBlob(Box<[u8]>);

impl PropBlob {
    pub fn from_pairs(pairs: &mut [(u16, &str)]) -> Self {
        pairs.sort_by_key(|p| p.0);
        let len: usize = pairs.iter().map(|(_, v)| 6 + v.len()).sum();
        let mut buf = Vec::with_capacity(len);
        let mut last: Option<u16> = None;
        for (idx, v) in pairs.iter() {
            if last == Some(*idx) {
                continue;
            }
            last = Some(*idx);
            buf.extend_from_slice(&idx.to_le_bytes());
            buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
            buf.extend_from_slice(v.as_bytes());
        }
        Self(buf.into_boxed_slice())
    }

    pub fn iter(&self) -> PropIter<'_> {
        PropIter {
            buf: &self.0,
            pos: 0,
        }
    }

    pub fn get(&self, idx: u16) -> Option<&str> {
        self.iter().find(|(i, _)| *i == idx).map(|(_, v)| v)
    }

    /// Sets (or clears with `None`) one value; returns whether it changed.
    pub fn set(&mut self, idx: u16, value: Option<&str>) -> bool {
        if self.get(idx) == value {
            return false;
        }
        let mut pairs: Vec<(u16, &str)> = self.iter().filter(|(i, _)| *i != idx).collect();
        if let Some(v) = value {
            pairs.push((idx, v));
        }
        let new = Self::from_pairs(&mut pairs);
        *self = new;
        true
    }

    pub fn heap_bytes(&self) -> usize {
        self.0.len()
    }
}

pub struct PropIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for PropIter<'a> {
    type Item = (u16, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        let b = self.buf;
        let p = self.pos;
        if p + 6 > b.len() {
            return None;
        }
        let idx = u16::from_le_bytes([b[p], b[p + 1]]);
        let len = u32::from_le_bytes([b[p + 2], b[p + 3], b[p + 4], b[p + 5]]) as usize;
        let end = (p + 6 + len).min(b.len());
        self.pos = end;
        let s = std::str::from_utf8(&b[p + 6..end]).unwrap_or("");
        Some((idx, s))
    }
}

/// One CRM object. ~56 bytes + one heap blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub created_ms: i64,
    pub updated_ms: i64,
    pub archived_ms: Option<i64>,
    /// Its last modification before it was archived: what a search index
    /// that has not caught up with the deletion still shows.
    pub live_updated_ms: Option<i64>,
    pub props: PropBlob,
}

/// `GET /crm/v3/owners` entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    pub id: String,
    /// `PERSON` (a user) or `QUEUE`.
    #[serde(rename = "type", default = "person")]
    pub owner_type: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub user_id: u64,
    pub created_at: String,
    pub updated_at: String,
    pub archived: bool,
    pub teams: Vec<OwnerTeam>,
}

fn person() -> String {
    "PERSON".to_owned()
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OwnerTeam {
    pub id: String,
    pub name: String,
    pub primary: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_round_trips_and_updates() {
        let mut b = PropBlob::from_pairs(&mut [(3, "c"), (1, "a"), (2, "")]);
        assert_eq!(b.get(1), Some("a"));
        assert_eq!(b.get(2), Some(""));
        assert_eq!(b.get(9), None);
        assert!(b.set(1, Some("zz")));
        assert!(!b.set(1, Some("zz")));
        assert!(b.set(3, None));
        let all: Vec<_> = b.iter().collect();
        assert_eq!(all, vec![(1, "zz"), (2, "")]);
    }
}
