//! Rolling-window rate limiter (real monotonic time; see README).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Outcome of a rate-limit check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed { remaining: u32 },
    Limited { retry_after_secs: u64 },
}

/// Sliding-window log. Rejected requests do not consume capacity (HubSpot's behaviour).
#[derive(Debug, Default)]
pub struct Window {
    hits: VecDeque<Instant>,
}

impl Window {
    pub fn check(&mut self, now: Instant, window: Duration, max: u32) -> Verdict {
        while let Some(front) = self.hits.front() {
            if now.duration_since(*front) >= window {
                self.hits.pop_front();
            } else {
                break;
            }
        }
        if self.hits.len() as u64 >= max as u64 {
            let oldest = self.hits.front().copied().unwrap_or(now);
            let wait = window.saturating_sub(now.duration_since(oldest));
            let secs = wait.as_millis().div_ceil(1000).max(1) as u64;
            return Verdict::Limited {
                retry_after_secs: secs,
            };
        }
        self.hits.push_back(now);
        Verdict::Allowed {
            remaining: max.saturating_sub(self.hits.len() as u32),
        }
    }

    pub fn clear(&mut self) {
        self.hits.clear();
    }
}

/// The two policies of one portal.
#[derive(Debug, Default)]
pub struct RateLimiter {
    pub ten_secondly: Window,
    pub search: Window,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_recovers() {
        let mut w = Window::default();
        let t0 = Instant::now();
        let win = Duration::from_secs(10);
        for i in 0..110 {
            assert_eq!(
                w.check(t0, win, 110),
                Verdict::Allowed { remaining: 109 - i }
            );
        }
        assert_eq!(
            w.check(t0, win, 110),
            Verdict::Limited {
                retry_after_secs: 10
            }
        );
        assert!(matches!(
            w.check(t0 + win, win, 110),
            Verdict::Allowed { .. }
        ));
    }
}
