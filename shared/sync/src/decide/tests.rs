use hubsync_hubspot::{HubSpotObject, ObjectId, ObjectType, PortalId};
use hubsync_mapping::{map_with, MapContext, MapOutcome, MappingConfig};
use hubsync_store::{ArchiveReason, RecordKey, StoredMeta};

use super::*;

const T: ObjectType = ObjectType::Contacts;
const V: i64 = 1_767_323_045_678; // 2026-01-02T03:04:05.678Z

fn key() -> RecordKey {
    RecordKey::new(PortalId(7), T, ObjectId(1))
}

fn contact(email: Option<&str>) -> HubSpotObject {
    let mut props = vec![("lastmodifieddate", "2026-01-02T03:04:05.678Z")];
    if let Some(e) = email {
        props.push(("email", e));
    }
    HubSpotObject::new(1, props)
}

fn facts(fp: &str) -> Facts<'_> {
    Facts {
        key: key(),
        object_type: T,
        fingerprint: fp,
        list_scope_unknown: false,
        listed_live: None,
    }
}

fn mapped(object: &HubSpotObject) -> MapOutcome {
    let config = MappingConfig::default();
    map_with(config.object(T), T, object, MapContext::default())
}

fn meta(version: i64) -> StoredMeta {
    StoredMeta {
        portal_id: PortalId(7),
        object_type: T,
        object_id: ObjectId(1),
        source_version: version,
        content_hash: Some("other".into()),
        archived: false,
        archived_at: None,
        archive_reason: None,
        merged_into: None,
        privacy_deleted: false,
        mapping_fp: Some("fp".into()),
    }
}

fn decided(f: Facts<'_>, object: &HubSpotObject, stored: Option<&StoredMeta>) -> Decision {
    decide(f, object, mapped(object), stored)
}

#[test]
fn nothing_stored_is_a_create_at_the_objects_version() {
    let o = contact(Some("a@example.com"));
    match decided(facts("fp"), &o, None) {
        Decision::Write { write, kind } => {
            assert_eq!(kind, WriteKind::Create);
            assert_eq!(write.source_version, V);
            assert_eq!(write.mapping_fp.as_deref(), Some("fp"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_tombstone_is_never_written_or_archived() {
    let mut s = meta(i64::MAX);
    s.privacy_deleted = true;
    for o in [contact(Some("a@example.com")), contact(None)] {
        assert!(matches!(
            decided(facts("fp"), &o, Some(&s)),
            Decision::Skip(Skip::Tombstoned)
        ));
    }
}

#[test]
fn newer_stored_is_stale_older_is_a_content_update() {
    let o = contact(Some("a@example.com"));
    assert!(matches!(
        decided(facts("fp"), &o, Some(&meta(V + 1))),
        Decision::Skip(Skip::Stale)
    ));
    assert!(matches!(
        decided(facts("fp"), &o, Some(&meta(V - 1))),
        Decision::Write {
            kind: WriteKind::Update(UpdateClass::Content),
            ..
        }
    ));
    // Same version, other hash, another config: the mapping changed.
    assert!(matches!(
        decided(facts("new-fp"), &o, Some(&meta(V))),
        Decision::Write {
            kind: WriteKind::Update(UpdateClass::Remapped),
            ..
        }
    ));
    // Same version and config, other hash: something HubSpot does not
    // version moved (an association, an owner's email, a label).
    assert!(matches!(
        decided(facts("fp"), &o, Some(&meta(V))),
        Decision::Write {
            kind: WriteKind::Update(UpdateClass::Content),
            ..
        }
    ));
}

#[test]
fn an_unqualified_record_archives_an_active_copy_past_its_version() {
    let o = contact(None);
    // The scope changed at the stored version: 1 ms past it.
    match decided(facts("new-fp"), &o, Some(&meta(V))) {
        Decision::ArchiveOutOfScope {
            occurred_at_ms,
            remapped,
        } => {
            assert_eq!(occurred_at_ms, V + 1);
            assert!(remapped, "same version, other config: the config's doing");
        }
        other => panic!("{other:?}"),
    }
    // A newer stored version: this read is stale, nothing happens.
    assert!(matches!(
        decided(facts("fp"), &o, Some(&meta(V + 5))),
        Decision::Skip(Skip::NotSynced)
    ));
    // Unless the read started after it: a version made up by an earlier
    // scope change (archive or restore 1 ms past HubSpot's), superseded.
    let read_after = Facts {
        listed_live: Some(ListedLive {
            started_at_ms: V + 60_000,
            skew_ms: 1_000,
        }),
        ..facts("fp")
    };
    match decided(read_after, &o, Some(&meta(V + 2))) {
        Decision::ArchiveOutOfScope { occurred_at_ms, .. } => assert_eq!(occurred_at_ms, V + 3),
        other => panic!("{other:?}"),
    }
    let read_before = Facts {
        listed_live: Some(ListedLive {
            started_at_ms: V + 2,
            skew_ms: 1_000,
        }),
        ..facts("fp")
    };
    assert!(matches!(
        decided(read_before, &o, Some(&meta(V + 2))),
        Decision::Skip(Skip::NotSynced)
    ));
    assert!(matches!(
        decided(facts("fp"), &o, None),
        Decision::Skip(Skip::NotSynced)
    ));
}

#[test]
fn list_scope_unknown_updates_only_records_already_in_scope() {
    let o = contact(Some("a@example.com"));
    let f = Facts {
        list_scope_unknown: true,
        ..facts("fp")
    };
    assert!(matches!(
        decided(f, &o, None),
        Decision::Skip(Skip::ListScopePending)
    ));
    let mut out = meta(V - 1);
    out.archived = true;
    out.archive_reason = Some(ArchiveReason::OutOfScope);
    assert!(matches!(
        decided(f, &o, Some(&out)),
        Decision::Skip(Skip::ListScopePending)
    ));
    assert!(matches!(
        decided(f, &o, Some(&meta(V - 1))),
        Decision::Write { .. }
    ));
}

#[test]
fn an_archive_at_the_same_version_is_restored_only_by_a_later_listing() {
    let o = contact(Some("a@example.com"));
    let mut archived = meta(V);
    archived.archived = true;
    archived.archive_reason = Some(ArchiveReason::Deleted);
    archived.content_hash = None;
    // Same hash would be unchanged; force it via the stored hash.
    if let MapOutcome::Mapped(m) = mapped(&o) {
        archived.content_hash = Some(m.content_hash.as_str().to_owned());
    }
    // No listing evidence (the worker): left archived.
    assert!(matches!(
        decided(facts("fp"), &o, Some(&archived)),
        Decision::Skip(Skip::Unchanged)
    ));
    let listed = |started_at_ms| Facts {
        listed_live: Some(ListedLive {
            started_at_ms,
            skew_ms: 1_000,
        }),
        ..facts("fp")
    };
    assert!(matches!(
        decided(listed(V + 500), &o, Some(&archived)),
        Decision::Skip(Skip::DeferredRestore)
    ));
    match decided(listed(V + 5_000), &o, Some(&archived)) {
        Decision::Write { write, kind } => {
            assert_eq!(write.source_version, V + 1);
            assert_eq!(
                kind,
                WriteKind::Unarchive {
                    same_version: true,
                    remapped: false
                }
            );
        }
        other => panic!("{other:?}"),
    }
}
