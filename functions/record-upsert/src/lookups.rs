//! What one portal maps with during one invocation: its config, and the
//! lookups its rules resolve ids with — owners (`owner_email` /
//! `owner_name`) and deal pipelines (`pipeline_label` / `stage_label`).
//!
//! Each lookup comes from its cache in the Control table (no HubSpot call
//! in the steady state; none cached yet: read from HubSpot and cached). A
//! record naming an id the cached copy lacks refreshes it from HubSpot at
//! most once per portal and invocation, and once per
//! [`hubsync_sync::OWNERS_REFRESH_INTERVAL_MS`] across workers; an id still
//! unknown is a field error. A revoked grant stops the group.

use hubsync_hubspot::{HubSpotObject, ObjectType, PortalId};
use hubsync_mapping::{MappingConfig, ObjectConfig, Owners, Pipelines};
use hubsync_sync::{CacheFreshness, ContextLoader, Directory, LoadCounts, ObjectReader, SyncStore};

use crate::stats::BatchStats;
use crate::worker::{GroupError, Worker};

/// One lookup as an invocation holds it.
#[derive(Debug, Clone)]
pub struct Held<D> {
    /// As loaded (`None`: no rule of this invocation needs it).
    pub loaded: Option<D>,
    /// After an on-demand refresh in this invocation (`None` inside: the
    /// refresh was not possible, map with `loaded`).
    pub refreshed: tokio::sync::OnceCell<Option<D>>,
}

impl<D> Default for Held<D> {
    fn default() -> Self {
        Self {
            loaded: None,
            refreshed: tokio::sync::OnceCell::new(),
        }
    }
}

impl<D> Held<D> {
    /// The freshest copy this invocation has.
    pub fn current(&self) -> Option<&D> {
        self.refreshed
            .get()
            .and_then(Option::as_ref)
            .or(self.loaded.as_ref())
    }
}

/// What one portal maps with during one invocation.
#[derive(Debug, Clone, Default)]
pub struct PortalMapping {
    pub config: MappingConfig,
    pub owners: Held<Owners>,
    pub pipelines: Held<Pipelines>,
}

impl<R: ObjectReader, S: SyncStore> Worker<R, S> {
    /// The portal's config (saved, else the defaults) and the lookups the
    /// rules of `types` need.
    pub(crate) async fn load_mapping(
        &self,
        portal: PortalId,
        types: &[ObjectType],
        stats: &mut BatchStats,
    ) -> Result<PortalMapping, GroupError> {
        let loader = ContextLoader::new(self.reader(), self.store());
        let (config, _saved) = loader.config(portal).await?;
        // A company that starts or stops syncing re-reads its followers.
        let mut types = types.to_vec();
        if types.contains(&ObjectType::Companies) {
            types.extend(config.company_followers());
        }
        let owners = types.iter().any(|t| config.needs_owners(*t));
        let pipelines = types.iter().any(|t| config.object(*t).needs_pipelines());
        Ok(PortalMapping {
            owners: self.hold(portal, owners, stats).await?,
            pipelines: self.hold(portal, pipelines, stats).await?,
            config,
        })
    }

    async fn hold<D: Directory<R, S>>(
        &self,
        portal: PortalId,
        needed: bool,
        stats: &mut BatchStats,
    ) -> Result<Held<D>, GroupError> {
        if !needed {
            return Ok(Held::default());
        }
        let loader = ContextLoader::new(self.reader(), self.store());
        let mut counts = LoadCounts::default();
        let loaded = loader
            .lookup::<D>(portal, CacheFreshness::AnyCached, &mut counts)
            .await;
        stats.absorb_load(portal, counts);
        let (value, read_from_hubspot) = loaded?;
        Ok(Held {
            loaded: Some(value),
            // Just read from HubSpot: no refresh in this invocation.
            refreshed: tokio::sync::OnceCell::new_with(read_from_hubspot.then_some(None)),
        })
    }

    /// Refreshes the owners and pipelines `objects` name ids of that the
    /// invocation's copies lack.
    pub(crate) async fn refresh_if_unknown(
        &self,
        portal: PortalId,
        config: &ObjectConfig,
        objects: &[HubSpotObject],
        mapping: &PortalMapping,
        stats: &mut BatchStats,
    ) -> Result<(), GroupError> {
        let owners_unknown = |o: &Owners| {
            objects
                .iter()
                .flat_map(|x| config.owner_ids(x))
                .any(|id| o.get(id).is_none())
        };
        self.refresh(portal, &mapping.owners, owners_unknown, stats)
            .await?;
        let pipelines_unknown = |p: &Pipelines| {
            objects
                .iter()
                .any(|x| config.names_unknown_pipeline_ids(x, p))
        };
        self.refresh(portal, &mapping.pipelines, pipelines_unknown, stats)
            .await
    }

    async fn refresh<D: Directory<R, S>>(
        &self,
        portal: PortalId,
        held: &Held<D>,
        unknown: impl Fn(&D) -> bool,
        stats: &mut BatchStats,
    ) -> Result<(), GroupError> {
        let Some(loaded) = held.loaded.as_ref() else {
            return Ok(());
        };
        if held.refreshed.initialized() || !unknown(loaded) {
            return Ok(());
        }
        let mut counts = LoadCounts::default();
        let loader = ContextLoader::new(self.reader(), self.store());
        let result = held
            .refreshed
            .get_or_try_init(|| loader.refresh::<D>(portal, Some(loaded.clone()), &mut counts))
            .await;
        stats.absorb_load(portal, counts);
        result.map(|_| ())
    }
}
