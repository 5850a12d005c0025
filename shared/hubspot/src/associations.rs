//! The associations batch read, following each input's paging to the end.
//!
//! HubSpot pages associations **per input object**: a result carries
//! `paging.next.after` when its object has more links than one page, and the
//! next page is asked for by resending `{"id", "after"}` for that input. A
//! client that ignores it silently truncates a company's contacts.

use std::collections::{BTreeMap, HashMap};

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{to_json, Call, HubSpotClient};
use crate::error::HubSpotError;
use crate::ids::{ObjectId, ObjectType, PortalId};
use crate::rate_limit::RateLimitKind;
use crate::token::AccessTokenSource;

/// Most ids in one associations batch read.
pub const MAX_ASSOCIATION_INPUTS: usize = 1_000;

/// Most follow-up requests one batch read makes for paging, a guard
/// against a cursor that never ends (1,000 inputs × 500 links per page
/// would need far fewer).
const MAX_PAGING_ROUNDS: usize = 10_000;

/// One association `from → to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssociationLink {
    pub from: ObjectId,
    pub to: ObjectId,
    /// HubSpot's primary association (e.g. a contact's primary company).
    pub primary: bool,
}

impl HubSpotClient {
    /// The associations batch read `from → to` with up to 1,000 ids (more is
    /// an error before any request; no ids → no request), every page of
    /// every input: inputs with more links than one page are asked for
    /// again with their `after` cursor until HubSpot gives none. Ids without
    /// associations (HubSpot's 207 errors) are simply absent from the
    /// result. A link is primary when HubSpot labels one of its association
    /// types `Primary`. Links come back sorted and without duplicates.
    pub async fn batch_read_associations(
        &self,
        tokens: &impl AccessTokenSource,
        portal: PortalId,
        from: ObjectType,
        to: ObjectType,
        ids: &[ObjectId],
    ) -> Result<Vec<AssociationLink>, HubSpotError> {
        if ids.len() > MAX_ASSOCIATION_INPUTS {
            return Err(HubSpotError::InvalidArgument(format!(
                "association batch read takes at most {MAX_ASSOCIATION_INPUTS} ids, got {}",
                ids.len()
            )));
        }
        let mut unique: Vec<ObjectId> = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let mut pending: Vec<WireInput> = unique
            .iter()
            .map(|id| WireInput {
                id: id.to_string(),
                after: None,
            })
            .collect();
        // (from, to) → primary
        let mut links: BTreeMap<(ObjectId, ObjectId), bool> = BTreeMap::new();
        let mut rounds = 0usize;
        while !pending.is_empty() {
            rounds += 1;
            if rounds > MAX_PAGING_ROUNDS {
                return Err(HubSpotError::InvalidArgument(format!(
                    "association paging did not end after {MAX_PAGING_ROUNDS} requests"
                )));
            }
            let call = Call {
                method: Method::POST,
                path: self.api_version().associations_batch_read(from, to),
                query: Vec::new(),
                body: Some(to_json(&WireRequest { inputs: &pending })?),
                kind: RateLimitKind::Standard,
                what: "associations batch read",
            };
            let resp: WireResponse = self.execute(tokens, portal, call).await?;
            // The cursor each input was asked with.
            let asked: HashMap<&str, Option<&str>> = pending
                .iter()
                .map(|i| (i.id.as_str(), i.after.as_deref()))
                .collect();
            let mut next = Vec::new();
            for r in resp.results {
                let Ok(from_id) = r.from.id.parse::<ObjectId>() else {
                    continue;
                };
                for t in r.to {
                    let primary = t
                        .association_types
                        .iter()
                        .any(|a| a.label.as_deref() == Some("Primary"));
                    *links.entry((from_id, t.to_object_id)).or_default() |= primary;
                }
                let Some(after) = r.paging.and_then(|p| p.next).map(|n| n.after) else {
                    continue;
                };
                let asked = asked.get(r.from.id.as_str()).copied().flatten();
                // A cursor that does not move would loop forever.
                if !after.is_empty() && asked != Some(after.as_str()) {
                    next.push(WireInput {
                        id: r.from.id,
                        after: Some(after),
                    });
                }
            }
            pending = next;
        }
        Ok(links
            .into_iter()
            .map(|((from, to), primary)| AssociationLink { from, to, primary })
            .collect())
    }
}

#[derive(Serialize)]
struct WireRequest<'a> {
    inputs: &'a [WireInput],
}

#[derive(Serialize)]
struct WireInput {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    after: Option<String>,
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    results: Vec<WireResult>,
}

#[derive(Deserialize)]
struct WireResult {
    from: WireFrom,
    #[serde(default)]
    to: Vec<WireTo>,
    #[serde(default)]
    paging: Option<WirePaging>,
}

#[derive(Deserialize)]
struct WireFrom {
    id: String,
}

/// `toObjectId` is typed a string in the 2026-03 spec and sent as a
/// number by v4: [`ObjectId`] accepts both.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTo {
    to_object_id: ObjectId,
    #[serde(default)]
    association_types: Vec<WireType>,
}

#[derive(Deserialize)]
struct WireType {
    #[serde(default)]
    label: Option<String>,
}

#[derive(Deserialize)]
struct WirePaging {
    #[serde(default)]
    next: Option<WireNext>,
}

#[derive(Deserialize)]
struct WireNext {
    after: String,
}
