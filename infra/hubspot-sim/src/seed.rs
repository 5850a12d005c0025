//! Deterministic, realistic seed data and random changes.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::clock::iso_ms;
use crate::config::SeedSpec;
use crate::model::{
    Interner, ObjectType, Owner, OwnerTeam, PropBlob, Record, INDUSTRIES, LEAD_STATUSES,
    LIFECYCLE_STAGES, PIPELINES,
};
use crate::state::{Change, PortalData};

const ADJ: &[&str] = &[
    "Blue", "Bright", "Silver", "North", "Green", "Rapid", "Summit", "Clear", "Iron", "Golden",
    "Cedar", "Quantum", "Atlas", "Harbor", "Nimbus", "Vertex", "Pioneer", "Lumen", "Crimson",
    "Orbit",
];
const NOUN: &[&str] = &[
    "Harbor", "Peak", "Forge", "Labs", "Works", "Bridge", "Stone", "River", "Field", "Cloud",
    "Signal", "Path", "Grid", "Wave", "Pixel", "Anchor", "Beacon", "Canyon", "Falcon", "Maple",
];
const SUFFIX: &[&str] = &[
    "Inc",
    "LLC",
    "Group",
    "Systems",
    "Partners",
    "Co",
    "Technologies",
    "Solutions",
    "GmbH",
    "Ltd",
];
const FIRST: &[&str] = &[
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Mia", "Lucas", "Amelia",
    "Mateo", "Harper", "Ethan", "Aisha", "Wei", "Priya", "Kenji", "Fatima", "Jonas", "Chloé",
    "Zoë",
];
const LAST: &[&str] = &[
    "Smith", "Johnson", "Garcia", "Miller", "Davis", "Martinez", "Lopez", "Wilson", "Anderson",
    "Thomas", "Müller", "Nguyen", "Kim", "Patel", "Okafor", "Rossi", "Schmidt", "Tanaka",
    "O'Brien",
];
const TITLES: &[&str] = &[
    "CEO",
    "CTO",
    "VP Sales",
    "Account Executive",
    "Marketing Manager",
    "Engineer",
    "Head of Ops",
    "Buyer",
];
const CITIES: &[(&str, &str)] = &[
    ("Boston", "United States"),
    ("Austin", "United States"),
    ("Dublin", "Ireland"),
    ("Berlin", "Germany"),
    ("Toronto", "Canada"),
    ("Sydney", "Australia"),
    ("Paris", "France"),
    ("Singapore", "Singapore"),
];
const PRODUCTS: &[&str] = &[
    "Platform",
    "Renewal",
    "Expansion",
    "Pilot",
    "Enterprise Plan",
    "Onboarding",
    "Support",
];

/// Seeded records span 2023-01-01 .. 2025-12-31 (fixed, so data is identical across runs).
const T0: i64 = 1_672_531_200_000;
const SPAN: i64 = 94_608_000_000;

fn pick<'a, T>(rng: &mut ChaCha8Rng, v: &'a [T]) -> &'a T {
    &v[rng.random_range(0..v.len())]
}

fn slug(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn ascii_local(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'é' => 'e',
            'ë' => 'e',
            'ü' => 'u',
            c => c,
        })
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn times(rng: &mut ChaCha8Rng) -> (i64, i64) {
    let c = T0 + rng.random_range(0..SPAN);
    let u = c + rng.random_range(0..(T0 + SPAN - c).max(1));
    (c, u)
}

fn amount(rng: &mut ChaCha8Rng) -> String {
    let dollars = rng.random_range(500..250_000u64);
    match rng.random_range(0..4) {
        0 => format!("{dollars}"),
        1 => format!("{dollars}.50"),
        _ => format!("{dollars}.{:02}", rng.random_range(0..100)),
    }
}

/// Interned indexes of every seeded property.
struct Idx {
    name: u16,
    domain: u16,
    industry: u16,
    employees: u16,
    revenue: u16,
    lifecycle: u16,
    city: u16,
    country: u16,
    phone: u16,
    owner: u16,
    email: u16,
    first: u16,
    last: u16,
    company: u16,
    title: u16,
    lead: u16,
    dealname: u16,
    amount: u16,
    pipeline: u16,
    stage: u16,
    closedate: u16,
    prob: u16,
    dealtype: u16,
    last_activity: u16,
}

/// `hs_last_sales_activity_date` of a seeded record: between its creation
/// and last update, none for every fourth id (no RNG draw, so that adding
/// it changed no other seeded value).
fn last_activity(id: u64, created_ms: i64, updated_ms: i64) -> Option<String> {
    (id % 4 != 0).then(|| iso_ms(created_ms + (updated_ms - created_ms) * (id % 97) as i64 / 97))
}

