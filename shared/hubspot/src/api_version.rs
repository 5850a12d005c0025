//! Which generation of HubSpot's CRM APIs the client calls, and the paths
//! of each.
//!
//! HubSpot's current APIs are **date-versioned** (`/crm/objects/2026-03/…`,
//! `/crm/associations/2026-03/…`, `/crm/lists/2026-03/…`); the legacy
//! numbered ones (`/crm/v3/…`, `/crm/v4/associations/…`) lose support in
//! 2027 (v4 on 2027-03-30, v1–v3 in September). The request and response
//! shapes hubsync uses are the same in both generations (HubSpot's published
//! 2026-03 specs against v3), so only the path changes.
//!
//! The default is `2026-03`: the version of the OAuth endpoints hubsync
//! already calls and of the Webhooks Journal, whose CRM read shapes equal
//! v3's in HubSpot's published specs. `2026-09` is selectable
//! (`HUBSYNC_HUBSPOT_API_VERSION=2026-09`): for reads it differs only in
//! answering batch reads with 200 instead of 207, which the client handles
//! (ids not returned are "missing" either way). `legacy` keeps an existing
//! legacy app on the numbered paths until it is migrated.

use std::fmt;
use std::str::FromStr;

use crate::ids::{ObjectId, ObjectType};

/// A CRM API generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiVersion {
    /// `/crm/v3/…` and `/crm/v4/associations/…` (legacy apps; unsupported
    /// from 2027).
    Legacy,
    /// `/crm/…/2026-03/…`.
    #[default]
    V2026_03,
    /// `/crm/…/2026-09/…`.
    V2026_09,
}

impl ApiVersion {
    /// Every value, for tests and help texts.
    pub const ALL: [ApiVersion; 3] = [
        ApiVersion::Legacy,
        ApiVersion::V2026_03,
        ApiVersion::V2026_09,
    ];

    /// As configured: `legacy`, `2026-03`, `2026-09`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ApiVersion::Legacy => "legacy",
            ApiVersion::V2026_03 => "2026-03",
            ApiVersion::V2026_09 => "2026-09",
        }
    }

    /// The path segment of a date-versioned API (`None` for legacy).
    const fn date(self) -> Option<&'static str> {
        match self {
            ApiVersion::Legacy => None,
            ApiVersion::V2026_03 => Some("2026-03"),
            ApiVersion::V2026_09 => Some("2026-09"),
        }
    }

    /// `/crm/v3/objects/{type}` or `/crm/objects/{date}/{type}`.
    pub fn objects(self, t: ObjectType) -> String {
        match self.date() {
            None => format!("/crm/v3/objects/{}", t.as_api_path()),
            Some(d) => format!("/crm/objects/{d}/{}", t.as_api_path()),
        }
    }

    /// The batch read of a type.
    pub fn batch_read(self, t: ObjectType) -> String {
        format!("{}/batch/read", self.objects(t))
    }

    /// The search of a type.
    pub fn search(self, t: ObjectType) -> String {
        format!("{}/search", self.objects(t))
    }

    /// `/crm/v3/owners` or `/crm/owners/{date}`.
    pub fn owners(self) -> String {
        match self.date() {
            None => "/crm/v3/owners".to_owned(),
            Some(d) => format!("/crm/owners/{d}"),
        }
    }

    /// The pipelines of a type.
    pub fn pipelines(self, t: ObjectType) -> String {
        match self.date() {
            None => format!("/crm/v3/pipelines/{}", t.as_api_path()),
            Some(d) => format!("/crm/pipelines/{d}/{}", t.as_api_path()),
        }
    }

    /// The property definitions of a type.
    pub fn properties(self, t: ObjectType) -> String {
        match self.date() {
            None => format!("/crm/v3/properties/{}", t.as_api_path()),
            Some(d) => format!("/crm/properties/{d}/{}", t.as_api_path()),
        }
    }

    /// The associations batch read `from → to` (`/crm/v4/associations/…`
    /// in the legacy generation).
    pub fn associations_batch_read(self, from: ObjectType, to: ObjectType) -> String {
        let (f, t) = (from.as_api_path(), to.as_api_path());
        match self.date() {
            None => format!("/crm/v4/associations/{f}/{t}/batch/read"),
            Some(d) => format!("/crm/associations/{d}/{f}/{t}/batch/read"),
        }
    }

    /// One list (Lists API).
    pub fn list(self, list_id: &str) -> String {
        match self.date() {
            None => format!("/crm/v3/lists/{list_id}"),
            Some(d) => format!("/crm/lists/{d}/{list_id}"),
        }
    }

    /// A list's memberships.
    pub fn list_memberships(self, list_id: &str) -> String {
        format!("{}/memberships", self.list(list_id))
    }

    /// The lists a record is a member of.
    pub fn record_list_memberships(self, object_type: ObjectType, id: ObjectId) -> String {
        format!(
            "{}/memberships",
            self.list(&format!(
                "records/{}/{}",
                object_type.object_type_id(),
                id.0
            ))
        )
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApiVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        ApiVersion::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!("{s:?} is not a supported HubSpot API version (2026-03, 2026-09 or legacy)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_unknown_ones_are_refused() {
        for v in ApiVersion::ALL {
            assert_eq!(v.as_str().parse::<ApiVersion>(), Ok(v));
        }
        assert_eq!(ApiVersion::default(), ApiVersion::V2026_03);
        for bad in ["", "v3", "2026-04", "2025-09", "LEGACY"] {
            let err = bad.parse::<ApiVersion>().unwrap_err();
            assert!(err.contains("2026-03"), "{err}");
        }
    }

    #[test]
    fn date_versioned_paths_follow_hubspots_layout() {
        let v = ApiVersion::V2026_03;
        assert_eq!(
            v.batch_read(ObjectType::Contacts),
            "/crm/objects/2026-03/contacts/batch/read"
        );
        assert_eq!(
            v.search(ObjectType::Deals),
            "/crm/objects/2026-03/deals/search"
        );
        assert_eq!(v.owners(), "/crm/owners/2026-03");
        assert_eq!(
            v.pipelines(ObjectType::Deals),
            "/crm/pipelines/2026-03/deals"
        );
        assert_eq!(
            v.properties(ObjectType::Companies),
            "/crm/properties/2026-03/companies"
        );
        assert_eq!(
            v.associations_batch_read(ObjectType::Companies, ObjectType::Contacts),
            "/crm/associations/2026-03/companies/contacts/batch/read"
        );
        assert_eq!(
            ApiVersion::V2026_09.list_memberships("7"),
            "/crm/lists/2026-09/7/memberships"
        );
    }

    #[test]
    fn legacy_paths_are_the_numbered_ones() {
        let v = ApiVersion::Legacy;
        assert_eq!(v.objects(ObjectType::Deals), "/crm/v3/objects/deals");
        assert_eq!(v.owners(), "/crm/v3/owners");
        assert_eq!(
            v.associations_batch_read(ObjectType::Deals, ObjectType::Companies),
            "/crm/v4/associations/deals/companies/batch/read"
        );
        assert_eq!(v.list("12"), "/crm/v3/lists/12");
    }
}
