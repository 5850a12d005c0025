//! Encrypting tokens with KMS.

use std::future::Future;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hubsync_hubspot::PortalId;
use secrecy::{ExposeSecret, SecretString};

/// Why a token could not be encrypted or decrypted. Never carries the token.
#[derive(Debug, thiserror::Error)]
pub enum CipherError {
    #[error("KMS request failed: {0}")]
    Kms(String),
    #[error("stored ciphertext is not valid base64")]
    Encoding,
    #[error("decrypted token is not UTF-8")]
    NotUtf8,
}

/// Encrypts and decrypts tokens of one portal.
pub trait TokenCipher: Send + Sync {
    fn encrypt(
        &self,
        portal: PortalId,
        token: &SecretString,
    ) -> impl Future<Output = Result<String, CipherError>> + Send;

    fn decrypt(
        &self,
        portal: PortalId,
        ciphertext: &str,
    ) -> impl Future<Output = Result<SecretString, CipherError>> + Send;
}

/// KMS symmetric encryption with the portal in the encryption context.
#[derive(Clone, Debug)]
pub struct KmsCipher {
    client: aws_sdk_kms::Client,
    key_id: String,
}

impl KmsCipher {
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
        }
    }
}

const CONTEXT_PORTAL: &str = "hubsync:portal";
const CONTEXT_PURPOSE: &str = "hubsync:purpose";
const PURPOSE: &str = "hubspot-oauth-token";

impl TokenCipher for KmsCipher {
    async fn encrypt(&self, portal: PortalId, token: &SecretString) -> Result<String, CipherError> {
        let out = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(aws_sdk_kms::primitives::Blob::new(
                token.expose_secret().as_bytes(),
            ))
            .encryption_context(CONTEXT_PORTAL, portal.to_string())
            .encryption_context(CONTEXT_PURPOSE, PURPOSE)
            .send()
            .await
            .map_err(|e| {
                CipherError::Kms(aws_sdk_kms::error::DisplayErrorContext(e).to_string())
            })?;
        let blob = out
            .ciphertext_blob()
            .ok_or_else(|| CipherError::Kms("KMS returned no ciphertext".into()))?;
        Ok(BASE64.encode(blob.as_ref()))
    }

    async fn decrypt(
        &self,
        portal: PortalId,
        ciphertext: &str,
    ) -> Result<SecretString, CipherError> {
        let bytes = BASE64
            .decode(ciphertext)
            .map_err(|_| CipherError::Encoding)?;
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(bytes))
            .encryption_context(CONTEXT_PORTAL, portal.to_string())
            .encryption_context(CONTEXT_PURPOSE, PURPOSE)
            .send()
            .await
            .map_err(|e| {
                CipherError::Kms(aws_sdk_kms::error::DisplayErrorContext(e).to_string())
            })?;
        let plain = out
            .plaintext()
            .ok_or_else(|| CipherError::Kms("KMS returned no plaintext".into()))?;
        let text = String::from_utf8(plain.as_ref().to_vec()).map_err(|_| CipherError::NotUtf8)?;
        Ok(SecretString::from(text))
    }
}
