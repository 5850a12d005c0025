//! A revoked install is recognised in every body shape HubSpot's token
//! endpoint answers with — RFC 6749's `invalid_grant`, OAuth v1's
//! `status: BAD_REFRESH_TOKEN`, the 2026 combined body, and the
//! date-versioned APIs' generic error — and each marks the connection
//! `needs_reauth` and acknowledges the portal's messages (nothing retried,
//! nothing dead-lettered).

use std::time::Duration;

use hubspot_sim::{props, OAuthErrorShape, ObjectType as SimType, SimConfig};
use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_local::wait_for;
use hubsync_store::{ConnectionStatus, ConnectionStore, RecordKey, RecordStore};

use crate::helpers;

const WAIT: Duration = Duration::from_secs(30);

const SHAPES: [OAuthErrorShape; 4] = [
    OAuthErrorShape::Combined,
    OAuthErrorShape::InvalidGrant,
    OAuthErrorShape::Status,
    OAuthErrorShape::Generic,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_revoked_grant_shape_marks_needs_reauth_and_acknowledges() -> anyhow::Result<()> {
    let sim = SimConfig {
        portal_count: SHAPES.len(),
        ..SimConfig::default()
    };
    let (env, _) = helpers::start(helpers::options("revoked-shapes", sim)).await?;
    let state = env.sim.state();
    let portals = state.portal_ids();
    for &portal in &portals {
        env.connect_portal(portal).await?;
    }
    for (&portal, shape) in portals.iter().zip(SHAPES) {
        let first = state.create_object(portal, SimType::Companies, props([("name", "Before")]))?;
        wait_for("the first company", WAIT, || async {
            Ok(env
                .runner
                .store()
                .get_record(&RecordKey::new(
                    PortalId(portal),
                    ObjectType::Companies,
                    ObjectId(first),
                ))
                .await?)
        })
        .await?;

        state.update_config(|c| c.oauth.error_shape = shape);
        state.uninstall(portal)?;
        let failed_before = env.runner.stats().failed_messages;
        state.create_object(portal, SimType::Companies, props([("name", "After")]))?;
        let conn = wait_for(&format!("needs_reauth ({shape:?})"), WAIT, || async {
            Ok(env
                .runner
                .store()
                .get_connection(PortalId(portal))
                .await?
                .filter(|c| c.status == ConnectionStatus::NeedsReauth))
        })
        .await?;
        assert!(
            conn.access_token_ciphertext.is_none() && conn.refresh_token_ciphertext.is_none(),
            "{shape:?}: tokens deleted"
        );
        assert!(state.wait_webhooks_idle(WAIT).await);
        assert_eq!(
            env.runner.stats().failed_messages,
            failed_before,
            "{shape:?}: messages acknowledged, not retried"
        );
    }
    assert_eq!(env.dlq_depth().await?, 0, "nothing dead-lettered");
    env.stop().await;
    Ok(())
}
