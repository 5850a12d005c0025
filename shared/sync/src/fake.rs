//! One fake HubSpot for the tests of everything that reads through the
//! sync core's traits (feature `fake`, for dev-dependencies only). It keeps
//! HubSpot's rules where a test could depend on them: at most 100 ids a
//! batch read and 1,000 an associations read, only the requested
//! properties returned, the listing in ascending id order with an `after`
//! cursor, search by `hs_object_id` windows only (anything else is an
//! error), at most 200 results a page.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use hubsync_hubspot::{
    AssociationLink, BatchReadResult, ClientStats, HubSpotError, HubSpotObject, ObjectId,
    ObjectType, Page, PortalId, SearchPage, SearchRequest, TokenError,
};
use hubsync_mapping::{Owners, Pipelines, PropertyDefinition};

use crate::source::{
    BatchRead, BatchReadArchived, CountObjects, ListPage, PortalStats, ReadAssociations,
    ReadListMembers, ReadOwners, ReadPipelines, ReadProperties, ReadRecordLists, SearchObjects,
};

/// How the owners API fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnersFailure {
    /// HubSpot answers 502.
    Server,
    /// The grant is revoked.
    Revoked,
}

/// The fake: live objects, associations, owners, list members and
/// property definitions of one portal (the portal argument is ignored),
/// with call counters.
#[derive(Debug, Default)]
pub struct FakeHubSpot {
    pub objects: Mutex<BTreeMap<(ObjectType, ObjectId), HubSpotObject>>,
    pub links: Mutex<Vec<(ObjectType, ObjectType, AssociationLink)>>,
    /// `None`: a portal without owners (the API answers an empty list).
    pub owners: Mutex<Option<Owners>>,
    pub owners_failure: Mutex<Option<OwnersFailure>>,
    /// `None`: HubSpot's stock "Sales Pipeline" (every portal has it).
    pub pipelines: Mutex<Option<Pipelines>>,
    pub pipeline_reads: AtomicUsize,
    pub list_members: Mutex<BTreeMap<String, Vec<ObjectId>>>,
    /// `None` for a type: definitions unavailable (the call errors).
    pub definitions: Mutex<BTreeMap<ObjectType, Vec<PropertyDefinition>>>,
    /// Batch reads of these types answer 502.
    pub failing: Mutex<Vec<ObjectType>>,
    /// Batch reads of these types answer 403 (a missing scope).
    pub refusing: Mutex<Vec<ObjectType>>,
    /// Every call fails as a revoked grant.
    pub revoked: AtomicBool,
    /// How long each batch read takes.
    pub read_delay: Mutex<std::time::Duration>,
    pub batch_reads: AtomicUsize,
    pub owner_reads: AtomicUsize,
    pub association_reads: AtomicUsize,
    pub searches: AtomicUsize,
    /// The properties of every batch read, in order.
    pub requested: Mutex<Vec<Vec<String>>>,
}

impl FakeHubSpot {
    /// A fake holding `objects` of one type.
    pub fn with_objects(t: ObjectType, objects: impl IntoIterator<Item = HubSpotObject>) -> Self {
        let fake = Self::default();
        for o in objects {
            fake.put_object(t, o);
        }
        fake
    }

    /// Stores an object as it is.
    pub fn put_object(&self, t: ObjectType, object: HubSpotObject) {
        self.objects.lock().unwrap().insert((t, object.id), object);
    }

    /// Stores an object with `props` and its last-modified property at
    /// `version_ms`.
    pub fn put(&self, t: ObjectType, id: u64, version_ms: i64, props: &[(&str, &str)]) {
        let version = chrono::DateTime::from_timestamp_millis(version_ms)
            .expect("a valid epoch ms")
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut all: Vec<(String, String)> = props
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        all.push((t.last_modified_property().to_owned(), version));
        self.put_object(t, HubSpotObject::new(id, all));
    }

    /// Deletes an object (it reads as missing).
    pub fn remove(&self, t: ObjectType, id: u64) {
        self.objects.lock().unwrap().remove(&(t, ObjectId(id)));
    }

    /// Associates `a` (of `from`) with `b` (of `to`).
    pub fn link(&self, from: ObjectType, to: ObjectType, a: u64, b: u64, primary: bool) {
        let link = AssociationLink {
            from: ObjectId(a),
            to: ObjectId(b),
            primary,
        };
        self.links.lock().unwrap().push((from, to, link));
    }

    pub fn set_owners(&self, owners: Owners) {
        *self.owners.lock().unwrap() = Some(owners);
    }

    pub fn fail_owners(&self, failure: Option<OwnersFailure>) {
        *self.owners_failure.lock().unwrap() = failure;
    }

    fn check_grant(&self) -> Result<(), HubSpotError> {
        if self.revoked.load(Ordering::SeqCst) {
            return Err(HubSpotError::Token(TokenError::NeedsReauth));
        }
        Ok(())
    }

