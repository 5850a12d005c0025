//! Where the engine reads HubSpot from: the [`CrmSource`] trait (narrow, so
//! tests can wrap or fake it) and its production implementation on the
//! shared [`HubSpotClient`] — the same client, per-portal rate limiter and
//! retries as the real-time worker.

use std::future::Future;

use hubsync_hubspot::{
    AccessTokenSource, AssociationLink, BatchReadResult, ClientStats, HubSpotClient, HubSpotError,
    HubSpotObject, ObjectId, ObjectType, Page, PortalId, SearchRequest,
};
use hubsync_mapping::{Owners, PropertyDefinition};

/// The HubSpot reads a reconciliation needs.
pub trait CrmSource: Send + Sync {
    /// One page of the full listing (`archived = true`: the recycle bin),
    /// in id order, with only `properties`.
    fn list_page(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        after: Option<&str>,
        limit: u32,
        properties: &[&str],
        archived: bool,
    ) -> impl Future<Output = Result<Page<HubSpotObject>, HubSpotError>> + Send;

    /// Current state of ≤ 100 ids (`missing`: not live).
    fn batch_read(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        ids: &[ObjectId],
        properties: &[&str],
    ) -> impl Future<Output = Result<BatchReadResult, HubSpotError>> + Send;

    /// How many live objects the portal has (an estimate for progress;
    /// `None` when unknown).
    fn count(
        &self,
        portal: PortalId,
        object_type: ObjectType,
    ) -> impl Future<Output = Result<Option<u64>, HubSpotError>> + Send;

    /// HTTP-level counters for the portal so far (requests with retries,
    /// 429s), if the source keeps them.
    fn portal_stats(&self, _portal: PortalId) -> ClientStats {
        ClientStats::default()
    }

    /// The portal's property definitions of a type (schema-drift check of
    /// a saved mapping config).
    fn properties(
        &self,
        _portal: PortalId,
        _object_type: ObjectType,
    ) -> impl Future<Output = Result<Vec<PropertyDefinition>, HubSpotError>> + Send;

    /// The portal's owners (for `owner_email` / `owner_name` rules).
    fn owners(
        &self,
        _portal: PortalId,
    ) -> impl Future<Output = Result<Owners, HubSpotError>> + Send;

    /// Every live member of a HubSpot list (for list scopes).
    fn list_members(
        &self,
        _portal: PortalId,
        _list_id: &str,
    ) -> impl Future<Output = Result<Vec<ObjectId>, HubSpotError>> + Send;

    /// Associations v4 of ≤ 1,000 ids (for association fields).
    fn associations(
        &self,
        _portal: PortalId,
        _from: ObjectType,
        _to: ObjectType,
        _ids: &[ObjectId],
    ) -> impl Future<Output = Result<Vec<AssociationLink>, HubSpotError>> + Send;
}

/// The production source: the HubSpot client and a token source.
#[derive(Debug, Clone)]
pub struct HubSpotSource<T> {
    client: HubSpotClient,
    tokens: T,
}

impl<T> HubSpotSource<T> {
    pub fn new(client: HubSpotClient, tokens: T) -> Self {
        Self { client, tokens }
    }

    pub fn client(&self) -> &HubSpotClient {
        &self.client
    }
}

impl<T: AccessTokenSource> CrmSource for HubSpotSource<T> {
    async fn list_page(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        after: Option<&str>,
        limit: u32,
        properties: &[&str],
        archived: bool,
    ) -> Result<Page<HubSpotObject>, HubSpotError> {
        self.client
            .list_page(
                &self.tokens,
                portal,
                object_type,
                after,
                limit,
                properties,
                archived,
            )
            .await
    }

    async fn batch_read(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        ids: &[ObjectId],
        properties: &[&str],
    ) -> Result<BatchReadResult, HubSpotError> {
        self.client
            .batch_read(&self.tokens, portal, object_type, ids, properties)
            .await
    }

    /// One search call (`limit = 1`, no filters): its `total`. Counts
    /// against the search limit, not the list budget.
    async fn count(
        &self,
        portal: PortalId,
        object_type: ObjectType,
    ) -> Result<Option<u64>, HubSpotError> {
        let request = SearchRequest {
            limit: 1,
            properties: vec!["hs_object_id".to_owned()],
            ..SearchRequest::default()
        };
        let page = self
            .client
            .search(&self.tokens, portal, object_type, &request)
            .await?;
        Ok(Some(page.total))
    }

    fn portal_stats(&self, portal: PortalId) -> ClientStats {
        self.client.stats_for(portal)
    }

    async fn properties(
        &self,
        portal: PortalId,
        object_type: ObjectType,
    ) -> Result<Vec<PropertyDefinition>, HubSpotError> {
        self.client
            .get_properties(&self.tokens, portal, object_type)
            .await
    }

    async fn owners(&self, portal: PortalId) -> Result<Owners, HubSpotError> {
        self.client.owners(&self.tokens, portal).await
    }

    async fn list_members(
        &self,
        portal: PortalId,
        list_id: &str,
    ) -> Result<Vec<ObjectId>, HubSpotError> {
        self.client
            .list_memberships(&self.tokens, portal, list_id)
            .await
    }

    async fn associations(
        &self,
        portal: PortalId,
        from: ObjectType,
        to: ObjectType,
        ids: &[ObjectId],
    ) -> Result<Vec<AssociationLink>, HubSpotError> {
        self.client
            .batch_read_associations(&self.tokens, portal, from, to, ids)
            .await
    }
}
