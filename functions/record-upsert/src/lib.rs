//! `record-upsert`: SQS batches of webhook events → current HubSpot state →
//! DynamoDB, through the version guard.

pub mod plan;
pub mod worker;

pub use worker::{BatchOutcome, BatchStats, InboundMessage, ObjectReader, Worker};
