//! A HubSpot outage longer than the events queue's receive budget heals by
//! itself: messages that failed transiently are backed off (visibility
//! 1 s, 4 s, 16 s, 16 s in this scaled-down stack) instead of spending their
//! receives every 2 seconds, so they outlive the outage, the store
//! converges with HubSpot, and the DLQ stays empty — no operator action.
//! (With a constant 2 s, the receives run out after about 20 s: the test
//! fails.)

use std::time::{Duration, Instant};

use hubspot_sim::{props, Faults, ObjectType as SimType, SimConfig};
use hubsync_local::{EnvOptions, Environment, QueueSettings};
use hubsync_messages::RetryBackoff;

use crate::helpers;

/// The queue gives up after 5 receives; without back-off that is 5 × 2 s
/// of visibility timeout plus the failing attempts themselves, ~20 s. The
/// outage lasts 30 s.
const OUTAGE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hubspot_outage_longer_than_the_receive_budget_heals_without_the_dlq(
) -> anyhow::Result<()> {
    let options = EnvOptions {
        queues: QueueSettings {
            visibility_timeout_secs: 2,
            max_receive_count: 5,
        },
        ..helpers::options("outage", SimConfig::default())
    };
    let env = Environment::start_with(hubsync_testkit::aws_config().await?, options, |c| {
        c.retry_backoff = RetryBackoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(16),
        }
    })
    .await?;
    let portal = env.sim.state().portal_ids()[0];
    env.connect_portal(portal).await?;
    let sim = env.sim.state();
    sim.set_faults(
        portal,
        Faults {
            api_error_rate: 1.0,
            api_error_status: 500,
            ..Faults::default()
        },
    )?;
    let down = Instant::now();
    for i in 0..10 {
        sim.create_object(
            portal,
            SimType::Companies,
            props([("name", format!("During the outage {i}").as_str())]),
        )?;
    }
    hubsync_local::wait_for("the worker to fail", Duration::from_secs(10), || async {
        Ok((env.runner.stats().failed_messages > 0).then_some(()))
    })
    .await?;
    tokio::time::sleep(OUTAGE.saturating_sub(down.elapsed())).await;
    sim.set_faults(portal, Faults::default())?;

    env.wait_converged(portal, Duration::from_secs(60)).await?;
    let stats = env.runner.stats();
    assert!(
        stats.failed_messages >= 2,
        "failed during the outage: {stats:?}"
    );
    assert_eq!(env.dlq_depth().await?, 0, "nothing dead-lettered");
    env.stop().await;
    Ok(())
}