pub(crate) fn seed(d: &mut PortalData, interner: &mut Interner, spec: &SeedSpec, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut i = |n: &str| interner.intern(n);
    let x = Idx {
        name: i("name"),
        domain: i("domain"),
        industry: i("industry"),
        employees: i("numberofemployees"),
        revenue: i("annualrevenue"),
        lifecycle: i("lifecyclestage"),
        city: i("city"),
        country: i("country"),
        phone: i("phone"),
        owner: i("hubspot_owner_id"),
        email: i("email"),
        first: i("firstname"),
        last: i("lastname"),
        company: i("company"),
        title: i("jobtitle"),
        lead: i("hs_lead_status"),
        dealname: i("dealname"),
        amount: i("amount"),
        pipeline: i("pipeline"),
        stage: i("dealstage"),
        closedate: i("closedate"),
        prob: i("hs_deal_stage_probability"),
        dealtype: i("dealtype"),
        last_activity: i("hs_last_sales_activity_date"),
    };
    if d.owners.is_empty() {
        let n = if spec.owners == 0 { 20 } else { spec.owners };
        for k in 0..n {
            let f = pick(&mut rng, FIRST);
            let l = pick(&mut rng, LAST);
            let (c, u) = times(&mut rng);
            d.owners.push(Owner {
                id: (100_000_001 + k as u64).to_string(),
                owner_type: "PERSON".into(),
                email: format!("{}.{}{}@sim-owners.test", ascii_local(f), ascii_local(l), k),
                first_name: f.to_string(),
                last_name: l.to_string(),
                user_id: 9_000_001 + k as u64,
                created_at: iso_ms(c),
                updated_at: iso_ms(u),
                archived: false,
                teams: vec![OwnerTeam {
                    id: format!("{}", 500 + k % 3),
                    name: ["Sales", "Success", "Partnerships"][k % 3].to_string(),
                    primary: true,
                }],
            });
        }
    }
    let owner_ids: Vec<String> = d.owners.iter().map(|o| o.id.clone()).collect();
    let pick_owner = |rng: &mut ChaCha8Rng| -> Option<String> {
        if owner_ids.is_empty() || rng.random_bool(0.1) {
            None
        } else {
            Some(owner_ids[rng.random_range(0..owner_ids.len())].clone())
        }
    };

    // Companies.
    let mut company_ids: Vec<u64> = d
        .store(ObjectType::Companies)
        .live
        .keys()
        .copied()
        .collect();
    let mut company_names: Vec<String> = Vec::new();
    let mut batch = Vec::with_capacity(spec.companies);
    for _ in 0..spec.companies {
        let id = d.alloc_id(ObjectType::Companies);
        let name = format!(
            "{} {} {}",
            pick(&mut rng, ADJ),
            pick(&mut rng, NOUN),
            pick(&mut rng, SUFFIX)
        );
        let domain = format!("{}{}.com", slug(&name), id % 100_000);
        let (c, u) = times(&mut rng);
        let employees = rng.random_range(1..20_000u32).to_string();
        let revenue = (rng.random_range(10..50_000u64) * 10_000).to_string();
        let (city, country) = *pick(&mut rng, CITIES);
        let phone = format!(
            "+1 555 {:03} {:04}",
            rng.random_range(0..1000),
            rng.random_range(0..10_000)
        );
        let owner = pick_owner(&mut rng);
        let mut pairs: Vec<(u16, &str)> = vec![
            (x.name, &name),
            (x.domain, &domain),
            (x.industry, pick(&mut rng, INDUSTRIES).0),
            (x.employees, &employees),
            (x.revenue, &revenue),
            (x.lifecycle, pick(&mut rng, LIFECYCLE_STAGES).0),
            (x.city, city),
            (x.country, country),
            (x.phone, &phone),
        ];
        if let Some(o) = owner.as_deref() {
            pairs.push((x.owner, o));
        }
        let activity = last_activity(id, c, u);
        if let Some(a) = activity.as_deref() {
            pairs.push((x.last_activity, a));
        }
        batch.push((
            id,
            Record {
                created_ms: c,
                updated_ms: u,
                archived_ms: None,
                live_updated_ms: None,
                props: PropBlob::from_pairs(&mut pairs),
            },
        ));
        company_ids.push(id);
        if company_names.len() < 100_000 {
            company_names.push(name);
        }
    }
    d.store_mut(ObjectType::Companies).live.extend(batch);

    // Contacts.
    let mut contact_ids: Vec<u64> = d.store(ObjectType::Contacts).live.keys().copied().collect();
    let mut batch = Vec::with_capacity(spec.contacts);
    let mut assoc_cc = Vec::with_capacity(spec.contacts);
    for _ in 0..spec.contacts {
        let id = d.alloc_id(ObjectType::Contacts);
        let f = *pick(&mut rng, FIRST);
        let l = *pick(&mut rng, LAST);
        let (c, u) = times(&mut rng);
        let company = if !company_ids.is_empty() && rng.random_bool(0.9) {
            let k = rng.random_range(0..company_ids.len());
            Some((company_ids[k], company_names.get(k).cloned()))
        } else {
            None
        };
        let email = if rng.random_bool(0.05) {
            None
        } else {
            Some(format!(
                "{}.{}{}@{}",
                ascii_local(f),
                ascii_local(l),
                id % 1_000_000,
                ["example.com", "mail.test", "corp.test", "sim.test"][rng.random_range(0..4)]
            ))
        };
        let phone = format!(
            "+1 555 {:03} {:04}",
            rng.random_range(0..1000),
            rng.random_range(0..10_000)
        );
        let owner = pick_owner(&mut rng);
        let mut pairs: Vec<(u16, &str)> = vec![
            (x.first, f),
            (x.last, l),
            (x.lifecycle, pick(&mut rng, LIFECYCLE_STAGES).0),
            (x.lead, pick(&mut rng, LEAD_STATUSES).0),
            (x.title, *pick(&mut rng, TITLES)),
            (x.phone, &phone),
        ];
        if let Some(e) = email.as_deref() {
            pairs.push((x.email, e));
        }
        if let Some((_, Some(n))) = company.as_ref() {
            pairs.push((x.company, n));
        }
        if let Some(o) = owner.as_deref() {
            pairs.push((x.owner, o));
        }
        let activity = last_activity(id, c, u);
        if let Some(a) = activity.as_deref() {
            pairs.push((x.last_activity, a));
        }
        batch.push((
            id,
            Record {
                created_ms: c,
                updated_ms: u,
                archived_ms: None,
                live_updated_ms: None,
                props: PropBlob::from_pairs(&mut pairs),
            },
        ));
        if let Some((cid, _)) = company {
            assoc_cc.push((id, cid));
        }
        contact_ids.push(id);
    }
    d.store_mut(ObjectType::Contacts).live.extend(batch);
    for (a, b) in assoc_cc {
        d.assoc.contact_company.insert(a, b, true);
    }

    // Deals.
    let mut batch = Vec::with_capacity(spec.deals);
    for _ in 0..spec.deals {
        let id = d.alloc_id(ObjectType::Deals);
        let (c, u) = times(&mut rng);
        let (pipeline, _, stages) = if rng.random_bool(0.8) {
            PIPELINES[0]
        } else {
            PIPELINES[1]
        };
        let (stage, _, prob) = *pick(&mut rng, stages);
        let company = if !company_ids.is_empty() && rng.random_bool(0.85) {
            Some(rng.random_range(0..company_ids.len()))
        } else {
            None
        };
        let cname = company
            .and_then(|k| company_names.get(k).cloned())
            .unwrap_or_else(|| format!("{} {}", pick(&mut rng, ADJ), pick(&mut rng, NOUN)));
        let dealname = format!("{} – {}", cname, pick(&mut rng, PRODUCTS));
        let amt = amount(&mut rng);
        let close = iso_ms(c + rng.random_range(0..180i64) * 86_400_000);
        let owner = pick_owner(&mut rng);
        let dealtype = if rng.random_bool(0.7) {
            "newbusiness"
        } else {
            "existingbusiness"
        };
        let mut pairs: Vec<(u16, &str)> = vec![
            (x.dealname, &dealname),
            (x.pipeline, pipeline),
            (x.stage, stage),
            (x.prob, prob),
            (x.closedate, &close),
            (x.dealtype, dealtype),
        ];
        if !rng.random_bool(0.03) {
            pairs.push((x.amount, &amt));
        }
        if let Some(o) = owner.as_deref() {
            pairs.push((x.owner, o));
        }
        batch.push((
            id,
            Record {
                created_ms: c,
                updated_ms: u,
                archived_ms: None,
                live_updated_ms: None,
                props: PropBlob::from_pairs(&mut pairs),
            },
        ));
        if let Some(k) = company {
            d.assoc.deal_company.insert(id, company_ids[k], true);
        }
        if !contact_ids.is_empty() {
            for _ in 0..rng.random_range(0..3) {
                let cid = contact_ids[rng.random_range(0..contact_ids.len())];
                d.assoc.deal_contact.insert(id, cid, false);
            }
        }
    }
    d.store_mut(ObjectType::Deals).live.extend(batch);
}

