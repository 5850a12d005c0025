//! The configured deployment ([`Ops`]) and the two single-record commands:
//! `purge` and `disconnect`.

use std::io::Write;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use hubsync_auth::wiring::TokenSettings;
use hubsync_auth::{ConnectionTokens, KmsCipher};
use hubsync_hubspot::{
    HubSpotClient, OAuthClient, OAuthConfig, OAuthVersion, ObjectId, ObjectType, PortalId,
};
use hubsync_ratelimit::{HubSpotSettings, PermitClass};
use hubsync_store::{ConnectionStore, DynamoStore, RecordKey, StoreConfig};

use hubsync_admin::AdminError;

use crate::OpsConfig;

/// A deployment: the AWS configuration and where its resources are.
#[derive(Debug, Clone)]
pub struct Ops {
    pub aws: aws_config::SdkConfig,
    pub config: OpsConfig,
    /// The store, made once: every command of this `Ops` shares its write
    /// and read counters ([`DynamoStore::stats`]).
    store: OnceLock<DynamoStore>,
}

/// A configured value, or an error naming its variable and flag.
pub(crate) fn need<'a>(
    value: &'a Option<String>,
    var: &str,
    flag: &str,
    what: &str,
) -> Result<&'a str> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .with_context(|| format!("{var} is not set (nor {flag}): it must name {what}"))
}

impl Ops {
    pub fn new(aws: aws_config::SdkConfig, config: OpsConfig) -> Self {
        Self {
            aws,
            config,
            store: OnceLock::new(),
        }
    }

    /// The store on the deployment's two tables (one per `Ops`; clones
    /// share its counters).
    pub fn store(&self) -> Result<DynamoStore> {
        if let Some(store) = self.store.get() {
            return Ok(store.clone());
        }
        let store = self.new_store()?;
        Ok(self.store.get_or_init(|| store).clone())
    }

    /// A separate handle on the tables, with its own counters.
    fn new_store(&self) -> Result<DynamoStore> {
        let records = need(
            &self.config.records_table,
            "HUBSYNC_RECORDS_TABLE",
            "--records-table",
            "the Records table (stack output RecordsTableName)",
        )?;
        let control = need(
            &self.config.control_table,
            "HUBSYNC_CONTROL_TABLE",
            "--control-table",
            "the Control table (stack output ControlTableName)",
        )?;
        Ok(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&self.aws),
            StoreConfig::new(records, control),
        ))
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.aws)
    }

    /// The sync-jobs queue's URL.
    pub fn sync_jobs_queue_url(&self) -> Result<&str> {
        need(
            &self.config.sync_jobs_queue_url,
            "HUBSYNC_SYNC_JOBS_QUEUE_URL",
            "--sync-jobs-queue-url",
            "the sync-jobs queue (stack output SyncJobsQueueUrl)",
        )
    }

    /// What the deployed functions use to decrypt (KMS) and refresh
    /// (HubSpot's token endpoint, single-flight through the store's lease)
    /// a portal's tokens: `HUBSYNC_TOKEN_KEY_ID`, `HUBSYNC_HUBSPOT_CLIENT_ID`,
    /// `HUBSYNC_CLIENT_SECRET_ARN`, `HUBSYNC_OAUTH_REDIRECT_URI`,
    /// `HUBSYNC_HUBSPOT_BASE_URL`, `HUBSYNC_OAUTH_VERSION`.
    pub fn token_settings(&self) -> Result<TokenSettings> {
        let c = &self.config;
        Ok(TokenSettings {
            hubspot_base_url: c.hubspot_base_url.clone(),
            token_key_id: need(
                &c.token_key_id,
                "HUBSYNC_TOKEN_KEY_ID",
                "--token-key-id",
                "the KMS key of the tokens (stack output TokenKeyArn)",
            )?
            .to_owned(),
            client_id: need(
                &c.hubspot_client_id,
                "HUBSYNC_HUBSPOT_CLIENT_ID",
                "--hubspot-client-id",
                "the HubSpot app's client id",
            )?
            .to_owned(),
            client_secret_arn: need(
                &c.client_secret_arn,
                "HUBSYNC_CLIENT_SECRET_ARN",
                "--client-secret-arn",
                "the Secrets Manager secret of the app's client secret",
            )?
            .to_owned(),
            redirect_uri: need(
                &c.oauth_redirect_uri,
                "HUBSYNC_OAUTH_REDIRECT_URI",
                "--oauth-redirect-uri",
                "the app's redirect URI (stack output OAuthRedirectUri)",
            )?
            .to_owned(),
            oauth_version: self.oauth_version()?,
        })
    }

    /// `HUBSYNC_OAUTH_VERSION`, default the current date-versioned API.
    pub fn oauth_version(&self) -> Result<OAuthVersion> {
        Ok(match self.config.oauth_version.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() => v
                .parse::<OAuthVersion>()
                .map_err(|e| anyhow::anyhow!("HUBSYNC_OAUTH_VERSION {v:?} is invalid: {e}"))?,
            _ => OAuthVersion::current(),
        })
    }

    /// The portal's tokens the way the deployed functions get them
    /// ([`TokenSettings::connection_tokens`]): decrypted with KMS under the
    /// portal's encryption context, refreshed once for every caller.
    pub async fn connection_tokens(
        &self,
    ) -> Result<ConnectionTokens<DynamoStore, KmsCipher, OAuthClient>> {
        let settings = self.token_settings()?;
        settings
            .connection_tokens(&self.aws, self.store()?)
            .await
            .map_err(|e| anyhow::anyhow!("set up the token source: {e}"))
    }

    /// The HubSpot client of the reconciliation ([`HubSpotSettings`] from
    /// the functions' variables, `HUBSYNC_RATE_LIMITER` & co., with the
    /// CLI's base URL): its calls take permits from the portal's shared
    /// budget (`Background`, like a re-sync), so an admin command never
    /// pushes the functions into HubSpot's 429s. The budget's ledger
    /// lives in the Control table and is kept through a separate store
    /// handle, so [`Ops::store`]'s counters count data writes only.
    pub fn hubspot_client(&self) -> Result<HubSpotClient> {
        let mut settings =
            HubSpotSettings::from_vars(&hubsync_runtime::Env::process(), PermitClass::Background)
                .context("read the HubSpot client settings")?;
        settings.client.base_url = self.config.hubspot_base_url.clone();
        settings
            .client(self.new_store()?)
            .context("configure the HubSpot client")
    }

    /// The events queue's URL.
    pub fn events_queue_url(&self) -> Result<&str> {
        need(
            &self.config.events_queue_url,
            "HUBSYNC_EVENTS_QUEUE_URL",
            "--events-queue-url",
            "the webhook events queue (stack output EventsQueueUrl)",
        )
    }
}

