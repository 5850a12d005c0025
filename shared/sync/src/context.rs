//! The mapping context — everything besides the HubSpot record that mapping
//! it needs — loaded one way for every caller: the portal's config, its
//! owners (one cache policy), list members and associations.
//!
//! **Owners cache policy.** The Control table holds each portal's owners
//! and when they were read. A caller says how fresh they must be
//! ([`OwnersFreshness`]): the worker takes any cached copy (HubSpot sends
//! no owner webhooks; a record naming an unknown owner asks for an
//! on-demand refresh, at most once per [`OWNERS_REFRESH_INTERVAL_MS`]
//! across workers), a reconciliation run wants them read since the run
//! began. A read that returns what is cached writes nothing. A failed read
//! maps with the cached owners when there are any; a revoked grant always
//! stops the caller.

use std::collections::BTreeSet;

use hubsync_hubspot::{HubSpotError, ObjectId, ObjectType, PortalId, MAX_ASSOCIATION_INPUTS};
use hubsync_mapping::{Associations, MappingConfig, ObjectConfig, Owners};
use hubsync_store::{MappingConfigStore, OwnersCacheStore};

use crate::source::{ReadAssociations, ReadListMembers, ReadOwners};
use crate::{now_ms, SyncError};

/// On-demand refreshes of a portal's owners cache (an owner id the cache
/// lacks) are at least this far apart, across all workers.
pub const OWNERS_REFRESH_INTERVAL_MS: i64 = 5 * 60 * 1000;

/// How fresh cached owners must be to be used without reading HubSpot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnersFreshness {
    /// Any cached copy.
    AnyCached,
    /// Read at or after this time (epoch ms).
    ReadSince(i64),
}

impl OwnersFreshness {
    fn accepts(self, refreshed_at_ms: i64) -> bool {
        match self {
            OwnersFreshness::AnyCached => true,
            OwnersFreshness::ReadSince(t) => refreshed_at_ms >= t,
        }
    }
}

/// Owners as loaded, and whether they came from HubSpot just now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedOwners {
    pub owners: Owners,
    pub read_from_hubspot: bool,
}

/// What loading cost (callers fold it into their own counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadCounts {
    /// HubSpot requests made.
    pub hubspot_calls: u64,
    /// Owners read from HubSpot.
    pub owner_reads: u64,
    /// Owners caches written (the read differed from the cache).
    pub owner_writes: u64,
    /// DynamoDB write requests those took.
    pub state_writes: u64,
}

impl LoadCounts {
    pub fn absorb(&mut self, other: LoadCounts) {
        self.hubspot_calls += other.hubspot_calls;
        self.owner_reads += other.owner_reads;
        self.owner_writes += other.owner_writes;
        self.state_writes += other.state_writes;
    }
}

/// The loader: a HubSpot source and the store.
pub struct ContextLoader<'a, R, S> {
    reader: &'a R,
    store: &'a S,
}

impl<'a, R, S> ContextLoader<'a, R, S> {
    pub fn new(reader: &'a R, store: &'a S) -> Self {
        Self { reader, store }
    }
}

/// The association target types a type's config maps, sorted, once each.
pub fn association_targets(config: &ObjectConfig) -> Vec<ObjectType> {
    let mut targets: Vec<ObjectType> = config.associations.iter().map(|a| a.to).collect();
    targets.sort_unstable();
    targets.dedup();
    targets
}

impl<R, S> ContextLoader<'_, R, S>
where
    S: MappingConfigStore + OwnersCacheStore,
{
    /// The portal's config (saved, else the defaults) and whether one is
    /// saved.
    pub async fn config(&self, portal: PortalId) -> Result<(MappingConfig, bool), SyncError> {
        let stored = self.store.get_mapping_config(portal).await?;
        let saved = stored.is_some();
        Ok((stored.map(|s| s.config).unwrap_or_default(), saved))
    }
}