fn random_live_id(
    map: &std::collections::BTreeMap<u64, Record>,
    rng: &mut ChaCha8Rng,
) -> Option<u64> {
    let lo = *map.keys().next()?;
    let hi = *map.keys().next_back()?;
    let probe = rng.random_range(lo..=hi);
    map.range(probe..).next().map(|(k, _)| *k).or(Some(hi))
}

/// Random property values for a type (always valid for the builtin schema).
fn random_props(ty: ObjectType, rng: &mut ChaCha8Rng, n: usize) -> crate::state::Props {
    let mut out = crate::state::Props::new();
    for _ in 0..n.max(1) {
        let (k, v): (&str, String) = match ty {
            ObjectType::Companies => match rng.random_range(0..5) {
                0 => (
                    "name",
                    format!(
                        "{} {} {}",
                        pick(rng, ADJ),
                        pick(rng, NOUN),
                        pick(rng, SUFFIX)
                    ),
                ),
                1 => ("industry", pick(rng, INDUSTRIES).0.to_string()),
                2 => (
                    "numberofemployees",
                    rng.random_range(1..20_000u32).to_string(),
                ),
                3 => (
                    "annualrevenue",
                    (rng.random_range(10..50_000u64) * 10_000).to_string(),
                ),
                _ => ("lifecyclestage", pick(rng, LIFECYCLE_STAGES).0.to_string()),
            },
            ObjectType::Contacts => match rng.random_range(0..5) {
                0 => ("firstname", pick(rng, FIRST).to_string()),
                1 => ("lastname", pick(rng, LAST).to_string()),
                2 => ("hs_lead_status", pick(rng, LEAD_STATUSES).0.to_string()),
                3 => ("jobtitle", pick(rng, TITLES).to_string()),
                _ => ("lifecyclestage", pick(rng, LIFECYCLE_STAGES).0.to_string()),
            },
            ObjectType::Deals => match rng.random_range(0..3) {
                0 => ("amount", amount(rng)),
                1 => {
                    let (_, _, stages) = PIPELINES[0];
                    ("dealstage", pick(rng, stages).0.to_string())
                }
                _ => (
                    "dealname",
                    format!(
                        "{} {} – {}",
                        pick(rng, ADJ),
                        pick(rng, NOUN),
                        pick(rng, PRODUCTS)
                    ),
                ),
            },
        };
        out.insert(k.to_string(), Some(v));
    }
    out
}

