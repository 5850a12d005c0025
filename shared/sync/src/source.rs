//! HubSpot reads as one-method traits, each implemented once by
//! [`HubSpotSource`] (the shared client — per-portal rate limiter, retries —
//! with a token source). Consumers name the bundle they need
//! ([`ObjectReader`] for the worker, [`CrmSource`] for the reconciliation);
//! a fake implements exactly the reads its test exercises, and a missing one
//! is a compile error, never a run-time "cannot".

use std::future::Future;

use hubsync_hubspot::{
    AccessTokenSource, AssociationLink, BatchReadResult, ClientStats, HubSpotClient, HubSpotError,
    HubSpotObject, ObjectId, ObjectType, Page, PortalId, SearchPage, SearchRequest,
};
use hubsync_mapping::{Owners, Pipelines, PropertyDefinition};

/// Current state of ≤ 100 ids (`missing`: not live), with only `properties`.
pub trait BatchRead: Send + Sync {
    fn batch_read(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        ids: &[ObjectId],
        properties: &[&str],
    ) -> impl Future<Output = Result<BatchReadResult, HubSpotError>> + Send;
}

/// The recycle-bin state of ≤ 100 ids (`?archived=true`): `found` holds
/// those HubSpot deleted, each with its `archivedAt`; `missing` the rest
/// (live, merged away, purged).
pub trait BatchReadArchived: Send + Sync {
    fn batch_read_archived(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        ids: &[ObjectId],
    ) -> impl Future<Output = Result<BatchReadResult, HubSpotError>> + Send;
}

/// One page of a CRM search (its own per-second limit, not the list
/// budget; results trail HubSpot's writes).
pub trait SearchObjects: Send + Sync {
    fn search(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        request: &SearchRequest,
    ) -> impl Future<Output = Result<SearchPage, HubSpotError>> + Send;
}

/// One page of the full listing (`archived = true`: the recycle bin), in id
/// order, with only `properties`.
pub trait ListPage: Send + Sync {
    fn list_page(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        after: Option<&str>,
        limit: u32,
        properties: &[&str],
        archived: bool,
    ) -> impl Future<Output = Result<Page<HubSpotObject>, HubSpotError>> + Send;
}

/// How many live objects the portal has (an estimate for progress; `None`
/// when unknown).
pub trait CountObjects: Send + Sync {
    fn count(
        &self,
        portal: PortalId,
        object_type: ObjectType,
    ) -> impl Future<Output = Result<Option<u64>, HubSpotError>> + Send;
}

/// The portal's owners (for `owner_email` / `owner_name` rules).
pub trait ReadOwners: Send + Sync {
    fn owners(&self, portal: PortalId)
        -> impl Future<Output = Result<Owners, HubSpotError>> + Send;
}

/// The portal's deal pipelines (for `pipeline_label` / `stage_label`
/// rules).
pub trait ReadPipelines: Send + Sync {
    fn pipelines(
        &self,
        portal: PortalId,
    ) -> impl Future<Output = Result<Pipelines, HubSpotError>> + Send;
}

/// The portal's property definitions of a type (schema-drift check).
pub trait ReadProperties: Send + Sync {
    fn properties(
        &self,
        portal: PortalId,
        object_type: ObjectType,
    ) -> impl Future<Output = Result<Vec<PropertyDefinition>, HubSpotError>> + Send;
}

/// Every live member of a HubSpot list (for list scopes).
pub trait ReadListMembers: Send + Sync {
    fn list_members(
        &self,
        portal: PortalId,
        list_id: &str,
    ) -> impl Future<Output = Result<Vec<ObjectId>, HubSpotError>> + Send;
}

/// The lists one record is a member of (the worker's list scope, after
/// HubSpot's journal said the record entered or left a list).
pub trait ReadRecordLists: Send + Sync {
    fn record_lists(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        id: ObjectId,
    ) -> impl Future<Output = Result<Vec<String>, HubSpotError>> + Send;
}

