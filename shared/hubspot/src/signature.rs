//! HubSpot webhook request signatures, as pure functions.
//!
//! App webhooks carry a v1 and a v3 signature; hubsync validates **v3**:
//!
//! ```text
//! X-HubSpot-Signature-v3 = base64(HMAC-SHA256(client_secret,
//!                                   METHOD + URI + rawBody + timestamp))
//! X-HubSpot-Request-Timestamp = epoch milliseconds
//! ```
//!
//! * The HMAC covers the **raw body bytes** exactly as received; never a
//!   re-serialised JSON value.
//! * `URI` is the full public URL HubSpot called (scheme, host, path, query)
//!   after [`decode_uri`]. Behind API Gateway the function sees another host
//!   and stage path, so callers build it from a *configured* public URL
//!   ([`public_request_uri`]), never from the `Host` header.
//! * The timestamp must lie within a tolerance window ([`Tolerance`], 5 minutes
//!   either side by default). The signature comparison is constant-time.
//!
//! v1 (`hex(SHA-256(secret + body))`) and v2
//! (`hex(SHA-256(secret + METHOD + URI + body))`) are provided for
//! completeness and for tests; v1 has no timestamp, so it is replayable and
//! must not be the only check.
//!
//! The matching `sign_*` functions exist so tests (and the simulator) can
//! produce valid requests.

use std::borrow::Cow;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the v3 signature.
pub const HEADER_SIGNATURE_V3: &str = "X-HubSpot-Signature-v3";
/// Header carrying the request timestamp (epoch milliseconds) signed by v3.
pub const HEADER_REQUEST_TIMESTAMP: &str = "X-HubSpot-Request-Timestamp";
/// Header carrying the v1 or v2 signature.
pub const HEADER_SIGNATURE: &str = "X-HubSpot-Signature";
/// Header naming the version of [`HEADER_SIGNATURE`] (`v1` or `v2`).
pub const HEADER_SIGNATURE_VERSION: &str = "X-HubSpot-Signature-Version";

/// Default maximum age of a signed request: 5 minutes.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(5 * 60);
/// Default maximum clock skew into the future: 5 minutes.
pub const DEFAULT_MAX_FUTURE: Duration = Duration::from_secs(5 * 60);

/// The accepted window around "now" for the v3 timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tolerance {
    /// Reject timestamps older than `now - max_age`.
    pub max_age: Duration,
    /// Reject timestamps later than `now + max_future`.
    pub max_future: Duration,
}

impl Default for Tolerance {
    fn default() -> Self {
        Self {
            max_age: DEFAULT_MAX_AGE,
            max_future: DEFAULT_MAX_FUTURE,
        }
    }
}

/// Why a signed request was rejected. Never contains the secret, the expected
/// signature or the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing {HEADER_REQUEST_TIMESTAMP} header")]
    MissingTimestamp,
    #[error("{HEADER_REQUEST_TIMESTAMP} is not an epoch-milliseconds integer")]
    InvalidTimestamp,
    #[error("request timestamp is {age_ms} ms old, beyond the accepted window")]
    TimestampTooOld { age_ms: u64 },
    #[error("request timestamp is {ahead_ms} ms in the future, beyond the accepted window")]
    TimestampInFuture { ahead_ms: u64 },
    #[error("missing signature header")]
    MissingSignature,
    #[error("signature header is not valid base64/hex")]
    InvalidSignatureEncoding,
    #[error("unsupported signature version")]
    UnsupportedVersion,
    #[error("signature does not match")]
    Mismatch,
}

/// The percent-escapes HubSpot decodes in the URI before signing, and only
/// these. Matching is exact (upper-case hex, as HubSpot documents them);
/// `%3a` is left alone, as is every other escape (e.g. `%20`, `%25`).
const DECODED_ESCAPES: [(&[u8; 3], u8); 12] = [
    (b"%3A", b':'),
    (b"%2F", b'/'),
    (b"%3F", b'?'),
    (b"%40", b'@'),
    (b"%21", b'!'),
    (b"%24", b'$'),
    (b"%27", b'\''),
    (b"%28", b'('),
    (b"%29", b')'),
    (b"%2A", b'*'),
    (b"%2C", b','),
    (b"%3B", b';'),
];

