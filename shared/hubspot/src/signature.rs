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
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    const URL: &str = "https://www.example.com/webhook_uri";
    const BODY: &[u8] = b"{'example_field':'example_value'}";
    const TS: i64 = 1_693_657_560_000;
    const V3: &str = "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y=";
    const V1: &str = "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750";
    const V2: &str = "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383";

    fn secret() -> SecretString {
        SecretString::from(SECRET)
    }

    fn verify(
        body: &[u8],
        ts: Option<&str>,
        sig: Option<&str>,
        now: i64,
    ) -> Result<(), SignatureError> {
        verify_v3(&secret(), "POST", URL, body, ts, sig, now)
    }

    #[test]
    fn v3_known_answer_vector_signs_and_verifies() {
        assert_eq!(sign_v3(&secret(), "POST", URL, BODY, TS), V3);
        assert_eq!(
            verify(BODY, Some("1693657560000"), Some(V3), TS + 1_000),
            Ok(())
        );
    }

    #[test]
    fn v1_known_answer_vector_signs_and_verifies() {
        assert_eq!(sign_v1(&secret(), BODY), V1);
        assert_eq!(verify_v1(&secret(), BODY, Some(V1)), Ok(()));
        assert_eq!(verify_v1(&secret(), BODY, Some(&V1.to_uppercase())), Ok(()));
        assert_eq!(
            verify_v1(&secret(), b"{}", Some(V1)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_v1(&secret(), BODY, None),
            Err(SignatureError::MissingSignature)
        );
        assert_eq!(
            verify_v1(&secret(), BODY, Some("zz")),
            Err(SignatureError::InvalidSignatureEncoding)
        );
        assert_eq!(
            verify_v1(&secret(), BODY, Some("abcd")),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn v2_known_answer_vector_signs_and_verifies() {
        assert_eq!(sign_v2(&secret(), "POST", URL, BODY), V2);
        assert_eq!(verify_v2(&secret(), "POST", URL, BODY, Some(V2)), Ok(()));
        assert_eq!(
            verify_v2(&secret(), "GET", URL, BODY, Some(V2)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn tampered_body_is_rejected() {
        let body = b"{'example_field':'example_valuf'}";
        assert_eq!(
            verify(body, Some("1693657560000"), Some(V3), TS),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn reserialised_body_is_rejected() {
        // Same JSON value, different bytes: the raw bytes are what is signed.
        let body = br#"{"example_field":"example_value"}"#;
        let sig = sign_v3(&secret(), "POST", URL, body, TS);
        let spaced = br#"{"example_field": "example_value"}"#;
        assert_eq!(
            verify(spaced, Some("1693657560000"), Some(&sig), TS),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn wrong_secret_is_rejected() {
        let other = SecretString::from("zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz");
        assert_eq!(
            verify_v3(
                &other,
                "POST",
                URL,
                BODY,
                Some("1693657560000"),
                Some(V3),
                TS
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn wrong_method_or_uri_is_rejected() {
        let ts = Some("1693657560000");
        assert_eq!(
            verify_v3(&secret(), "PUT", URL, BODY, ts, Some(V3), TS),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_v3(
                &secret(),
                "POST",
                "https://www.example.com/other",
                BODY,
                ts,
                Some(V3),
                TS
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn stale_timestamp_is_rejected() {
        let now = TS + 5 * 60 * 1000 + 1;
        assert_eq!(
            verify(BODY, Some("1693657560000"), Some(V3), now),
            Err(SignatureError::TimestampTooOld { age_ms: 300_001 })
        );
        // Exactly at the edge is still accepted.
        assert_eq!(
            verify(BODY, Some("1693657560000"), Some(V3), TS + 300_000),
            Ok(())
        );
    }

    #[test]
    fn future_timestamp_is_rejected() {
        let now = TS - 5 * 60 * 1000 - 1;
        assert_eq!(
            verify(BODY, Some("1693657560000"), Some(V3), now),
            Err(SignatureError::TimestampInFuture { ahead_ms: 300_001 })
        );
        assert_eq!(
            verify(BODY, Some("1693657560000"), Some(V3), TS - 300_000),
            Ok(())
        );
    }

    #[test]
    fn tolerance_is_configurable() {
        let tight = Tolerance {
            max_age: Duration::from_secs(10),
            max_future: Duration::from_secs(1),
        };
        let check = |now| {
            verify_v3_with_tolerance(
                &secret(),
                "POST",
                URL,
                BODY,
                Some("1693657560000"),
                Some(V3),
                now,
                tight,
            )
        };
        assert_eq!(check(TS + 10_000), Ok(()));
        assert!(matches!(
            check(TS + 10_001),
            Err(SignatureError::TimestampTooOld { .. })
        ));
        assert!(matches!(
            check(TS - 1_001),
            Err(SignatureError::TimestampInFuture { .. })
        ));
    }

    #[test]
    fn stale_timestamp_is_rejected_before_the_signature_is_looked_at() {
        assert!(matches!(
            verify(BODY, Some("1"), Some("not base64!"), TS),
            Err(SignatureError::TimestampTooOld { .. })
        ));
    }

    #[test]
    fn missing_headers_are_rejected() {
        assert_eq!(
            verify(BODY, None, Some(V3), TS),
            Err(SignatureError::MissingTimestamp)
        );
        assert_eq!(
            verify(BODY, Some(""), Some(V3), TS),
            Err(SignatureError::MissingTimestamp)
        );
        assert_eq!(
            verify(BODY, Some("1693657560000"), None, TS),
            Err(SignatureError::MissingSignature)
        );
        assert_eq!(
            verify(BODY, Some("1693657560000"), Some("  "), TS),
            Err(SignatureError::MissingSignature)
        );
    }

    #[test]
    fn non_numeric_timestamp_is_rejected() {
        for ts in [
            "abc",
            "1693657560000.0",
            "-1693657560000",
            "1e12",
            "99999999999999999999999",
            "+1",
        ] {
            assert_eq!(
                verify(BODY, Some(ts), Some(V3), TS),
                Err(SignatureError::InvalidTimestamp),
                "{ts}"
            );
        }
    }

    #[test]
    fn timestamp_in_seconds_is_rejected_as_stale() {
        assert!(matches!(
            verify(BODY, Some("1693657560"), Some(V3), TS),
            Err(SignatureError::TimestampTooOld { .. })
        ));
    }

    #[test]
    fn bad_base64_signature_is_rejected() {
        assert_eq!(
            verify(BODY, Some("1693657560000"), Some("K36daw%%%"), TS),
            Err(SignatureError::InvalidSignatureEncoding)
        );
        // Valid base64 of the wrong length is a mismatch.
        assert_eq!(
            verify(BODY, Some("1693657560000"), Some("AAAA"), TS),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn uri_decoding_handles_exactly_the_documented_escapes() {
        assert_eq!(
            decode_uri("https://x.test/a%3Ab%2Fc%3Fd%40e%21f%24g%27h%28i%29j%2Ak%2Cl%3Bm"),
            "https://x.test/a:b/c?d@e!f$g'h(i)j*k,l;m"
        );
        // Other escapes are kept.
        assert_eq!(
            decode_uri("https://x.test/a%20b%25c%3D%26"),
            "https://x.test/a%20b%25c%3D%26"
        );
        // Lower-case hex is not in HubSpot's table.
        assert_eq!(decode_uri("https://x.test/a%3ab"), "https://x.test/a%3ab");
        // Not double-decoded: %253A is "%25" + "3A".
        assert_eq!(decode_uri("https://x.test/%253A"), "https://x.test/%253A");
        // Truncated escapes and non-ASCII survive.
        assert_eq!(decode_uri("https://x.test/é%3"), "https://x.test/é%3");
        assert_eq!(decode_uri("%"), "%");
        assert!(matches!(
            decode_uri("https://x.test/plain"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn encoded_uri_verifies_against_decoded_signature() {
        let encoded = "https://www.example.com/webhook_uri?tenant%3Aid=a%2Cb";
        let decoded = "https://www.example.com/webhook_uri?tenant:id=a,b";
        let sig = sign_v3(&secret(), "POST", decoded, BODY, TS);
        assert_eq!(sign_v3(&secret(), "POST", encoded, BODY, TS), sig);
        assert_eq!(
            verify_v3(
                &secret(),
                "POST",
                encoded,
                BODY,
                Some("1693657560000"),
                Some(&sig),
                TS
            ),
            Ok(())
        );
    }

    #[test]
    fn verifier_uses_configured_url_and_request_query() {
        let v = WebhookVerifier::new(secret(), URL);
        assert_eq!(
            v.verify("POST", None, BODY, Some("1693657560000"), Some(V3), TS),
            Ok(())
        );
        assert_eq!(
            v.verify("POST", Some(""), BODY, Some("1693657560000"), Some(V3), TS),
            Ok(())
        );
        let sig = sign_v3(&secret(), "POST", &format!("{URL}?a=1"), BODY, TS);
        assert_eq!(
            v.verify(
                "POST",
                Some("a=1"),
                BODY,
                Some("1693657560000"),
                Some(&sig),
                TS
            ),
            Ok(())
        );
        assert_eq!(
            v.verify("POST", None, BODY, Some("1693657560000"), Some(&sig), TS),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn debug_output_redacts_the_secret() {
        let v = WebhookVerifier::new(secret(), URL);
        let dbg = format!("{v:?}");
        assert!(!dbg.contains("yyyy"), "{dbg}");
        assert!(dbg.contains("REDACTED"));
    }

    #[test]
    fn errors_never_echo_inputs() {
        let e = verify(BODY, Some("1693657560000"), Some("AAAA"), TS).unwrap_err();
        let msg = e.to_string();
        assert!(!msg.contains("AAAA") && !msg.contains(SECRET));
    }

    proptest! {
        #[test]
        fn sign_then_verify_round_trips(
            body in proptest::collection::vec(any::<u8>(), 0..512),
            ts in 0i64..4_000_000_000_000,
            skew in -300_000i64..=300_000,
            path in "[a-zA-Z0-9/_%:?=&-]{0,40}",
            secret in "[ -~]{1,64}",
        ) {
            let secret = SecretString::from(secret);
            let uri = format!("https://h.test/{path}");
            let sig = sign_v3(&secret, "POST", &uri, &body, ts);
            let ts_s = ts.to_string();
            prop_assert_eq!(
                verify_v3(&secret, "POST", &uri, &body, Some(&ts_s), Some(&sig), ts + skew),
                Ok(())
            );
        }

        #[test]
        fn any_single_byte_change_fails(
            body in proptest::collection::vec(any::<u8>(), 1..256),
            idx in any::<proptest::sample::Index>(),
            delta in 1u8..=255,
        ) {
            let s = secret();
            let sig = sign_v3(&s, "POST", URL, &body, TS);
            let mut tampered = body.clone();
            let i = idx.index(tampered.len());
            tampered[i] = tampered[i].wrapping_add(delta);
            prop_assert_eq!(
                verify_v3(&s, "POST", URL, &tampered, Some("1693657560000"), Some(&sig), TS),
                Err(SignatureError::Mismatch)
            );
        }

        #[test]
        fn decode_uri_is_a_fixed_point(s in "[a-z%0-9A-F:/?]{0,40}") {
            let once = decode_uri(&s).into_owned();
            prop_assert_eq!(decode_uri(&once).into_owned(), once);
        }

        #[test]
        fn verify_never_panics_on_arbitrary_headers(
            ts in proptest::option::of(any::<String>()),
            sig in proptest::option::of(any::<String>()),
            now in any::<i64>(),
        ) {
            let _ = verify_v3(&secret(), "POST", URL, BODY, ts.as_deref(), sig.as_deref(), now);
            let _ = verify_v1(&secret(), BODY, sig.as_deref());
        }
    }
}
