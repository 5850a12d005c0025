//! The simulator's clock, portals, faults, counters and the webhook events it emitted.

use super::*;

impl SimState {
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
        let was = std::mem::replace(&mut self.portal(portal)?.write().installed, true);
        if !was {
            self.journal_app_lifecycle(portal, true);
        }
        Ok(())
    }

    /// Uninstalls the app: revokes every access token, refresh token and code of the portal.
    /// The journal records `APP_UNINSTALL` (HubSpot sends no webhook).
    pub fn uninstall(&self, portal: u64) -> Result<(), SimError> {
        let was = std::mem::replace(&mut self.portal(portal)?.write().installed, false);
        if was {
            self.journal_app_lifecycle(portal, false);
        }
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

    pub(crate) fn emit(&self, portal: u64, mut events: Vec<WebhookEvent>) -> Vec<WebhookEvent> {
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
        // The journal keeps what HubSpot sends, before delivery faults.
        self.journal_webhook_events(&events);
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
}
