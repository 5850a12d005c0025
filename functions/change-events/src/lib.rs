//! `change-events`: the application's change feed. DynamoDB streams of the
//! Records table and of the Control table's connections and run reports
//! feed this function; it publishes `record.changed`, `sync.progress`,
//! `sync.completed`, `sync.failed` and `connection.*` events
//! (`docs/EVENTS.md`) on the stack's EventBridge bus.
//!
//! Why a stream: an event follows from every write the table accepts —
//! whichever function made it, and even when that function crashed right
//! after — and the writers pay nothing for it (no extra call on the
//! worker's path). The stream keeps changes 24 hours and hands a failed
//! batch over again from the first unpublished change.
//!
//! - [`image`]: a stream change, from Lambda's event or the local runner;
//! - [`classify`]: change → event (pure);
//! - [`events`]: the event schemas;
//! - [`publisher`]: batching, retries, partial failures.
#![forbid(unsafe_code)]

pub mod classify;
pub mod events;
pub mod image;
pub mod publisher;
pub mod settings;

pub use image::{ChangeKind, Image, StreamChange, Table};
pub use publisher::{EventBridgeSink, EventSink, MemorySink, Published, Publisher};
pub use settings::Settings;
