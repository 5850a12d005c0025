//! Portals, records, tokens, mutations (which emit webhook events).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::clock::{iso_ms, SimClock};
use crate::config::WebhookFormat;
use crate::config::{SeedSpec, SimConfig};
use crate::counters::{CounterSnapshot, Counters};
use crate::faults::Faults;
use crate::model::{
    builtin_properties, derived_prop, Interner, ObjectType, Owner, PropRef, PropertyDef, Record,
};
use crate::ratelimit::RateLimiter;
use crate::webhooks::WebhookEvent;

mod associations;
pub use associations::*;

mod mutations;
mod portals;
mod reads;
mod tokens;

/// Property values for mutations: name → value (`None` clears).
pub type Props = BTreeMap<String, Option<String>>;

/// Something usable as a property value in [`props`].
pub trait PropValue {
    fn into_value(self) -> Option<String>;
}
impl PropValue for &str {
    fn into_value(self) -> Option<String> {
        Some(self.to_string())
    }
}
impl PropValue for String {
    fn into_value(self) -> Option<String> {
        Some(self)
    }
}
impl PropValue for &String {
    fn into_value(self) -> Option<String> {
        Some(self.clone())
    }
}
impl PropValue for Option<&str> {
    fn into_value(self) -> Option<String> {
        self.map(str::to_string)
    }
}
impl PropValue for Option<String> {
    fn into_value(self) -> Option<String> {
        self
    }
}

/// Builds [`Props`]: `props([("name", "Acme"), ("domain", "acme.io")])`.
pub fn props<I, K, V>(it: I) -> Props
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: PropValue,
{
    it.into_iter()
        .map(|(k, v)| (k.into(), v.into_value()))
        .collect()
}

/// Errors of the in-process API (mapped to HTTP by the control API).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("portal {0} does not exist")]
    UnknownPortal(u64),
    #[error("portal {0} already exists")]
    PortalExists(u64),
    #[error("{ty:?} {id} not found")]
    NotFound { ty: ObjectType, id: u64 },
    #[error("{0}")]
    Invalid(String),
}

/// A record as HubSpot renders it (also the JSON shape of the CRM API).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SimObject {
    pub id: String,
    pub properties: BTreeMap<String, Option<String>>,
    pub created_at: String,
    pub updated_at: String,
    pub archived: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<String>,
}

impl SimObject {
    pub fn prop(&self, name: &str) -> Option<&str> {
        self.properties.get(name).and_then(|v| v.as_deref())
    }
}

/// Tokens handed out by the token endpoint or [`SimState::issue_token`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub token_type: String,
    pub hub_id: u64,
}

/// One mutation. Also the JSON body of `POST /_sim/portals/{id}/changes` (`"op": "update"`, …).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    Create {
        object_type: ObjectType,
        #[serde(default)]
        properties: Props,
    },
    Update {
        object_type: ObjectType,
        id: u64,
        properties: Props,
    },
    Delete {
        object_type: ObjectType,
        id: u64,
    },
    Restore {
        object_type: ObjectType,
        id: u64,
    },
    /// `new_id`: `Some(true)` = survivor gets a new id, `Some(false)` = primary survives,
    /// `None` = random with `merge_new_id_probability`.
    Merge {
        object_type: ObjectType,
        primary_id: u64,
        merged_id: u64,
        #[serde(default)]
        new_id: Option<bool>,
    },
    PrivacyDelete {
        id: u64,
    },
    Associate {
        from_type: ObjectType,
        from_id: u64,
        to_type: ObjectType,
        to_id: u64,
        #[serde(default)]
        primary: bool,
    },
    Dissociate {
        from_type: ObjectType,
        from_id: u64,
        to_type: ObjectType,
        to_id: u64,
    },
}

/// Result of one [`Change`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ChangeOutcome {
    /// The created / updated / surviving object.
    pub object_id: Option<u64>,
    /// Properties that really changed (update) or moved (merge).
    pub changed: u32,
    pub events: Vec<WebhookEvent>,
}

