//! `hubsync-ops`: wiring only (logging to stderr, the AWS configuration
//! from the environment, exit status). The commands live in the library.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to stderr (warnings by default, `RUST_LOG` to change), so
    // stdout holds only the command's report.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .compact()
        .try_init();
    let cli = hubsync_ops::Cli::parse();
    let aws = hubsync_runtime::aws_sdk_config().await;
    let mut stdout = std::io::stdout();
    match hubsync_ops::run(cli, &aws, &mut stdout).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
