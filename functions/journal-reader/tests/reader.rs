//! Reader passes against the simulator's journal (in process), a memory
//! store, sink and job queue: webhooks the drop fault lost come back as
//! queued events; a crash between queueing and the cursor write re-reads
//! and never skips; an expired offset re-syncs; an uninstall disconnects;
//! a failing queue leaves the cursor where it was; two readers racing do
//! not move the cursor back.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hubspot_sim::{props, Faults, SimConfig, Simulator};
use hubsync_hubspot::journal::{Journal, JournalClient};
use hubsync_hubspot::{
    EventKind, OAuthClient, OAuthConfig, OAuthRetry, ObjectId, ObjectType, PortalId,
};
use hubsync_mapping::MappingConfig;
use hubsync_messages::event_sink::MemorySink;
use hubsync_messages::{EventBatch, MemoryJobQueue, SyncJobKind};
use hubsync_store::{
    Connection, ConnectionStatus, ConnectionStore, JournalCursor, JournalCursorStore,
    MappingConfigStore, MemoryStore, StoreError, StoredMappingConfig,
};
use journal_reader::{JournalReader, ReadReport, ReaderError, JOURNAL_CHANGE_SOURCE};
use secrecy::SecretString;

const PORTAL: u64 = 1_000_001;

fn journal_client(sim: &Simulator) -> JournalClient {
    let app = sim.state().config().app;
    let mut config = OAuthConfig::new(
        sim.base_url(),
        app.client_id.clone(),
        SecretString::from(app.client_secret.clone()),
        "",
    );
    config.retry = OAuthRetry {
        max_attempts: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
    };
    JournalClient::new(&sim.base_url(), OAuthClient::new(config).unwrap())
}

fn connection(portal: u64, status: ConnectionStatus) -> Connection {
    let now = chrono::Utc::now();
    Connection {
        portal_id: PortalId(portal),
        tenant_id: format!("tenant-{portal}"),
        status,
        scopes: vec![],
        access_token_ciphertext: Some("ct".into()),
        refresh_token_ciphertext: Some("rt".into()),
        access_token_expires_at: Some(1),
        created_at: now,
        updated_at: now,
        last_webhook_at: None,
        status_reason: None,
    }
}

struct Setup {
    sim: Simulator,
    journal: JournalClient,
    store: MemoryStore,
    sink: MemorySink,
    jobs: MemoryJobQueue,
}

async fn setup() -> Setup {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let journal = journal_client(&sim);
    let store = MemoryStore::new();
    store
        .put_connection(&connection(PORTAL, ConnectionStatus::Active))
        .await
        .unwrap();
    let s = Setup {
        sim,
        journal,
        store,
        sink: MemorySink::default(),
        jobs: MemoryJobQueue::new(),
    };
    // The first pass makes the portal's subscriptions; nothing to read yet.
    let first = s.pass().await;
    assert_eq!(first.subscriptions.portals_changed, 1, "{first:?}");
    assert_eq!(first.files, 0);
    s
}

impl Setup {
    async fn pass_with<S: JournalCursorStore + ConnectionStore + MappingConfigStore>(
        &self,
        store: &S,
    ) -> Result<ReadReport, ReaderError> {
        JournalReader {
            journal: &self.journal,
            which: Journal::Global,
            sink: &self.sink,
            store,
            jobs: &self.jobs,
            records: &self.store,
        }
        .run(
            Instant::now() + Duration::from_secs(20),
            self.sim.state().now_ms(),
        )
        .await
    }

    async fn pass(&self) -> ReadReport {
        self.pass_with(&self.store).await.expect("pass")
    }

    fn contacts(&self, n: usize) -> Vec<u64> {
        (0..n)
            .map(|i| {
                self.sim
                    .state()
                    .create_object(
                        PORTAL,
                        hubspot_sim::ObjectType::Contacts,
                        props([("email", format!("j{i}@example.com").as_str())]),
                    )
                    .unwrap()
            })
            .collect()
    }

    /// The (kind, id) of every queued event.
    fn queued(&self) -> Vec<(EventKind, ObjectId)> {
        self.sink
            .messages()
            .iter()
            .flat_map(|m| EventBatch::from_json(&m.body).unwrap().events)
            .map(|e| {
                assert_eq!(e.change_source.as_deref(), Some(JOURNAL_CHANGE_SOURCE));
                (e.subscription_type.kind().unwrap(), e.object_id.unwrap())
            })
            .collect()
    }
}

