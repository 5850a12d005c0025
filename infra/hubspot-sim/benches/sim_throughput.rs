//! Simulator throughput and memory (not a test).
//!
//! `cargo bench -p hubspot-sim --bench sim_throughput`
//! (`HUBSPOT_SIM_BENCH_RECORDS=100000` for a quicker run; default 1,000,000).
//!
//! Prints: RSS before/after seeding 1M records and seeding time, then criterion
//! figures for one list page (limit 100) and one batch read (100 ids) over
//! HTTP on loopback (rate limit off), then a concurrent-clients section.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use hubspot_sim::{ObjectType, RateLimitConfig, SeedSpec, SimConfig, Simulator};
use serde_json::{json, Value};

const PORTAL: u64 = 1_000_001;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let total: usize = std::env::var("HUBSPOT_SIM_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sim = rt
        .block_on(Simulator::start(SimConfig {
            rate_limit: RateLimitConfig {
                enabled: false,
                ..Default::default()
            },
            ..Default::default()
        }))
        .expect("sim");
    let st = sim.state().clone();

    let rss0 = rss_kib();
    let spec = SeedSpec {
        companies: total / 5,
        contacts: total * 3 / 5,
        deals: total - total / 5 - total * 3 / 5,
        seed: Some(1),
        ..Default::default()
    };
    let t0 = Instant::now();
    st.seed_portal(PORTAL, spec).expect("seed");
    let seed_time = t0.elapsed();
    let rss1 = rss_kib();
    println!("== hubspot-sim memory ==");
    println!(
        "records seeded: {total} ({} companies, {} contacts, {} deals) in {:.2?} ({:.0} records/s)",
        spec.companies,
        spec.contacts,
        spec.deals,
        seed_time,
        total as f64 / seed_time.as_secs_f64()
    );
    println!(
        "RSS before seeding: {:.1} MiB, after: {:.1} MiB, delta: {:.1} MiB ({:.0} bytes/record incl. associations)",
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
        (rss1 - rss0.min(rss1)) as f64 / 1024.0,
        (rss1 - rss0.min(rss1)) as f64 * 1024.0 / total as f64
    );

    let token = st.issue_token(PORTAL).expect("token").access_token;
    let base = sim.base_url();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let company_ids = st
        .object_ids(PORTAL, ObjectType::Companies, false)
        .expect("ids");
    let contact_ids = st
        .object_ids(PORTAL, ObjectType::Contacts, false)
        .expect("ids");

    let list_url = {
        let base = base.clone();
        let ids = company_ids.clone();
        move |i: u64| {
            let after = ids[(i as usize * 7919) % ids.len().saturating_sub(100).max(1)];
            format!("{base}/crm/v3/objects/companies?limit=100&after={after}&properties=name,domain,industry,annualrevenue,hubspot_owner_id")
        }
    };
    let batch_body = {
        let ids = contact_ids.clone();
        move |i: u64| {
            let inputs: Vec<Value> = (0..100u64)
                .map(|k| json!({"id": ids[((i * 100 + k) as usize * 104_729) % ids.len()].to_string()}))
                .collect();
            json!({"inputs": inputs, "properties": ["email", "firstname", "lastname", "lifecyclestage", "hs_lead_status"]})
        }
    };

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(6));
    {
        let mut g = c.benchmark_group("hubspot_sim_http");
        g.throughput(Throughput::Elements(100));
        let mut i = 0u64;
        g.bench_function("list_page_limit_100", |b| {
            b.iter(|| {
                i += 1;
                rt.block_on(async {
                    let r = client
                        .get(list_url(i))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .expect("send");
                    assert!(r.status().is_success());
                    r.bytes().await.expect("body")
                })
            })
        });
        let mut j = 0u64;
        g.bench_function("batch_read_100_ids", |b| {
            b.iter(|| {
                j += 1;
                let body = batch_body(j);
                rt.block_on(async {
                    let r = client
                        .post(format!("{base}/crm/v3/objects/contacts/batch/read"))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await
                        .expect("send");
                    assert!(r.status().is_success());
                    r.bytes().await.expect("body")
                })
            })
        });
        g.finish();
    }
    c.final_summary();

    // Concurrent clients (closer to many sync workers hitting one sim).
    println!("== concurrent clients (4 tasks, 4 s each) ==");
    for kind in ["list_page_limit_100", "batch_read_100_ids"] {
        let done = Arc::new(AtomicU64::new(0));
        let stop = Instant::now() + Duration::from_secs(4);
        rt.block_on(async {
            let mut tasks = Vec::new();
            for t in 0..4u64 {
                let client = client.clone();
                let token = token.clone();
                let done = done.clone();
                let base = base.clone();
                let list_url = list_url.clone();
                let batch_body = batch_body.clone();
                tasks.push(tokio::spawn(async move {
                    let mut i = t * 1_000_000;
                    while Instant::now() < stop {
                        i += 1;
                        let r = if kind == "list_page_limit_100" {
                            client.get(list_url(i)).bearer_auth(&token).send().await
                        } else {
                            client
                                .post(format!("{base}/crm/v3/objects/contacts/batch/read"))
                                .bearer_auth(&token)
                                .json(&batch_body(i))
                                .send()
                                .await
                        };
                        if let Ok(r) = r {
                            if r.status().is_success() && r.bytes().await.is_ok() {
                                done.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        });
        let n = done.load(Ordering::Relaxed);
        println!(
            "{kind}: {:.0} requests/s, {:.0} records/s",
            n as f64 / 4.0,
            n as f64 * 100.0 / 4.0
        );
    }
    println!("RSS at end: {:.1} MiB", rss_kib() as f64 / 1024.0);
    rt.block_on(sim.shutdown());
}
