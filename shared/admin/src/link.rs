//! Signed, expiring links: how the application authenticates its admins'
//! `/oauth/install` requests and its own `/oauth/disconnect` calls. The
//! OAuth function verifies them; the admin API (and the application, if it
//! holds the link secret) signs them.
//!
//! A link carries `tenant`, `expires` (epoch seconds) and `signature` =
//! lowercase hex of HMAC-SHA256, keyed with the link secret the
//! application and hubsync share (Secrets Manager), over
//!
//! ```text
//! install\n{tenant}\n{expires}                 (GET /oauth/install)
//! install-deferred\n{tenant}\n{expires}        (GET /oauth/install?…&defer=1)
//! disconnect\n{tenant}\n{portal}\n{expires}    (POST /oauth/disconnect)
//! ```
//!
//! A deferred install connects the portal without starting its initial
//! sync (state `awaiting_setup`): the application saves its mapping and
//! scope first, then starts the sync.
//!
//! The purpose prefix keeps an install link from being replayed as a
//! disconnect. Tenants are 1–128 characters of `[A-Za-z0-9._-]`, so the
//! newline-separated message is unambiguous. The signature is compared in
//! constant time; a link is refused once `expires` has passed, and when it
//! expires further ahead than the configured maximum lifetime.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// Why a signed link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is missing its tenant, expiry or signature")]
    Missing,
    #[error("the tenant id is not valid")]
    BadTenant,
    #[error("the link's signature does not match")]
    BadSignature,
    #[error("the link has expired")]
    Expired,
    #[error("the link expires too far in the future")]
    TooLong,
}

/// What a link authorises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Install,
    /// An install whose initial sync waits for the application's setup.
    InstallDeferred,
    Disconnect {
        portal: u64,
    },
}

/// Whether a tenant id has the allowed shape.
pub fn valid_tenant(tenant: &str) -> bool {
    (1..=128).contains(&tenant.len())
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn message(purpose: Purpose, tenant: &str, expires: i64) -> String {
    match purpose {
        Purpose::Install => format!("install\n{tenant}\n{expires}"),
        Purpose::InstallDeferred => format!("install-deferred\n{tenant}\n{expires}"),
        Purpose::Disconnect { portal } => format!("disconnect\n{tenant}\n{portal}\n{expires}"),
    }
}

/// The MAC over a link's message. HMAC takes keys of any length, so this
/// is `None` only if the `hmac` crate broke its contract (then nothing
/// verifies).
fn mac(
    secret: &SecretString,
    purpose: Purpose,
    tenant: &str,
    expires: i64,
) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()).ok()?;
    mac.update(message(purpose, tenant, expires).as_bytes());
    Some(mac)
}

/// The signature of a link (hex).
pub fn sign(secret: &SecretString, purpose: Purpose, tenant: &str, expires: i64) -> String {
    mac(secret, purpose, tenant, expires)
        .map(|m| hex::encode(m.finalize().into_bytes()))
        .unwrap_or_default()
}

/// The query string of a signed link: `tenant=…&expires=…&signature=…`
/// (plus `portal=…` for a disconnect).
pub fn signed_query(secret: &SecretString, purpose: Purpose, tenant: &str, expires: i64) -> String {
    let signature = sign(secret, purpose, tenant, expires);
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("tenant", tenant);
    if purpose == Purpose::InstallDeferred {
        q.append_pair("defer", "1");
    }
    if let Purpose::Disconnect { portal } = purpose {
        q.append_pair("portal", &portal.to_string());
    }
    q.append_pair("expires", &expires.to_string())
        .append_pair("signature", &signature);
    q.finish()
}

/// Checks a link: signature (constant time), then expiry.
pub fn verify(
    secret: &SecretString,
    purpose: Purpose,
    tenant: Option<&str>,
    expires: Option<&str>,
    signature: Option<&str>,
    now_epoch: i64,
    max_lifetime_secs: i64,
) -> Result<String, LinkError> {
    let (Some(tenant), Some(expires), Some(signature)) = (tenant, expires, signature) else {
        return Err(LinkError::Missing);
    };
    if !valid_tenant(tenant) {
        return Err(LinkError::BadTenant);
    }
    let expires: i64 = expires
        .trim()
        .parse()
        .map_err(|_| LinkError::BadSignature)?;
    let given = hex::decode(signature.trim()).map_err(|_| LinkError::BadSignature)?;
    mac(secret, purpose, tenant, expires)
        .ok_or(LinkError::BadSignature)?
        .verify_slice(&given)
        .map_err(|_| LinkError::BadSignature)?;
    if expires < now_epoch {
        return Err(LinkError::Expired);
    }
    if expires > now_epoch.saturating_add(max_lifetime_secs) {
        return Err(LinkError::TooLong);
    }
    Ok(tenant.to_owned())
}

