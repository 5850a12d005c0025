//! Associations between a portal's records, and HubSpot's association type ids.

use super::*;

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