/// Decode the percent-escapes HubSpot decodes before computing a v3
/// signature: `%3A : %2F / %3F ? %40 @ %21 ! %24 $ %27 ' %28 ( %29 ) %2A *
/// %2C , %3B ;`. Every other escape is kept as is. Single pass; the result is
/// a fixed point (decoding twice equals decoding once).
pub fn decode_uri(uri: &str) -> Cow<'_, str> {
    if !uri.contains('%') {
        return Cow::Borrowed(uri);
    }
    let bytes = uri.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            let window = &bytes[i..i + 3];
            if let Some((_, c)) = DECODED_ESCAPES
                .iter()
                .find(|(esc, _)| esc.as_slice() == window)
            {
                out.push(*c);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    // Only ASCII sequences were replaced by ASCII bytes, so UTF-8 is preserved.
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(_) => Cow::Borrowed(uri),
    }
}

/// Build the URI HubSpot signed from the configured public webhook URL and
/// the raw query string of the incoming request (if any). The public URL is
/// configuration; only the query comes from the request, as HubSpot includes
/// it in the signed URI.
pub fn public_request_uri(public_url: &str, raw_query: Option<&str>) -> String {
    match raw_query {
        Some(q) if !q.is_empty() && !public_url.contains('?') => format!("{public_url}?{q}"),
        _ => public_url.to_owned(),
    }
}

fn v3_mac(
    secret: &SecretString,
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp: &str,
) -> HmacSha256 {
    // `new_from_slice` only fails for fixed-size-key MACs; HMAC takes any key.
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(method.as_bytes());
    mac.update(decode_uri(uri).as_bytes());
    mac.update(body);
    mac.update(timestamp.as_bytes());
    mac
}

/// Compute the v3 signature (base64) for a request. For tests and the
/// simulator; production code only verifies.
pub fn sign_v3(
    secret: &SecretString,
    method: &str,
    public_uri: &str,
    raw_body: &[u8],
    timestamp_ms: i64,
) -> String {
    let ts = timestamp_ms.to_string();
    BASE64.encode(
        v3_mac(secret, method, public_uri, raw_body, &ts)
            .finalize()
            .into_bytes(),
    )
}

/// Verify a v3 signature with the default 5-minute [`Tolerance`].
///
/// `timestamp_header` / `signature_header` are the raw header values (`None`
/// when absent); `now_ms` is the current time in epoch milliseconds, passed
/// in so the function stays pure.
#[allow(clippy::too_many_arguments)]
pub fn verify_v3(
    secret: &SecretString,
    method: &str,
    public_uri: &str,
    raw_body: &[u8],
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    now_ms: i64,
) -> Result<(), SignatureError> {
    verify_v3_with_tolerance(
        secret,
        method,
        public_uri,
        raw_body,
        timestamp_header,
        signature_header,
        now_ms,
        Tolerance::default(),
    )
}

/// [`verify_v3`] with an explicit timestamp window.
///
/// Checks, in order: timestamp present, numeric, inside the window; signature
/// present, valid base64; HMAC equal (constant time).
#[allow(clippy::too_many_arguments)]
pub fn verify_v3_with_tolerance(
    secret: &SecretString,
    method: &str,
    public_uri: &str,
    raw_body: &[u8],
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    now_ms: i64,
    tolerance: Tolerance,
) -> Result<(), SignatureError> {
    let ts_raw = timestamp_header
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::MissingTimestamp)?;
    let ts = parse_timestamp_ms(ts_raw)?;
    check_window(ts, now_ms, tolerance)?;

    let sig_raw = signature_header
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::MissingSignature)?;
    let sig = BASE64
        .decode(sig_raw)
        .map_err(|_| SignatureError::InvalidSignatureEncoding)?;

    v3_mac(secret, method, public_uri, raw_body, ts_raw)
        .verify_slice(&sig)
        .map_err(|_| SignatureError::Mismatch)
}

fn parse_timestamp_ms(raw: &str) -> Result<i64, SignatureError> {
    if raw.len() > 19 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::InvalidTimestamp);
    }
    raw.parse::<i64>()
        .map_err(|_| SignatureError::InvalidTimestamp)
}

