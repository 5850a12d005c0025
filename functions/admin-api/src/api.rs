//! The handler: authenticate the caller, match the route, validate every
//! input, run the admin operation ([`hubsync_admin`], the same code the ops
//! CLI runs), answer JSON. Generic over the store, token source, queue,
//! cipher and revoker, so the Lambda, the local runner and tests run the
//! same code.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use hubsync_admin::connection::{disconnect, GrantRevoker};
use hubsync_admin::mapping::{preview, save_config, show_config, validate_config};
use hubsync_admin::records::{purge_archived, purge_one, PurgeFilter};
use hubsync_admin::{link, sync, tenant, AdminError};
use hubsync_auth::TokenCipher;
use hubsync_hubspot::{AccessTokenSource, HubSpotClient, ObjectId, ObjectType, PortalId};
use hubsync_messages::JobQueue;
use hubsync_store::{
    ConnectionStore, IncidentStore, MappingConfigStore, RecordKey, RecordStore, SyncJobKind,
    SyncStateStore,
};
use secrecy::SecretString;
use serde_json::json;
use tracing::Instrument;

use crate::caller::{CallerPolicy, Refusal};
use crate::input::{
    body_json, invalid, mapping_body, object_type, parse_params, positive_id, InstallLinkRequest,
    Params, PreviewRequest, StartSyncRequest, SuggestRequest, MAX_SUGGEST_FIELDS,
};
use crate::problem::{from_admin_error, ApiResponse};
use crate::routes::{route, Matched, Op};

/// How the API behaves.
#[derive(Clone)]
pub struct ApiConfig {
    /// Who may call it.
    pub callers: CallerPolicy,
    /// The key of the signed install links (shared with the OAuth function).
    pub link_secret: SecretString,
    /// This deployment's public base URL: install links point at
    /// `{public_base_url}/oauth/install`.
    pub public_base_url: String,
    /// An install link's lifetime when the request names none.
    pub link_lifetime: Duration,
    /// The longest lifetime the OAuth function accepts.
    pub link_max_lifetime: Duration,
    /// How long one bulk-purge request works before answering with where
    /// to resume (below API Gateway's 30 s integration timeout).
    pub purge_budget: Duration,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("callers", &self.callers)
            .field("public_base_url", &self.public_base_url)
            .field("link_lifetime", &self.link_lifetime)
            .field("link_max_lifetime", &self.link_max_lifetime)
            .field("purge_budget", &self.purge_budget)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl ApiConfig {
    /// Defaults for everything but the callers, the link key and the URL.
    pub fn new(callers: CallerPolicy, link_secret: SecretString, public_base_url: String) -> Self {
        Self {
            callers,
            link_secret,
            public_base_url,
            link_lifetime: Duration::from_secs(900),
            link_max_lifetime: Duration::from_secs(3600),
            purge_budget: Duration::from_secs(20),
            max_body_bytes: 256 * 1024,
        }
    }
}

/// One request, as API Gateway (or the local runner) hands it over.
#[derive(Debug, Clone, Copy)]
pub struct ApiRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub body: &'a [u8],
    /// The IAM principal API Gateway authenticated
    /// (`requestContext.authorizer.iam.userArn`).
    pub caller: Option<&'a str>,
}

/// The API's dependencies.
pub struct AdminApi<S, T, Q, C, R> {
    pub config: ApiConfig,
    pub store: S,
    /// HubSpot, with the limiter every function shares.
    pub hubspot: HubSpotClient,
    /// The portals' access tokens (KMS-decrypted, refreshed once).
    pub tokens: T,
    pub jobs: Q,
    pub cipher: C,
    pub revoker: R,
}

type Answer = Result<ApiResponse, AdminError>;

fn epoch(at: DateTime<Utc>) -> i64 {
    at.timestamp()
}

