//! The journal's batch reads: up to [`MAX_BATCH`] file pointers per call —
//! the earliest files, the newest, those after an offset, or the files at
//! given offsets. HubSpot answers with its batch envelope (`status`,
//! `results`, timestamps; for `batch/read` also `errors` / `numErrors`,
//! with a 207 when some offsets are not retained). One call instead of one
//! per file: a reader catching up on many files makes a fraction of the
//! calls (the journal's own limits are undocumented).

use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::{Auth, Journal, JournalClient, JournalError, JournalPointer, WirePointer};

/// HubSpot's bound on a batch (1 to 100 entries).
pub const MAX_BATCH: usize = 100;

/// What a `batch/read` of offsets found.
#[derive(Debug, Default)]
pub struct OffsetsRead {
    /// Pointers to the files at the offsets still retained.
    pub found: Vec<JournalPointer>,
    /// Offsets HubSpot no longer has (expired or unknown).
    pub missing: Vec<String>,
}

#[derive(Deserialize)]
struct WireBatch {
    #[serde(default)]
    results: Vec<WirePointer>,
}

impl JournalClient {
    /// Up to `count` pointers from the oldest retained file on, oldest
    /// first (`count` is kept within 1–[`MAX_BATCH`]); empty when the
    /// journal is.
    pub async fn earliest_batch(
        &self,
        journal: Journal,
        count: usize,
    ) -> Result<Vec<JournalPointer>, JournalError> {
        let tail = format!("batch/earliest/{}", bounded(count));
        self.batch(&Self::journal_path(journal, &tail), "batch earliest")
            .await
    }

    /// Up to `count` of the newest files, oldest first.
    pub async fn latest_batch(
        &self,
        journal: Journal,
        count: usize,
    ) -> Result<Vec<JournalPointer>, JournalError> {
        let tail = format!("batch/latest/{}", bounded(count));
        self.batch(&Self::journal_path(journal, &tail), "batch latest")
            .await
    }

    /// Up to `count` pointers to the files after `offset`, oldest first;
    /// empty when there is none yet. An offset past retention is
    /// [`JournalError::OffsetExpired`], as for [`JournalClient::next`].
    pub async fn next_batch(
        &self,
        journal: Journal,
        offset: &str,
        count: usize,
    ) -> Result<Vec<JournalPointer>, JournalError> {
        let offset =
            percent_encoding::utf8_percent_encode(offset, percent_encoding::NON_ALPHANUMERIC);
        let tail = format!("batch/{offset}/next/{}", bounded(count));
        match self
            .batch(&Self::journal_path(journal, &tail), "batch next")
            .await
        {
            Err(JournalError::Rejected { status: 404, .. }) => Err(JournalError::OffsetExpired),
            other => other,
        }
    }

    /// Fresh pointers to the files at `offsets` (at most [`MAX_BATCH`];
    /// more is refused before any call), and the offsets no longer kept.
    pub async fn read_offsets(
        &self,
        journal: Journal,
        offsets: &[String],
    ) -> Result<OffsetsRead, JournalError> {
        if offsets.is_empty() {
            return Ok(OffsetsRead::default());
        }
        if offsets.len() > MAX_BATCH {
            return Err(JournalError::Rejected {
                status: 400,
                category: "VALIDATION_ERROR".into(),
                message: format!(
                    "{} offsets in one batch read (at most {MAX_BATCH})",
                    offsets.len()
                ),
            });
        }
        let url = format!(
            "{}{}",
            self.base_url,
            Self::journal_path(journal, "batch/read")
        );
        let body = serde_json::to_vec(&serde_json::json!({ "inputs": offsets }))
            .map_err(|_| JournalError::Decode { what: "batch read" })?;
        let (_, bytes) = self
            .send("batch read", Method::POST, &url, Some(body), Auth::AppToken)
            .await?;
        let found = decode(&bytes, "batch read")?;
        // Whatever shape HubSpot gives its errors, what did not come back
        // is missing.
        let missing = offsets
            .iter()
            .filter(|o| !found.iter().any(|p| &p.current_offset == *o))
            .cloned()
            .collect();
        Ok(OffsetsRead { found, missing })
    }

    async fn batch(
        &self,
        path: &str,
        what: &'static str,
    ) -> Result<Vec<JournalPointer>, JournalError> {
        let url = format!("{}{path}", self.base_url);
        let (status, bytes) = self
            .send(what, Method::GET, &url, None, Auth::AppToken)
            .await?;
        if status == StatusCode::NO_CONTENT {
            return Ok(Vec::new());
        }
        decode(&bytes, what)
    }
}

fn bounded(count: usize) -> usize {
    count.clamp(1, MAX_BATCH)
}

fn decode(bytes: &[u8], what: &'static str) -> Result<Vec<JournalPointer>, JournalError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let wire: WireBatch =
        serde_json::from_slice(bytes).map_err(|_| JournalError::Decode { what })?;
    wire.results
        .into_iter()
        .map(|p| p.into_pointer(what))
        .collect()
}
