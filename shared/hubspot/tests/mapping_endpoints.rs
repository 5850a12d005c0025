//! The client's mapping endpoints against the simulator: property
//! definitions (built-in and custom), every owner across pages, and
//! associations v4 batch reads (primary flags, ids without associations,
//! the 1,000-input limit), lists and their memberships.

use std::collections::BTreeSet;
use std::sync::Arc;

use hubspot_sim::{ObjectType as SimType, PropertyDef, SeedSpec, SimConfig, Simulator};
use hubsync_hubspot::{
    ClientConfig, HubSpotClient, HubSpotError, ObjectId, ObjectType, PortalId, StaticToken,
    Unlimited, MAX_ASSOCIATION_INPUTS,
};

const PORTAL: u64 = 1_000_001;

async fn setup() -> (Simulator, HubSpotClient, StaticToken) {
    let sim = Simulator::start(SimConfig {
        initial_seed: SeedSpec {
            companies: 20,
            contacts: 300,
            deals: 30,
            owners: 150,
            seed: Some(3),
        },
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    let client =
        HubSpotClient::with_rate_limiter(ClientConfig::new(sim.base_url()), Arc::new(Unlimited))
            .expect("client");
    let token = StaticToken::new(sim.issue_token(PORTAL).expect("token").access_token);
    (sim, client, token)
}

#[tokio::test]
async fn property_definitions_include_custom_ones_and_drop_deleted_ones() {
    let (sim, client, token) = setup().await;
    let p = PortalId(PORTAL);
    let defs = client
        .get_properties(&token, p, ObjectType::Deals)
        .await
        .unwrap();
    let amount = defs.iter().find(|d| d.name == "amount").unwrap();
    assert_eq!(amount.prop_type, "number");
    let pipeline = defs.iter().find(|d| d.name == "pipeline").unwrap();
    assert!(pipeline.options.iter().any(|o| o.value == "default"));
    assert!(defs
        .iter()
        .any(|d| d.name == "hubspot_owner_id" && d.is_owner()));

    sim.state()
        .create_property(
            PORTAL,
            SimType::Deals,
            PropertyDef {
                name: "seats".into(),
                prop_type: "number".into(),
                field_type: "number".into(),
                ..PropertyDef::default()
            },
        )
        .unwrap();
    let names = |defs: Vec<hubsync_mapping::PropertyDefinition>| -> BTreeSet<String> {
        defs.into_iter().map(|d| d.name).collect()
    };
    let with = names(
        client
            .get_properties(&token, p, ObjectType::Deals)
            .await
            .unwrap(),
    );
    assert!(with.contains("seats"));
    sim.state()
        .delete_property(PORTAL, SimType::Deals, "seats")
        .unwrap();
    let without = names(
        client
            .get_properties(&token, p, ObjectType::Deals)
            .await
            .unwrap(),
    );
    assert!(!without.contains("seats"));
    let contacts = names(
        client
            .get_properties(&token, p, ObjectType::Contacts)
            .await
            .unwrap(),
    );
    for needed in hubsync_mapping::properties_for(ObjectType::Contacts) {
        assert!(contacts.contains(*needed), "{needed}");
    }
}

#[tokio::test]
async fn every_owner_is_listed_across_pages() {
    let (sim, client, token) = setup().await;
    let owners = client
        .list_all_owners(&token, PortalId(PORTAL))
        .await
        .unwrap();
    let expected: BTreeSet<String> = sim
        .state()
        .owners(PORTAL)
        .unwrap()
        .into_iter()
        .filter(|o| !o.archived)
        .map(|o| o.id)
        .collect();
    assert!(expected.len() > 100, "more than one page");
    let got: BTreeSet<String> = owners.iter().map(|o| o.id.clone()).collect();
    assert_eq!(got, expected);
    assert!(owners.iter().all(|o| o.email.is_some()));
}

#[tokio::test]
async fn associations_batch_read_matches_the_simulator() {
    let (sim, client, token) = setup().await;
    let state = sim.state();
    let contacts: Vec<u64> = state.object_ids(PORTAL, SimType::Contacts, false).unwrap();
    let ids: Vec<ObjectId> = contacts.iter().map(|c| ObjectId(*c)).collect();
    let links = client
        .batch_read_associations(
            &token,
            PortalId(PORTAL),
            ObjectType::Contacts,
            ObjectType::Companies,
            &ids,
        )
        .await
        .unwrap();
    let got: BTreeSet<(u64, u64, bool)> = links
        .iter()
        .map(|l| (l.from.get(), l.to.get(), l.primary))
        .collect();
    let mut expected = BTreeSet::new();
    for c in &contacts {
        for (company, primary) in state
            .associations(PORTAL, SimType::Contacts, *c, SimType::Companies)
            .unwrap()
        {
            expected.insert((*c, company, primary));
        }
    }
    assert!(!expected.is_empty());
    assert!(expected.iter().any(|(_, _, p)| *p), "some primaries");
    assert_eq!(got, expected);

    // Ids without associations (or unknown) are simply absent.
    let none = client
        .batch_read_associations(
            &token,
            PortalId(PORTAL),
            ObjectType::Deals,
            ObjectType::Contacts,
            &[ObjectId(999_999_999)],
        )
        .await
        .unwrap();
    assert!(none.is_empty());

    let too_many: Vec<ObjectId> = (1..=MAX_ASSOCIATION_INPUTS as u64 + 1)
        .map(ObjectId)
        .collect();
    let calls: u64 = sim.state().counters().requests.values().sum();
    let err = client
        .batch_read_associations(
            &token,
            PortalId(PORTAL),
            ObjectType::Deals,
            ObjectType::Companies,
            &too_many,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, HubSpotError::InvalidArgument(_)), "{err}");
    assert_eq!(
        sim.state().counters().requests.values().sum::<u64>(),
        calls,
        "no request sent"
    );
}

#[tokio::test]
async fn lists_and_their_memberships_across_pages() {
    let (sim, client, token) = setup().await;
    let state = sim.state();
    let p = PortalId(PORTAL);
    let contacts = state.object_ids(PORTAL, SimType::Contacts, false).unwrap();
    let list = state
        .create_list(PORTAL, SimType::Contacts, "Customers / Active")
        .unwrap();
    let members: Vec<u64> = contacts.iter().copied().take(280).collect();
    state.add_to_list(PORTAL, list, &members).unwrap();
    state
        .delete_object(PORTAL, SimType::Contacts, members[0])
        .unwrap();
    state.remove_from_list(PORTAL, list, &[members[1]]).unwrap();

    let info = client
        .get_list(&token, p, &list.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.name, "Customers / Active");
    assert_eq!(info.object_type, Some(ObjectType::Contacts));
    assert_eq!(client.get_list(&token, p, "987654").await.unwrap(), None);
    assert!(matches!(
        client.get_list(&token, p, "../owners").await,
        Err(HubSpotError::InvalidArgument(_))
    ));

    let got = client
        .list_memberships(&token, p, &list.to_string())
        .await
        .unwrap();
    let expected: Vec<ObjectId> = members[2..].iter().map(|m| ObjectId(*m)).collect();
    assert_eq!(got, expected, "live members only, every page");
    assert_eq!(
        state.list_members(PORTAL, list).unwrap(),
        members[2..].to_vec()
    );
}
