//! `record-upsert`: SQS batches of webhook events → current HubSpot state →
//! DynamoDB, through the version guard.

pub mod lambda;
pub mod plan;
pub mod reader;
pub mod settings;
pub mod worker;

pub use reader::HubSpotReader;
pub use worker::{BatchOutcome, BatchStats, InboundMessage, ObjectReader, Worker};
