//! OAuth: authorization codes, token grants, refresh, introspection, revocation.

use super::*;

impl SimState {
    // ---------------------------------------------------------------- tokens

    pub(crate) fn mint_tokens(
        &self,
        portal: u64,
        scopes: Vec<String>,
        refresh: Option<String>,
    ) -> TokenSet {
        let (lifetime, rotate) = {
            let c = self.config_read();
            (c.oauth.token_lifetime_secs, c.oauth.rotate_refresh_tokens)
        };
        let (access, new_refresh) = {
            let mut rng = self.rng_lock();
            let a = format!("CJ{}", random_hex(&mut rng, 40));
            let r = format!(
                "na1-{}-{}-{}-{}-{}",
                random_hex(&mut rng, 2),
                random_hex(&mut rng, 2),
                random_hex(&mut rng, 2),
                random_hex(&mut rng, 2),
                random_hex(&mut rng, 6)
            );
            (a, r)
        };
        let now = self.now_ms();
        let user_id = 7_000_000 + (portal % 1_000_000);
        let mut t = self.tokens_lock();
        let refresh_token = match refresh {
            Some(old) if !rotate => old,
            Some(old) => {
                t.refresh.remove(&old);
                new_refresh
            }
            None => new_refresh,
        };
        t.refresh
            .entry(refresh_token.clone())
            .or_insert(RefreshTok {
                portal,
                scopes: scopes.clone(),
                user_id,
            });
        t.access.insert(
            access.clone(),
            AccessTok {
                portal,
                expires_ms: now + lifetime as i64 * 1000,
                scopes,
                user_id,
            },
        );
        TokenSet {
            access_token: access,
            refresh_token,
            expires_in: lifetime,
            token_type: "bearer".into(),
            hub_id: portal,
        }
    }

    /// Installs the app on the portal and returns fresh tokens (no browser, no code).
    /// Tokens for `portal` with exactly `scopes` (e.g. without
    /// `crm.lists.read`, to see a call refused for a missing scope).
    pub fn issue_token_with_scopes(
        &self,
        portal: u64,
        scopes: Vec<String>,
    ) -> Result<TokenSet, SimError> {
        self.portal(portal)?;
        Ok(self.mint_tokens(portal, scopes, None))
    }

    pub fn issue_token(&self, portal: u64) -> Result<TokenSet, SimError> {
        self.install(portal)?;
        let scopes = self.config_read().oauth.default_scopes.clone();
        Ok(self.mint_tokens(portal, scopes, None))
    }

    /// A client-credentials token with `scopes`; (token, lifetime secs).
    pub(crate) fn mint_app_token(&self, scopes: Vec<String>) -> (String, u64) {
        let lifetime = self.config_read().oauth.token_lifetime_secs;
        let token = format!("CC{}", random_hex(&mut self.rng_lock(), 40));
        let expires_ms = self.now_ms() + lifetime as i64 * 1000;
        self.tokens_lock()
            .app
            .insert(token.clone(), AppTok { expires_ms, scopes });
        (token, lifetime)
    }

    /// The scopes of a live client-credentials token (`Err`: why not).
    pub(crate) fn check_app_token(&self, token: &str) -> Result<Vec<String>, &'static str> {
        let now = self.now_ms();
        match self.tokens_lock().app.get(token) {
            Some(a) if a.expires_ms > now => Ok(a.scopes.clone()),
            Some(_) => Err("The OAuth token used to make this call expired"),
            None => Err("The access token is not a client credentials token of this app"),
        }
    }

    pub(crate) fn check_access_token(&self, token: &str) -> TokenCheck {
        let now = self.now_ms();
        let t = self.tokens_lock();
        match t.access.get(token) {
            Some(a) if a.expires_ms > now => TokenCheck::Valid {
                portal: a.portal,
                scopes: a.scopes.clone(),
            },
            Some(a) => TokenCheck::Expired {
                ago_ms: now - a.expires_ms,
            },
            None => TokenCheck::Invalid,
        }
    }

    /// Revokes a refresh token (and nothing else).
    pub fn revoke_refresh_token(&self, token: &str) -> bool {
        self.tokens_lock().refresh.remove(token).is_some()
    }
}