impl<S, T, Q, C, R> AdminApi<S, T, Q, C, R>
where
    S: ConnectionStore + MappingConfigStore + SyncStateStore + RecordStore + IncidentStore,
    T: AccessTokenSource,
    Q: JobQueue,
    C: TokenCipher,
    R: GrantRevoker,
{
    /// Answers one request. Never panics on input; logs the operation, the
    /// tenant, the portal and the status (ids only).
    pub async fn handle(&self, req: ApiRequest<'_>, now: DateTime<Utc>) -> ApiResponse {
        let span = tracing::info_span!(
            "admin_api",
            op = tracing::field::Empty,
            tenant = tracing::field::Empty,
            portal = tracing::field::Empty,
            status = tracing::field::Empty,
        );
        let response = self.answer(req, now).instrument(span.clone()).await;
        span.record("status", response.status);
        let _entered = span.enter();
        match response.status {
            500.. => tracing::error!(code = response.error_code(), "admin API request failed"),
            400.. => tracing::info!(code = response.error_code(), "admin API request refused"),
            _ => tracing::info!("admin API request served"),
        }
        response
    }

    async fn answer(&self, req: ApiRequest<'_>, now: DateTime<Utc>) -> ApiResponse {
        match self.config.callers.check(req.caller) {
            Ok(()) => {}
            Err(Refusal::Unauthenticated) => {
                return ApiResponse::error(
                    401,
                    "unauthenticated",
                    "the request carries no IAM identity; sign it with SigV4",
                )
            }
            Err(Refusal::NotAllowed) => {
                return ApiResponse::error(
                    403,
                    "forbidden",
                    "this IAM principal may not call the admin API",
                )
            }
        }
        let (route, raw) = match route(req.method, req.path) {
            Matched::Route(r, p) => (r, p),
            Matched::MethodNotAllowed(allowed) => return ApiResponse::method_not_allowed(&allowed),
            Matched::NotFound => {
                return ApiResponse::error(404, "no_route", format!("no route {}", req.path))
            }
        };
        tracing::Span::current().record("op", route.operation_id);
        if req.body.len() > self.config.max_body_bytes {
            return ApiResponse::error(
                413,
                "body_too_large",
                format!("the body exceeds {} bytes", self.config.max_body_bytes),
            );
        }
        if route.request.is_none() && !req.body.iter().all(u8::is_ascii_whitespace) {
            return ApiResponse::bad_request("this route takes no body");
        }
        let params = match parse_params(route, raw, req.query) {
            Ok(p) => p,
            Err(e) => return from_admin_error(&e),
        };
        tracing::Span::current().record("tenant", params.tenant.as_str());
        if let Some(p) = params.portal {
            tracing::Span::current().record("portal", p.0);
        }
        match self.dispatch(route.op, &params, req.body, now).await {
            Ok(r) => r,
            Err(e) => {
                if matches!(
                    e,
                    AdminError::Store(_) | AdminError::HubSpot(_) | AdminError::Queue(_)
                ) {
                    tracing::warn!(error = %e, retryable = e.is_retryable(), "admin operation failed");
                }
                from_admin_error(&e)
            }
        }
    }

    fn portal(p: &Params) -> Result<PortalId, AdminError> {
        p.portal.ok_or_else(|| invalid("the route needs a portal"))
    }

    async fn dispatch(&self, op: Op, p: &Params, body: &[u8], now: DateTime<Utc>) -> Answer {
        let tenant = p.tenant.as_str();
        match op {
            Op::CreateInstallLink => self.install_link(tenant, body, now),
            Op::ListConnections => {
                let connections = tenant::connections(&self.store, tenant).await?;
                Ok(ApiResponse::json(
                    200,
                    &json!({ "connections": connections }),
                ))
            }
            Op::GetConnection => {
                let c = tenant::connection_of(&self.store, tenant, Self::portal(p)?).await?;
                Ok(ApiResponse::json(
                    200,
                    &tenant::view(&self.store, &c).await?,
                ))
            }
            Op::Disconnect => {
                let c = tenant::connection_of(&self.store, tenant, Self::portal(p)?).await?;
                let done = disconnect(&self.store, &self.cipher, &self.revoker, &c).await?;
                Ok(ApiResponse::json(
                    200,
                    &json!({
                        "portal_id": c.portal_id,
                        "state": "disconnected",
                        "previous_state": tenant::state_name(done.was),
                        "revoked_at_hubspot": done.revoked_at_hubspot,
                    }),
                ))
            }
            Op::GetMapping => {
                let portal = Self::portal(p)?;
                tenant::connection_of(&self.store, tenant, portal).await?;
                Ok(ApiResponse::json(
                    200,
                    &show_config(&self.store, portal).await?,
                ))
            }
            Op::ValidateMapping => {
                let portal = self.active(tenant, p).await?;
                let config = mapping_body(body)?;
                let valid = validate_config(&self.hubspot, &self.tokens, portal, &config).await?;
                Ok(ApiResponse::json(
                    200,
                    &json!({ "valid": true, "config": valid }),
                ))
            }
            Op::SaveMapping => self.save_mapping(tenant, p, body, now).await,
            Op::PreviewMapping => self.preview(tenant, p, body).await,
            Op::SuggestMapping => {
                let portal = self.active(tenant, p).await?;
                let request: SuggestRequest = body_json(body)?;
                if request.fields.is_empty() || request.fields.len() > MAX_SUGGEST_FIELDS {
                    return Err(invalid(format!(
                        "fields must list 1 to {MAX_SUGGEST_FIELDS} fields"
                    )));
                }
                if let Some(f) = request.fields.iter().find(|f| f.name.trim().is_empty()) {
                    return Err(invalid(format!(
                        "a field has no name (label {:?})",
                        f.label
                    )));
                }
                let properties = self
                    .hubspot
                    .get_properties(&self.tokens, portal, request.object_type)
                    .await?;
                let suggestions = hubsync_mapping::suggest::suggest(&request.fields, &properties);
                Ok(ApiResponse::json(
                    200,
                    &json!({ "object_type": request.object_type, "suggestions": suggestions }),
                ))
            }
            Op::ListProperties => {
                let portal = self.active(tenant, p).await?;
                let t = p
                    .object_type
                    .ok_or_else(|| invalid("the route needs an objectType"))?;
                let properties = self.hubspot.get_properties(&self.tokens, portal, t).await?;
                Ok(ApiResponse::json(
                    200,
                    &json!({ "object_type": t, "properties": properties }),
                ))
            }
            Op::StartSync => {
                let portal = Self::portal(p)?;
                tenant::connection_of(&self.store, tenant, portal).await?;
                let request: StartSyncRequest = body_json(body)?;
                let queued = sync::start(
                    &self.store,
                    &self.jobs,
                    portal,
                    request.kind,
                    request.object_types,
                    now.timestamp_millis(),
                )
                .await?;
                Ok(ApiResponse::json(202, &queued))
            }
            Op::ListSyncs => {
                let portal = Self::portal(p)?;
                tenant::connection_of(&self.store, tenant, portal).await?;
                let limit = match p.query.get("limit") {
                    None => 10,
                    Some(raw) => match raw.parse::<usize>() {
                        Ok(n @ 1..=50) => n,
                        _ => return Err(invalid(format!("limit must be 1 to 50, not {raw:?}"))),
                    },
                };
                let runs = self.store.list_run_reports(portal, limit).await?;
                Ok(ApiResponse::json(200, &json!({ "runs": runs })))
            }
            Op::GetSync => {
                let portal = Self::portal(p)?;
                tenant::connection_of(&self.store, tenant, portal).await?;
                let run_id = p.run_id.as_deref().unwrap_or_default();
                match self.store.get_run_report(portal, run_id).await? {
                    Some(report) => Ok(ApiResponse::json(200, &report)),
                    None => Err(AdminError::NotFound(format!(
                        "portal {portal} has no run {run_id}"
                    ))),
                }
            }
            Op::GetHealth => {
                let portal = Self::portal(p)?;
                tenant::connection_of(&self.store, tenant, portal).await?;
                let types = match p.query.get("object_type") {
                    Some(t) => vec![object_type(t)?],
                    None => ObjectType::ALL.to_vec(),
                };
                let examples = match p.query.get("examples") {
                    None => 10,
                    Some(raw) => match raw.parse::<usize>() {
                        Ok(n) if n <= hubsync_admin::health::MAX_EXAMPLES => n,
                        _ => {
                            return Err(invalid(format!(
                                "examples must be 0 to {}, not {raw:?}",
                                hubsync_admin::health::MAX_EXAMPLES
                            )))
                        }
                    },
                };
                let health =
                    hubsync_admin::health::report(&self.store, portal, &types, examples).await?;
                Ok(ApiResponse::json(200, &health))
            }
            Op::DeleteRecord => {
                let portal = Self::portal(p)?;
                tenant::connection_of(&self.store, tenant, portal).await?;
                let (Some(t), Some(id)) = (p.object_type, p.record_id) else {
                    return Err(invalid("the route needs an objectType and a recordId"));
                };
                purge_one(&self.store, &RecordKey::new(portal, t, id)).await?;
                Ok(ApiResponse::no_content())
            }
            Op::PurgeRecords => {
                let portal = Self::portal(p)?;
                tenant::connection_of(&self.store, tenant, portal).await?;
                let t = p
                    .object_type
                    .ok_or_else(|| invalid("the route needs an objectType"))?;
                let filter = match p.query.get("archived_reason").map(String::as_str) {
                    Some("out_of_scope") => PurgeFilter::OutOfScope,
                    _ => PurgeFilter::AllArchived,
                };
                let resume_after = p
                    .query
                    .get("resume_after")
                    .map(|r| positive_id("resume_after", r))
                    .transpose()?
                    .map(ObjectId);
                let report = purge_archived(
                    &self.store,
                    portal,
                    t,
                    filter,
                    resume_after,
                    self.config.purge_budget,
                )
                .await?;
                Ok(ApiResponse::json(200, &report))
            }
        }
    }

    /// The portal of the path, refused unless it is the tenant's and active.
    async fn active(&self, tenant: &str, p: &Params) -> Result<PortalId, AdminError> {
        let portal = Self::portal(p)?;
        tenant::active_connection_of(&self.store, tenant, portal).await?;
        Ok(portal)
    }

    fn install_link(&self, tenant: &str, body: &[u8], now: DateTime<Utc>) -> Answer {
        let request: InstallLinkRequest = if body.iter().all(u8::is_ascii_whitespace) {
            InstallLinkRequest::default()
        } else {
            body_json(body)?
        };
        let max = self.config.link_max_lifetime.as_secs();
        let secs = request
            .expires_in_secs
            .unwrap_or(self.config.link_lifetime.as_secs().min(max));
        if !(60..=max).contains(&secs) {
            return Err(invalid(format!(
                "expires_in_secs must be 60 to {max}, not {secs}"
            )));
        }
        let expires = epoch(now) + i64::try_from(secs).unwrap_or(i64::MAX);
        let purpose = if request.defer_initial_sync {
            link::Purpose::InstallDeferred
        } else {
            link::Purpose::Install
        };
        let url = link::install_url_for(
            &self.config.public_base_url,
            &self.config.link_secret,
            purpose,
            tenant,
            expires,
        );
        let expires_at = Utc.timestamp_opt(expires, 0).single().unwrap_or(now);
        Ok(ApiResponse::json(
            201,
            &json!({
                "tenant_id": tenant,
                "url": url,
                "expires_at": expires_at,
                "defer_initial_sync": request.defer_initial_sync,
            }),
        ))
    }

    async fn save_mapping(
        &self,
        tenant: &str,
        p: &Params,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Answer {
        let portal = self.active(tenant, p).await?;
        let config = mapping_body(body)?;
        let resync = p.query.get("resync").map(String::as_str) != Some("none");
        let saved = save_config(&self.store, &self.hubspot, &self.tokens, portal, &config).await?;
        let queued = if resync && !saved.changed_types.is_empty() {
            Some(
                sync::start(
                    &self.store,
                    &self.jobs,
                    portal,
                    SyncJobKind::Resync,
                    saved.changed_types.clone(),
                    now.timestamp_millis(),
                )
                .await?,
            )
        } else {
            None
        };
        Ok(ApiResponse::json(
            200,
            &json!({ "saved": saved, "resync": queued }),
        ))
    }

    async fn preview(&self, tenant: &str, p: &Params, body: &[u8]) -> Answer {
        let portal = self.active(tenant, p).await?;
        let request: PreviewRequest = if body.iter().all(u8::is_ascii_whitespace) {
            PreviewRequest::default()
        } else {
            body_json(body)?
        };
        let sample = request.sample.unwrap_or(10);
        if !(1..=hubsync_admin::mapping::MAX_PREVIEW_SAMPLE).contains(&sample) {
            return Err(invalid(format!(
                "sample must be 1 to {}, not {sample}",
                hubsync_admin::mapping::MAX_PREVIEW_SAMPLE
            )));
        }
        let config = match request.config {
            Some(c) => c,
            None => show_config(&self.store, portal).await?.config,
        };
        let types = match request.object_types {
            Some(t) if t.is_empty() => return Err(invalid("object_types must not be empty")),
            Some(t) => t,
            None => ObjectType::ALL.to_vec(),
        };
        let preview = preview(&self.hubspot, &self.tokens, portal, &config, &types, sample).await?;
        Ok(ApiResponse::json(200, &preview))
    }
}
