//! `reconcile`: the full diff between HubSpot and DynamoDB — the nightly
//! reconciliation (02:00 UTC), the initial sync after OAuth, and re-syncs —
//! as one engine.
//!
//! * [`engine`]: the merge-join of HubSpot's id-ordered listing with the
//!   store's id-ordered scan (`engine/diff.rs`), checkpoints, run lock,
//!   hand-over (`engine/run.rs`). The mapping context and what happens to
//!   each record are the sync core's (`hubsync-sync`), as for the worker.
//! * [`fanout`]: the schedule's fan-out, one job per active portal and type.
//! * [`handler`]: jobs → slices → continuations; the Lambda faces.
//!
//! Jobs arrive as `hubsync_messages::JobMessage`s and are queued through
//! its `JobQueue`. Run reports and checkpoints live in the Control table
//! ([`hubsync_store::sync_state`]).

pub mod engine;
pub mod fanout;
pub mod handler;
pub mod settings;

pub use engine::{Engine, EngineConfig, EngineError, SliceLimit, SliceOutcome};
pub use fanout::{fan_out, FanOut, ScheduleEvent};
pub use handler::{Incoming, JobOutcome, Reconciler};
/// The sync-jobs queue and its message (the contract with the OAuth
/// callback, ops and the application, in `hubsync-messages`).
pub use hubsync_messages::{JobMessage, JobQueue, MemoryJobQueue, QueueError, SqsJobQueue};
pub use hubsync_sync::{CrmSource, HubSpotSource};
