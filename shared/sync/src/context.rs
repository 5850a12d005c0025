//! The mapping context — everything besides the HubSpot record that mapping
//! it needs — loaded one way for every caller: the portal's config, its
//! owners and deal pipelines (one cache policy, [`Directory`]), list
//! members and associations.
//!
//! **Cache policy** (owners; pipelines alike — HubSpot sends no webhook
//! when a label is renamed). The Control table holds each portal's owners
//! and when they were read. A caller says how fresh they must be
//! ([`CacheFreshness`]): the worker takes any cached copy (HubSpot sends
//! no owner webhooks; a record naming an unknown owner asks for an
//! on-demand refresh, at most once per [`OWNERS_REFRESH_INTERVAL_MS`]
//! across workers), a reconciliation run wants them read since the run
//! began. A read that returns what is cached writes nothing. A failed read
//! maps with the cached owners when there are any; a revoked grant always
//! stops the caller.

use std::collections::BTreeSet;

use hubsync_hubspot::{HubSpotError, ObjectId, ObjectType, PortalId, MAX_ASSOCIATION_INPUTS};
use std::future::Future;

use hubsync_mapping::{Associations, MappingConfig, ObjectConfig, Owners, Pipelines};
use hubsync_store::{
    MappingConfigStore, OwnersCacheStore, PipelinesCacheStore, RecordKey, RecordStore, StoreError,
};

use crate::source::{ReadAssociations, ReadListMembers, ReadOwners, ReadPipelines};
use crate::{now_ms, SyncError};

/// On-demand refreshes of a portal's owners cache (an owner id the cache
/// lacks) are at least this far apart, across all workers.
pub const OWNERS_REFRESH_INTERVAL_MS: i64 = 5 * 60 * 1000;

/// How fresh cached owners must be to be used without reading HubSpot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheFreshness {
    /// Any cached copy.
    AnyCached,
    /// Read at or after this time (epoch ms).
    ReadSince(i64),
}