#[tokio::test]
async fn dropped_webhooks_come_back_through_the_journal() {
    let s = setup().await;
    s.sim
        .state()
        .set_faults(
            PORTAL,
            Faults {
                webhook_drop_rate: 1.0,
                ..Faults::default()
            },
        )
        .unwrap();
    let ids = s.contacts(250);
    let report = s.pass().await;
    assert!(report.caught_up);
    assert_eq!(report.files, 3, "250 events, 100 per file");
    assert_eq!(report.events_queued, 250);
    let queued: BTreeSet<u64> = s.queued().iter().map(|(_, id)| id.0).collect();
    assert_eq!(queued, ids.iter().copied().collect());
    assert_eq!(report.lag_ms, Some(0), "caught up: nothing is late");

    // The next pass reads only what is new.
    let more = s.contacts(1);
    let report = s.pass().await;
    assert_eq!((report.files, report.events_queued), (1, 1));
    assert_eq!(s.queued().last().unwrap().1, ObjectId(more[0]));
    let report = s.pass().await;
    assert_eq!((report.files, report.caught_up), (0, true));
}

/// The memory store with two faults a test can arm: the next cursor
/// write fails (the process died after queueing), or another reader writes
/// `race` right after this one reads the cursor.
struct Hooked<'a> {
    inner: &'a MemoryStore,
    crash_next_put: AtomicBool,
    race: std::sync::Mutex<Option<JournalCursor>>,
    /// Called after each cursor write with the number of writes so far.
    after_put: Option<Box<dyn Fn(usize) + Send + Sync + 'a>>,
    puts: std::sync::atomic::AtomicUsize,
}

impl<'a> Hooked<'a> {
    fn new(inner: &'a MemoryStore) -> Self {
        Self {
            inner,
            crash_next_put: AtomicBool::new(false),
            race: std::sync::Mutex::new(None),
            after_put: None,
            puts: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl JournalCursorStore for Hooked<'_> {
    async fn get_journal_cursor(&self, journal: &str) -> Result<JournalCursor, StoreError> {
        let read = self.inner.get_journal_cursor(journal).await;
        let race = self.race.lock().unwrap().take();
        if let Some(other) = race {
            assert!(self
                .inner
                .put_journal_cursor(journal, &other)
                .await
                .unwrap());
        }
        read
    }

    async fn put_journal_cursor(
        &self,
        journal: &str,
        c: &JournalCursor,
    ) -> Result<bool, StoreError> {
        if self.crash_next_put.swap(false, Ordering::SeqCst) {
            return Err(StoreError::InvalidInput("the process died here".into()));
        }
        let written = self.inner.put_journal_cursor(journal, c).await;
        let n = self.puts.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(hook) = &self.after_put {
            hook(n);
        }
        written
    }

    async fn get_subscriptions_fingerprint(&self, p: u64) -> Result<Option<String>, StoreError> {
        self.inner.get_subscriptions_fingerprint(p).await
    }

    async fn put_subscriptions_fingerprint(
        &self,
        p: u64,
        f: Option<&str>,
    ) -> Result<(), StoreError> {
        self.inner.put_subscriptions_fingerprint(p, f).await
    }
}

impl MappingConfigStore for Hooked<'_> {
    async fn get_mapping_config(
        &self,
        p: PortalId,
    ) -> Result<Option<StoredMappingConfig>, StoreError> {
        self.inner.get_mapping_config(p).await
    }
    async fn put_mapping_config(&self, p: PortalId, c: &MappingConfig) -> Result<u64, StoreError> {
        self.inner.put_mapping_config(p, c).await
    }
    async fn list_mapping_configs(
        &self,
    ) -> Result<Vec<(PortalId, StoredMappingConfig)>, StoreError> {
        self.inner.list_mapping_configs().await
    }
    async fn delete_mapping_config(&self, p: PortalId) -> Result<bool, StoreError> {
        self.inner.delete_mapping_config(p).await
    }
}

impl ConnectionStore for Hooked<'_> {
    async fn get_connection(&self, p: PortalId) -> Result<Option<Connection>, StoreError> {
        self.inner.get_connection(p).await
    }
    async fn put_connection(&self, c: &Connection) -> Result<(), StoreError> {
        self.inner.put_connection(c).await
    }
    async fn set_connection_status(
        &self,
        p: PortalId,
        s: ConnectionStatus,
        r: Option<&str>,
    ) -> Result<(), StoreError> {
        self.inner.set_connection_status(p, s, r).await
    }
    async fn list_connections(&self) -> Result<Vec<Connection>, StoreError> {
        self.inner.list_connections().await
    }
    async fn tenant_connections(&self, t: &str) -> Result<Vec<Connection>, StoreError> {
        self.inner.tenant_connections(t).await
    }
    async fn record_webhook_seen(
        &self,
        p: PortalId,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        self.inner.record_webhook_seen(p, at).await
    }
}

