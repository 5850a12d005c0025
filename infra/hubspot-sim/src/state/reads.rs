//! Reads as the CRM APIs answer them, and property definitions.

use super::*;

impl SimState {
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

    /// The live record a merged-away id ended in (`None`: not merged away,
    /// or its survivor is gone too).
    pub fn merge_survivor(
        &self,
        portal: u64,
        ty: ObjectType,
        id: u64,
    ) -> Result<Option<u64>, SimError> {
        let p = self.portal(portal)?;
        let d = p.read();
        Ok(d.store(ty).survivor_of(id))
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
}