impl CacheFreshness {
    pub fn accepts(self, refreshed_at_ms: i64) -> bool {
        match self {
            CacheFreshness::AnyCached => true,
            CacheFreshness::ReadSince(t) => refreshed_at_ms >= t,
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
    /// Pipelines read from HubSpot.
    pub pipeline_reads: u64,
    /// Pipelines caches written.
    pub pipeline_writes: u64,
    /// DynamoDB write requests those took.
    pub state_writes: u64,
}

impl LoadCounts {
    pub fn absorb(&mut self, other: LoadCounts) {
        self.hubspot_calls += other.hubspot_calls;
        self.owner_reads += other.owner_reads;
        self.owner_writes += other.owner_writes;
        self.pipeline_reads += other.pipeline_reads;
        self.pipeline_writes += other.pipeline_writes;
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

/// The association target types a type's config reads (its association
/// fields, and companies when its scope follows them), sorted, once each.
pub fn association_targets(config: &ObjectConfig) -> Vec<ObjectType> {
    let mut targets: Vec<ObjectType> = config.associations.iter().map(|a| a.to).collect();
    if config.scope_follows_companies {
        targets.push(ObjectType::Companies);
    }
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

/// A per-portal lookup that mapping resolves ids with, read from HubSpot
/// and cached in the Control table under one policy: the portal's owners
/// and its deal pipelines.
pub trait Directory<R, S>: Clone + PartialEq + Send + Sync + Sized {
    /// For logs.
    const WHAT: &'static str;

    fn read(
        reader: &R,
        portal: PortalId,
    ) -> impl Future<Output = Result<Self, HubSpotError>> + Send;

    /// The cached copy and when it was read.
    fn cached(
        store: &S,
        portal: PortalId,
    ) -> impl Future<Output = Result<Option<(Self, i64)>, StoreError>> + Send;

    fn put(
        store: &S,
        portal: PortalId,
        value: &Self,
        read_at_ms: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    fn claim(
        store: &S,
        portal: PortalId,
        now_ms: i64,
        min_interval_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Counts a read from HubSpot (and whether it was cached).
    fn tally(counts: &mut LoadCounts, wrote: bool);
}

impl<R: ReadOwners, S: OwnersCacheStore> Directory<R, S> for Owners {
    const WHAT: &'static str = "owners";

    async fn read(reader: &R, portal: PortalId) -> Result<Self, HubSpotError> {
        reader.owners(portal).await
    }

    async fn cached(store: &S, portal: PortalId) -> Result<Option<(Self, i64)>, StoreError> {
        Ok(store
            .get_owners_cache(portal)
            .await?
            .map(|c| (c.owners, c.refreshed_at_ms)))
    }

    async fn put(store: &S, portal: PortalId, v: &Self, at: i64) -> Result<u64, StoreError> {
        store.put_owners_cache(portal, v, at).await
    }

    async fn claim(store: &S, portal: PortalId, now: i64, min: i64) -> Result<bool, StoreError> {
        store.claim_owners_refresh(portal, now, min).await
    }

    fn tally(counts: &mut LoadCounts, wrote: bool) {
        counts.owner_reads += 1;
        counts.owner_writes += u64::from(wrote);
    }
}

impl<R: ReadPipelines, S: PipelinesCacheStore> Directory<R, S> for Pipelines {
    const WHAT: &'static str = "pipelines";

    async fn read(reader: &R, portal: PortalId) -> Result<Self, HubSpotError> {
        reader.pipelines(portal).await
    }

    async fn cached(store: &S, portal: PortalId) -> Result<Option<(Self, i64)>, StoreError> {
        Ok(store
            .get_pipelines_cache(portal)
            .await?
            .map(|c| (c.pipelines, c.refreshed_at_ms)))
    }

    async fn put(store: &S, portal: PortalId, v: &Self, at: i64) -> Result<u64, StoreError> {
        store.put_pipelines_cache(portal, v, at).await
    }

    async fn claim(store: &S, portal: PortalId, now: i64, min: i64) -> Result<bool, StoreError> {
        store.claim_pipelines_refresh(portal, now, min).await
    }

    fn tally(counts: &mut LoadCounts, wrote: bool) {
        counts.pipeline_reads += 1;
        counts.pipeline_writes += u64::from(wrote);
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
        freshness: CacheFreshness,
        counts: &mut LoadCounts,
    ) -> Result<LoadedOwners, SyncError> {
        let (owners, read_from_hubspot) = self.lookup::<Owners>(portal, freshness, counts).await?;
        Ok(LoadedOwners {
            owners,
            read_from_hubspot,
        })
    }

    /// An on-demand refresh (a record names an owner `cached` lacks): see
    /// [`ContextLoader::refresh`].
    pub async fn refresh_owners(
        &self,
        portal: PortalId,
        cached: Option<Owners>,
        counts: &mut LoadCounts,
    ) -> Result<Option<Owners>, SyncError> {
        self.refresh(portal, cached, counts).await
    }
}

impl<R, S> ContextLoader<'_, R, S> {
    /// A lookup under the cache policy, and whether it was read from
    /// HubSpot just now.
    pub async fn lookup<D: Directory<R, S>>(
        &self,
        portal: PortalId,
        freshness: CacheFreshness,
        counts: &mut LoadCounts,
    ) -> Result<(D, bool), SyncError> {
        let cached = D::cached(self.store, portal).await?;
        if let Some((value, _)) = cached.as_ref().filter(|(_, at)| freshness.accepts(*at)) {
            return Ok((value.clone(), false));
        }
        let value = self.read(portal, cached.map(|(v, _)| v), counts).await?;
        Ok((value, true))
    }

    /// An on-demand refresh (a record names an id `cached` lacks): read
    /// from HubSpot when no worker did so in the last
    /// [`OWNERS_REFRESH_INTERVAL_MS`], else the cache as the last refresh
    /// left it. `None`: nothing cached and nothing read.
    pub async fn refresh<D: Directory<R, S>>(
        &self,
        portal: PortalId,
        cached: Option<D>,
        counts: &mut LoadCounts,
    ) -> Result<Option<D>, SyncError> {
        if !D::claim(self.store, portal, now_ms(), OWNERS_REFRESH_INTERVAL_MS).await? {
            // Refreshed by another worker lately: its result is cached.
            return Ok(D::cached(self.store, portal).await?.map(|(v, _)| v));
        }
        self.read(portal, cached, counts).await.map(Some)
    }

    /// Reads from HubSpot; caches the result when it differs from
    /// `cached`; on failure (not a revoked grant) falls back to `cached`.
    async fn read<D: Directory<R, S>>(
        &self,
        portal: PortalId,
        cached: Option<D>,
        counts: &mut LoadCounts,
    ) -> Result<D, SyncError> {
        counts.hubspot_calls += 1;
        let read_at = now_ms();
        match D::read(self.reader, portal).await {
            Ok(value) if cached.as_ref() == Some(&value) => {
                D::tally(counts, false);
                Ok(value)
            }
            Ok(value) => {
                D::tally(counts, true);
                counts.state_writes += D::put(self.store, portal, &value, read_at).await?;
                Ok(value)
            }
            Err(HubSpotError::Token(e)) => Err(HubSpotError::Token(e).into()),
            Err(e) => match cached {
                Some(value) => {
                    tracing::warn!(portal = %portal, error = %e, what = D::WHAT,
                        "could not be refreshed: mapping with the cached copy");
                    Ok(value)
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

impl<R, S: RecordStore> ContextLoader<'_, R, S> {
    /// For a config whose scope follows companies: the companies the
    /// records are associated with (per `associations`) that are stored
    /// active — those that sync. `None` when the scope does not follow
    /// companies or the associations are not loaded.
    pub async fn companies_in_scope(
        &self,
        portal: PortalId,
        config: &ObjectConfig,
        associations: Option<&Associations>,
        ids: &[ObjectId],
    ) -> Result<Option<BTreeSet<ObjectId>>, SyncError> {
        let Some(associations) = associations.filter(|_| config.scope_follows_companies) else {
            return Ok(None);
        };
        let mut companies: Vec<ObjectId> = ids
            .iter()
            .filter_map(|id| associations.get(ObjectType::Companies, *id))
            .flat_map(|links| links.iter().map(|(c, _)| *c))
            .collect();
        companies.sort_unstable();
        companies.dedup();
        let keys: Vec<RecordKey> = companies
            .iter()
            .map(|c| RecordKey::new(portal, ObjectType::Companies, *c))
            .collect();
        let mut synced = BTreeSet::new();
        if !keys.is_empty() {
            for meta in self.store.get_record_meta(&keys).await? {
                if !meta.archived {
                    synced.insert(meta.object_id);
                }
            }
        }
        Ok(Some(synced))
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
