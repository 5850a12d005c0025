//! HubSpot's Lists API (scope `crm.lists.read`): a list's name and object
//! type, and every member of a list (for list scopes).

use reqwest::Method;

use crate::client::{Call, HubSpotClient};
use crate::error::HubSpotError;
use crate::ids::{ObjectId, ObjectType, PortalId};
use crate::model::WirePage;
use crate::rate_limit::RateLimitKind;
use crate::token::AccessTokenSource;

impl HubSpotClient {
    /// the list (`GET /crm/lists/{version}/{listId}`) (Lists API, scope `crm.lists.read`):
    /// the list's name and object type; `None` when HubSpot has no such
    /// list.
    pub async fn get_list(
        &self,
        tokens: &impl AccessTokenSource,
        portal: PortalId,
        list_id: &str,
    ) -> Result<Option<ListInfo>, HubSpotError> {
        if list_id.is_empty() || !list_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HubSpotError::InvalidArgument(
                "a list id is a number".into(),
            ));
        }
        let call = Call {
            method: Method::GET,
            path: self.api_version().list(list_id),
            query: Vec::new(),
            body: None,
            kind: RateLimitKind::Standard,
            what: "list",
        };
        match self.execute::<WireListResponse>(tokens, portal, call).await {
            Ok(r) => Ok(Some(ListInfo {
                list_id: r.list.list_id,
                name: r.list.name,
                object_type: ObjectType::from_object_type_id(&r.list.object_type_id),
            })),
            Err(HubSpotError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every live member of a list (`…/{listId}/memberships`,
    /// 250 per page), sorted.
    pub async fn list_memberships(
        &self,
        tokens: &impl AccessTokenSource,
        portal: PortalId,
        list_id: &str,
    ) -> Result<Vec<ObjectId>, HubSpotError> {
        if list_id.is_empty() || !list_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HubSpotError::InvalidArgument(
                "a list id is a number".into(),
            ));
        }
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut query = vec![("limit", "250".to_owned())];
            if let Some(a) = &after {
                query.push(("after", a.clone()));
            }
            let call = Call {
                method: Method::GET,
                path: self.api_version().list_memberships(list_id),
                query,
                body: None,
                kind: RateLimitKind::Standard,
                what: "list memberships",
            };
            let page: WirePage<WireMembership> = self.execute(tokens, portal, call).await?;
            let page = page.into_page();
            out.extend(page.results.into_iter().map(|m| m.record_id()));
            match page.next_after {
                Some(next) if Some(&next) != after.as_ref() => after = Some(next),
                _ => break,
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// The ids of the lists a record is a member of
    /// (`GET /crm/lists/{version}/records/{objectTypeId}/{recordId}/memberships`),
    /// sorted; none for a record HubSpot no longer has live.
    pub async fn record_list_memberships(
        &self,
        tokens: &impl AccessTokenSource,
        portal: PortalId,
        object_type: ObjectType,
        id: ObjectId,
    ) -> Result<Vec<String>, HubSpotError> {
        let call = Call {
            method: Method::GET,
            path: self.api_version().record_list_memberships(object_type, id),
            query: Vec::new(),
            body: None,
            kind: RateLimitKind::Standard,
            what: "record list memberships",
        };
        let r: WireRecordLists = match self.execute(tokens, portal, call).await {
            Ok(r) => r,
            Err(HubSpotError::NotFound) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out: Vec<String> = r
            .results
            .into_iter()
            .map(|l| l.list_id.into_string())
            .collect();
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

#[derive(serde::Deserialize)]
struct WireRecordLists {
    #[serde(default)]
    results: Vec<WireRecordList>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRecordList {
    list_id: WireId,
}

/// An id HubSpot types as a string; a number is accepted too.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum WireId {
    Text(String),
    Number(u64),
}

impl WireId {
    fn into_string(self) -> String {
        match self {
            WireId::Text(s) => s,
            WireId::Number(n) => n.to_string(),
        }
    }
}

/// A HubSpot list (Lists API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListInfo {
    pub list_id: String,
    pub name: String,
    /// `None` for lists of other object types.
    pub object_type: Option<ObjectType>,
}

#[derive(serde::Deserialize)]
struct WireListResponse {
    list: WireList,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireList {
    list_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    object_type_id: String,
}

/// A membership: `{"recordId": "…"}`, or a bare id in older responses.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum WireMembership {
    Record {
        #[serde(rename = "recordId")]
        record_id: ObjectId,
    },
    Bare(ObjectId),
}

impl WireMembership {
    fn record_id(self) -> ObjectId {
        match self {
            WireMembership::Record { record_id } => record_id,
            WireMembership::Bare(id) => id,
        }
    }
}
