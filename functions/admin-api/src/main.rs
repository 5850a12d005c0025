//! Lambda entry point: wiring only (configuration, the link key, SDK
//! clients, the HTTP handler).

use admin_api::{AdminApi, ApiRequest, ApiResponse, Settings};
use hubsync_messages::SqsJobQueue;
use hubsync_runtime::FromEnv;
use hubsync_store::DynamoStore;
use lambda_http::request::RequestContext;
use lambda_http::{service_fn, Body, Error, Request, RequestExt, Response};

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
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), settings.store.clone());
    let api = AdminApi {
        config: settings.api(link_secret),
        hubspot: settings.hubspot.client(store.clone())?,
        tokens: settings
            .tokens
            .connection_tokens(&aws, store.clone())
            .await?,
        jobs: SqsJobQueue::new(
            aws_sdk_sqs::Client::new(&aws),
            settings.sync_jobs_queue_url.clone(),
        ),
        cipher: settings.tokens.cipher(&aws),
        revoker: settings.tokens.oauth_client(&aws).await?,
        store,
    };
    let api = &api;
    lambda_http::run(service_fn(move |req: Request| async move {
        // The principal API Gateway's IAM authorization verified.
        let caller = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx
                .authorizer
                .as_ref()
                .and_then(|a| a.iam.as_ref())
                .and_then(|iam| iam.user_arn.clone()),
            _ => None,
        };
        let response = api
            .handle(
                ApiRequest {
                    method: req.method().as_str(),
                    path: req.uri().path(),
                    query: req.uri().query(),
                    body: req.body().as_ref(),
                    caller: caller.as_deref(),
                },
                chrono::Utc::now(),
            )
            .await;
        Ok::<Response<Body>, Error>(into_response(response)?)
    }))
    .await
}

fn into_response(r: ApiResponse) -> Result<Response<Body>, lambda_http::http::Error> {
    let mut builder = Response::builder()
        .status(r.status)
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff");
    if let Some(secs) = r.retry_after {
        builder = builder.header("retry-after", secs.to_string());
    }
    if let Some(allow) = r.allow {
        builder = builder.header("allow", allow);
    }
    match r.body {
        Some(body) => builder
            .header("content-type", "application/json")
            .body(Body::from(body.to_string())),
        None => builder.body(Body::Empty),
    }
}
