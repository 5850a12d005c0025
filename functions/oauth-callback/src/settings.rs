//! Typed configuration, read once at start-up from the environment (and
//! the two secrets from Secrets Manager by `main.rs`).

use std::time::Duration;

use hubsync_auth::wiring::TokenSettings;
use hubsync_runtime::{ConfigError, Env, FromEnv};
use hubsync_store::StoreConfig;
use secrecy::SecretString;

/// The scopes asked for when `HUBSYNC_OAUTH_SCOPES` is not set.
pub const DEFAULT_SCOPES: [&str; 7] = [
    "crm.objects.companies.read",
    "crm.objects.contacts.read",
    "crm.objects.deals.read",
    "crm.objects.owners.read",
    "crm.schemas.companies.read",
    "crm.schemas.contacts.read",
    "crm.schemas.deals.read",
];

/// The optional scopes asked for when `HUBSYNC_OAUTH_OPTIONAL_SCOPES` is
/// not set: list scope (a mapping config's `lists`) needs the Lists API.
/// An admin may decline them; the connection records what was granted.
pub const DEFAULT_OPTIONAL_SCOPES: [&str; 1] = ["crm.lists.read"];

fn scope_list(raw: &str) -> Vec<String> {
    raw.split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// How the connect flow behaves (no HubSpot secrets here).
#[derive(Clone)]
pub struct FlowConfig {
    /// The HubSpot app's client id.
    pub client_id: String,
    /// HubSpot's consent page, `https://app.hubspot.com/oauth/authorize`.
    pub authorize_url: String,
    /// This deployment's `/oauth/callback` URL, as registered with the app.
    pub redirect_uri: String,
    /// Scopes asked for (sent space-separated).
    pub scopes: Vec<String>,
    /// Optional scopes asked for (`optional_scope`; the admin may decline).
    pub optional_scopes: Vec<String>,
    /// How long a `state` stays usable.
    pub state_ttl: Duration,
    /// The furthest ahead a signed link may expire.
    pub link_max_lifetime: Duration,
    /// Where to send the admin after a successful connect (`?portalId=`
    /// is appended); without it a success page is shown.
    pub success_url: Option<String>,
    /// The key of the signed install/disconnect links.
    pub link_secret: SecretString,
    /// Every connect defers its initial sync (`awaiting_setup`), not only
    /// those whose link says `defer=1`.
    pub defer_initial_sync: bool,
}

impl std::fmt::Debug for FlowConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowConfig")
            .field("client_id", &self.client_id)
            .field("authorize_url", &self.authorize_url)
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("optional_scopes", &self.optional_scopes)
            .field("state_ttl", &self.state_ttl)
            .field("link_max_lifetime", &self.link_max_lifetime)
            .field("success_url", &self.success_url)
            .field("defer_initial_sync", &self.defer_initial_sync)
            .finish_non_exhaustive()
    }
}

impl FlowConfig {
    /// Defaults for everything but the app's identity and the link key.
    pub fn new(
        client_id: impl Into<String>,
        authorize_url: impl Into<String>,
        redirect_uri: impl Into<String>,
        link_secret: SecretString,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            authorize_url: authorize_url.into(),
            redirect_uri: redirect_uri.into(),
            scopes: DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            optional_scopes: DEFAULT_OPTIONAL_SCOPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            state_ttl: Duration::from_secs(600),
            link_max_lifetime: Duration::from_secs(3600),
            success_url: None,
            link_secret,
            defer_initial_sync: false,
        }
    }
}

/// Everything `main.rs` reads from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub store: StoreConfig,
    /// The app's identity, its token endpoint and the tokens' KMS key
    /// (shared with the functions that refresh tokens).
    pub tokens: TokenSettings,
    pub link_secret_arn: String,
    pub authorize_url: String,
    pub scopes: Vec<String>,
    pub optional_scopes: Vec<String>,
    pub sync_jobs_queue_url: String,
    pub success_url: Option<String>,
    pub state_ttl: Duration,
    pub link_max_lifetime: Duration,
    pub defer_initial_sync: bool,
}

impl FromEnv for Settings {
    fn from_vars(env: &Env) -> Result<Self, ConfigError> {
        let scopes = env
            .optional("HUBSYNC_OAUTH_SCOPES")
            .map(|s| scope_list(&s))
            .unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect());
        // Set but empty (`""` or `none`) asks for no optional scope.
        let optional_scopes = match env.raw("HUBSYNC_OAUTH_OPTIONAL_SCOPES") {
            Some(s) if s.trim() == "none" => Vec::new(),
            Some(s) => scope_list(&s),
            None => DEFAULT_OPTIONAL_SCOPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        };
        Ok(Self {
            store: StoreConfig::from_vars(env)?,
            tokens: TokenSettings::from_vars(env)?,
            link_secret_arn: env.required("HUBSYNC_LINK_SECRET_ARN")?,
            authorize_url: env
                .optional("HUBSYNC_OAUTH_AUTHORIZE_URL")
                .unwrap_or_else(|| "https://app.hubspot.com/oauth/authorize".into()),
            scopes,
            optional_scopes,
            sync_jobs_queue_url: env.required("HUBSYNC_SYNC_JOBS_QUEUE_URL")?,
            success_url: env.optional("HUBSYNC_APP_SUCCESS_URL"),
            state_ttl: Duration::from_secs(
                env.parsed("HUBSYNC_OAUTH_STATE_TTL_SECS")?.unwrap_or(600),
            ),
            link_max_lifetime: Duration::from_secs(
                env.parsed("HUBSYNC_LINK_MAX_LIFETIME_SECS")?
                    .unwrap_or(3600),
            ),
            defer_initial_sync: env.parsed("HUBSYNC_DEFER_INITIAL_SYNC")?.unwrap_or(false),
        })
    }
}

impl Settings {
    /// The flow's configuration with the link key read at start-up.
    pub fn flow(&self, link_secret: SecretString) -> FlowConfig {
        FlowConfig {
            client_id: self.tokens.client_id.clone(),
            authorize_url: self.authorize_url.clone(),
            redirect_uri: self.tokens.redirect_uri.clone(),
            scopes: self.scopes.clone(),
            optional_scopes: self.optional_scopes.clone(),
            state_ttl: self.state_ttl,
            link_max_lifetime: self.link_max_lifetime,
            success_url: self.success_url.clone(),
            link_secret,
            defer_initial_sync: self.defer_initial_sync,
        }
    }
}
