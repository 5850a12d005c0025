//! Journal subscriptions: what HubSpot journals for an install.

use serde::{Deserialize, Serialize};

use crate::ids::{ObjectType, PortalId};

/// The object actions a subscription can ask for.
pub const OBJECT_ACTIONS: [&str; 5] = ["CREATE", "UPDATE", "DELETE", "MERGE", "RESTORE"];

/// A subscription to create (`POST /webhooks-journal/subscriptions/2026-03`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionRequest {
    pub subscription_type: SubscriptionKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub portal_id: Option<PortalId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_type_id: Option<String>,
    pub actions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub associated_object_type_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_ids: Option<Vec<u64>>,
}

/// HubSpot's subscription types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubscriptionKind {
    Object,
    Association,
    ListMembership,
    AppLifecycleEvent,
    GdprPrivacyDeletion,
}

impl SubscriptionRequest {
    fn new(kind: SubscriptionKind, portal: PortalId, actions: &[&str]) -> Self {
        Self {
            subscription_type: kind,
            portal_id: Some(portal),
            object_type_id: None,
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
            properties: None,
            associated_object_type_ids: None,
            list_ids: None,
        }
    }

    /// Every record change of `ty` (an `UPDATE` only for `properties`).
    pub fn object(portal: PortalId, ty: ObjectType, properties: Vec<String>) -> Self {
        Self {
            object_type_id: Some(ty.object_type_id().to_owned()),
            properties: Some(properties),
            ..Self::new(SubscriptionKind::Object, portal, &OBJECT_ACTIONS)
        }
    }

    /// Association changes from `ty` to `to`.
    pub fn association(portal: PortalId, ty: ObjectType, to: Vec<ObjectType>) -> Self {
        Self {
            object_type_id: Some(ty.object_type_id().to_owned()),
            associated_object_type_ids: Some(
                to.iter().map(|t| t.object_type_id().to_owned()).collect(),
            ),
            ..Self::new(
                SubscriptionKind::Association,
                portal,
                &["ASSOCIATION_ADDED", "ASSOCIATION_REMOVED"],
            )
        }
    }

    /// Records entering and leaving `lists`.
    pub fn list_membership(portal: PortalId, lists: Vec<u64>) -> Self {
        Self {
            list_ids: Some(lists),
            ..Self::new(
                SubscriptionKind::ListMembership,
                portal,
                &["ADDED_TO_LIST", "REMOVED_FROM_LIST"],
            )
        }
    }

    /// The app's install and uninstall on `portal`.
    pub fn app_lifecycle(portal: PortalId) -> Self {
        Self::new(
            SubscriptionKind::AppLifecycleEvent,
            portal,
            &["APP_INSTALL", "APP_UNINSTALL"],
        )
    }

    /// GDPR deletions of contacts.
    pub fn privacy_deletion(portal: PortalId) -> Self {
        Self::new(
            SubscriptionKind::GdprPrivacyDeletion,
            portal,
            &["GDPR_DELETE"],
        )
    }
}

/// A subscription as HubSpot returns it (the fields hubsync compares).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: u64,
    pub subscription_type: SubscriptionKind,
    #[serde(default)]
    pub portal_id: Option<PortalId>,
    #[serde(default)]
    pub object_type_id: Option<String>,
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub properties: Option<Vec<String>>,
    #[serde(default)]
    pub associated_object_type_ids: Option<Vec<String>>,
    #[serde(default)]
    pub list_ids: Option<Vec<u64>>,
}

impl Subscription {
    /// Whether this subscription is exactly what `want` asks for (order of
    /// the lists aside).
    pub fn satisfies(&self, want: &SubscriptionRequest) -> bool {
        fn set<T: Ord + Clone>(v: &Option<Vec<T>>) -> Vec<T> {
            let mut v = v.clone().unwrap_or_default();
            v.sort();
            v.dedup();
            v
        }
        self.subscription_type == want.subscription_type
            && self.portal_id == want.portal_id
            && self.object_type_id == want.object_type_id
            && set(&Some(self.actions.clone())) == set(&Some(want.actions.clone()))
            && set(&self.properties) == set(&want.properties)
            && set(&self.associated_object_type_ids) == set(&want.associated_object_type_ids)
            && set(&self.list_ids) == set(&want.list_ids)
    }
}

#[derive(Deserialize)]
pub(super) struct SubscriptionList {
    pub results: Vec<Subscription>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_serialise_as_hubspot_names_them() {
        let r =
            SubscriptionRequest::object(PortalId(7), ObjectType::Contacts, vec!["email".into()]);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"subscriptionType":"OBJECT","portalId":7,"objectTypeId":"0-1",
                "actions":["CREATE","UPDATE","DELETE","MERGE","RESTORE"],"properties":["email"]})
        );
        let v = serde_json::to_value(SubscriptionRequest::list_membership(PortalId(7), vec![3]))
            .unwrap();
        assert_eq!(v["subscriptionType"], "LIST_MEMBERSHIP");
        assert_eq!(v["listIds"], serde_json::json!([3]));
    }

    #[test]
    fn satisfies_ignores_order_but_not_content() {
        let want = SubscriptionRequest::object(
            PortalId(7),
            ObjectType::Deals,
            vec!["a".into(), "b".into()],
        );
        let mut have = Subscription {
            id: 1,
            subscription_type: SubscriptionKind::Object,
            portal_id: Some(PortalId(7)),
            object_type_id: Some("0-3".into()),
            actions: OBJECT_ACTIONS.iter().rev().map(|a| a.to_string()).collect(),
            properties: Some(vec!["b".into(), "a".into()]),
            associated_object_type_ids: None,
            list_ids: None,
        };
        assert!(have.satisfies(&want));
        have.properties = Some(vec!["a".into()]);
        assert!(!have.satisfies(&want));
    }
}
