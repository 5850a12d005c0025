//! HubSpot OAuth tokens at rest and in use.
//!
//! * [`TokenCipher`] / [`KmsCipher`]: tokens are stored in the connections
//!   table only as KMS ciphertext, bound to their portal by the encryption
//!   context (a ciphertext copied to another portal's item does not
//!   decrypt).
//! * [`ConnectionTokens`]: the [`AccessTokenSource`] the functions hand to
//!   the HubSpot client: it reads the portal's connection, refuses portals
//!   that are not active, decrypts the access token, and with a
//!   [`TokenRefresher`] (the OAuth client) refreshes it ahead of expiry and
//!   on a 401, once for all concurrent callers (lease + compare-and-swap),
//!   marking the portal `needs_reauth` on `invalid_grant`.

pub mod cipher;
pub mod tokens;
pub mod wiring;

pub use cipher::{CipherError, KmsCipher, TokenCipher};
pub use tokens::{expires_at, ConnectionTokens, NoRefresh, RefreshPolicy, TokenRefresher};

pub use hubsync_hubspot::AccessTokenSource;