/// Result of a merge.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MergeOutcome {
    pub survivor_id: u64,
    pub new_id: bool,
    pub properties_moved: u32,
}

/// Summary of [`SimState::random_changes`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RandomChangeReport {
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub restored: u64,
    pub merged: u64,
    pub associations: u64,
    pub skipped: u64,
    pub events: u64,
}

/// Public view of a portal.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PortalInfo {
    pub portal_id: u64,
    pub hub_domain: String,
    pub installed: bool,
    pub consent_denied: Option<String>,
    pub companies: usize,
    pub contacts: usize,
    pub deals: usize,
    pub archived_companies: usize,
    pub archived_contacts: usize,
    pub archived_deals: usize,
    pub owners: usize,
    pub custom_properties: usize,
}

#[derive(Debug, Default)]
pub(crate) struct ObjectStore {
    pub live: BTreeMap<u64, Record>,
    pub archived: BTreeMap<u64, Record>,
    /// Merged-away id → the record it was merged into.
    pub merged_into: BTreeMap<u64, u64>,
}

impl ObjectStore {
    /// The live record a merged-away id ended in (following later merges).
    pub fn survivor_of(&self, id: u64) -> Option<u64> {
        let mut cur = *self.merged_into.get(&id)?;
        for _ in 0..32 {
            if self.live.contains_key(&cur) {
                return Some(cur);
            }
            cur = *self.merged_into.get(&cur)?;
        }
        None
    }
}

#[derive(Debug)]
pub(crate) struct PortalData {
    pub installed: bool,
    pub consent_denied: Option<String>,
    pub stores: [ObjectStore; 3],
    pub defs: [Vec<PropertyDef>; 3],
    pub owners: Vec<Owner>,
    pub assoc: Associations,
    pub next_ids: [u64; 3],
    /// Static lists by id (see [`crate::lists`]).
    pub lists: BTreeMap<u64, crate::lists::SimList>,
    /// Deal pipelines (see [`crate::pipelines`]).
    pub pipelines: Vec<crate::pipelines::SimPipeline>,
}

impl PortalData {
    fn new() -> Self {
        Self {
            installed: false,
            consent_denied: None,
            stores: Default::default(),
            defs: [
                builtin_properties(ObjectType::Companies),
                builtin_properties(ObjectType::Contacts),
                builtin_properties(ObjectType::Deals),
            ],
            owners: Vec::new(),
            assoc: Associations::default(),
            next_ids: [1_000_000_001, 2_000_000_001, 3_000_000_001],
            lists: BTreeMap::new(),
            pipelines: crate::pipelines::initial_pipelines(),
        }
    }

    pub fn store(&self, ty: ObjectType) -> &ObjectStore {
        &self.stores[ty.index()]
    }

    pub fn store_mut(&mut self, ty: ObjectType) -> &mut ObjectStore {
        &mut self.stores[ty.index()]
    }

    pub fn alloc_id(&mut self, ty: ObjectType) -> u64 {
        let id = self.next_ids[ty.index()];
        self.next_ids[ty.index()] += 1;
        id
    }

    pub fn is_defined(&self, ty: ObjectType, name: &str) -> bool {
        self.defs[ty.index()].iter().any(|d| d.name == name)
    }

    /// Resolves requested names; undefined names are omitted (HubSpot behaviour).
    pub fn resolve(
        &self,
        ty: ObjectType,
        names: &[String],
        interner: &Interner,
    ) -> Vec<(String, PropRef)> {
        let mut out: Vec<(String, PropRef)> = Vec::with_capacity(names.len());
        for n in names {
            if out.iter().any(|(x, _)| x == n) || !self.is_defined(ty, n) {
                continue;
            }
            let r = derived_prop(ty, n)
                .unwrap_or_else(|| PropRef::Stored(interner.get(n).unwrap_or(u16::MAX)));
            out.push((n.clone(), r));
        }
        out
    }

