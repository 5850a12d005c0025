//! `admin-api`: the application's way into hubsync — routes under `/v1/`
//! on the stack's HTTP API, authorized with IAM (SigV4). Thin over
//! [`hubsync_admin`], the service layer the ops CLI uses too.
//!
//! - [`routes`]: the route table (matching, and the source of the OpenAPI
//!   document);
//! - [`api`]: the handler — caller check and dispatch; `input`: the
//!   validation of parameters and bodies;
//! - [`problem`]: answers and the error → status mapping;
//! - [`caller`]: which IAM principals may call;
//! - [`openapi`]: the OpenAPI 3.1 document (`docs/admin-api.openapi.json`);
//! - [`settings`]: configuration from the environment.
#![forbid(unsafe_code)]

pub mod api;
pub mod caller;
mod input;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod settings;

pub use api::{AdminApi, ApiConfig, ApiRequest};
pub use caller::CallerPolicy;
pub use problem::ApiResponse;
pub use settings::Settings;