#[tokio::test]
async fn a_crash_between_queueing_and_the_cursor_rereads_and_never_skips() {
    let s = setup().await;
    let crashing = Hooked::new(&s.store);
    crashing.crash_next_put.store(true, Ordering::SeqCst);
    let ids = s.contacts(3);
    let err = s.pass_with(&crashing).await.unwrap_err();
    assert!(matches!(err, ReaderError::Store(_)), "{err:?}");
    assert_eq!(s.queued().len(), 3, "queued before the crash");
    assert_eq!(
        s.store.get_journal_cursor("global").await.unwrap().offset,
        None
    );

    // Restarted: the same file again (harmless duplicates), then on.
    let report = s.pass_with(&crashing).await.unwrap();
    assert_eq!(report.events_queued, 3);
    let queued = s.queued();
    assert_eq!(queued.len(), 6);
    for id in ids {
        assert_eq!(queued.iter().filter(|(_, q)| q.0 == id).count(), 2);
    }
    assert!(s
        .store
        .get_journal_cursor("global")
        .await
        .unwrap()
        .offset
        .is_some());
}

#[tokio::test]
async fn a_failing_queue_leaves_the_cursor_where_it_was() {
    let s = setup().await;
    s.contacts(2);
    s.sink.fail.store(true, Ordering::SeqCst);
    let err = s.pass_with(&s.store).await.unwrap_err();
    assert!(matches!(err, ReaderError::Sink(_)), "{err:?}");
    assert_eq!(
        s.store.get_journal_cursor("global").await.unwrap().version,
        0
    );
    s.sink.fail.store(false, Ordering::SeqCst);
    assert_eq!(s.pass().await.events_queued, 2);
}

#[tokio::test]
async fn an_expired_offset_resyncs_every_syncing_portal() {
    let s = setup().await;
    s.store
        .put_connection(&connection(PORTAL + 7, ConnectionStatus::NeedsReauth))
        .await
        .unwrap();
    s.contacts(1);
    assert_eq!(s.pass().await.files, 1);
    // Four days without a pass: the stored offset is past retention.
    s.sim.state().advance_clock(Duration::from_secs(4 * 86_400));
    s.contacts(1);
    let report = s.pass().await;
    assert!(report.offset_expired, "{report:?}");
    assert_eq!(report.resyncs, 1, "only the active portal");
    let job = s.jobs.pop().expect("a re-sync job");
    assert_eq!(job.job.kind, SyncJobKind::Resync);
    assert_eq!(job.job.portal_id, PortalId(PORTAL));
    assert_eq!(
        report.events_queued, 1,
        "then on from the earliest file kept"
    );
    assert!(s.pass().await.caught_up);
}

#[tokio::test]
async fn an_uninstall_disconnects_and_keeps_the_records() {
    let s = setup().await;
    s.sim.state().uninstall(PORTAL).unwrap();
    let report = s.pass().await;
    assert_eq!(report.uninstalls, 1);
    let c = s
        .store
        .get_connection(PortalId(PORTAL))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.status, ConnectionStatus::Disconnected);
    assert_eq!(c.status_reason.as_deref(), Some("app_uninstalled"));
    assert!(c.access_token_ciphertext.is_none() && c.refresh_token_ciphertext.is_none());

    // A disconnected portal's later events are dropped, as the intake does.
    s.contacts(2);
    let report = s.pass().await;
    assert_eq!((report.events_queued, report.events_dropped), (0, 2));
}

