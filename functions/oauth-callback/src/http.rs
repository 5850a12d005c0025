//! Routing shared by the Lambda (`main.rs`) and the local runner.

use hubsync_auth::TokenCipher;
use hubsync_store::{ConnectionStore, OAuthStateStore};

use crate::reply::Reply;
use crate::service::{JobQueue, OAuthService, Query, TokenEndpoint};

/// Answers one request. `path` may carry a stage prefix (only its ending is
/// matched); `query` is the raw query string; `cookie` the request's
/// `Cookie` header.
pub async fn respond<S, T, C, Q>(
    service: &OAuthService<S, T, C, Q>,
    method: &str,
    path: &str,
    query: Option<&str>,
    cookie: Option<&str>,
    now_epoch: i64,
) -> Reply
where
    S: OAuthStateStore + ConnectionStore,
    T: TokenEndpoint,
    C: TokenCipher,
    Q: JobQueue,
{
    let query = Query::parse(query);
    let route = path.trim_end_matches('/');
    let method = method.to_ascii_uppercase();
    match (method.as_str(), route) {
        ("GET", r) if r.ends_with("/oauth/install") => service.install(&query, now_epoch).await,
        ("GET", r) if r.ends_with("/oauth/callback") => {
            service.callback(&query, cookie, now_epoch).await
        }
        ("POST", r) if r.ends_with("/oauth/disconnect") => {
            service.disconnect(&query, now_epoch).await
        }
        (_, r)
            if r.ends_with("/oauth/install")
                || r.ends_with("/oauth/callback")
                || r.ends_with("/oauth/disconnect") =>
        {
            Reply::page(
                405,
                "Method not allowed",
                "This address does not accept that method.",
            )
        }
        _ => Reply::page(404, "Not found", "There is nothing at this address."),
    }
}
