//! Lambda entry point: wiring only (configuration, secrets, SDK clients,
//! the HTTP handler).

use hubsync_auth::KmsCipher;
use hubsync_hubspot::{OAuthClient, OAuthConfig};
use hubsync_store::{DynamoStore, StoreConfig};
use lambda_http::{service_fn, Body, Error, Request, Response};
use oauth_callback::{respond, OAuthService, Reply, Settings, SqsJobQueue};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hubsync_runtime::init_tracing();
    let settings = Settings::from_env()?;
    let aws = hubsync_runtime::aws_sdk_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let client_secret = hubsync_runtime::load_secret(&secrets, &settings.client_secret_arn).await?;
    let link_secret = hubsync_runtime::load_secret(&secrets, &settings.link_secret_arn).await?;
    let mut oauth = OAuthConfig::new(
        settings.hubspot_base_url.clone(),
        settings.client_id.clone(),
        client_secret,
        settings.redirect_uri.clone(),
    );
    oauth.version = settings.oauth_version.clone();
    let service = OAuthService {
        config: settings.flow(link_secret),
        store: DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&aws),
            StoreConfig::from_env()?,
        ),
        hubspot: OAuthClient::new(oauth)?,
        cipher: KmsCipher::new(
            aws_sdk_kms::Client::new(&aws),
            settings.token_key_id.clone(),
        ),
        jobs: SqsJobQueue::new(
            aws_sdk_sqs::Client::new(&aws),
            settings.sync_jobs_queue_url.clone(),
        ),
    };
    let service = &service;
    lambda_http::run(service_fn(move |req: Request| async move {
        let reply = respond(
            service,
            req.method().as_str(),
            req.uri().path(),
            req.uri().query(),
            chrono::Utc::now().timestamp(),
        )
        .await;
        Ok::<Response<Body>, Error>(into_response(reply)?)
    }))
    .await
}

fn into_response(reply: Reply) -> Result<Response<Body>, lambda_http::http::Error> {
    let mut builder = Response::builder()
        .status(reply.status)
        .header("content-type", reply.content_type);
    for (name, value) in Reply::COMMON_HEADERS {
        builder = builder.header(name, value);
    }
    if let Some(location) = reply.location {
        builder = builder.header("location", location);
    }
    builder.body(Body::from(reply.body))
}
