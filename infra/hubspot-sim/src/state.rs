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

#[derive(Debug, Default)]
pub(crate) struct AssocPair {
    pub fwd: BTreeSet<(u64, u64)>,
    pub rev: BTreeSet<(u64, u64)>,
    /// from-side id → its primary to-side id.
    pub primary: HashMap<u64, u64>,
}

impl AssocPair {
    pub fn insert(&mut self, a: u64, b: u64, primary: bool) -> bool {
        let new = self.fwd.insert((a, b));
        self.rev.insert((b, a));
        if primary {
            self.primary.insert(a, b);
        }
        new
    }

    pub fn remove(&mut self, a: u64, b: u64) -> bool {
        let had = self.fwd.remove(&(a, b));
        self.rev.remove(&(b, a));
        if self.primary.get(&a) == Some(&b) {
            self.primary.remove(&a);
        }
        had
    }

    pub fn of_a(&self, a: u64) -> Vec<u64> {
        self.fwd
            .range((a, 0)..=(a, u64::MAX))
            .map(|p| p.1)
            .collect()
    }

    pub fn of_b(&self, b: u64) -> Vec<u64> {
        self.rev
            .range((b, 0)..=(b, u64::MAX))
            .map(|p| p.1)
            .collect()
    }

    /// Removes every pair touching `id` on side a (`a_side`) or b; returns removed (a, b, primary).
    pub fn remove_all(&mut self, id: u64, a_side: bool) -> Vec<(u64, u64, bool)> {
        let pairs: Vec<(u64, u64)> = if a_side {
            self.of_a(id).into_iter().map(|b| (id, b)).collect()
        } else {
            self.of_b(id).into_iter().map(|a| (a, id)).collect()
        };
        pairs
            .into_iter()
            .map(|(a, b)| {
                let p = self.primary.get(&a) == Some(&b);
                self.remove(a, b);
                (a, b, p)
            })
            .collect()
    }
}

/// contact↔company, deal↔company, deal↔contact.
#[derive(Debug, Default)]
pub(crate) struct Associations {
    pub contact_company: AssocPair,
    pub deal_company: AssocPair,
    pub deal_contact: AssocPair,
}

impl Associations {
    /// The pair store plus whether `from` is its a-side.
    pub fn pair(&self, from: ObjectType, to: ObjectType) -> Option<(&AssocPair, bool)> {
        use ObjectType::*;
        match (from, to) {
            (Contacts, Companies) => Some((&self.contact_company, true)),
            (Companies, Contacts) => Some((&self.contact_company, false)),
            (Deals, Companies) => Some((&self.deal_company, true)),
            (Companies, Deals) => Some((&self.deal_company, false)),
            (Deals, Contacts) => Some((&self.deal_contact, true)),
            (Contacts, Deals) => Some((&self.deal_contact, false)),
            _ => None,
        }
    }

    pub fn pair_mut(&mut self, from: ObjectType, to: ObjectType) -> Option<(&mut AssocPair, bool)> {
        use ObjectType::*;
        match (from, to) {
            (Contacts, Companies) => Some((&mut self.contact_company, true)),
            (Companies, Contacts) => Some((&mut self.contact_company, false)),
            (Deals, Companies) => Some((&mut self.deal_company, true)),
            (Companies, Deals) => Some((&mut self.deal_company, false)),
            (Deals, Contacts) => Some((&mut self.deal_contact, true)),
            (Contacts, Deals) => Some((&mut self.deal_contact, false)),
            _ => None,
        }
    }

    /// Associated ids of `id` (`from` → `to`) with their primary flag.
    pub fn targets(&self, from: ObjectType, to: ObjectType, id: u64) -> Vec<(u64, bool)> {
        let Some((p, a_side)) = self.pair(from, to) else {
            return Vec::new();
        };
        if a_side {
            let prim = p.primary.get(&id).copied();
            p.of_a(id)
                .into_iter()
                .map(|b| (b, prim == Some(b)))
                .collect()
        } else {
            p.of_b(id)
                .into_iter()
                .map(|a| (a, p.primary.get(&a) == Some(&id)))
                .collect()
        }
    }
}

