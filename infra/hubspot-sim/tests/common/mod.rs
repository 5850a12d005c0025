//! Shared helpers for the simulator's integration tests.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hubspot_sim::{SimConfig, Simulator};

pub const PORTAL: u64 = 1_000_001;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A simulator with two installed portals and rate limits on.
pub async fn start(f: impl FnOnce(&mut SimConfig)) -> Simulator {
    let mut cfg = SimConfig {
        portal_count: 2,
        ..Default::default()
    };
    f(&mut cfg);
    Simulator::start(cfg).await.expect("sim starts")
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes.
pub async fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        serde_json::from_slice(&self.body).expect("JSON array")
    }
}

/// How the receiver answers: the first `fail_first` requests get `fail_status`
/// (or are answered after `slow_first_ms` when that is set), the rest 204.
#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    pub fail_first: usize,
    pub fail_status: u16,
    pub slow_first_ms: u64,
}

pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(b: Behaviour) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let g2 = got.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let got = g2.clone();
                let b = b.clone();
                async move {
                    let n = {
                        let mut g = got.lock().unwrap();
                        g.push(Received { headers, body });
                        g.len()
                    };
                    if n <= b.fail_first {
                        if b.slow_first_ms > 0 {
                            tokio::time::sleep(Duration::from_millis(b.slow_first_ms)).await;
                            return StatusCode::NO_CONTENT;
                        }
                        return StatusCode::from_u16(b.fail_status).unwrap();
                    }
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        Receiver { url, got, task }
    }

    pub fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    pub fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
