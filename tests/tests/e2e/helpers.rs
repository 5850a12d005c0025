//! Setup shared by the end-to-end tests: a local stack per test (its own
//! tables and queues in moto, its own simulator), named after the test.

use hubspot_sim::SimConfig;
use hubsync_local::{EnvOptions, Environment, QueueSettings};

/// The options of a stack named `name` whose simulator runs with `sim`.
pub fn options(name: &str, sim: SimConfig) -> EnvOptions {
    EnvOptions {
        prefix: hubsync_testkit::unique_name(name),
        sim,
        queues: QueueSettings::default(),
        batch_size: None,
    }
}

/// Starts the stack (the intake and the worker running); returns it and
/// its first portal, not connected yet.
pub async fn start(options: EnvOptions) -> anyhow::Result<(Environment, u64)> {
    let env = Environment::start(hubsync_testkit::aws_config().await?, options).await?;
    let portal = env.sim.state().portal_ids()[0];
    Ok((env, portal))
}

/// [`start`], with the first portal connected (its tokens stored, as after
/// the OAuth callback).
pub async fn start_connected(options: EnvOptions) -> anyhow::Result<(Environment, u64)> {
    let (env, portal) = start(options).await?;
    env.connect_portal(portal).await?;
    Ok((env, portal))
}

/// Every mapped field of every record of `portal` as the simulator has it
/// (`hubsync_local::compare`), or an error naming the differences.
pub async fn assert_converged(env: &Environment, portal: u64, when: &str) -> anyhow::Result<()> {
    use hubsync_local::compare::{compare_portal, describe};
    let d = compare_portal(env.sim.state(), env.runner.store(), portal).await?;
    anyhow::ensure!(
        d.is_empty(),
        "{when}: missing [{}], different [{}], should be archived [{}]",
        describe(&d.missing, 10),
        describe(&d.different, 10),
        describe(&d.should_be_archived, 10)
    );
    Ok(())
}
