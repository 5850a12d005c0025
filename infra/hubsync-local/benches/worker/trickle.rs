//! (c) 1-event deliveries at a steady trickle: how the SQS event source's
//! batching window trades HubSpot calls for freshness.
//!
//! Model: HubSpot sends one event per delivery, `rate` per second, evenly;
//! the intake queues each as one SQS message. Lambda's poller starts a
//! batch at the first message it sees and invokes the worker when the
//! batching window has passed or the batch is full (`BatchSize`); with no
//! window, each message is its own invocation (a trickle's long poll
//! returns one). The arrival times are this model's; the worker really
//! processes every batch (simulator reads, memory store), and an event's
//! freshness is its wait for the batch to close plus that batch's measured
//! processing time. Left out: HubSpot → intake → SQS latency (tens of
//! milliseconds), the poller's own delay, DynamoDB's latency (the memory
//! store), and Lambda running several pollers at once (which splits a
//! window's messages into smaller batches).
//!
//! The store holds every record first (the steady state after the initial
//! sync), so property changes carry their stored associations; the floor
//! is HubSpot's 100 ids per batch read: 10 calls per 1,000 distinct
//! records, more as a batch splits into three types.

use std::time::{Duration, Instant};

use hubspot_sim::SeedSpec;
use hubsync_store::{ConnectionStore, MemoryStore};
use record_upsert::{InboundMessage, Worker};

use crate::{connection, pick_records, warm_owners, Bench};

/// Events per grid cell (each a distinct record changed once).
const EVENTS: usize = 3_000;
/// The event source's `BatchSize` modelled (the template's).
const BATCH_SIZE: usize = 1_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Cuts messages arriving every `1 / rate` s into Lambda batches:
/// `(first index, count, close time)`.
fn batches(n: usize, rate: f64, window: Duration) -> Vec<(usize, usize, Duration)> {
    let at = |i: usize| Duration::from_secs_f64(i as f64 / rate);
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let start = at(i);
        let mut j = i + 1;
        if !window.is_zero() {
            while j < n && j - i < BATCH_SIZE && at(j) <= start + window {
                j += 1;
            }
        }
        let close = if j - i == BATCH_SIZE {
            at(j - 1)
        } else if window.is_zero() {
            start
        } else {
            start + window
        };
        out.push((i, j - i, close));
        i = j;
    }
    out
}

pub async fn trickle_curve() -> anyhow::Result<()> {
    println!("== (c) 1-event deliveries at a steady trickle: batching window vs HubSpot calls vs freshness ==");
    println!("{EVENTS} distinct records per cell (60 % contacts, 25 % companies, 15 % deals), each changed once, one event per");
    println!("delivery and SQS message; Lambda batches of up to {BATCH_SIZE} closed by the batching window (model: see the source);");
    println!("the store holds every record already (steady state). freshness = wait for the batch + its measured processing.");
    println!();
    let mut b = Bench::start(SeedSpec {
        companies: 800,
        contacts: 1_900,
        deals: 500,
        seed: Some(17),
        ..Default::default()
    })
    .await?;
    let records = pick_records(&b, 1_800, 750, 450);
    let store = MemoryStore::new();
    store.put_connection(&connection(b.portal)).await?;
    warm_owners(&b.reader(), &store, b.portal).await?;
    let worker = Worker::new(b.reader(), store);
    // The initial state: every record stored.
    let events = b.change_records(&records, 1, 0);
    let messages = b.queue_messages(&events, 100).await;
    for batch in messages.chunks(100) {
        let out = worker.process(batch.to_vec()).await;
        anyhow::ensure!(out.failed.is_empty(), "warm-up failed: {:?}", out.stats);
    }

    println!(
        "{:>9} {:>8} {:>7} {:>9} {:>7} {:>8} {:>12} {:>9} {:>9}",
        "events/s", "window", "invoc", "ev/invoc", "calls", "assoc", "calls/1k ev", "p50", "p99"
    );
    let mut round = 1;
    for rate in [10.0, 50.0, 100.0, 250.0] {
        for window_s in [0u64, 1, 2, 3, 4] {
            let window = Duration::from_secs(window_s);
            let events = b.change_records(&records, 1, round);
            round += 1;
            let messages: Vec<InboundMessage> = b.queue_messages(&events, 1).await;
            anyhow::ensure!(messages.len() == EVENTS, "{} messages", messages.len());
            let calls0 = b.sim_crm("");
            let assoc0 = b.sim_crm("/v4/associations");
            let mut fresh = Vec::with_capacity(EVENTS);
            let cut = batches(messages.len(), rate, window);
            for &(first, count, close) in &cut {
                let t = Instant::now();
                let out = worker
                    .process(messages[first..first + count].to_vec())
                    .await;
                let took = t.elapsed();
                anyhow::ensure!(out.failed.is_empty(), "worker failed: {:?}", out.stats);
                for i in first..first + count {
                    let arrived = Duration::from_secs_f64(i as f64 / rate);
                    fresh.push(close - arrived + took);
                }
            }
            fresh.sort();
            let calls = b.sim_crm("") - calls0;
            println!(
                "{:>9} {:>7}s {:>7} {:>9.1} {:>7} {:>8} {:>12.1} {:>8.2}s {:>8.2}s",
                rate,
                window_s,
                cut.len(),
                EVENTS as f64 / cut.len() as f64,
                calls,
                b.sim_crm("/v4/associations") - assoc0,
                calls as f64 * 1000.0 / EVENTS as f64,
                percentile(&fresh, 0.50).as_secs_f64(),
                percentile(&fresh, 0.99).as_secs_f64(),
            );
        }
    }
    println!();
    b.sim.shutdown().await;
    Ok(())
}