    /// Every defined property.
    pub fn resolve_all(&self, ty: ObjectType, interner: &Interner) -> Vec<(String, PropRef)> {
        let names: Vec<String> = self.defs[ty.index()]
            .iter()
            .map(|d| d.name.clone())
            .collect();
        self.resolve(ty, &names, interner)
    }
}

/// Renders a record with the given resolved properties.
pub(crate) fn render(id: u64, rec: &Record, props: &[(String, PropRef)]) -> SimObject {
    let mut properties = BTreeMap::new();
    for (name, r) in props {
        let v = match r {
            PropRef::Id => Some(id.to_string()),
            PropRef::Created => Some(iso_ms(rec.created_ms)),
            PropRef::Modified => Some(iso_ms(rec.updated_ms)),
            PropRef::Stored(idx) => rec.props.get(*idx).map(str::to_string),
        };
        properties.insert(name.clone(), v);
    }
    SimObject {
        id: id.to_string(),
        properties,
        created_at: iso_ms(rec.created_ms),
        updated_at: iso_ms(rec.updated_ms),
        archived: rec.archived_ms.is_some(),
        archived_at: rec.archived_ms.map(iso_ms),
    }
}

#[derive(Debug)]
pub(crate) struct FaultState {
    pub faults: Faults,
    pub rng: ChaCha8Rng,
}

/// One HubSpot account (portal id = hub id).
#[derive(Debug)]
pub struct Portal {
    pub id: u64,
    pub(crate) data: RwLock<PortalData>,
    pub(crate) limiter: Mutex<RateLimiter>,
    pub(crate) faults: Mutex<FaultState>,
    pub(crate) delivery_sem: Arc<tokio::sync::Semaphore>,
    /// Overrides `webhooks.format` for this portal.
    pub(crate) webhook_format: Mutex<Option<crate::config::WebhookFormat>>,
}

impl Portal {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, PortalData> {
        self.data.read().unwrap_or_else(|e| e.into_inner())
    }
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, PortalData> {
        self.data.write().unwrap_or_else(|e| e.into_inner())
    }
    pub(crate) fn faults_lock(&self) -> MutexGuard<'_, FaultState> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub(crate) fn limiter_lock(&self) -> MutexGuard<'_, RateLimiter> {
        self.limiter.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug)]
pub(crate) struct AccessTok {
    pub portal: u64,
    pub expires_ms: i64,
    pub scopes: Vec<String>,
    pub user_id: u64,
}

/// A client-credentials token: the app's own, for the Webhooks Journal.
#[derive(Debug)]
pub(crate) struct AppTok {
    pub expires_ms: i64,
    pub scopes: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct RefreshTok {
    pub portal: u64,
    pub scopes: Vec<String>,
    pub user_id: u64,
}

#[derive(Debug)]
pub(crate) struct AuthCode {
    pub portal: u64,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub expires_ms: i64,
    pub used: bool,
}

#[derive(Debug, Default)]
pub(crate) struct TokenStore {
    pub access: HashMap<String, AccessTok>,
    /// Client-credentials (app) tokens: no portal, journal scopes.
    pub app: HashMap<String, AppTok>,
    pub refresh: HashMap<String, RefreshTok>,
    pub codes: HashMap<String, AuthCode>,
}

/// What an access token is worth right now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenCheck {
    Valid { portal: u64, scopes: Vec<String> },
    Expired { ago_ms: i64 },
    Invalid,
}

pub(crate) struct EventHub {
    pub tx: mpsc::UnboundedSender<WebhookEvent>,
    pub log: Mutex<VecDeque<WebhookEvent>>,
    pub next_event_id: AtomicU64,
    /// Emitted but not yet cut into batches.
    pub pending: AtomicUsize,
    /// Batches being delivered (including retry waits).
    pub inflight: AtomicUsize,
}

