//! The ledger arithmetic: what one lane's stored ledger allows now (pure).
//!
//! # When two grants can meet in one HubSpot window
//!
//! With clocks within `skew` of true time, a grant stamped `at` was
//! written at a true time in `[at − skew, at + skew]` (stamps never go
//! back, and every stamp is some instance's clock reading). Its requests
//! reach HubSpot within
//!
//! - `[at − skew, at + skew + lease + guard]` while the block is open, and
//! - `[at − skew, used_until + skew + guard]` once its instance has
//!   recorded when it used the block's last permit (`used_until`, read on
//!   its own clock) — which it does in the write that leases its next
//!   block, at no extra cost.
//!
//! So a grant's requests end (at HubSpot) by its `end = (used_until or at
//! + lease) + skew + guard`, and a new grant stamped `t` starts no earlier
//! than `t − skew`. HubSpot's rolling window of `interval` can hold
//! requests of both only if `t − skew − end < interval`: a new grant is
//! checked against every grant with `end + skew + interval ≥ t`. For any
//! window, the last grant added that reaches into it was checked against
//! every earlier one that does, so no window holds more than the limit.
//! Recording `used_until` shrinks a block's reach from the lease to the
//! time it was really used: a caller that uses its blocks at once gets
//! `limit / (interval + 2 × skew + guard)`, not `limit / span`.

use super::*;

/// A stamp further ahead of this instance's clock than this comes from a
/// broken clock: the ledger is restarted rather than stalled until then.
const FUTURE_RESET_MS: i64 = 60_000;

/// One lane's limits, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LaneParams {
    pub(super) limit: u32,
    pub(super) interval_ms: i64,
    pub(super) skew_ms: i64,
    pub(super) guard_ms: i64,
    pub(super) lease_ms: i64,
    pub(super) hold_ms: i64,
    pub(super) block: u32,
    pub(super) class: usize,
    pub(super) reserves: [u32; 2],
    pub(super) background_burst: u32,
}

impl LaneParams {
    /// The latest stamp at which `g` still counts against a new grant.
    fn counts_until(&self, g: &RateGrant) -> i64 {
        let used_until = g.used_until_ms.unwrap_or(g.at_ms + self.lease_ms);
        used_until + 2 * self.skew_ms + self.guard_ms + self.interval_ms
    }

    /// The shortest time over which a caller alone can use `limit`
    /// permits: what background pacing spreads its blocks over.
    fn pace_span_ms(&self) -> i64 {
        self.interval_ms + 2 * self.skew_ms + self.guard_ms
    }
}

/// This instance's previous block, closed: its permits used, in up to
/// [`MAX_PIECES`] pieces, each with when its last permit was used (own
/// clock) — a block used over a while counts each piece only to its own
/// last use, not every permit to the block's last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Closed {
    pub(super) owner: u64,
    pub(super) at_ms: i64,
    pub(super) pieces: Vec<(u32, i64)>,
}

/// Most pieces a closed block is stored as (the ledger item stays small).
const MAX_PIECES: usize = 3;
/// What one more piece must save (permit-milliseconds counted past their
/// use) to be worth its bytes in the ledger.
const PIECE_WORTH_MS: i64 = 25;

/// Cuts a block's use times (own clock, in use order) into at most
/// [`MAX_PIECES`] runs, `(permits, last use + 1 ms)`, so that the permits'
/// total time counted past their own use is least (a piece must save
/// [`PIECE_WORTH_MS`]). The clock reads whole
/// milliseconds: a use was before the next millisecond.
pub(super) fn pieces(uses: &[i64]) -> Vec<(u32, i64)> {
    let n = uses.len();
    if n == 0 {
        return Vec::new();
    }
    // Over-count of uses[i..j] kept as one piece.
    let cost = |i: usize, j: usize| -> i64 { uses[i..j].iter().map(|u| uses[j - 1] - u).sum() };
    let mut best = (cost(0, n), vec![n]);
    for a in 1..n {
        let two = cost(0, a) + cost(a, n) + PIECE_WORTH_MS;
        if two < best.0 {
            best = (two, vec![a, n]);
        }
        if MAX_PIECES >= 3 {
            for b in a + 1..n {
                let three = cost(0, a) + cost(a, b) + cost(b, n) + 2 * PIECE_WORTH_MS;
                if three < best.0 {
                    best = (three, vec![a, b, n]);
                }
            }
        }
    }
    let mut from = 0;
    best.1
        .into_iter()
        .map(|to| {
            let piece = ((to - from) as u32, uses[to - 1] + 1);
            from = to;
            piece
        })
        .collect()
}

