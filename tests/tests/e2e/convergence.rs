//! The real-time path under HubSpot's delivery semantics: duplicated and
//! reordered webhooks, API faults, rate limits, and a poisoned message.
//! Convergence is checked field by field against the simulator.

use std::time::Duration;

use hubspot_sim::{props, Faults, ObjectType as SimType, SimConfig};
use hubsync_local::compare::Divergence;
use hubsync_local::{wait_for, EnvOptions, Environment};

use crate::helpers;

async fn environment(
    name: &str,
    sim: SimConfig,
    batch_size: Option<usize>,
) -> anyhow::Result<(Environment, u64)> {
    let options = EnvOptions {
        batch_size,
        ..helpers::options(name, sim)
    };
    helpers::start_connected(options).await
}

/// Create a starting population through webhooks.
fn populate(
    env: &Environment,
    portal: u64,
    companies: usize,
    contacts: usize,
    deals: usize,
) -> anyhow::Result<()> {
    let sim = env.sim.state();
    for i in 0..companies {
        sim.create_object(
            portal,
            SimType::Companies,
            props([
                ("name", format!("Company {i}")),
                ("domain", format!("c{i}.example.com")),
            ]),
        )?;
    }
    for i in 0..contacts {
        sim.create_object(
            portal,
            SimType::Contacts,
            props([
                ("email", format!("p{i}@example.com")),
                ("firstname", format!("P{i}")),
            ]),
        )?;
    }
    for i in 0..deals {
        sim.create_object(
            portal,
            SimType::Deals,
            props([
                ("dealname", format!("Deal {i}")),
                ("amount", format!("{i}.25")),
            ]),
        )?;
    }
    Ok(())
}

/// Wait until the simulator has delivered everything and DynamoDB equals it.
async fn converged(
    env: &Environment,
    portal: u64,
    timeout: Duration,
) -> anyhow::Result<Divergence> {
    env.wait_converged(portal, timeout).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_and_reordered_webhooks_converge_field_by_field() -> anyhow::Result<()> {
    let (env, portal) = environment("conv-dup", SimConfig::default(), None).await?;
    populate(&env, portal, 100, 150, 50)?;
    converged(&env, portal, Duration::from_secs(60)).await?;

    env.sim.state().update_faults(portal, |f| {
        f.webhook_duplicate_rate = 0.2;
        f.webhook_reorder = true;
    })?;
    let report = env.sim.state().random_changes(portal, 1000, Some(7), &[])?;
    assert!(
        report.updated + report.deleted + report.merged + report.created > 500,
        "{report:?}"
    );
    let d = converged(&env, portal, Duration::from_secs(90)).await?;
    assert!(d.compared >= 250, "compared {} records", d.compared);
    let counters = env.sim.state().counters();
    assert!(
        counters.webhook_events_duplicated > 0,
        "duplicates were injected"
    );
    env.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_faults_during_a_burst_lose_nothing_and_the_limiter_avoids_429s() -> anyhow::Result<()>
{
    let (env, portal) = environment("conv-faults", SimConfig::default(), Some(1)).await?;
    env.sim.state().update_faults(portal, |f| {
        *f = Faults {
            api_error_rate: 0.10,
            api_error_status: 503,
            force_429_next: 5,
            ..Faults::default()
        };
    })?;
    // A 2,000-event burst in 40 waves of 50 changes (creations, then an
    // update of every record), so the worker makes many separate HubSpot
    // calls instead of coalescing everything into a dozen.
    let sim = env.sim.state();
    let types = [SimType::Companies, SimType::Contacts, SimType::Deals];
    let mut created = Vec::new();
    for wave in 0..20 {
        for i in 0..50 {
            let n = wave * 50 + i;
            let t = types[n % 3];
            let p = match t {
                SimType::Companies => props([("name", format!("Company {n}"))]),
                SimType::Contacts => props([("email", format!("p{n}@example.com"))]),
                SimType::Deals => props([
                    ("dealname", format!("Deal {n}")),
                    ("amount", "10.50".to_string()),
                ]),
            };
            created.push((t, sim.create_object(portal, t, p)?));
        }
        sim.wait_webhooks_idle(Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for wave in created.chunks(50) {
        for (t, id) in wave {
            let p = match t {
                SimType::Companies => props([("industry", "COMPUTER_SOFTWARE")]),
                SimType::Contacts => props([("lifecyclestage", "customer")]),
                SimType::Deals => props([("dealstage", "closedwon")]),
            };
            sim.update_object(portal, *t, *id, p)?;
        }
        sim.wait_webhooks_idle(Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    converged(&env, portal, Duration::from_secs(120)).await?;

    let c = env.sim.state().counters();
    let calls: u64 = c
        .requests_by_portal
        .get(&portal)
        .map(|r| r.values().sum())
        .unwrap_or(0);
    let limited = c.rate_limited_by_portal.get(&portal).copied().unwrap_or(0);
    let real_429s = limited.saturating_sub(c.injected_429);
    eprintln!(
        "burst: {calls} HubSpot calls, {} injected 5xx, {} forced 429s, {real_429s} rate-limit 429s, runner {:?}",
        c.injected_errors,
        c.injected_429,
        env.runner.stats()
    );
    assert!(c.injected_errors > 0, "faults were injected");
    assert!(
        (real_429s as f64) < 0.01 * calls as f64,
        "{real_429s} rate-limit 429s in {calls} calls"
    );
    env.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisoned_message_lands_in_the_dlq_and_the_rest_is_written() -> anyhow::Result<()> {
    let (env, portal) = environment("conv-dlq", SimConfig::default(), None).await?;
    let sqs = aws_sdk_sqs::Client::new(&env.aws);
    sqs.send_message()
        .queue_url(&env.resources.queue_url)
        .message_body("{\"v\":1,\"portalId\":\"not a number\"")
        .send()
        .await?;
    let id =
        env.sim
            .state()
            .create_object(portal, SimType::Companies, props([("name", "Survivor")]))?;
    converged(&env, portal, Duration::from_secs(30)).await?;
    let in_dlq = wait_for(
        "the poisoned message in the DLQ",
        Duration::from_secs(40),
        || async {
            let got = sqs
                .receive_message()
                .queue_url(&env.resources.dlq_url)
                .wait_time_seconds(1)
                .send()
                .await?;
            Ok(got
                .messages()
                .first()
                .and_then(|m| m.body())
                .map(str::to_string))
        },
    )
    .await?;
    assert!(in_dlq.contains("not a number"));
    let stats = env.runner.stats();
    assert!(
        stats.worker.poisoned_messages >= 3,
        "received {} times",
        stats.worker.poisoned_messages
    );
    assert!(id > 0);
    env.stop().await;
    Ok(())
}