/// The whole simulator state. Reach it with [`crate::Simulator::state`].
pub struct SimState {
    pub(crate) config: RwLock<SimConfig>,
    pub(crate) clock: SimClock,
    pub(crate) interner: RwLock<Interner>,
    pub(crate) portals: RwLock<BTreeMap<u64, Arc<Portal>>>,
    pub(crate) tokens: Mutex<TokenStore>,
    pub(crate) counters: Counters,
    pub(crate) rng: Mutex<ChaCha8Rng>,
    pub(crate) events: EventHub,
    pub(crate) base_url: RwLock<String>,
    pub(crate) next_authorize_portal: Mutex<Option<u64>>,
    pub(crate) http: reqwest::Client,
    pub(crate) tasks: Mutex<Option<tokio::task::JoinSet<()>>>,
    pub(crate) journal: Mutex<crate::journal::JournalStore>,
}

fn random_hex(rng: &mut ChaCha8Rng, n: usize) -> String {
    let mut b = vec![0u8; n];
    rng.fill(&mut b[..]);
    hex::encode(b)
}

impl SimState {
    pub(crate) fn new(config: SimConfig) -> (Arc<Self>, mpsc::UnboundedReceiver<WebhookEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        let seed = config.seed;
        let st = Arc::new(Self {
            config: RwLock::new(config),
            clock: SimClock::new(),
            interner: RwLock::new(Interner::default()),
            portals: RwLock::new(BTreeMap::new()),
            tokens: Mutex::new(TokenStore::default()),
            counters: Counters::default(),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0x5151_0000)),
            events: EventHub {
                tx,
                log: Mutex::new(VecDeque::new()),
                next_event_id: AtomicU64::new(1),
                pending: AtomicUsize::new(0),
                inflight: AtomicUsize::new(0),
            },
            base_url: RwLock::new(String::new()),
            next_authorize_portal: Mutex::new(None),
            http,
            tasks: Mutex::new(Some(tokio::task::JoinSet::new())),
            journal: Mutex::new(crate::journal::JournalStore::default()),
        });
        (st, rx)
    }

    pub(crate) fn config_read(&self) -> RwLockReadGuard<'_, SimConfig> {
        self.config.read().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the current configuration.
    pub fn config(&self) -> SimConfig {
        self.config_read().clone()
    }

    /// Changes the configuration in place (webhook target, rate limits, OAuth, …).
    pub fn update_config(&self, f: impl FnOnce(&mut SimConfig)) {
        let mut g = self.config.write().unwrap_or_else(|e| e.into_inner());
        f(&mut g);
    }

    pub(crate) fn rng_lock(&self) -> MutexGuard<'_, ChaCha8Rng> {
        self.rng.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn tokens_lock(&self) -> MutexGuard<'_, TokenStore> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn interner_read(&self) -> RwLockReadGuard<'_, Interner> {
        self.interner.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn interner_write(&self) -> RwLockWriteGuard<'_, Interner> {
        self.interner.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn spawn_task<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut g = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(set) = g.as_mut() {
            while set.try_join_next().is_some() {}
            set.spawn(fut);
        }
    }

    pub(crate) fn abort_tasks(&self) {
        let set = self.tasks.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(set);
    }

    /// Base URL of the HTTP server (`http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> String {
        self.base_url
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn move_associations(d: &mut PortalData, ty: ObjectType, old: u64, new: u64) {
    for other in ObjectType::ALL {
        if let Some((pair, a_side)) = d.assoc.pair_mut(ty, other) {
            for (a, b, prim) in pair.remove_all(old, a_side) {
                let (a, b) = if a_side { (new, b) } else { (a, new) };
                pair.insert(a, b, prim);
            }
        }
    }
}

/// The portal's `hub_domain`.
pub fn hub_domain(portal: u64) -> String {
    format!("portal-{portal}.hubspot-sim.test")
}

impl crate::config::AppConfig {
    pub(crate) fn id_for_events(&self) -> u64 {
        self.app_id
    }
}
