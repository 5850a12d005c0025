//! End-to-end tests live in `tests/tests/` (`e2e/`: one binary, a module per
//! area; `oauth_logs.rs` and `shared_rate_limit.rs`: processes of their
//! own); this crate has no library code.
