//! Identifier newtypes shared by every hubsync crate.
//!
//! They are HubSpot's, so they live in the HubSpot crate; the mapping
//! (which depends on it) re-exports them.
//!
//! HubSpot is inconsistent about how it encodes ids: webhook payloads carry
//! JSON numbers, the CRM API carries strings (`"id": "12345"`). Both
//! [`PortalId`] and [`ObjectId`] therefore deserialize from either form and
//! always serialize as a JSON number.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Why a string could not be parsed into an id or object type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdParseError {
    /// The value was not a non-negative decimal integer that fits in `u64`.
    #[error("id is not a non-negative decimal integer")]
    NotAnInteger,
    /// The value is not one of the supported object types.
    #[error("unsupported object type")]
    UnknownObjectType,
}

fn parse_u64_id(s: &str) -> Result<u64, IdParseError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdParseError::NotAnInteger);
    }
    s.parse::<u64>().map_err(|_| IdParseError::NotAnInteger)
}

/// Deserialize a `u64` that may arrive as a JSON number or a decimal string.
fn deserialize_flexible_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer or a string of decimal digits")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom("negative id"))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<u64, E> {
            parse_u64_id(v).map_err(E::custom)
        }
    }
    d.deserialize_any(V)
}

macro_rules! u64_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// The raw numeric value.
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl From<u64> for $name {
            fn from(v: u64) -> Self {
                Self(v)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_u64_id(s).map(Self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_flexible_u64(d).map(Self)
            }
        }
    };
}

u64_id!(
    /// A HubSpot account ("portal", "hub") id.
    PortalId
);
u64_id!(
    /// A HubSpot CRM object id (`hs_object_id`), unique within a portal and
    /// object type.
    ObjectId
);

/// The CRM object types hubsync syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectType {
    Companies,
    Contacts,
    Deals,
}

impl ObjectType {
    /// Every supported type, in a stable order.
    pub const ALL: [ObjectType; 3] = [
        ObjectType::Companies,
        ObjectType::Contacts,
        ObjectType::Deals,
    ];

    /// The path segment used by the CRM v3 objects API (`/crm/v3/objects/{..}`).
    pub const fn as_api_path(self) -> &'static str {
        match self {
            ObjectType::Companies => "companies",
            ObjectType::Contacts => "contacts",
            ObjectType::Deals => "deals",
        }
    }

    /// The singular prefix used in webhook subscription types (`contact.creation`).
    pub const fn subscription_prefix(self) -> &'static str {
        match self {
            ObjectType::Companies => "company",
            ObjectType::Contacts => "contact",
            ObjectType::Deals => "deal",
        }
    }

    /// HubSpot's numeric object type id (`0-1` contacts, `0-2` companies, `0-3` deals).
    pub const fn object_type_id(self) -> &'static str {
        match self {
            ObjectType::Contacts => "0-1",
            ObjectType::Companies => "0-2",
            ObjectType::Deals => "0-3",
        }
    }

    /// The property holding the record's last-modified time, used as the
    /// source version and as the search-API filter field.
    pub const fn last_modified_property(self) -> &'static str {
        match self {
            ObjectType::Contacts => "lastmodifieddate",
            ObjectType::Companies | ObjectType::Deals => "hs_lastmodifieddate",
        }
    }

    /// Parse the singular subscription prefix (`company`, `contact`, `deal`).
    /// From HubSpot's object type id (`0-1`, `0-2`, `0-3`).
    pub fn from_object_type_id(s: &str) -> Option<Self> {
        ObjectType::ALL
            .into_iter()
            .find(|t| t.object_type_id() == s)
    }

    pub fn from_subscription_prefix(s: &str) -> Option<Self> {
        ObjectType::ALL
            .into_iter()
            .find(|t| t.subscription_prefix() == s)
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_api_path())
    }
}

impl FromStr for ObjectType {
    type Err = IdParseError;
    /// Accepts the API path (`companies`), the singular (`company`) and the
    /// object type id (`0-2`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ObjectType::ALL
            .into_iter()
            .find(|t| {
                t.as_api_path() == s || t.subscription_prefix() == s || t.object_type_id() == s
            })
            .ok_or(IdParseError::UnknownObjectType)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn object_id_deserializes_from_number_and_string() {
        let a: ObjectId = serde_json::from_str("123").unwrap();
        let b: ObjectId = serde_json::from_str("\"123\"").unwrap();
        assert_eq!(a, b);
        assert_eq!(serde_json::to_string(&a).unwrap(), "123");
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in ["", "-1", "1.5", "abc", " 1", "99999999999999999999999"] {
            assert!(bad.parse::<ObjectId>().is_err(), "{bad}");
            assert!(serde_json::from_value::<ObjectId>(serde_json::json!(bad)).is_err());
        }
        assert!(serde_json::from_str::<PortalId>("-5").is_err());
        assert!(serde_json::from_str::<PortalId>("1.5").is_err());
    }

    #[test]
    fn object_type_names_round_trip() {
        for t in ObjectType::ALL {
            assert_eq!(t.as_api_path().parse::<ObjectType>(), Ok(t));
            assert_eq!(t.subscription_prefix().parse::<ObjectType>(), Ok(t));
            assert_eq!(t.object_type_id().parse::<ObjectType>(), Ok(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_api_path()));
            assert_eq!(serde_json::from_str::<ObjectType>(&json).unwrap(), t);
        }
        assert_eq!(
            "tickets".parse::<ObjectType>(),
            Err(IdParseError::UnknownObjectType)
        );
    }

    proptest! {
        #[test]
        fn any_u64_round_trips_through_string_and_json(n in any::<u64>()) {
            let id = ObjectId(n);
            prop_assert_eq!(id.to_string().parse::<ObjectId>(), Ok(id));
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<ObjectId>(&json).unwrap(), id);
            let quoted = serde_json::to_string(&id.to_string()).unwrap();
            prop_assert_eq!(serde_json::from_str::<PortalId>(&quoted).unwrap(), PortalId(n));
        }

        #[test]
        fn parsing_arbitrary_strings_never_panics(s in any::<String>()) {
            let _ = s.parse::<ObjectId>();
            let _ = s.parse::<ObjectType>();
        }
    }
}