    /// The object with only `properties` (as HubSpot answers).
    fn projected(object: &HubSpotObject, properties: &[&str]) -> HubSpotObject {
        let mut o = object.clone();
        o.properties.retain(|k, _| properties.contains(&k.as_str()));
        o
    }
}

impl BatchRead for FakeHubSpot {
    async fn batch_read(
        &self,
        _portal: PortalId,
        object_type: ObjectType,
        ids: &[ObjectId],
        properties: &[&str],
    ) -> Result<BatchReadResult, HubSpotError> {
        self.batch_reads.fetch_add(1, Ordering::SeqCst);
        assert!(ids.len() <= 100, "batch reads carry at most 100 ids");
        let delay = *self.read_delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.check_grant()?;
        if self.failing.lock().unwrap().contains(&object_type) {
            return Err(HubSpotError::Server { status: 502 });
        }
        if self.refusing.lock().unwrap().contains(&object_type) {
            return Err(HubSpotError::Forbidden {
                category: Some("MISSING_SCOPES".into()),
                required_scopes: vec![format!("crm.objects.{object_type}.read")],
            });
        }
        self.requested
            .lock()
            .unwrap()
            .push(properties.iter().map(|p| (*p).to_owned()).collect());
        let objects = self.objects.lock().unwrap();
        let mut out = BatchReadResult::default();
        for id in ids {
            match objects.get(&(object_type, *id)) {
                Some(o) => out.found.push(Self::projected(o, properties)),
                None => out.missing.push(*id),
            }
        }
        Ok(out)
    }
}

impl BatchReadArchived for FakeHubSpot {
    async fn batch_read_archived(
        &self,
        _portal: PortalId,
        _object_type: ObjectType,
        ids: &[ObjectId],
    ) -> Result<BatchReadResult, HubSpotError> {
        assert!(ids.len() <= 100, "batch reads carry at most 100 ids");
        self.check_grant()?;
        // Deleted objects are gone from this fake, bin included.
        Ok(BatchReadResult {
            found: Vec::new(),
            missing: ids.to_vec(),
        })
    }
}

impl SearchObjects for FakeHubSpot {
    async fn search(
        &self,
        _portal: PortalId,
        object_type: ObjectType,
        request: &SearchRequest,
    ) -> Result<SearchPage, HubSpotError> {
        self.searches.fetch_add(1, Ordering::SeqCst);
        self.check_grant()?;
        let unsupported =
            || HubSpotError::InvalidArgument("the fake searches hs_object_id windows only".into());
        if request.limit > 200 || request.after.is_some() || request.filter_groups.len() > 1 {
            return Err(unsupported());
        }
        let (mut above, mut below) = (0u64, u64::MAX);
        for f in request.filter_groups.iter().flat_map(|g| &g.filters) {
            let value: u64 = f
                .value
                .as_deref()
                .and_then(|v| v.parse().ok())
                .filter(|_| f.property_name == "hs_object_id")
                .ok_or_else(unsupported)?;
            match f.operator.as_str() {
                "LT" => below = below.min(value),
                "GT" => above = above.max(value),
                _ => return Err(unsupported()),
            }
        }
        let descending = match request.sorts.as_slice() {
            [] => false,
            [s] if s.property_name == "hs_object_id" => s.direction == "DESCENDING",
            _ => return Err(unsupported()),
        };
        let objects = self.objects.lock().unwrap();
        let hits: Vec<&HubSpotObject> = objects
            .iter()
            .filter(|((t, id), _)| *t == object_type && id.0 > above && id.0 < below)
            .map(|(_, o)| o)
            .collect();
        let total = hits.len() as u64;
        let properties: Vec<&str> = request.properties.iter().map(String::as_str).collect();
        let take = |o: &&HubSpotObject| Self::projected(o, &properties);
        let limit = request.limit as usize;
        let results: Vec<HubSpotObject> = if descending {
            hits.iter().rev().take(limit).map(take).collect()
        } else {
            hits.iter().take(limit).map(take).collect()
        };
        Ok(SearchPage {
            total,
            next_after: (total > limit as u64).then(|| limit.to_string()),
            results,
        })
    }
}

impl ListPage for FakeHubSpot {
    async fn list_page(
        &self,
        _portal: PortalId,
        object_type: ObjectType,
        after: Option<&str>,
        limit: u32,
        properties: &[&str],
        archived: bool,
    ) -> Result<Page<HubSpotObject>, HubSpotError> {
        self.check_grant()?;
        if archived {
            // Deleted objects are gone from this fake, bin included.
            return Ok(Page {
                results: Vec::new(),
                next_after: None,
            });
        }
        let after: u64 = after.map_or(Ok(0), str::parse).map_err(|_| {
            HubSpotError::InvalidArgument("after is not a cursor this fake issued".into())
        })?;
        let objects = self.objects.lock().unwrap();
        let mut results: Vec<HubSpotObject> = objects
            .iter()
            .filter(|((t, id), _)| *t == object_type && id.0 > after)
            .take(limit as usize + 1)
            .map(|(_, o)| Self::projected(o, properties))
            .collect();
        let next_after = (results.len() > limit as usize).then(|| {
            results.truncate(limit as usize);
            results
                .last()
                .map(|o| o.id.0.to_string())
                .unwrap_or_default()
        });
        Ok(Page {
            results,
            next_after,
        })
    }
}

