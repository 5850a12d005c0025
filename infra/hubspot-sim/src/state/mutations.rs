//! Mutations: creates, updates, deletes, merges, restores, associations, random changes — each emits its webhook events.

use super::*;

impl SimState {
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
                    live_updated_ms: None,
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
                rec.live_updated_ms = Some(rec.updated_ms);
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
                rec.live_updated_ms = None;
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