/// A complete signed install URL (`GET`), for the admin API, the
/// application and tests.
pub fn install_url(base_url: &str, secret: &SecretString, tenant: &str, expires: i64) -> String {
    install_url_for(base_url, secret, Purpose::Install, tenant, expires)
}

/// [`install_url`] for `Install` or `InstallDeferred`.
pub fn install_url_for(
    base_url: &str,
    secret: &SecretString,
    purpose: Purpose,
    tenant: &str,
    expires: i64,
) -> String {
    format!(
        "{}/oauth/install?{}",
        base_url.trim_end_matches('/'),
        signed_query(secret, purpose, tenant, expires)
    )
}

/// A complete signed disconnect URL (`POST`).
pub fn disconnect_url(
    base_url: &str,
    secret: &SecretString,
    tenant: &str,
    portal: u64,
    expires: i64,
) -> String {
    format!(
        "{}/oauth/disconnect?{}",
        base_url.trim_end_matches('/'),
        signed_query(secret, Purpose::Disconnect { portal }, tenant, expires)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SecretString {
        SecretString::from("link-secret".to_string())
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let sig = sign(&secret(), Purpose::Install, "acme", 1_000);
        let check = |tenant: &str, exp: &str, sig: &str, now| {
            verify(
                &secret(),
                Purpose::Install,
                Some(tenant),
                Some(exp),
                Some(sig),
                now,
                3600,
            )
        };
        assert_eq!(check("acme", "1000", &sig, 900), Ok("acme".into()));
        assert_eq!(check("acme", "1000", &sig, 1001), Err(LinkError::Expired));
        assert_eq!(
            check("acme", "1001", &sig, 900),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            check("acme2", "1000", &sig, 900),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            check("acme", "1000", "zz", 900),
            Err(LinkError::BadSignature)
        );
        assert_eq!(check("acme", "1000", &sig, -5000), Err(LinkError::TooLong));
        assert_eq!(check("a\nb", "1000", &sig, 900), Err(LinkError::BadTenant));
        assert_eq!(
            verify(
                &secret(),
                Purpose::Install,
                Some("acme"),
                None,
                Some(&sig),
                0,
                1
            ),
            Err(LinkError::Missing)
        );
    }

    #[test]
    fn a_deferred_install_is_signed_apart_and_says_so() {
        let sig = sign(&secret(), Purpose::Install, "acme", 1_000);
        let deferred = sign(&secret(), Purpose::InstallDeferred, "acme", 1_000);
        assert_ne!(sig, deferred, "defer=1 cannot be added to a plain link");
        let q = signed_query(&secret(), Purpose::InstallDeferred, "acme", 1_000);
        assert!(q.contains("defer=1"), "{q}");
        assert_eq!(
            verify(
                &secret(),
                Purpose::InstallDeferred,
                Some("acme"),
                Some("1000"),
                Some(&deferred),
                900,
                3600
            ),
            Ok("acme".into())
        );
        assert_eq!(
            verify(
                &secret(),
                Purpose::InstallDeferred,
                Some("acme"),
                Some("1000"),
                Some(&sig),
                900,
                3600
            ),
            Err(LinkError::BadSignature)
        );
    }

    #[test]
    fn an_install_signature_is_not_a_disconnect_signature() {
        let sig = sign(&secret(), Purpose::Install, "acme", 1_000);
        assert_eq!(
            verify(
                &secret(),
                Purpose::Disconnect { portal: 1 },
                Some("acme"),
                Some("1000"),
                Some(&sig),
                900,
                3600
            ),
            Err(LinkError::BadSignature)
        );
    }

    #[test]
    fn known_answer() {
        // echo -n $'install\nacme\n1700000000' | openssl dgst -sha256 -hmac link-secret
        let sig = sign(&secret(), Purpose::Install, "acme", 1_700_000_000);
        assert_eq!(
            sig,
            "8e210eeea6ceccf0ee7da2f155d7fb68db83ad1e9ba8794d1a4ecc52c083887f"
        );
    }
}
