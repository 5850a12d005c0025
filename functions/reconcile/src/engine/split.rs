//! The search half of a list + search run.
//!
//! HubSpot counts CRM search apart from the 110 requests / 10 s that the
//! listing spends (search has its own limit of about 5 requests a second,
//! 200 records a page). A run of a large portal therefore walks the id
//! space from both ends at once:
//!
//! * the **listing** ([`super`]) from the lowest id up, 100 a page, joined
//!   with the store scanned upwards;
//! * a **search** from the highest id down: `hs_object_id < below`
//!   (and `> ` what the listing has covered when the request leaves),
//!   sorted by `hs_object_id` descending, 200 a page — a new query for
//!   each page, so search's 10,000-result paging cap never applies —
//!   joined with the store scanned downwards.
//!
//! Each half only diffs ids on its side of the other: a listing page is
//! trimmed at the lowest id the search has covered (`below`), a search page
//! at the highest the listing has covered. The search never ends the run:
//! a short page, or one reaching the listing, is its half's last, and it
//! covers only down to its lowest result. The listing — answered from
//! HubSpot's records, not from an index — always comes up to the search's
//! lowest id, and the run's listing phase ends when it gets there.
//!
//! Where search evidence is weaker than the listing's, the rules differ:
//!
//! * **Index lag.** Search results trail HubSpot's writes by seconds to
//!   minutes: a record created just now may be missing from its window, and
//!   one deleted just now may still be in it. So a stored record that a
//!   search window does not return is never archived on that evidence: it
//!   is confirmed by a batch read (live ⇒ diffed as the read shows it), and
//!   only a record the batch read misses is archived — as deleted at its
//!   `archivedAt` when a recycle-bin batch read (`archived=true`) has it,
//!   as merged/purged otherwise. A record created within the lag inside a
//!   window the search has already read is not found by this run: its
//!   creation webhook brings it, and the next run lists it.
//! * **No restore rule.** A search result never restores a record archived
//!   at its version (a stale index shows deleted records live); only a
//!   newer version un-archives, as for any write.
//! * **Order.** Results must be strictly descending inside the window they
//!   were asked for. Otherwise the half is given up: the listing goes on to
//!   the end of the id space as in a list-only run (what the search half
//!   already wrote is redone idempotently).
//!
//! A run is split when HubSpot's count estimate reaches
//! [`super::EngineConfig::search_split_min_records`]; the choice is kept in
//! the checkpoint ([`hubsync_store::SearchWalk`]) for the run's lifetime.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use hubsync_hubspot::{
    Filter, FilterGroup, HubSpotObject, ObjectId, ObjectType, PortalId, SearchRequest, Sort,
};
use hubsync_store::{SearchWalk, StoredMeta};
use hubsync_sync::{CrmSource, RunStore};

use super::run::{fetch_page, Fetched, Run};
use super::{EngineError, RunMapping};

/// The property search windows are cut by.
const ID_PROPERTY: &str = "hs_object_id";

/// A search page and the window it was asked for.
pub(super) struct Searched {
    pub(super) results: Vec<HubSpotObject>,
    /// The window's exclusive top (`None`: from the highest id).
    pub(super) below: Option<ObjectId>,
    /// The window's exclusive bottom when the request left (what the
    /// listing had covered then).
    pub(super) above: Option<ObjectId>,
    /// The page came back full: there may be more below it.
    pub(super) full: bool,
}

impl Searched {
    /// The next window's top, unless this page reached the bottom.
    pub(super) fn next_below(&self) -> Option<ObjectId> {
        if self.full {
            self.results.iter().map(|o| o.id).min()
        } else {
            None
        }
    }
}

/// The search request of one window: ids in `(above, below)`, the highest
/// `limit` of them, with the mapped properties.
pub(super) fn window_request(
    below: Option<ObjectId>,
    above: Option<ObjectId>,
    limit: u32,
    properties: &[String],
) -> SearchRequest {
    let mut filters = Vec::new();
    if let Some(b) = below {
        filters.push(Filter::new(ID_PROPERTY, "LT", b.to_string()));
    }
    if let Some(a) = above {
        filters.push(Filter::new(ID_PROPERTY, "GT", a.to_string()));
    }
    SearchRequest {
        filter_groups: if filters.is_empty() {
            Vec::new()
        } else {
            vec![FilterGroup { filters }]
        },
        sorts: vec![Sort::descending(ID_PROPERTY)],
        properties: properties.to_vec(),
        limit,
        after: None,
    }
}

