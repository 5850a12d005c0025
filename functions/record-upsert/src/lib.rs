//! `record-upsert`: SQS batches of webhook events → current HubSpot state →
//! DynamoDB, through the version guard. An orchestration of the sync core
//! (`hubsync-sync`): it plans events into batch reads; what happens to each
//! record read is the core's decision.

pub mod follow;
pub mod group;
pub mod lambda;
pub mod lookups;
pub mod plan;
pub mod settings;
pub mod stats;
pub mod worker;

pub use hubsync_sync::{HubSpotSource, ObjectReader};
pub use stats::{BatchOutcome, BatchStats};
pub use worker::{InboundMessage, Worker};