/// Associations v4 of ≤ 1,000 ids (for association fields).
pub trait ReadAssociations: Send + Sync {
    fn associations(
        &self,
        portal: PortalId,
        from: ObjectType,
        to: ObjectType,
        ids: &[ObjectId],
    ) -> impl Future<Output = Result<Vec<AssociationLink>, HubSpotError>> + Send;
}

/// HTTP-level counters for a portal so far (requests with retries, 429s);
/// zero for a source without an HTTP client.
pub trait PortalStats: Send + Sync {
    fn portal_stats(&self, portal: PortalId) -> ClientStats;
}

/// What the real-time worker reads: batch reads, owners, pipelines,
/// associations.
pub trait ObjectReader:
    BatchRead + ReadOwners + ReadPipelines + ReadAssociations + ReadRecordLists + PortalStats
{
}
impl<
        T: BatchRead + ReadOwners + ReadPipelines + ReadAssociations + ReadRecordLists + PortalStats,
    > ObjectReader for T
{
}

/// What a reconciliation reads: the worker's reads, the listing, counts,
/// property definitions and list members.
pub trait CrmSource:
    ObjectReader
    + ListPage
    + CountObjects
    + ReadProperties
    + ReadListMembers
    + SearchObjects
    + BatchReadArchived
{
}
impl<
        T: ObjectReader
            + ListPage
            + CountObjects
            + ReadProperties
            + ReadListMembers
            + SearchObjects
            + BatchReadArchived,
    > CrmSource for T
{
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

impl<T: AccessTokenSource> BatchRead for HubSpotSource<T> {
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
}

impl<T: AccessTokenSource> BatchReadArchived for HubSpotSource<T> {
    async fn batch_read_archived(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        ids: &[ObjectId],
    ) -> Result<BatchReadResult, HubSpotError> {
        let properties = [object_type.last_modified_property()];
        self.client
            .batch_read_archived(&self.tokens, portal, object_type, ids, &properties)
            .await
    }
}

impl<T: AccessTokenSource> SearchObjects for HubSpotSource<T> {
    async fn search(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        request: &SearchRequest,
    ) -> Result<SearchPage, HubSpotError> {
        self.client
            .search(&self.tokens, portal, object_type, request)
            .await
    }
}

impl<T: AccessTokenSource> ListPage for HubSpotSource<T> {
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
}

impl<T: AccessTokenSource> CountObjects for HubSpotSource<T> {
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
}

impl<T: AccessTokenSource> ReadOwners for HubSpotSource<T> {
    async fn owners(&self, portal: PortalId) -> Result<Owners, HubSpotError> {
        self.client.owners(&self.tokens, portal).await
    }
}

impl<T: AccessTokenSource> ReadPipelines for HubSpotSource<T> {
    async fn pipelines(&self, portal: PortalId) -> Result<Pipelines, HubSpotError> {
        self.client
            .pipelines(&self.tokens, portal, ObjectType::Deals)
            .await
    }
}

impl<T: AccessTokenSource> ReadProperties for HubSpotSource<T> {
    async fn properties(
        &self,
        portal: PortalId,
        object_type: ObjectType,
    ) -> Result<Vec<PropertyDefinition>, HubSpotError> {
        self.client
            .get_properties(&self.tokens, portal, object_type)
            .await
    }
}

impl<T: AccessTokenSource> ReadListMembers for HubSpotSource<T> {
    async fn list_members(
        &self,
        portal: PortalId,
        list_id: &str,
    ) -> Result<Vec<ObjectId>, HubSpotError> {
        self.client
            .list_memberships(&self.tokens, portal, list_id)
            .await
    }
}

impl<T: AccessTokenSource> ReadRecordLists for HubSpotSource<T> {
    async fn record_lists(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        id: ObjectId,
    ) -> Result<Vec<String>, HubSpotError> {
        self.client
            .record_list_memberships(&self.tokens, portal, object_type, id)
            .await
    }
}

impl<T: AccessTokenSource> ReadAssociations for HubSpotSource<T> {
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

impl<T: Send + Sync> PortalStats for HubSpotSource<T> {
    fn portal_stats(&self, portal: PortalId) -> ClientStats {
        self.client.stats_for(portal)
    }
}
