//! The ledger arithmetic: what one lane's stored ledger allows now (pure).

use super::*;

/// A stamp further ahead of this instance's clock than this comes from a
/// broken clock: the ledger is restarted rather than stalled until then.
const FUTURE_RESET_MS: i64 = 60_000;

/// One lane's limits, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LaneParams {
    pub(super) limit: u32,
    pub(super) span_ms: i64,
    pub(super) hold_ms: i64,
    pub(super) block: u32,
    pub(super) class: usize,
    pub(super) reserves: [u32; 2],
}

/// What the ledger allows now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    /// Store `ledger` to take `permits`.
    Grant { ledger: RateLedger, permits: u32 },
    /// Nothing before `until_ms`; store `mark` (if any) to record that this
    /// class is waiting.
    Wait {
        until_ms: i64,
        mark: Option<RateLedger>,
    },
    /// Paused after a 429 until `until_ms`.
    Paused { until_ms: i64 },
}

pub(super) fn decide(p: &LaneParams, stored: &RateLedger, now_ms: i64, want: u32) -> Decision {
    let mut l = stored.clone();
    if l.paused_until_ms > now_ms {
        return Decision::Paused {
            until_ms: l.paused_until_ms,
        };
    }
    let last = l.grants.last().map_or(i64::MIN, |g| g.at_ms);
    if last > now_ms.saturating_add(FUTURE_RESET_MS) {
        tracing::warn!(
            ahead_ms = last - now_ms,
            "rate ledger stamped far ahead of this clock: restarting it"
        );
        l.grants.clear();
        l.seen_ms.clear();
    }
    let t = l.grants.last().map_or(now_ms, |g| g.at_ms.max(now_ms));
    l.grants.retain(|g| g.at_ms + p.span_ms >= t);
    l.seen_ms.resize(2, 0);
    let mut used = [0u32; 2];
    for g in &l.grants {
        let c = usize::from(g.class.min(1));
        used[c] = used[c].saturating_add(g.permits);
    }
    let me = p.class;
    let other = 1 - me;
    let other_until = l.seen_ms[other].saturating_add(p.hold_ms);
    let available = |used: [u32; 2], at: i64| -> u32 {
        let headroom = if l.seen_ms[other] > 0 && at <= other_until {
            p.reserves[other].saturating_sub(used[other])
        } else {
            0
        };
        p.limit
            .saturating_sub(used[0].saturating_add(used[1]))
            .saturating_sub(headroom)
    };
    let free = available(used, t);
    // A background caller spreads its blocks over the span (one block of
    // n after span × n / limit), so that blocks keep sliding out and a
    // real-time caller arriving mid-run waits about one block, not until
    // a whole span's worth frees at once.
    let paced_until = match (me, l.grants.iter().rev().find(|g| g.class == 1)) {
        (1, Some(g)) => g.at_ms + p.span_ms * i64::from(g.permits) / i64::from(p.limit),
        _ => i64::MIN,
    };
    if free >= 1 && paced_until <= t {
        let permits = want.clamp(1, p.block).min(free);
        l.grants.push(RateGrant {
            at_ms: t,
            permits,
            class: me as u8,
        });
        l.seen_ms[me] = t;
        l.version += 1;
        return Decision::Grant { ledger: l, permits };
    }
    // The earliest time a permit frees up: a grant slides out, or the
    // other class's hold on its reserve ends.
    let mut until_ms = if l.seen_ms[other] > 0 && other_until >= t {
        other_until + 1
    } else {
        t + p.span_ms + 1
    };
    if free >= 1 {
        until_ms = t;
    }
    let mut left = used;
    for g in &l.grants {
        let frees_at = g.at_ms + p.span_ms + 1;
        if frees_at >= until_ms {
            break;
        }
        let c = usize::from(g.class.min(1));
        left[c] = left[c].saturating_sub(g.permits);
        if available(left, frees_at) >= 1 {
            until_ms = frees_at;
            break;
        }
    }
    let until_ms = until_ms.max(paced_until);
    // Record that this class is waiting (so the other leaves its reserve),
    // at most a few times per hold.
    let mark = (t - l.seen_ms[me] > p.hold_ms / 3).then(|| {
        l.seen_ms[me] = t;
        l.version += 1;
        l
    });
    Decision::Wait { until_ms, mark }
}
