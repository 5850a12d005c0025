//! `reconcile`: the full diff between HubSpot and DynamoDB — the nightly
//! reconciliation (02:00 UTC), the initial sync after OAuth, and re-syncs —
//! as one engine.
//!
//! * [`engine`]: the merge-join of HubSpot's id-ordered listing with the
//!   store's id-ordered scan, checkpoints, run lock, hand-over.
//! * [`source`]: the HubSpot reads ([`CrmSource`]) on the shared client.
//! * [`queue`]: the sync-jobs queue ([`JobQueue`]) on SQS or in memory.
//! * [`fanout`]: the schedule's fan-out, one job per active portal and type.
//! * [`handler`]: jobs → slices → continuations; the Lambda faces.
//!
//! Run reports and checkpoints live in the Control table
//! ([`hubsync_store::sync_state`]).

pub mod engine;
pub mod fanout;
pub mod handler;
pub mod job;
pub mod queue;
pub mod settings;
pub mod source;

pub use engine::{Engine, EngineConfig, EngineError, SliceLimit, SliceOutcome};
pub use fanout::{fan_out, FanOut, ScheduleEvent};
pub use handler::{Incoming, JobOutcome, Reconciler};
pub use job::JobMessage;
pub use queue::{JobQueue, MemoryJobQueue, SqsJobQueue};
pub use source::{CrmSource, HubSpotSource};