async fn search_window<C: CrmSource>(
    source: &C,
    portal: PortalId,
    object_type: ObjectType,
    mapping: Arc<RunMapping>,
    below: Option<ObjectId>,
    above: Option<ObjectId>,
    limit: u32,
) -> Result<Searched, EngineError> {
    let request = window_request(below, above, limit, &mapping.properties);
    let page = source.search(portal, object_type, &request).await?;
    let full = page.results.len() >= limit as usize;
    Ok(Searched {
        results: page.results,
        below,
        above,
        full,
    })
}

/// A page of either half, as it arrived.
pub(super) enum Arrived {
    List(Fetched),
    Search(Searched),
}

type InFlight<'a, T> = Option<BoxFuture<'a, Result<T, EngineError>>>;

/// The requests in flight — at most one per half — and the pages that have
/// arrived but are not diffed yet. Both halves' requests progress while a
/// page is diffed ([`Pump::wait_any`] is polled alongside the diff), so
/// each half runs at its own limit's pace.
#[derive(Default)]
pub(super) struct Pump<'a> {
    list: InFlight<'a, Fetched>,
    search: InFlight<'a, Searched>,
    arrived: VecDeque<Result<Arrived, EngineError>>,
}

impl<'a> Pump<'a> {
    fn has_list(&self) -> bool {
        self.list.is_some()
            || self
                .arrived
                .iter()
                .any(|a| matches!(a, Ok(Arrived::List(_)) | Err(_)))
    }

    fn has_search(&self) -> bool {
        self.search.is_some()
            || self
                .arrived
                .iter()
                .any(|a| matches!(a, Ok(Arrived::Search(_)) | Err(_)))
    }

    /// The next page that arrived (oldest first).
    pub(super) fn take(&mut self) -> Option<Result<Arrived, EngineError>> {
        self.arrived.pop_front()
    }

    /// Polls the requests in flight, keeping what arrives. `true`: some
    /// are still in flight.
    fn poll_in_flight(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(f) = self.list.as_mut() {
            if let Poll::Ready(r) = f.as_mut().poll(cx) {
                self.list = None;
                self.arrived.push_back(r.map(Arrived::List));
            }
        }
        if let Some(f) = self.search.as_mut() {
            if let Poll::Ready(r) = f.as_mut().poll(cx) {
                self.search = None;
                self.arrived.push_back(r.map(Arrived::Search));
            }
        }
        self.list.is_some() || self.search.is_some()
    }

