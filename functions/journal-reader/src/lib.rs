//! `journal-reader`: HubSpot's Webhooks Journal → the events queue, on a
//! schedule. HubSpot drops a small share of webhooks; the journal keeps
//! three days of the app's subscribed events, so every pass turns the
//! files written since the last one into the webhook events the intake
//! would have queued. The worker coalesces them with the webhooks that did
//! arrive (a duplicate costs a batch read at most), and the nightly
//! reconciliation becomes a safety net.
//!
//! * [`convert`]: journal entries → per-portal webhook events, uninstalls.
//! * [`subscriptions`]: each portal's journal subscriptions follow its
//!   connection and mapping config (made at the start of every pass when
//!   something changed).
//! * [`reader`]: one pass — cursor, files, queue, cursor (in that order).
//! * [`relinks`]: then the records that named a deleted, merged-away or
//!   purged record are queued for a fresh read of their associations.
//! * [`settings`]: configuration from the environment.
//! * [`metrics`]: the pass's EMF line (lag, entries, errors).

pub mod convert;
pub mod metrics;
pub mod reader;
pub mod relinks;
pub mod settings;
pub mod subscriptions;

pub use convert::{to_work, Work, JOURNAL_CHANGE_SOURCE};
pub use reader::{cursor_key, JournalReader, ReadReport, ReaderError};
pub use settings::Settings;
