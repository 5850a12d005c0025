//! Journal subscriptions follow each portal's connection and mapping
//! config. Every pass, before reading, the reader computes what each
//! connected portal needs and compares its fingerprint with the one stored
//! when the subscriptions were last made; only a difference calls HubSpot.
//! So a new connection, a saved mapping or scope (a list added to a scope
//! gets its membership subscription) and a disconnect are reflected within
//! one reader period, and a failed call is retried by the next pass.
//!
//! What a syncing portal (`active` or `awaiting_setup`) needs:
//! * `OBJECT` per type, with the properties its config maps or scopes on
//!   (a change of another property cannot change a stored record);
//! * `ASSOCIATION` per type with association fields (or a scope that
//!   follows companies), to the types they name;
//! * `LIST_MEMBERSHIP` for the lists its scopes use;
//! * `APP_LIFECYCLE_EVENT` (uninstalls) and `GDPR_PRIVACY_DELETION`.
//!
//! A portal that no longer syncs (`needs_reauth`, `disconnected`) has its
//! subscriptions deleted.

use std::collections::BTreeSet;

use hubsync_hubspot::journal::{JournalClient, JournalError, SubscriptionRequest};
use hubsync_hubspot::{ObjectType, PortalId};
use hubsync_mapping::MappingConfig;
use hubsync_store::{Connection, JournalCursorStore, MappingConfigStore, StoreError};
use sha2::{Digest, Sha256};

/// What a portal's journal subscriptions should be.
pub fn desired(portal: PortalId, config: &MappingConfig) -> Vec<SubscriptionRequest> {
    let mut out = Vec::new();
    let mut lists: BTreeSet<u64> = BTreeSet::new();
    for t in ObjectType::ALL {
        let c = config.object(t);
        out.push(SubscriptionRequest::object(portal, t, c.properties(t)));
        let mut to: BTreeSet<ObjectType> = c.associations.iter().map(|a| a.to).collect();
        if c.scope_follows_companies {
            to.insert(ObjectType::Companies);
        }
        if !to.is_empty() {
            out.push(SubscriptionRequest::association(
                portal,
                t,
                to.into_iter().collect(),
            ));
        }
        lists.extend(c.lists.iter().filter_map(|l| l.trim().parse::<u64>().ok()));
    }
    if !lists.is_empty() {
        out.push(SubscriptionRequest::list_membership(
            portal,
            lists.into_iter().collect(),
        ));
    }
    out.push(SubscriptionRequest::app_lifecycle(portal));
    out.push(SubscriptionRequest::privacy_deletion(portal));
    out
}

/// A stable fingerprint of a desired set.
pub fn fingerprint(desired: &[SubscriptionRequest]) -> String {
    let json = serde_json::to_vec(desired).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..16])
}

/// What making the subscriptions match did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SubscriptionReport {
    /// Portals whose subscriptions were (re)made or removed.
    pub portals_changed: u64,
    pub created: u64,
    pub deleted: u64,
    /// Portals that failed (retried by the next pass).
    pub failed: u64,
}

/// Why one portal's subscriptions could not be made to match.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes HubSpot's subscriptions of `portal` exactly `want`.
async fn replace(
    client: &JournalClient,
    portal: PortalId,
    want: &[SubscriptionRequest],
    report: &mut SubscriptionReport,
) -> Result<(), JournalError> {
    let have = client.subscriptions(Some(portal)).await?;
    for s in &have {
        if !want.iter().any(|w| s.satisfies(w)) {
            client.delete_subscription(s.id).await?;
            report.deleted += 1;
        }
    }
    for w in want {
        if !have.iter().any(|s| s.satisfies(w)) {
            client.create_subscription(w).await?;
            report.created += 1;
        }
    }
    Ok(())
}

/// Brings every connection's subscriptions in line (errors are per portal:
/// counted, logged, retried next pass).
pub async fn follow<S>(
    client: &JournalClient,
    store: &S,
    connections: &[Connection],
) -> SubscriptionReport
where
    S: JournalCursorStore + MappingConfigStore,
{
    let mut report = SubscriptionReport::default();
    for c in connections {
        match follow_one(client, store, c, &mut report).await {
            Ok(true) => report.portals_changed += 1,
            Ok(false) => {}
            Err(e) => {
                report.failed += 1;
                tracing::warn!(portal = %c.portal_id, error = %e, "journal subscriptions not updated; the next pass retries");
            }
        }
    }
    report
}

async fn follow_one<S>(
    client: &JournalClient,
    store: &S,
    c: &Connection,
    report: &mut SubscriptionReport,
) -> Result<bool, SubscriptionError>
where
    S: JournalCursorStore + MappingConfigStore,
{
    let portal = c.portal_id;
    let stored = store.get_subscriptions_fingerprint(portal.0).await?;
    if !c.status.holds_tokens() {
        if stored.is_none() {
            return Ok(false);
        }
        client.delete_portal_subscriptions(portal).await?;
        store.put_subscriptions_fingerprint(portal.0, None).await?;
        tracing::info!(portal = %portal, status = c.status.name(), "journal subscriptions removed");
        return Ok(true);
    }
    let config = store.effective_mapping_config(portal).await?;
    let want = desired(portal, &config);
    let fp = fingerprint(&want);
    if stored.as_deref() == Some(fp.as_str()) {
        return Ok(false);
    }
    replace(client, portal, &want, report).await?;
    store
        .put_subscriptions_fingerprint(portal.0, Some(&fp))
        .await?;
    tracing::info!(portal = %portal, subscriptions = want.len(), "journal subscriptions follow the config");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubsync_hubspot::journal::SubscriptionKind;

    #[test]
    fn the_default_config_wants_objects_associations_lifecycle_and_gdpr() {
        let want = desired(PortalId(7), &MappingConfig::default());
        let kinds: Vec<SubscriptionKind> = want.iter().map(|w| w.subscription_type).collect();
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == SubscriptionKind::Object)
                .count(),
            3
        );
        assert!(kinds.contains(&SubscriptionKind::AppLifecycleEvent));
        assert!(kinds.contains(&SubscriptionKind::GdprPrivacyDeletion));
        assert!(!kinds.contains(&SubscriptionKind::ListMembership));
        let contacts = want
            .iter()
            .find(|w| w.object_type_id.as_deref() == Some("0-1"))
            .unwrap();
        let props = contacts.properties.as_ref().unwrap();
        assert!(
            props.contains(&"email".to_string()) && props.contains(&"lastmodifieddate".to_string())
        );
    }

    #[test]
    fn a_list_in_a_scope_adds_its_membership_subscription_and_changes_the_fingerprint() {
        let mut config = MappingConfig::default();
        let before = fingerprint(&desired(PortalId(7), &config));
        config.object_mut(ObjectType::Contacts).lists = vec!["12".into(), "5".into()];
        config.object_mut(ObjectType::Deals).lists = vec!["5".into()];
        let want = desired(PortalId(7), &config);
        let lists: Vec<_> = want
            .iter()
            .filter(|w| w.subscription_type == SubscriptionKind::ListMembership)
            .collect();
        assert_eq!(lists.len(), 1);
        assert_eq!(lists[0].list_ids, Some(vec![5, 12]));
        assert_ne!(fingerprint(&want), before);
        assert_eq!(
            fingerprint(&want),
            fingerprint(&desired(PortalId(7), &config))
        );
    }
}