impl CountObjects for FakeHubSpot {
    async fn count(
        &self,
        _portal: PortalId,
        object_type: ObjectType,
    ) -> Result<Option<u64>, HubSpotError> {
        let objects = self.objects.lock().unwrap();
        Ok(Some(
            objects.keys().filter(|(t, _)| *t == object_type).count() as u64,
        ))
    }
}

impl ReadOwners for FakeHubSpot {
    async fn owners(&self, _portal: PortalId) -> Result<Owners, HubSpotError> {
        self.owner_reads.fetch_add(1, Ordering::SeqCst);
        self.check_grant()?;
        match *self.owners_failure.lock().unwrap() {
            Some(OwnersFailure::Server) => return Err(HubSpotError::Server { status: 502 }),
            Some(OwnersFailure::Revoked) => {
                return Err(HubSpotError::Token(TokenError::NeedsReauth))
            }
            None => {}
        }
        Ok(self.owners.lock().unwrap().clone().unwrap_or_default())
    }
}

/// HubSpot's stock deal pipeline, as a new portal has it.
pub fn stock_pipelines() -> Pipelines {
    let mut p = Pipelines::new();
    p.insert(
        "default",
        "Sales Pipeline",
        &[
            ("appointmentscheduled", "Appointment Scheduled"),
            ("qualifiedtobuy", "Qualified To Buy"),
            ("presentationscheduled", "Presentation Scheduled"),
            ("decisionmakerboughtin", "Decision Maker Bought-In"),
            ("contractsent", "Contract Sent"),
            ("closedwon", "Closed Won"),
            ("closedlost", "Closed Lost"),
        ],
    );
    p
}

impl ReadPipelines for FakeHubSpot {
    async fn pipelines(&self, _portal: PortalId) -> Result<Pipelines, HubSpotError> {
        self.pipeline_reads.fetch_add(1, Ordering::SeqCst);
        self.check_grant()?;
        Ok(self
            .pipelines
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(stock_pipelines))
    }
}

impl ReadProperties for FakeHubSpot {
    async fn properties(
        &self,
        _portal: PortalId,
        object_type: ObjectType,
    ) -> Result<Vec<PropertyDefinition>, HubSpotError> {
        self.check_grant()?;
        self.definitions
            .lock()
            .unwrap()
            .get(&object_type)
            .cloned()
            .ok_or_else(|| {
                HubSpotError::InvalidArgument("this fake has no property definitions".into())
            })
    }
}

impl ReadListMembers for FakeHubSpot {
    async fn list_members(
        &self,
        _portal: PortalId,
        list_id: &str,
    ) -> Result<Vec<ObjectId>, HubSpotError> {
        self.check_grant()?;
        Ok(self
            .list_members
            .lock()
            .unwrap()
            .get(list_id)
            .cloned()
            .unwrap_or_default())
    }
}

impl ReadRecordLists for FakeHubSpot {
    async fn record_lists(
        &self,
        _portal: PortalId,
        _object_type: ObjectType,
        id: ObjectId,
    ) -> Result<Vec<String>, HubSpotError> {
        self.check_grant()?;
        let lists = self.list_members.lock().unwrap();
        let mut out: Vec<String> = lists
            .iter()
            .filter(|(_, members)| members.contains(&id))
            .map(|(list, _)| list.clone())
            .collect();
        out.sort_unstable();
        Ok(out)
    }
}

impl ReadAssociations for FakeHubSpot {
    async fn associations(
        &self,
        _portal: PortalId,
        from: ObjectType,
        to: ObjectType,
        ids: &[ObjectId],
    ) -> Result<Vec<AssociationLink>, HubSpotError> {
        self.association_reads.fetch_add(1, Ordering::SeqCst);
        assert!(
            ids.len() <= 1_000,
            "associations reads carry at most 1,000 ids"
        );
        self.check_grant()?;
        Ok(self
            .links
            .lock()
            .unwrap()
            .iter()
            .filter(|(f, t, l)| *f == from && *t == to && ids.contains(&l.from))
            .map(|(_, _, l)| *l)
            .collect())
    }
}

impl PortalStats for FakeHubSpot {
    fn portal_stats(&self, _portal: PortalId) -> ClientStats {
        ClientStats::default()
    }
}