/// HubSpot association type ids: (primary type id, unlabeled type id).
pub fn association_type_ids(from: ObjectType, to: ObjectType) -> Option<(Option<u32>, u32)> {
    use ObjectType::*;
    match (from, to) {
        (Contacts, Companies) => Some((Some(1), 279)),
        (Companies, Contacts) => Some((Some(2), 280)),
        (Deals, Companies) => Some((Some(5), 341)),
        (Companies, Deals) => Some((Some(6), 342)),
        (Deals, Contacts) => Some((None, 3)),
        (Contacts, Deals) => Some((None, 4)),
        _ => None,
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

    // ---------------------------------------------------------------- clock

    /// Current sim time (epoch ms).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Advances the sim clock (token and code expiry, record timestamps).
    pub fn advance_clock(&self, d: Duration) {
        self.clock.advance_ms(d.as_millis() as i64);
    }

    // ---------------------------------------------------------------- portals

    pub(crate) fn portal(&self, id: u64) -> Result<Arc<Portal>, SimError> {
        self.portals
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
            .ok_or(SimError::UnknownPortal(id))
    }

    /// Portal ids, ascending.
    pub fn portal_ids(&self) -> Vec<u64> {
        self.portals
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// Creates an empty, not-installed portal. `None` = next free id from `first_portal_id`.
    pub fn create_portal(&self, id: Option<u64>) -> Result<u64, SimError> {
        let (first, seed, faults, max_conc) = {
            let c = self.config_read();
            (
                c.first_portal_id,
                c.seed,
                c.initial_faults.clone(),
                c.webhooks.max_concurrent_per_portal.max(1),
            )
        };
        let mut map = self.portals.write().unwrap_or_else(|e| e.into_inner());
        let id = match id {
            Some(id) => {
                if map.contains_key(&id) {
                    return Err(SimError::PortalExists(id));
                }
                id
            }
            None => map
                .keys()
                .next_back()
                .map(|k| k + 1)
                .unwrap_or(first)
                .max(first),
        };
        map.insert(
            id,
            Arc::new(Portal {
                id,
                data: RwLock::new(PortalData::new()),
                limiter: Mutex::new(RateLimiter::default()),
                faults: Mutex::new(FaultState {
                    faults,
                    rng: ChaCha8Rng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(id)),
                }),
                delivery_sem: Arc::new(tokio::sync::Semaphore::new(max_conc)),
                webhook_format: Mutex::new(None),
            }),
        );
        Ok(id)
    }

    /// Summary of one portal.
    pub fn portal_info(&self, id: u64) -> Result<PortalInfo, SimError> {
        let p = self.portal(id)?;
        let d = p.read();
        Ok(PortalInfo {
            portal_id: id,
            hub_domain: hub_domain(id),
            installed: d.installed,
            consent_denied: d.consent_denied.clone(),
            companies: d.store(ObjectType::Companies).live.len(),
            contacts: d.store(ObjectType::Contacts).live.len(),
            deals: d.store(ObjectType::Deals).live.len(),
            archived_companies: d.store(ObjectType::Companies).archived.len(),
            archived_contacts: d.store(ObjectType::Contacts).archived.len(),
            archived_deals: d.store(ObjectType::Deals).archived.len(),
            owners: d.owners.len(),
            custom_properties: d
                .defs
                .iter()
                .flatten()
                .filter(|p| p.hubspot_defined != Some(true))
                .count(),
        })
    }

    /// Seeds records (deterministic for a given seed). Emits no events.
    pub fn seed_portal(&self, portal: u64, spec: SeedSpec) -> Result<(), SimError> {
        let p = self.portal(portal)?;
        let master = self.config_read().seed;
        let seed = spec
            .seed
            .unwrap_or_else(|| master.wrapping_mul(1_000_003).wrapping_add(portal));
        let mut d = p.write();
        let mut interner = self.interner_write();
        crate::seed::seed(&mut d, &mut interner, &spec, seed);
        Ok(())
    }

    /// Marks the app installed on the portal.
    pub fn install(&self, portal: u64) -> Result<(), SimError> {
        self.portal(portal)?.write().installed = true;
        Ok(())
    }

    /// Uninstalls the app: revokes every access token, refresh token and code of the portal.
    pub fn uninstall(&self, portal: u64) -> Result<(), SimError> {
        self.portal(portal)?.write().installed = false;
        let mut t = self.tokens_lock();
        t.access.retain(|_, v| v.portal != portal);
        t.refresh.retain(|_, v| v.portal != portal);
        t.codes.retain(|_, v| v.portal != portal);
        Ok(())
    }

    /// Make the consent screen deny (`Some(description)`) or grant (`None`) for this portal.
    pub fn set_consent_denied(&self, portal: u64, denied: Option<String>) -> Result<(), SimError> {
        self.portal(portal)?.write().consent_denied = denied;
        Ok(())
    }

    /// The next `/oauth/authorize` picks this portal (one-shot).
    pub fn set_next_authorize_portal(&self, portal: Option<u64>) {
        *self
            .next_authorize_portal
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = portal;
    }

    pub(crate) fn pick_authorize_portal(&self) -> Option<u64> {
        if let Some(p) = self
            .next_authorize_portal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            return Some(p);
        }
        if let Some(p) = self.config_read().oauth.default_authorize_portal {
            return Some(p);
        }
        self.portal_ids().first().copied()
    }

    // ---------------------------------------------------------------- faults

    pub fn faults(&self, portal: u64) -> Result<Faults, SimError> {
        Ok(self.portal(portal)?.faults_lock().faults.clone())
    }

    pub fn set_faults(&self, portal: u64, faults: Faults) -> Result<(), SimError> {
        self.portal(portal)?.faults_lock().faults = faults;
        Ok(())
    }

    /// Changes some fault fields in place.
    pub fn update_faults(&self, portal: u64, f: impl FnOnce(&mut Faults)) -> Result<(), SimError> {
        f(&mut self.portal(portal)?.faults_lock().faults);
        Ok(())
    }

    /// Forgets the rate-limit windows of a portal.
    pub fn reset_rate_limits(&self, portal: u64) -> Result<(), SimError> {
        let p = self.portal(portal)?;
        let mut l = p.limiter_lock();
        l.ten_secondly.clear();
        l.search.clear();
        Ok(())
    }

    // ---------------------------------------------------------------- counters / events

    pub fn counters(&self) -> CounterSnapshot {
        self.counters.snapshot()
    }

    pub fn reset_counters(&self) {
        self.counters.reset();
    }

    /// Every emitted event still in the log (oldest first).
    pub fn events(&self) -> Vec<WebhookEvent> {
        self.events
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    pub fn clear_events(&self) {
        self.events
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Whether every emitted event has been delivered, dropped or given up.
    pub fn webhooks_idle(&self) -> bool {
        self.events.pending.load(Ordering::SeqCst) == 0
            && self.events.inflight.load(Ordering::SeqCst) == 0
    }

    /// Waits until [`Self::webhooks_idle`] or the timeout; returns whether idle.
    pub async fn wait_webhooks_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.webhooks_idle() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sets the webhook target and the public URL signatures are computed over.
    pub fn set_webhook_target(&self, target_url: Option<String>, public_url: Option<String>) {
        self.update_config(|c| {
            c.webhooks.target_url = target_url;
            c.webhooks.public_url = public_url;
        });
    }

    /// The format `portal`'s events are delivered in.
    pub fn webhook_format(&self, portal: u64) -> WebhookFormat {
        let own = self
            .portal(portal)
            .ok()
            .and_then(|p| *p.webhook_format.lock().unwrap_or_else(|e| e.into_inner()));
        own.unwrap_or_else(|| self.config_read().webhooks.format)
    }

    /// Delivers `portal`'s events in `format` from now on (`None`: the
    /// configured `webhooks.format`).
    pub fn set_webhook_format(
        &self,
        portal: u64,
        format: Option<WebhookFormat>,
    ) -> Result<(), SimError> {
        let p = self.portal(portal)?;
        *p.webhook_format.lock().unwrap_or_else(|e| e.into_inner()) = format;
        Ok(())
    }

    fn emit(&self, portal: u64, mut events: Vec<WebhookEvent>) -> Vec<WebhookEvent> {
        if events.is_empty() {
            return events;
        }
        let (app_id, cap) = {
            let c = self.config_read();
            (c.app.id_for_events(), c.event_log_capacity)
        };
        let format = self.webhook_format(portal);
        for e in events.iter_mut() {
            e.event_id = self.events.next_event_id.fetch_add(1, Ordering::Relaxed);
            e.portal_id = portal;
            e.app_id = app_id;
            let generic = match format {
                WebhookFormat::Classic => false,
                WebhookFormat::Generic => true,
                WebhookFormat::Mixed => e.event_id % 2 == 0,
            };
            if generic {
                *e = std::mem::take(e).into_generic();
            }
        }
        {
            let mut log = self.events.log.lock().unwrap_or_else(|e| e.into_inner());
            for e in &events {
                if cap > 0 {
                    if log.len() >= cap {
                        log.pop_front();
                    }
                    log.push_back(e.clone());
                }
            }
        }
        self.counters
            .update(|c| c.events_emitted += events.len() as u64);
        self.events
            .pending
            .fetch_add(events.len(), Ordering::SeqCst);
        for e in &events {
            if self.events.tx.send(e.clone()).is_err() {
                self.events.pending.fetch_sub(1, Ordering::SeqCst);
            }
        }
        events
    }

    // ---------------------------------------------------------------- tokens

    pub(crate) fn mint_tokens(
        &self,
        portal: u64,
        scopes: Vec<String>,
        refresh: Option<String>,
    ) -> TokenSet {
        let (lifetime, rotate) = {
            let c = self.config_read();
            (c.oauth.token_lifetime_secs, c.oauth.rotate_refresh_tokens)
        };
        let (access, new_refresh) = {
            let mut rng = self.rng_lock();
            let a = format!("CJ{}", random_hex(&mut rng, 40));
            let r = format!(
                "na1-{}-{}-{}-{}-{}",
                random_hex(&mut rng, 2),
                random_hex(&mut rng, 2),
                random_hex(&mut rng, 2),
                random_hex(&mut rng, 2),
                random_hex(&mut rng, 6)
            );
            (a, r)
        };
        let now = self.now_ms();
        let user_id = 7_000_000 + (portal % 1_000_000);
        let mut t = self.tokens_lock();
        let refresh_token = match refresh {
            Some(old) if !rotate => old,
            Some(old) => {
                t.refresh.remove(&old);
                new_refresh
            }
            None => new_refresh,
        };
        t.refresh
            .entry(refresh_token.clone())
            .or_insert(RefreshTok {
                portal,
                scopes: scopes.clone(),
                user_id,
            });
        t.access.insert(
            access.clone(),
            AccessTok {
                portal,
                expires_ms: now + lifetime as i64 * 1000,
                scopes,
                user_id,
            },
        );
        TokenSet {
            access_token: access,
            refresh_token,
            expires_in: lifetime,
            token_type: "bearer".into(),
            hub_id: portal,
        }
    }

    /// Installs the app on the portal and returns fresh tokens (no browser, no code).
    /// Tokens for `portal` with exactly `scopes` (e.g. without
    /// `crm.lists.read`, to see a call refused for a missing scope).
    pub fn issue_token_with_scopes(
        &self,
        portal: u64,
        scopes: Vec<String>,
    ) -> Result<TokenSet, SimError> {
        self.portal(portal)?;
        Ok(self.mint_tokens(portal, scopes, None))
    }

    pub fn issue_token(&self, portal: u64) -> Result<TokenSet, SimError> {
        self.install(portal)?;
        let scopes = self.config_read().oauth.default_scopes.clone();
        Ok(self.mint_tokens(portal, scopes, None))
    }

    pub(crate) fn check_access_token(&self, token: &str) -> TokenCheck {
        let now = self.now_ms();
        let t = self.tokens_lock();
        match t.access.get(token) {
            Some(a) if a.expires_ms > now => TokenCheck::Valid {
                portal: a.portal,
                scopes: a.scopes.clone(),
            },
            Some(a) => TokenCheck::Expired {
                ago_ms: now - a.expires_ms,
            },
            None => TokenCheck::Invalid,
        }
    }

    /// Revokes a refresh token (and nothing else).
    pub fn revoke_refresh_token(&self, token: &str) -> bool {
        self.tokens_lock().refresh.remove(token).is_some()
    }

    // ---------------------------------------------------------------- reads

    /// A record with every defined property (live, or archived when `archived`).
    pub fn get_object(
        &self,
        portal: u64,
        ty: ObjectType,
        id: u64,
    ) -> Result<Option<SimObject>, SimError> {
        let p = self.portal(portal)?;
        let d = p.read();
        let interner = self.interner_read();
        let all = d.resolve_all(ty, &interner);
        let s = d.store(ty);
        Ok(s.live
            .get(&id)
            .or_else(|| s.archived.get(&id))
            .map(|r| render(id, r, &all)))
    }

    /// All live (or archived) records with every defined property, by id ascending.
    pub fn list_objects(
        &self,
        portal: u64,
        ty: ObjectType,
        archived: bool,
    ) -> Result<Vec<SimObject>, SimError> {
        let p = self.portal(portal)?;
        let d = p.read();
        let interner = self.interner_read();
        let all = d.resolve_all(ty, &interner);
        let s = d.store(ty);
        let m = if archived { &s.archived } else { &s.live };
        Ok(m.iter().map(|(id, r)| render(*id, r, &all)).collect())
    }

    /// Live (or archived) ids, ascending.
    pub fn object_ids(
        &self,
        portal: u64,
        ty: ObjectType,
        archived: bool,
    ) -> Result<Vec<u64>, SimError> {
        let p = self.portal(portal)?;
        let d = p.read();
        let s = d.store(ty);
        let m = if archived { &s.archived } else { &s.live };
        Ok(m.keys().copied().collect())
    }

    pub fn count(&self, portal: u64, ty: ObjectType, archived: bool) -> Result<usize, SimError> {
        let p = self.portal(portal)?;
        let d = p.read();
        let s = d.store(ty);
        Ok(if archived {
            s.archived.len()
        } else {
            s.live.len()
        })
    }

    /// Associated ids (`from` → `to`) with their primary flag.
    pub fn associations(
        &self,
        portal: u64,
        from: ObjectType,
        id: u64,
        to: ObjectType,
    ) -> Result<Vec<(u64, bool)>, SimError> {
        Ok(self.portal(portal)?.read().assoc.targets(from, to, id))
    }

    pub fn owners(&self, portal: u64) -> Result<Vec<Owner>, SimError> {
        Ok(self.portal(portal)?.read().owners.clone())
    }

    // ---------------------------------------------------------------- properties

    pub fn properties(&self, portal: u64, ty: ObjectType) -> Result<Vec<PropertyDef>, SimError> {
        Ok(self.portal(portal)?.read().defs[ty.index()].clone())
    }

    /// Adds (or replaces) a custom property definition.
    pub fn create_property(
        &self,
        portal: u64,
        ty: ObjectType,
        mut def: PropertyDef,
    ) -> Result<(), SimError> {
        if def.name.is_empty()
            || !def
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(SimError::Invalid(format!(
                "invalid property name '{}'",
                def.name
            )));
        }
        if derived_prop(ty, &def.name).is_some() {
            return Err(SimError::Invalid(format!(
                "property '{}' is read-only",
                def.name
            )));
        }
        let now = iso_ms(self.now_ms());
        def.created_at.get_or_insert_with(|| now.clone());
        def.updated_at = Some(now);
        if def.label.is_empty() {
            def.label = def.name.clone();
        }
        let p = self.portal(portal)?;
        let mut d = p.write();
        let defs = &mut d.defs[ty.index()];
        defs.retain(|x| x.name != def.name);
        defs.push(def);
        Ok(())
    }

    /// Removes a property definition (values stay stored but are no longer served).
    pub fn delete_property(
        &self,
        portal: u64,
        ty: ObjectType,
        name: &str,
    ) -> Result<bool, SimError> {
        let p = self.portal(portal)?;
        let mut d = p.write();
        let defs = &mut d.defs[ty.index()];
        let before = defs.len();
        defs.retain(|x| x.name != name);
        Ok(defs.len() != before)
    }

    // ---------------------------------------------------------------- mutations

    /// Creates a record (emits `*.creation`).
    pub fn create_object(
        &self,
        portal: u64,
        ty: ObjectType,
        properties: Props,
    ) -> Result<u64, SimError> {
        let o = self.apply(
            portal,
            Change::Create {
                object_type: ty,
                properties,
            },
            "CRM_UI",
        )?;
        o.object_id.ok_or_else(|| SimError::Invalid("no id".into()))
    }

    /// Updates properties (one `*.propertyChange` per changed property).
    pub fn update_object(
        &self,
        portal: u64,
        ty: ObjectType,
        id: u64,
        properties: Props,
    ) -> Result<u32, SimError> {
        Ok(self
            .apply(
                portal,
                Change::Update {
                    object_type: ty,
                    id,
                    properties,
                },
                "CRM_UI",
            )?
            .changed)
    }

    /// Moves a record to the recycle bin (emits `*.deletion`).
    pub fn delete_object(&self, portal: u64, ty: ObjectType, id: u64) -> Result<(), SimError> {
        self.apply(
            portal,
            Change::Delete {
                object_type: ty,
                id,
            },
            "CRM_UI",
        )
        .map(|_| ())
    }

    /// Restores a record from the recycle bin (emits `*.restore`).
    pub fn restore_object(&self, portal: u64, ty: ObjectType, id: u64) -> Result<(), SimError> {
        self.apply(
            portal,
            Change::Restore {
                object_type: ty,
                id,
            },
            "CRM_UI",
        )
        .map(|_| ())
    }

    /// Merges `merged_id` into `primary_id` (emits `*.merge` and `*.deletion`s).
    pub fn merge_objects(
        &self,
        portal: u64,
        ty: ObjectType,
        primary_id: u64,
        merged_id: u64,
        new_id: Option<bool>,
    ) -> Result<MergeOutcome, SimError> {
        let o = self.apply(
            portal,
            Change::Merge {
                object_type: ty,
                primary_id,
                merged_id,
                new_id,
            },
            "CRM_UI",
        )?;
        let survivor = o.object_id.unwrap_or(primary_id);
        Ok(MergeOutcome {
            survivor_id: survivor,
            new_id: survivor != primary_id,
            properties_moved: o.changed,
        })
    }

    /// GDPR-deletes a contact for good (emits `contact.privacyDeletion` and `contact.deletion`).
    pub fn privacy_delete_contact(&self, portal: u64, id: u64) -> Result<(), SimError> {
        self.apply(portal, Change::PrivacyDelete { id }, "CRM_UI")
            .map(|_| ())
    }

    /// Associates two records (emits two `*.associationChange`, one per direction).
    pub fn associate(
        &self,
        portal: u64,
        from_type: ObjectType,
        from_id: u64,
        to_type: ObjectType,
        to_id: u64,
        primary: bool,
    ) -> Result<(), SimError> {
        self.apply(
            portal,
            Change::Associate {
                from_type,
                from_id,
                to_type,
                to_id,
                primary,
            },
            "CRM_UI",
        )
        .map(|_| ())
    }

    pub fn dissociate(
        &self,
        portal: u64,
        from_type: ObjectType,
        from_id: u64,
        to_type: ObjectType,
        to_id: u64,
    ) -> Result<(), SimError> {
        self.apply(
            portal,
            Change::Dissociate {
                from_type,
                from_id,
                to_type,
                to_id,
            },
            "CRM_UI",
        )
        .map(|_| ())
    }

    /// Applies one change and emits its events; `change_source` goes into the events.
    pub fn apply(
        &self,
        portal: u64,
        change: Change,
        change_source: &str,
    ) -> Result<ChangeOutcome, SimError> {
        let p = self.portal(portal)?;
        let merge_p = self.config_read().merge_new_id_probability;
        tracing::debug!(portal, ?change, "apply change");
        let mut out = {
            let mut d = p.write();
            self.apply_locked(&mut d, change, change_source, merge_p)?
        };
        out.events = self.emit(portal, std::mem::take(&mut out.events));
        Ok(out)
    }

    fn base_event(
        &self,
        ty: ObjectType,
        kind: &str,
        object_id: u64,
        source: &str,
        ts: i64,
    ) -> WebhookEvent {
        let kind_idx = [
            "creation",
            "deletion",
            "propertyChange",
            "merge",
            "restore",
            "associationChange",
            "privacyDeletion",
        ]
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(9) as u64;
        WebhookEvent {
            subscription_id: 3_100_000 + ty.index() as u64 * 100 + kind_idx,
            occurred_at: ts,
            subscription_type: format!("{}.{}", ty.singular(), kind),
            object_id,
            change_source: source.to_string(),
            ..Default::default()
        }
    }

    fn apply_locked(
        &self,
        d: &mut PortalData,
        change: Change,
        source: &str,
        merge_p: f64,
    ) -> Result<ChangeOutcome, SimError> {
        let mut out = ChangeOutcome::default();
        match change {
            Change::Create {
                object_type: ty,
                properties,
            } => {
                let stored = self.check_writable(d, ty, &properties)?;
                let ts = self.clock.next_modification_ms();
                let id = d.alloc_id(ty);
                let mut interner = self.interner_write();
                let mut pairs: Vec<(u16, &str)> = stored
                    .iter()
                    .filter_map(|(k, v)| v.as_deref().map(|v| (interner.intern(k), v)))
                    .collect();
                drop(interner);
                let rec = Record {
                    created_ms: ts,
                    updated_ms: ts,
                    archived_ms: None,
                    props: crate::model::PropBlob::from_pairs(&mut pairs),
                };
                d.store_mut(ty).live.insert(id, rec);
                let mut e = self.base_event(ty, "creation", id, source, ts);
                e.change_flag = Some("NEW".into());
                out.events.push(e);
                out.object_id = Some(id);
            }
            Change::Update {
                object_type: ty,
                id,
                properties,
            } => {
                let stored = self.check_writable(d, ty, &properties)?;
                let idxs: Vec<(u16, &String, Option<&str>)> = {
                    let mut interner = self.interner_write();
                    stored
                        .iter()
                        .map(|(k, v)| (interner.intern(k), *k, v.as_deref()))
                        .collect()
                };
                let rec = d
                    .store_mut(ty)
                    .live
                    .get_mut(&id)
                    .ok_or(SimError::NotFound { ty, id })?;
                let mut changed = Vec::new();
                for (idx, name, v) in idxs {
                    let v = v.filter(|s| !s.is_empty());
                    if rec.props.set(idx, v) {
                        changed.push((name.clone(), v.unwrap_or("").to_string()));
                    }
                }
                if !changed.is_empty() {
                    let ts = self.clock.next_modification_ms();
                    rec.updated_ms = ts;
                    for (name, value) in changed.iter() {
                        let mut e = self.base_event(ty, "propertyChange", id, source, ts);
                        e.property_name = Some(name.clone());
                        e.property_value = Some(value.clone());
                        out.events.push(e);
                    }
                }
                out.object_id = Some(id);
                out.changed = changed.len() as u32;
            }
            Change::Delete {
                object_type: ty,
                id,
            } => {
                let s = d.store_mut(ty);
                let mut rec = s.live.remove(&id).ok_or(SimError::NotFound { ty, id })?;
                let ts = self.clock.next_modification_ms();
                rec.archived_ms = Some(ts);
                rec.updated_ms = ts;
                s.archived.insert(id, rec);
                let mut e = self.base_event(ty, "deletion", id, source, ts);
                e.change_flag = Some("DELETED".into());
                out.events.push(e);
                out.object_id = Some(id);
            }
            Change::Restore {
                object_type: ty,
                id,
            } => {
                let s = d.store_mut(ty);
                let mut rec = s
                    .archived
                    .remove(&id)
                    .ok_or(SimError::NotFound { ty, id })?;
                let ts = self.clock.next_modification_ms();
                rec.archived_ms = None;
                rec.updated_ms = ts;
                s.live.insert(id, rec);
                let mut e = self.base_event(ty, "restore", id, source, ts);
                e.change_flag = Some("RESTORED".into());
                out.events.push(e);
                out.object_id = Some(id);
            }
            Change::Merge {
                object_type: ty,
                primary_id,
                merged_id,
                new_id,
            } => {
                if primary_id == merged_id {
                    return Err(SimError::Invalid(
                        "cannot merge an object into itself".into(),
                    ));
                }
                let s = d.store_mut(ty);
                if !s.live.contains_key(&primary_id) {
                    return Err(SimError::NotFound { ty, id: primary_id });
                }
                if !s.live.contains_key(&merged_id) {
                    return Err(SimError::NotFound { ty, id: merged_id });
                }
                let new_id = new_id.unwrap_or_else(|| self.rng_lock().random::<f64>() < merge_p);
                let (Some(mut prim), Some(merged)) =
                    (s.live.remove(&primary_id), s.live.remove(&merged_id))
                else {
                    return Err(SimError::NotFound { ty, id: primary_id });
                };
                let mut moved = 0u32;
                for (idx, v) in merged.props.iter() {
                    if prim.props.get(idx).is_none_or(str::is_empty) && !v.is_empty() {
                        prim.props.set(idx, Some(v));
                        moved += 1;
                    }
                }
                let ts = self.clock.next_modification_ms();
                prim.created_ms = prim.created_ms.min(merged.created_ms);
                prim.updated_ms = ts;
                let survivor = if new_id { d.alloc_id(ty) } else { primary_id };
                d.store_mut(ty).live.insert(survivor, prim);
                let mut gone = vec![merged_id];
                if new_id {
                    gone.push(primary_id);
                }
                for old in &gone {
                    move_associations(d, ty, *old, survivor);
                    d.store_mut(ty).merged_into.insert(*old, survivor);
                }
                let mut e = self.base_event(ty, "merge", primary_id, source, ts);
                e.change_flag = Some("MERGED".into());
                e.primary_object_id = Some(primary_id);
                e.merged_object_ids = Some(vec![merged_id]);
                e.new_object_id = Some(survivor);
                e.number_of_properties_moved = Some(moved);
                out.events.push(e);
                for old in gone {
                    let mut e = self.base_event(ty, "deletion", old, source, ts);
                    e.change_flag = Some("DELETED".into());
                    out.events.push(e);
                }
                out.object_id = Some(survivor);
                out.changed = moved;
            }
            Change::PrivacyDelete { id } => {
                let ty = ObjectType::Contacts;
                let s = d.store_mut(ty);
                let found = s.live.remove(&id).is_some() | s.archived.remove(&id).is_some();
                if !found {
                    return Err(SimError::NotFound { ty, id });
                }
                d.assoc.contact_company.remove_all(id, true);
                d.assoc.deal_contact.remove_all(id, false);
                let ts = self.clock.next_modification_ms();
                let mut a = self.base_event(ty, "privacyDeletion", id, source, ts);
                a.change_flag = Some("DELETED".into());
                let mut b = self.base_event(ty, "deletion", id, source, ts);
                b.change_flag = Some("DELETED".into());
                if self.rng_lock().random::<bool>() {
                    out.events.extend([a, b]);
                } else {
                    out.events.extend([b, a]);
                }
                out.object_id = Some(id);
            }
            Change::Associate {
                from_type,
                from_id,
                to_type,
                to_id,
                primary,
            } => {
                for (t, i) in [(from_type, from_id), (to_type, to_id)] {
                    if !d.store(t).live.contains_key(&i) {
                        return Err(SimError::NotFound { ty: t, id: i });
                    }
                }
                let (pair, a_side) = d
                    .assoc
                    .pair_mut(from_type, to_type)
                    .ok_or_else(|| SimError::Invalid("unsupported association".into()))?;
                let (a, b) = if a_side {
                    (from_id, to_id)
                } else {
                    (to_id, from_id)
                };
                let supports_primary = association_type_ids(from_type, to_type)
                    .map(|(p, _)| p.is_some())
                    .unwrap_or(false);
                let primary = primary && supports_primary;
                let was_primary = pair.primary.get(&a) == Some(&b);
                if !pair.insert(a, b, primary) && was_primary == primary {
                    out.object_id = Some(from_id);
                    return Ok(out);
                }
                let ts = self.clock.next_modification_ms();
                out.events = self.assoc_events(
                    from_type, from_id, to_type, to_id, false, primary, source, ts,
                );
                out.object_id = Some(from_id);
            }
            Change::Dissociate {
                from_type,
                from_id,
                to_type,
                to_id,
            } => {
                let (pair, a_side) = d
                    .assoc
                    .pair_mut(from_type, to_type)
                    .ok_or_else(|| SimError::Invalid("unsupported association".into()))?;
                let (a, b) = if a_side {
                    (from_id, to_id)
                } else {
                    (to_id, from_id)
                };
                let was_primary = pair.primary.get(&a) == Some(&b);
                if !pair.remove(a, b) {
                    return Err(SimError::Invalid(format!(
                        "{from_id} is not associated with {to_id}"
                    )));
                }
                let ts = self.clock.next_modification_ms();
                out.events = self.assoc_events(
                    from_type,
                    from_id,
                    to_type,
                    to_id,
                    true,
                    was_primary,
                    source,
                    ts,
                );
                out.object_id = Some(from_id);
            }
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn assoc_events(
        &self,
        ft: ObjectType,
        fid: u64,
        tt: ObjectType,
        tid: u64,
        removed: bool,
        primary: bool,
        source: &str,
        ts: i64,
    ) -> Vec<WebhookEvent> {
        [(ft, fid, tt, tid), (tt, tid, ft, fid)]
            .into_iter()
            .map(|(a, ai, b, bi)| {
                let mut e = self.base_event(a, "associationChange", ai, source, ts);
                e.association_type = Some(format!("{}_TO_{}", a.upper(), b.upper()));
                e.from_object_id = Some(ai);
                e.to_object_id = Some(bi);
                e.association_removed = Some(removed);
                e.is_primary_association = Some(primary);
                e
            })
            .collect()
    }

    /// Checks that every property is defined and writable; returns the entries.
    fn check_writable<'a>(
        &self,
        d: &PortalData,
        ty: ObjectType,
        props: &'a Props,
    ) -> Result<Vec<(&'a String, &'a Option<String>)>, SimError> {
        let mut out = Vec::with_capacity(props.len());
        for (k, v) in props {
            if derived_prop(ty, k).is_some() {
                return Err(SimError::Invalid(format!("Property \"{k}\" is read-only")));
            }
            if !d.is_defined(ty, k) {
                return Err(SimError::Invalid(format!(
                    "Property \"{k}\" does not exist"
                )));
            }
            out.push((k, v));
        }
        Ok(out)
    }

    /// `count` random changes (creates, updates, deletes, restores, merges, associations)
    /// across `types` (empty = all), deterministic for a given seed and starting state.
    pub fn random_changes(
        &self,
        portal: u64,
        count: usize,
        seed: Option<u64>,
        types: &[ObjectType],
    ) -> Result<RandomChangeReport, SimError> {
        let seed = seed.unwrap_or_else(|| self.rng_lock().random());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let types: Vec<ObjectType> = if types.is_empty() {
            ObjectType::ALL.to_vec()
        } else {
            types.to_vec()
        };
        let p = self.portal(portal)?;
        let mut report = RandomChangeReport::default();
        for _ in 0..count {
            let ty = types[rng.random_range(0..types.len())];
            let roll: f64 = rng.random();
            let change = {
                let d = p.read();
                crate::seed::random_change(&d, ty, roll, &mut rng)
            };
            let Some(change) = change else {
                report.skipped += 1;
                continue;
            };
            let kind = std::mem::discriminant(&change);
            match self.apply(portal, change.clone(), "CRM_UI") {
                Ok(o) => {
                    report.events += o.events.len() as u64;
                    match change {
                        Change::Create { .. } => report.created += 1,
                        Change::Update { .. } => report.updated += 1,
                        Change::Delete { .. } => report.deleted += 1,
                        Change::Restore { .. } => report.restored += 1,
                        Change::Merge { .. } => report.merged += 1,
                        _ => report.associations += 1,
                    }
                }
                Err(_) => {
                    let _ = kind;
                    report.skipped += 1;
                }
            }
        }
        Ok(report)
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
