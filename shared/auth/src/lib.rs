//! HubSpot OAuth tokens at rest and in use.
//!
//! * [`TokenCipher`] / [`KmsCipher`]: tokens are stored in the connections
//!   table only as KMS ciphertext, bound to their portal by the encryption
//!   context (a ciphertext copied to another portal's item does not
//!   decrypt).
//! * [`ConnectionTokens`]: the [`AccessTokenSource`] the functions hand to
//!   the HubSpot client: it reads the portal's connection, refuses portals
//!   that are not active, and decrypts the access token.

pub mod cipher;
pub mod tokens;

pub use cipher::{CipherError, KmsCipher, TokenCipher};
pub use tokens::ConnectionTokens;

pub use hubsync_hubspot::AccessTokenSource;