impl<R, S> ContextLoader<'_, R, S>
where
    R: ReadOwners,
    S: MappingConfigStore + OwnersCacheStore,
{
    /// The portal's owners under the cache policy.
    pub async fn owners(
        &self,
        portal: PortalId,
        freshness: OwnersFreshness,
        counts: &mut LoadCounts,
    ) -> Result<LoadedOwners, SyncError> {
        let cached = self.store.get_owners_cache(portal).await?;
        if let Some(c) = cached
            .as_ref()
            .filter(|c| freshness.accepts(c.refreshed_at_ms))
        {
            return Ok(LoadedOwners {
                owners: c.owners.clone(),
                read_from_hubspot: false,
            });
        }
        let owners = self
            .read_owners(portal, cached.map(|c| c.owners), counts)
            .await?;
        Ok(LoadedOwners {
            owners,
            read_from_hubspot: true,
        })
    }

    /// An on-demand refresh (a record names an owner `cached` lacks): read
    /// from HubSpot when no worker did so in the last
    /// [`OWNERS_REFRESH_INTERVAL_MS`], else the cache as the last refresh
    /// left it. `None`: nothing cached and nothing read.
    pub async fn refresh_owners(
        &self,
        portal: PortalId,
        cached: Option<Owners>,
        counts: &mut LoadCounts,
    ) -> Result<Option<Owners>, SyncError> {
        if !self
            .store
            .claim_owners_refresh(portal, now_ms(), OWNERS_REFRESH_INTERVAL_MS)
            .await?
        {
            // Refreshed by another worker lately: its result is cached.
            return Ok(self.store.get_owners_cache(portal).await?.map(|c| c.owners));
        }
        self.read_owners(portal, cached, counts).await.map(Some)
    }

    /// Reads the owners from HubSpot; caches them when they differ from
    /// `cached`; on failure (not a revoked grant) falls back to `cached`.
    async fn read_owners(
        &self,
        portal: PortalId,
        cached: Option<Owners>,
        counts: &mut LoadCounts,
    ) -> Result<Owners, SyncError> {
        counts.hubspot_calls += 1;
        counts.owner_reads += 1;
        let read_at = now_ms();
        match self.reader.owners(portal).await {
            Ok(owners) if cached.as_ref() == Some(&owners) => Ok(owners),
            Ok(owners) => {
                counts.owner_writes += 1;
                counts.state_writes += self
                    .store
                    .put_owners_cache(portal, &owners, read_at)
                    .await?;
                Ok(owners)
            }
            Err(HubSpotError::Token(e)) => Err(HubSpotError::Token(e).into()),
            Err(e) => match cached {
                Some(owners) => {
                    tracing::warn!(portal = %portal, error = %e,
                        "owners could not be refreshed: mapping with the cached owners");
                    Ok(owners)
                }
                None => Err(e.into()),
            },
        }
    }
}

impl<R: ReadListMembers, S> ContextLoader<'_, R, S> {
    /// Every member of the config's scope lists (HubSpot sends no list
    /// webhooks, so only a full run knows them). `None`: the type is not
    /// list-scoped.
    pub async fn list_members(
        &self,
        portal: PortalId,
        config: &ObjectConfig,
        counts: &mut LoadCounts,
    ) -> Result<Option<BTreeSet<ObjectId>>, SyncError> {
        if config.lists.is_empty() {
            return Ok(None);
        }
        let mut members = BTreeSet::new();
        for list in &config.lists {
            counts.hubspot_calls += 1;
            members.extend(self.reader.list_members(portal, list).await?);
        }
        Ok(Some(members))
    }
}

impl<R: ReadAssociations, S> ContextLoader<'_, R, S> {
    /// The associations of `ids` to every type in `targets` (v4, ≤ 1,000
    /// ids a call). `None` when there is nothing to read.
    pub async fn associations(
        &self,
        portal: PortalId,
        from: ObjectType,
        targets: &[ObjectType],
        ids: &[ObjectId],
        counts: &mut LoadCounts,
    ) -> Result<Option<Associations>, SyncError> {
        if targets.is_empty() || ids.is_empty() {
            return Ok(None);
        }
        let mut assoc = Associations::new();
        for &to in targets {
            for chunk in ids.chunks(MAX_ASSOCIATION_INPUTS) {
                counts.hubspot_calls += 1;
                for l in self.reader.associations(portal, from, to, chunk).await? {
                    assoc.insert(to, l.from, l.to, l.primary);
                }
            }
            assoc.mark_loaded(to);
        }
        Ok(Some(assoc))
    }
}
