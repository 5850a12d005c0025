//! Lambda entry point: wiring only (configuration, secrets, SDK clients,
//! the HTTP handler).

use hubsync_runtime::FromEnv;
use hubsync_store::DynamoStore;
use lambda_http::{service_fn, Body, Error, Request, Response};
use oauth_callback::{respond, OAuthService, Reply, Settings, SqsJobQueue};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hubsync_runtime::init_tracing();
    let settings = Settings::from_env()?;
    let aws = hubsync_runtime::aws_sdk_config().await;
    let link_secret = hubsync_runtime::load_secret(
        &aws_sdk_secretsmanager::Client::new(&aws),
        &settings.link_secret_arn,
    )
    .await?;
    let service = OAuthService {
        config: settings.flow(link_secret),
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), settings.store.clone()),
        hubspot: settings.tokens.oauth_client(&aws).await?,
        cipher: settings.tokens.cipher(&aws),
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
            req.headers()
                .get(lambda_http::http::header::COOKIE)
                .and_then(|v| v.to_str().ok()),
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
    if let Some(cookie) = reply.set_cookie {
        // API Gateway's HTTP API (payload 2.0) sends it as `cookies`.
        builder = builder.header("set-cookie", cookie);
    }
    builder.body(Body::from(reply.body))
}