fn check_window(ts_ms: i64, now_ms: i64, tolerance: Tolerance) -> Result<(), SignatureError> {
    let diff = i128::from(now_ms) - i128::from(ts_ms);
    let max_age = tolerance.max_age.as_millis();
    let max_future = tolerance.max_future.as_millis();
    if diff > 0 && diff.unsigned_abs() > max_age {
        return Err(SignatureError::TimestampTooOld {
            age_ms: u64::try_from(diff).unwrap_or(u64::MAX),
        });
    }
    if diff < 0 && diff.unsigned_abs() > max_future {
        return Err(SignatureError::TimestampInFuture {
            ahead_ms: u64::try_from(-diff).unwrap_or(u64::MAX),
        });
    }
    Ok(())
}

fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn verify_hex_digest(
    expected: &[u8; 32],
    signature_header: Option<&str>,
) -> Result<(), SignatureError> {
    let raw = signature_header
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::MissingSignature)?;
    let given = hex::decode(raw).map_err(|_| SignatureError::InvalidSignatureEncoding)?;
    if given.len() == expected.len() && bool::from(given.as_slice().ct_eq(expected.as_slice())) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// v1: `hex(SHA-256(client_secret + rawBody))`.
pub fn sign_v1(secret: &SecretString, raw_body: &[u8]) -> String {
    hex::encode(sha256_parts(&[secret.expose_secret().as_bytes(), raw_body]))
}

/// Verify a v1 signature (hex, case-insensitive). No timestamp: replayable.
pub fn verify_v1(
    secret: &SecretString,
    raw_body: &[u8],
    signature_header: Option<&str>,
) -> Result<(), SignatureError> {
    let expected = sha256_parts(&[secret.expose_secret().as_bytes(), raw_body]);
    verify_hex_digest(&expected, signature_header)
}

/// v2: `hex(SHA-256(client_secret + METHOD + URI + rawBody))` (workflow
/// actions and CRM cards). The URI is used as given (no escape decoding).
pub fn sign_v2(secret: &SecretString, method: &str, uri: &str, raw_body: &[u8]) -> String {
    hex::encode(sha256_parts(&[
        secret.expose_secret().as_bytes(),
        method.as_bytes(),
        uri.as_bytes(),
        raw_body,
    ]))
}

/// Verify a v2 signature (hex, case-insensitive).
pub fn verify_v2(
    secret: &SecretString,
    method: &str,
    uri: &str,
    raw_body: &[u8],
    signature_header: Option<&str>,
) -> Result<(), SignatureError> {
    let expected = sha256_parts(&[
        secret.expose_secret().as_bytes(),
        method.as_bytes(),
        uri.as_bytes(),
        raw_body,
    ]);
    verify_hex_digest(&expected, signature_header)
}

/// A v3 verifier bound to one app secret and one configured public URL, for
/// the webhook intake. `Debug` never shows the secret.
#[derive(Clone)]
pub struct WebhookVerifier {
    secret: SecretString,
    public_url: String,
    tolerance: Tolerance,
}

impl std::fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("secret", &"[REDACTED]")
            .field("public_url", &self.public_url)
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl WebhookVerifier {
    /// `public_url` is the webhook target URL configured in the HubSpot app
    /// (e.g. `https://hooks.example.com/webhooks/hubspot`).
    pub fn new(secret: SecretString, public_url: impl Into<String>) -> Self {
        Self {
            secret,
            public_url: public_url.into(),
            tolerance: Tolerance::default(),
        }
    }

    /// Override the timestamp window.
    pub fn with_tolerance(mut self, tolerance: Tolerance) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The configured public URL.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Verify one request. `raw_query` is the request's raw query string
    /// (without `?`), if any.
    pub fn verify(
        &self,
        method: &str,
        raw_query: Option<&str>,
        raw_body: &[u8],
        timestamp_header: Option<&str>,
        signature_header: Option<&str>,
        now_ms: i64,
    ) -> Result<(), SignatureError> {
        let uri = public_request_uri(&self.public_url, raw_query);
        verify_v3_with_tolerance(
            &self.secret,
            method,
            &uri,
            raw_body,
            timestamp_header,
            signature_header,
            now_ms,
            self.tolerance,
        )
    }
}

#[cfg(test)]
mod tests;