/// One random change against the current data (`None` if nothing applicable).
pub(crate) fn random_change(
    d: &PortalData,
    ty: ObjectType,
    roll: f64,
    rng: &mut ChaCha8Rng,
) -> Option<Change> {
    let s = d.store(ty);
    if roll < 0.12 || s.live.is_empty() {
        let n = rng.random_range(1..4);
        let mut p = random_props(ty, rng, n);
        if ty == ObjectType::Contacts {
            let f = pick(rng, FIRST);
            let l = pick(rng, LAST);
            p.insert("firstname".into(), Some(f.to_string()));
            p.insert("lastname".into(), Some(l.to_string()));
            p.insert(
                "email".into(),
                Some(format!(
                    "{}.{}{}@new.test",
                    ascii_local(f),
                    ascii_local(l),
                    rng.random_range(0..1_000_000)
                )),
            );
        }
        return Some(Change::Create {
            object_type: ty,
            properties: p,
        });
    }
    if roll < 0.72 {
        let id = random_live_id(&s.live, rng)?;
        let n = rng.random_range(1..4);
        return Some(Change::Update {
            object_type: ty,
            id,
            properties: random_props(ty, rng, n),
        });
    }
    if roll < 0.82 {
        let id = random_live_id(&s.live, rng)?;
        return Some(Change::Delete {
            object_type: ty,
            id,
        });
    }
    if roll < 0.88 {
        let id = random_live_id(&s.archived, rng)?;
        return Some(Change::Restore {
            object_type: ty,
            id,
        });
    }
    if roll < 0.93 {
        let a = random_live_id(&s.live, rng)?;
        let b = random_live_id(&s.live, rng)?;
        if a == b {
            return None;
        }
        return Some(Change::Merge {
            object_type: ty,
            primary_id: a,
            merged_id: b,
            new_id: None,
        });
    }
    let other = match ty {
        ObjectType::Companies => ObjectType::Contacts,
        ObjectType::Contacts => ObjectType::Companies,
        ObjectType::Deals => ObjectType::Companies,
    };
    let a = random_live_id(&s.live, rng)?;
    let b = random_live_id(&d.store(other).live, rng)?;
    Some(Change::Associate {
        from_type: ty,
        from_id: a,
        to_type: other,
        to_id: b,
        primary: rng.random_bool(0.3),
    })
}
