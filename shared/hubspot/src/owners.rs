//! A portal's owners as hubsync keeps them (read from the owners API,
//! cached per portal in the Control table): id → email and name.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

fn non_empty(raw: Option<&str>) -> Option<&str> {
    raw.map(str::trim).filter(|s| !s.is_empty())
}

/// What hubsync knows about one owner. `Debug` redacts both fields.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerInfo {
    pub email: Option<String>,
    /// First and last name joined by a space.
    pub name: Option<String>,
}

impl std::fmt::Debug for OwnerInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnerInfo")
            .field("email", &self.email.as_ref().map(|_| "[REDACTED]"))
            .field("name", &self.name.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// A portal's owners by id (read from the portal's owners cache once per
/// invocation; serialized as a JSON object of id → info for that cache).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Owners(HashMap<String, OwnerInfo>);

impl Owners {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an owner (names are trimmed and joined; empty parts dropped).
    pub fn insert(
        &mut self,
        id: impl Into<String>,
        email: Option<&str>,
        first_name: Option<&str>,
        last_name: Option<&str>,
    ) {
        let parts: Vec<&str> = [first_name, last_name]
            .into_iter()
            .filter_map(non_empty)
            .collect();
        let name = (!parts.is_empty()).then(|| parts.join(" "));
        self.0.insert(
            id.into(),
            OwnerInfo {
                email: non_empty(email).map(str::to_owned),
                name,
            },
        );
    }

    pub fn get(&self, id: &str) -> Option<&OwnerInfo> {
        self.0.get(id.trim())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Owners in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &OwnerInfo)> {
        let mut all: Vec<(&str, &OwnerInfo)> =
            self.0.iter().map(|(k, v)| (k.as_str(), v)).collect();
        all.sort_unstable_by_key(|(k, _)| *k);
        all.into_iter()
    }

    /// Adds an owner as the cache stores it.
    pub fn insert_info(&mut self, id: impl Into<String>, info: OwnerInfo) {
        self.0.insert(id.into(), info);
    }

    /// Adds every owner of `other` (replacing same ids).
    pub fn extend(&mut self, other: Owners) {
        self.0.extend(other.0);
    }
}
