//! Lambda entry point: wiring only (configuration, SDK clients, handler).

use std::time::Duration;

use hubsync_hubspot::signature::WebhookVerifier;
use hubsync_runtime::FromEnv;
use lambda_http::{service_fn, Body, Error, Request, Response};
use webhook_intake::{http::respond, sink::SqsSink, CachedDirectory, Intake, StoreDirectory};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hubsync_runtime::init_tracing();
    let settings = webhook_intake::settings::Settings::from_env()?;
    let aws = hubsync_runtime::aws_sdk_config().await;
    let secret = hubsync_runtime::load_secret(
        &aws_sdk_secretsmanager::Client::new(&aws),
        &settings.client_secret_arn,
    )
    .await?;
    let store = hubsync_store::DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        settings.store.clone(),
    );
    let intake = Intake::new(
        WebhookVerifier::new(secret, settings.public_webhook_url.clone()),
        settings.intake.clone(),
        SqsSink::new(
            aws_sdk_sqs::Client::new(&aws),
            settings.events_queue_url.clone(),
        ),
        CachedDirectory::new(
            StoreDirectory::new(store),
            Duration::from_secs(settings.directory_ttl_secs),
        ),
    );
    let intake = &intake;
    lambda_http::run(service_fn(move |req: Request| async move {
        let (parts, body) = req.into_parts();
        let reply = respond(
            intake,
            parts.method.as_str(),
            &parts.headers,
            parts.uri.query(),
            body.as_ref(),
            chrono::Utc::now().timestamp_millis(),
        )
        .await;
        Response::builder()
            .status(reply.status)
            .header("content-type", "application/json")
            .body(Body::Text(reply.body))
            .map_err(Error::from)
    }))
    .await
}