#[tokio::test]
async fn a_reader_that_lost_the_race_stops_without_moving_the_cursor_back() {
    let s = setup().await;
    s.contacts(1);
    // Another reader wrote the cursor between this one's read and write.
    let ahead = JournalCursor {
        offset: Some("someone-else".into()),
        version: 0,
        ..JournalCursor::default()
    };
    let racing = Hooked::new(&s.store);
    *racing.race.lock().unwrap() = Some(ahead);
    let report = s.pass_with(&racing).await.unwrap();
    assert!(report.lost_race);
    let c = s.store.get_journal_cursor("global").await.unwrap();
    assert_eq!((c.offset.as_deref(), c.version), (Some("someone-else"), 1));
}

#[tokio::test]
async fn subscriptions_follow_the_config_and_the_connection() {
    let s = setup().await;
    let subs = |kind: &str| {
        s.sim
            .state()
            .journal_subscriptions()
            .into_iter()
            .filter(|x| x.subscription_type == kind && x.portal_id == Some(PORTAL))
            .collect::<Vec<_>>()
    };
    assert_eq!(subs("OBJECT").len(), 3);
    assert_eq!(subs("APP_LIFECYCLE_EVENT").len(), 1);
    assert_eq!(subs("GDPR_PRIVACY_DELETION").len(), 1);
    assert!(subs("LIST_MEMBERSHIP").is_empty());

    // Nothing changed: no subscriptions call at all.
    let calls = || -> u64 {
        s.sim
            .state()
            .counters()
            .journal_requests
            .iter()
            .filter(|(route, _)| route.contains("subscriptions"))
            .map(|(_, n)| *n)
            .sum()
    };
    let before = calls();
    assert_eq!(s.pass().await.subscriptions.portals_changed, 0);
    assert_eq!(calls(), before);

    // A list in the contacts' scope: its membership subscription appears.
    let mut config = MappingConfig::default();
    config.object_mut(ObjectType::Contacts).lists = vec!["3".into()];
    s.store
        .put_mapping_config(PortalId(PORTAL), &config)
        .await
        .unwrap();
    let report = s.pass().await;
    assert_eq!(report.subscriptions.portals_changed, 1);
    assert_eq!(subs("LIST_MEMBERSHIP")[0].list_ids, Some(vec![3]));
    assert_eq!(subs("OBJECT").len(), 3, "unchanged ones kept");

    // Disconnected: every subscription of the portal goes.
    s.store
        .set_connection_status(PortalId(PORTAL), ConnectionStatus::Disconnected, None)
        .await
        .unwrap();
    assert_eq!(s.pass().await.subscriptions.portals_changed, 1);
    assert!(s.sim.state().journal_subscriptions().is_empty());
    assert_eq!(s.pass().await.subscriptions.portals_changed, 0);
}

#[tokio::test]
async fn files_come_twenty_pointers_a_call_and_a_lapsed_url_is_asked_for_again() {
    let s = setup().await;
    // 45 files: each journal read publishes what was recorded before it.
    for i in 0..45 {
        s.sim
            .state()
            .create_object(
                PORTAL,
                hubspot_sim::ObjectType::Contacts,
                props([("email", format!("f{i}@example.com").as_str())]),
            )
            .unwrap();
        s.journal.latest(Journal::Global).await.unwrap();
    }
    // After the fifth file the batch's other URLs lapse (15 minutes).
    let mut hooked = Hooked::new(&s.store);
    let st = s.sim.state().clone();
    hooked.after_put = Some(Box::new(move |n| {
        if n == 5 {
            st.advance_clock(Duration::from_secs(16 * 60));
        }
    }));
    let report = s.pass_with(&hooked).await.unwrap();
    assert_eq!((report.files, report.events_queued), (45, 45), "{report:?}");
    assert!(report.caught_up);
    // Files 1–20, again 6–25 after the lapse, 26–45, then nothing: 4
    // calls for 45 files.
    assert_eq!(report.pointer_calls, 4, "{report:?}");
    let mut ids: Vec<u64> = s.queued().iter().map(|(_, id)| id.0).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 45, "every file once");
}
