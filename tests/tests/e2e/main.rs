//! The end-to-end tests, one binary: each module is an area, each test
//! starts its own local stack (moto + the HubSpot simulator) through
//! [`helpers`]. Static checks of the repository (the template, the crate
//! graph) live here too.
//!
//! Two stay binaries of their own (cargo runs binaries one after another):
//! `tests/tests/oauth_logs.rs` captures every log line of its process at
//! `debug`, which must not include other tests', and
//! `tests/tests/shared_rate_limit.rs` checks that HubSpot's per-window
//! limit is never exceeded, which needs request timing free of other
//! tests' load.

mod helpers;

mod admin_api;
mod change_events;
mod convergence;
mod default_map;
mod dependency_rules;
mod follow_scope;
mod generic_webhooks;
mod journal;
mod lambda_emulator;
mod list_scope;
mod local_stack;
mod mapping;
mod oauth;
mod oauth_refresh;
mod outage;
mod oversized;
mod platform;
mod realtime;
mod reconcile;
mod reconcile_props;
mod records_doc;
mod revoked_grant;
mod setup;
mod template;
mod template_admin;
mod template_alarms;
mod template_infra;
mod version_rule;