/// `purge`: one conditional delete that only succeeds on an archived,
/// non-tombstone record.
pub async fn purge(
    ops: &Ops,
    portal: u64,
    object_type: ObjectType,
    id: u64,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    let store = ops.store()?;
    let key = RecordKey::new(PortalId(portal), object_type, ObjectId(id));
    match hubsync_admin::records::purge_one(&store, &key).await {
        Ok(()) => {
            writeln!(
                out,
                "deleted {object_type} record {id} of portal {portal} permanently (it was archived)"
            )?;
            Ok(())
        }
        Err(e @ (AdminError::NotFound(_) | AdminError::Conflict(_))) => {
            bail!("refused: {e}. Nothing changed")
        }
        Err(e) => Err(e).with_context(|| {
            format!("delete {object_type} record {id} of portal {portal} permanently")
        }),
    }
}

/// `disconnect`: what the OAuth function's disconnect route does, through
/// the same shared operation (`hubsync_admin::connection::disconnect`):
/// revoke the grant at HubSpot, delete the tokens, mark `disconnected`,
/// keep the records.
pub async fn disconnect(ops: &Ops, portal: u64, out: &mut (dyn Write + Send)) -> Result<()> {
    let c = &ops.config;
    let client_id = need(
        &c.hubspot_client_id,
        "HUBSYNC_HUBSPOT_CLIENT_ID",
        "--hubspot-client-id",
        "the HubSpot app's client id",
    )?;
    let client_secret_arn = need(
        &c.client_secret_arn,
        "HUBSYNC_CLIENT_SECRET_ARN",
        "--client-secret-arn",
        "the Secrets Manager secret of the app's client secret",
    )?;
    let token_key_id = need(
        &c.token_key_id,
        "HUBSYNC_TOKEN_KEY_ID",
        "--token-key-id",
        "the KMS key of the tokens (stack output TokenKeyArn)",
    )?;
    let redirect_uri = need(
        &c.oauth_redirect_uri,
        "HUBSYNC_OAUTH_REDIRECT_URI",
        "--oauth-redirect-uri",
        "the app's redirect URI (stack output OAuthRedirectUri)",
    )?;
    let version = ops.oauth_version()?;
    let store = ops.store()?;
    let connection = store
        .get_connection(PortalId(portal))
        .await
        .with_context(|| format!("read the connection of portal {portal}"))?
        .with_context(|| format!("portal {portal} has no connection; nothing to disconnect"))?;

    let secrets = aws_sdk_secretsmanager::Client::new(&ops.aws);
    let client_secret = hubsync_runtime::load_secret(&secrets, client_secret_arn)
        .await
        .context("read the HubSpot client secret")?;
    let mut oauth = OAuthConfig::new(
        c.hubspot_base_url.clone(),
        client_id.to_owned(),
        client_secret,
        redirect_uri.to_owned(),
    );
    oauth.version = version;
    let hubspot = OAuthClient::new(oauth).context("configure the HubSpot OAuth client")?;
    let cipher = KmsCipher::new(aws_sdk_kms::Client::new(&ops.aws), token_key_id.to_owned());
    let done = hubsync_admin::connection::disconnect(&store, &cipher, &hubspot, &connection)
        .await
        .with_context(|| format!("disconnecting portal {portal} failed; try again"))?;
    writeln!(
        out,
        "portal {portal} disconnected (was {}); tokens deleted; grant revoked at HubSpot: {}; records kept",
        crate::status::state_name(done.was),
        if done.revoked_at_hubspot { "yes" } else { "no (no token to revoke, or HubSpot refused; see the log)" }
    )?;
    Ok(())
}
