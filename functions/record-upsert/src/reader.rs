//! The production [`ObjectReader`]: the HubSpot client with the portal's
//! token source (and the client's per-portal rate limiter and retries).

use hubsync_hubspot::{
    AccessTokenSource, AssociationLink, BatchReadResult, HubSpotClient, HubSpotError, ObjectId,
    ObjectType, PortalId,
};
use hubsync_mapping::Owners;

use crate::worker::ObjectReader;

pub struct HubSpotReader<T> {
    client: HubSpotClient,
    tokens: T,
}

impl<T> HubSpotReader<T> {
    pub fn new(client: HubSpotClient, tokens: T) -> Self {
        Self { client, tokens }
    }

    pub fn client(&self) -> &HubSpotClient {
        &self.client
    }
}

impl<T: AccessTokenSource> ObjectReader for HubSpotReader<T> {
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

    fn client_stats(&self, portal: PortalId) -> Option<hubsync_hubspot::ClientStats> {
        Some(self.client.stats_for(portal))
    }

    async fn owners(&self, portal: PortalId) -> Result<Owners, HubSpotError> {
        self.client.owners(&self.tokens, portal).await
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