/// What the ledger allows now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    /// Store `ledger` to take `permits`.
    Grant { ledger: RateLedger, permits: u32 },
    /// Nothing before `until_ms`; store `mark` (if any) to record that this
    /// class is waiting (and the closed block).
    Wait {
        until_ms: i64,
        mark: Option<RateLedger>,
    },
    /// Paused after a 429 until `until_ms`.
    Paused { until_ms: i64 },
}

/// Records `closed` in `l`: the block becomes its pieces (the permits
/// used, each piece reaching to its last use); a block used not at all is
/// dropped.
fn close(l: &mut RateLedger, closed: Option<&Closed>) {
    let Some(c) = closed else {
        return;
    };
    let Some(i) = l
        .grants
        .iter()
        .position(|g| g.owner == c.owner && g.at_ms == c.at_ms && g.used_until_ms.is_none())
    else {
        return;
    };
    let open = l.grants.remove(i);
    let mut left = open.permits;
    let mut at = i;
    for &(permits, until) in &c.pieces {
        let permits = permits.min(left);
        left -= permits;
        if permits > 0 {
            let piece = RateGrant {
                permits,
                used_until_ms: Some(until),
                ..open
            };
            l.grants.insert(at, piece);
            at += 1;
        }
    }
}

pub(super) fn decide(
    p: &LaneParams,
    stored: &RateLedger,
    now_ms: i64,
    want: u32,
    owner: u64,
    closed: Option<&Closed>,
) -> Decision {
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
    close(&mut l, closed);
    let t = l
        .grants
        .iter()
        .map(|g| g.at_ms)
        .max()
        .map_or(now_ms, |at| at.max(now_ms));
    l.grants.retain(|g| p.counts_until(g) >= t);
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
    // A background caller paces itself — at most one block per block's
    // share of the pace span (10 per 926 ms), counting what its closed
    // blocks really used — so that blocks keep sliding out and a real-time
    // caller arriving mid-run waits about one block, not until a whole
    // window's worth frees at once; except for up to `background_burst`
    // permits in the first window of a run (a background class idle for a
    // window starts one), so that a small portal's sync is not stretched.
    let run_start = if l.seen_ms[1] == 0 || t - l.seen_ms[1] > p.pace_span_ms() {
        t
    } else {
        l.background_since_ms
    };
    let since_start: u32 = l
        .grants
        .iter()
        .filter(|g| g.class == 1 && g.at_ms >= run_start)
        .map(|g| g.permits)
        .sum();
    let bursting = t - run_start < p.pace_span_ms()
        && since_start + want.clamp(1, p.block) <= p.background_burst;
    let pace_budget = p.block.min(p.limit).max(1);
    let pace_window = (p.pace_span_ms() * i64::from(pace_budget) / i64::from(p.limit)).max(1);
    let paced: Vec<&RateGrant> = l
        .grants
        .iter()
        .filter(|g| g.class == 1 && g.at_ms > t - pace_window)
        .collect();
    let pace_left = if me == 1 && !bursting {
        pace_budget.saturating_sub(paced.iter().map(|g| g.permits).sum())
    } else {
        u32::MAX
    };
    // Nothing left of the pace: until the oldest paced block slides out.
    let paced_until = match paced.first() {
        Some(g) if pace_left == 0 => g.at_ms + pace_window,
        _ => i64::MIN,
    };
    if free >= 1 && pace_left >= 1 {
        let permits = want.clamp(1, p.block).min(free).min(pace_left);
        l.grants.push(RateGrant {
            at_ms: t,
            permits,
            class: me as u8,
            owner,
            used_until_ms: None,
        });
        l.seen_ms[me] = t;
        if me == 1 {
            l.background_since_ms = run_start;
        }
        l.version += 1;
        return Decision::Grant { ledger: l, permits };
    }
    // The earliest time a permit frees up: a grant stops counting, or the
    // other class's hold on its reserve ends.
    let mut until_ms = if l.seen_ms[other] > 0 && other_until >= t {
        other_until + 1
    } else {
        l.grants
            .iter()
            .map(|g| p.counts_until(g) + 1)
            .max()
            .unwrap_or(t)
            .max(t)
    };
    if free >= 1 {
        until_ms = t;
    }
    let mut by_end: Vec<&RateGrant> = l.grants.iter().collect();
    by_end.sort_by_key(|g| p.counts_until(g));
    let mut left = used;
    for g in by_end {
        let frees_at = p.counts_until(g) + 1;
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
    // at most a few times per hold (with the closed block, if any).
    let mark = (t - l.seen_ms[me] > p.hold_ms / 3).then(|| {
        l.seen_ms[me] = t;
        l.version += 1;
        l
    });
    Decision::Wait { until_ms, mark }
}
