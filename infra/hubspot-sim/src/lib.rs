//! `hubspot-sim`: a stateful, faithful HubSpot simulator for hubsync's tests,
//! local stack and benchmarks.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use hubspot_sim::{ObjectType, SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig::default()).await?; // 127.0.0.1:0, one portal 1000001
//! let portal = sim.state().portal_ids()[0];
//! let token = sim.issue_token(portal).expect("portal exists");
//! let id = sim.state().create_object(portal, ObjectType::Companies, hubspot_sim::props([("name", "Acme")])).unwrap();
//! println!("{} {} {}", sim.base_url(), token.access_token, id);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//! See `README.md` for the control API and CLI flags.

// Handlers return `Result<_, Response>` so that `?` yields a ready HubSpot-style
// error response; boxing every error response would only add noise.
#![allow(clippy::result_large_err)]

pub mod clock;
pub mod config;
pub mod control;
pub mod counters;
pub mod crm;
pub mod faults;
mod http;
pub mod journal;
pub mod lists;
pub mod model;
pub mod oauth;
pub mod pipelines;
pub mod ratelimit;
pub mod search;
pub mod seed;
pub mod state;
pub mod versions;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{
    AppConfig, MergedIdReads, OAuthConfig, OAuthErrorShape, RateLimitConfig, SeedSpec, SimConfig,
    WebhookConfig, WebhookFormat,
};
pub use counters::CounterSnapshot;
pub use faults::Faults;
pub use journal::{JournalEvent, JournalSubscription};
pub use model::{ObjectType, Owner, PropertyDef, PropertyOption};
pub use state::{
    props, Change, ChangeOutcome, MergeOutcome, PortalInfo, Props, RandomChangeReport, SimError,
    SimObject, SimState, TokenSet,
};
pub use webhooks::{signing, WebhookEvent};

impl SimState {
    /// Base URL used in `paging.next.link` (`public_base_url` or the bound address).
    pub fn public_base_url(&self) -> String {
        self.config_read()
            .public_base_url
            .clone()
            .unwrap_or_else(|| self.base_url())
    }
}

/// The HubSpot API router (CRM, OAuth, control).
pub fn router(state: Arc<SimState>) -> Router {
    let api = Router::new()
        .route("/oauth/authorize", get(oauth::authorize))
        .route("/oauth/{version}/token", post(oauth::token))
        .route("/oauth/{version}/token/introspect", post(oauth::introspect))
        .route("/oauth/{version}/token/revoke", post(oauth::revoke))
        .route(
            "/oauth/v1/access-tokens/{token}",
            get(oauth::access_token_info),
        )
        .route(
            "/oauth/v1/refresh-tokens/{token}",
            get(oauth::refresh_token_info).delete(oauth::delete_refresh_token),
        )
        .route("/crm/v3/objects/{type}", get(crm::list_objects))
        .route("/crm/v3/objects/{type}/{id}", get(crm::get_object))
        .route("/crm/v3/objects/{type}/batch/read", post(crm::batch_read))
        .route("/crm/v3/objects/{type}/search", post(search::search))
        .route("/crm/v3/properties/{type}", get(crm::list_properties))
        .route("/crm/v3/properties/{type}/{name}", get(crm::get_property))
        .route("/crm/v3/lists/{id}", get(lists::get_list))
        .route(
            "/crm/v3/lists/{id}/memberships",
            get(lists::list_memberships),
        )
        .route(
            "/crm/v3/lists/records/{type}/{id}/memberships",
            get(lists::record_memberships),
        )
        .route("/crm/v3/pipelines/{type}", get(pipelines::list_pipelines))
        .route("/crm/v3/owners", get(crm::list_owners))
        .route("/crm/v3/owners/", get(crm::list_owners))
        .route("/crm/v3/owners/{id}", get(crm::get_owner))
        .route(
            "/crm/v4/associations/{from}/{to}/batch/read",
            post(crm::assoc_batch_read),
        )
        .merge(control::router())
        .merge(journal::http::router())
        .merge(journal::batch::router())
        .fallback(|| async {
            http::hs_error(
                axum::http::StatusCode::NOT_FOUND,
                "OBJECT_NOT_FOUND",
                "resource not found (hubspot-sim does not implement this route)",
            )
        })
        .with_state(state);
    // Date-versioned paths are rewritten before the inner router routes.
    Router::new()
        .fallback_service(api)
        .layer(axum::middleware::map_request(versions::tag_version))
}

/// A running simulator (HTTP server + webhook dispatcher).
pub struct Simulator {
    state: Arc<SimState>,
    addr: SocketAddr,
    shutdown_tx: watch::Sender<bool>,
    server: JoinHandle<()>,
    dispatcher: JoinHandle<()>,
}

impl Simulator {
    /// Creates the initial portals (installed, seeded with `initial_seed`), binds
    /// `config.bind` (default `127.0.0.1:0`) and starts serving.
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        let addr = listener.local_addr()?;
        let (state, rx) = SimState::new(config.clone());
        *state.base_url.write().unwrap_or_else(|e| e.into_inner()) = format!("http://{addr}");
        for i in 0..config.portal_count {
            let id = config.first_portal_id + i as u64;
            state
                .create_portal(Some(id))
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            state
                .install(id)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let spec = config.initial_seed;
            if spec.companies + spec.contacts + spec.deals + spec.owners > 0 {
                let st = state.clone();
                tokio::task::spawn_blocking(move || st.seed_portal(id, spec))
                    .await
                    .map_err(std::io::Error::other)?
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
            }
        }
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let dispatcher = tokio::spawn(webhooks::run_dispatcher(
            state.clone(),
            rx,
            shutdown_rx.clone(),
        ));
        let app = router(state.clone());
        let mut srx = shutdown_rx;
        let server = tokio::spawn(async move {
            let r = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = srx.changed().await;
                })
                .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "hubspot-sim server stopped");
            }
        });
        tracing::info!(%addr, "hubspot-sim listening");
        Ok(Self {
            state,
            addr,
            shutdown_tx,
            server,
            dispatcher,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// In-process access to everything (portals, records, faults, counters, clock).
    pub fn state(&self) -> &Arc<SimState> {
        &self.state
    }

    /// Shortcut for [`SimState::issue_token`].
    pub fn issue_token(&self, portal: u64) -> Result<TokenSet, SimError> {
        self.state.issue_token(portal)
    }

    /// Stops the server, the dispatcher and pending deliveries.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        self.state.abort_tasks();
        self.dispatcher.abort();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.server).await;
    }
}
