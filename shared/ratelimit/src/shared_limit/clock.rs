//! The clocks ledger stamps are taken from: the system's, and Tokio's
//! (paused time in tests, with skewed instances).

use std::fmt;

use tokio::time::Instant;

/// Wall-clock time in epoch ms for ledger stamps.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// Tokio's clock anchored at a wall time, plus an offset: deterministic
/// tests on paused time, with skewed instances.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: Instant,
    origin_ms: i64,
}

impl TokioClock {
    /// A clock reading `origin_ms` now.
    pub fn new(origin_ms: i64) -> Self {
        Self {
            origin: Instant::now(),
            origin_ms,
        }
    }

    /// The same clock, `offset_ms` ahead (negative: behind).
    pub fn skewed(self, offset_ms: i64) -> Self {
        Self {
            origin_ms: self.origin_ms + offset_ms,
            ..self
        }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> i64 {
        self.origin_ms + self.origin.elapsed().as_millis() as i64
    }
}