    /// Resolves once a page has arrived (at once when one is waiting) or
    /// when nothing is in flight.
    pub(super) async fn wait_any(&mut self) {
        std::future::poll_fn(|cx| {
            if !self.arrived.is_empty() {
                return Poll::Ready(());
            }
            let in_flight = self.poll_in_flight(cx);
            if self.arrived.is_empty() && in_flight {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await
    }

    /// Runs `work` (a diff, which makes HubSpot calls of its own) to its
    /// end while the requests in flight keep going. They must: a request
    /// waiting for a permit holds its lane of the rate limiter, and a call
    /// of `work` on that lane waits for it.
    pub(super) async fn drive_while<F: Future>(&mut self, work: F) -> F::Output {
        let mut work = std::pin::pin!(work);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = work.as_mut().poll(cx) {
                return Poll::Ready(out);
            }
            self.poll_in_flight(cx);
            Poll::Pending
        })
        .await
    }

    /// Waits until nothing is in flight (what arrives is kept): before the
    /// run makes calls of its own outside [`Pump::drive_while`].
    pub(super) async fn settle(&mut self) {
        std::future::poll_fn(|cx| {
            if self.poll_in_flight(cx) {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await
    }
}

impl<'a, C, S> Run<'a, C, S>
where
    C: CrmSource,
    S: RunStore,
{
    /// The search half is walking (not met, not given up).
    pub(super) fn search_active(&self) -> bool {
        !self.ck.lookup_mode && self.ck.search.as_ref().is_some_and(|w| !w.done)
    }

    /// The lowest id the search half has covered: the listing diffs only
    /// ids below it (`None`: the listing covers everything).
    pub(super) fn search_floor(&self) -> Option<ObjectId> {
        if self.ck.lookup_mode {
            return None;
        }
        self.ck.search.as_ref().and_then(|w| w.below)
    }

    /// The highest id the listing has covered (HubSpot's and the store's).
    fn listing_reach(&self) -> Option<ObjectId> {
        self.ck.last_hubspot_id.max(self.ck.store_after)
    }

    /// Gives the search half up: the listing covers the whole id space.
    pub(super) fn give_up_search(&mut self) {
        if self.ck.search.is_some() {
            self.ck.search = Some(SearchWalk {
                below: None,
                done: true,
            });
        }
    }

    /// Starts the listing's next request in `pump` (`after`: its cursor).
    pub(super) fn request_list(&self, pump: &mut Pump<'a>, after: Option<String>) {
        if pump.has_list() {
            return;
        }
        let engine = self.engine;
        let mapping = Arc::clone(&self.mapping);
        let (portal, object_type, limit) = (self.portal, self.object_type, self.cfg().page_limit);
        pump.list = Some(Box::pin(async move {
            let properties = mapping.property_refs();
            fetch_page(
                &engine.source,
                portal,
                object_type,
                after,
                limit,
                &properties,
            )
            .await
        }));
    }

    /// Starts the search half's request of the window below `below` in
    /// `pump` (nothing when the half is over).
    pub(super) fn request_search(&self, pump: &mut Pump<'a>, below: Option<ObjectId>) {
        if pump.has_search() || !self.search_active() {
            return;
        }
        let engine = self.engine;
        let mapping = Arc::clone(&self.mapping);
        let (portal, object_type) = (self.portal, self.object_type);
        let limit = self.cfg().search_page_limit.clamp(1, 200);
        let above = self.listing_reach();
        pump.search = Some(Box::pin(search_window(
            &engine.source,
            portal,
            object_type,
            mapping,
            below,
            above,
            limit,
        )));
    }

    /// Diff one search window against the store scanned downwards (see
    /// the module docs).
    pub(super) async fn process_search(&mut self, searched: Searched) -> Result<(), EngineError> {
        let Some(walk) = self.ck.search.clone().filter(|_| self.search_active()) else {
            // The listing reached the half (or it was given up) meanwhile.
            return Ok(());
        };
        if searched.below != walk.below {
            return Ok(());
        }
        let c = &mut self.ck.counters;
        c.search_pages += 1;
        c.hubspot_calls += 1;
        let results = &searched.results;
        let ordered = results.windows(2).all(|w| w[0].id > w[1].id)
            && results.iter().all(|o| {
                searched.below.is_none_or(|b| o.id < b) && searched.above.is_none_or(|a| o.id > a)
            });
        if !ordered {
            c.order_violations += 1;
            tracing::error!(portal = %self.portal, object_type = %self.object_type,
                below = ?searched.below,
                "HubSpot's search answered outside its window or out of order: the search half is given up, the listing covers the rest");
            self.give_up_search();
            return Ok(());
        }
        // What the listing covered by now (it may have moved since the
        // request left): the window stops above it.
        let reach = self.listing_reach();
        let kept: Vec<&HubSpotObject> = results
            .iter()
            .filter(|o| reach.is_none_or(|r| o.id > r))
            .collect();
        // A short page, or one reaching the listing, is the half's last.
        // It covers only down to its lowest result: below that, a record
        // the index has not caught up with may hide, and the listing
        // (which HubSpot answers from its records, not an index) comes up
        // to meet it.
        let last = !searched.full || kept.len() < results.len();
        let low = kept.last().map(|o| o.id).or(walk.below);
        self.ck.counters.listed += kept.len() as u64;
        let ids: Vec<ObjectId> = kept.iter().map(|o| o.id).collect();
        self.load_associations(&ids).await?;

        let mut stored = self.next_stored_down(low).await?;
        for object in &kept {
            while let Some(s) = stored.take_if(|s| s.object_id > object.id) {
                self.unsearched(s).await?;
                stored = self.next_stored_down(low).await?;
            }
            let same = stored.take_if(|s| s.object_id == object.id);
            let advance = same.is_some();
            // No restore rule: the index may show a deleted record live.
            self.listed(object, same, None);
            if advance {
                stored = self.next_stored_down(low).await?;
            }
            if self.actions.len() >= 100 {
                self.execute().await?;
            }
        }
        while let Some(s) = stored {
            self.unsearched(s).await?;
            stored = self.next_stored_down(low).await?;
        }
        self.execute().await?;
        if self.search_pending.len() >= hubsync_hubspot::MAX_BATCH_READ_INPUTS {
            self.flush_pending().await?;
        }
        self.ck.search = Some(SearchWalk {
            below: low,
            done: last,
        });
        Ok(())
    }

    /// The next stored record (downwards) with an id ≥ `low` (`None`: down
    /// to the lowest).
    async fn next_stored_down(
        &mut self,
        low: Option<ObjectId>,
    ) -> Result<Option<StoredMeta>, EngineError> {
        loop {
            if let Some(front) = self.down_lookahead.front() {
                if low.is_some_and(|l| front.object_id < l) {
                    return Ok(None);
                }
                let meta = self.down_lookahead.pop_front();
                if meta.is_some() {
                    self.ck.counters.stored_seen += 1;
                }
                return Ok(meta);
            }
            match self.down_scan.next_page().await? {
                Some(records) => self
                    .down_lookahead
                    .extend(records.into_iter().map(|r| r.meta)),
                None => return Ok(None),
            }
        }
    }

    /// An active stored record its search window did not return: waits
    /// for a confirming batch read (index lag).
    async fn unsearched(&mut self, stored: StoredMeta) -> Result<(), EngineError> {
        if stored.archived || stored.privacy_deleted {
            return Ok(());
        }
        self.search_pending.push(stored);
        if self.search_pending.len() >= hubsync_hubspot::MAX_BATCH_READ_INPUTS {
            self.flush_pending().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_cut_by_id_and_sorted_downwards() {
        let r = window_request(
            Some(ObjectId(900)),
            Some(ObjectId(100)),
            200,
            &["name".to_owned()],
        );
        let body = serde_json::to_value(&r).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "filterGroups": [{"filters": [
                    {"propertyName": "hs_object_id", "operator": "LT", "value": "900"},
                    {"propertyName": "hs_object_id", "operator": "GT", "value": "100"},
                ]}],
                "sorts": [{"propertyName": "hs_object_id", "direction": "DESCENDING"}],
                "properties": ["name"],
                "limit": 200,
            })
        );
        // The first window has no bounds (no empty filter group either).
        let first = serde_json::to_value(window_request(None, None, 200, &[])).unwrap();
        assert!(first.get("filterGroups").is_none());
    }

    fn no_page() -> Fetched {
        Fetched {
            page: hubsync_hubspot::Page {
                results: Vec::new(),
                next_after: None,
            },
            started_at_ms: 0,
        }
    }

    fn no_window() -> Searched {
        Searched {
            results: Vec::new(),
            below: None,
            above: None,
            full: false,
        }
    }

    /// A request waiting for a permit holds its lane of the rate limiter
    /// (both limiters lock a lane while they wait). A diff's own call on
    /// that lane must not wait for a request nobody polls.
    #[tokio::test]
    async fn a_diff_sharing_a_lane_with_a_waiting_request_is_not_starved() {
        let lane = Arc::new(tokio::sync::Mutex::new(()));
        let mut pump = Pump::default();
        let held = Arc::clone(&lane);
        pump.list = Some(Box::pin(async move {
            let _lane = held.lock().await;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            Ok(no_page())
        }));
        pump.search = Some(Box::pin(async { Ok(no_window()) }));
        // The search page arrives at once; the listing's request now holds
        // the lane.
        pump.wait_any().await;
        assert!(matches!(pump.take(), Some(Ok(Arrived::Search(_)))));
        // The next search request is answered at once too, while the diff
        // of the page that arrived calls on the listing's lane.
        pump.search = Some(Box::pin(async { Ok(no_window()) }));
        let diff = async {
            let _lane = lane.lock().await;
            7
        };
        let out = tokio::time::timeout(std::time::Duration::from_secs(5), pump.drive_while(diff))
            .await
            .expect("the diff got the lane");
        assert_eq!(out, 7);
        pump.settle().await;
        let arrived: Vec<bool> = std::iter::from_fn(|| pump.take())
            .map(|a| matches!(a, Ok(Arrived::List(_))))
            .collect();
        assert_eq!(arrived.len(), 2, "both requests arrived and were kept");
        assert!(arrived.contains(&true));
    }

    #[test]
    fn a_full_page_leads_to_the_window_below_its_lowest_id() {
        let page = |ids: &[u64], full| Searched {
            results: ids
                .iter()
                .map(|i| HubSpotObject::new(*i, Vec::<(String, String)>::new()))
                .collect(),
            below: None,
            above: None,
            full,
        };
        assert_eq!(page(&[9, 7, 4], true).next_below(), Some(ObjectId(4)));
        assert_eq!(page(&[9, 7, 4], false).next_below(), None);
    }
}
