//! `hubspot-sim` binary: `cargo run -p hubspot-sim -- --port 8080 --seed 42 --companies 1000`.

use std::net::{IpAddr, SocketAddr};

use clap::Parser;
use hubspot_sim::{Faults, SeedSpec, SimConfig, Simulator};

#[derive(Parser, Debug)]
#[command(
    name = "hubspot-sim",
    about = "A stateful HubSpot simulator (OAuth, CRM v3, webhooks, rate limits, faults)"
)]
struct Args {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1", env = "HUBSPOT_SIM_HOST")]
    host: IpAddr,
    /// Listen port (0 = ephemeral).
    #[arg(long, default_value_t = 8080, env = "HUBSPOT_SIM_PORT")]
    port: u16,
    /// Master RNG seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of portals created at start (installed).
    #[arg(long, default_value_t = 1)]
    portals: usize,
    /// Id of the first portal.
    #[arg(long, default_value_t = 1_000_001)]
    first_portal_id: u64,
    /// Companies seeded into each portal.
    #[arg(long, default_value_t = 0)]
    companies: usize,
    /// Contacts seeded into each portal.
    #[arg(long, default_value_t = 0)]
    contacts: usize,
    /// Deals seeded into each portal.
    #[arg(long, default_value_t = 0)]
    deals: usize,
    /// Owners seeded into each portal (0 = 20 when any record is seeded).
    #[arg(long, default_value_t = 0)]
    owners: usize,
    #[arg(
        long,
        default_value = "5d2f3c1e-0000-4000-8000-00000000c1d0",
        env = "HUBSPOT_SIM_CLIENT_ID"
    )]
    client_id: String,
    #[arg(
        long,
        default_value = "9a8b7c6d-0000-4000-8000-0000005ec4e7",
        env = "HUBSPOT_SIM_CLIENT_SECRET"
    )]
    client_secret: String,
    #[arg(long, default_value_t = 4_242_424)]
    app_id: u64,
    /// Access-token lifetime (s).
    #[arg(long, default_value_t = 1800)]
    token_lifetime: u64,
    /// Authorization-code lifetime (s).
    #[arg(long, default_value_t = 300)]
    code_lifetime: u64,
    /// Omit `hub_id` from token responses.
    #[arg(long)]
    no_hub_id: bool,
    /// Disable rate limits.
    #[arg(long)]
    no_rate_limit: bool,
    /// TEN_SECONDLY_ROLLING maximum.
    #[arg(long, default_value_t = 110)]
    rate_limit_max: u32,
    /// Search SECONDLY maximum.
    #[arg(long, default_value_t = 5)]
    search_rate_limit: u32,
    /// How far search's index trails writes (ms).
    #[arg(long, default_value_t = 0)]
    search_index_lag_ms: u64,
    /// Webhook target URL.
    #[arg(long, env = "HUBSPOT_SIM_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// Public URL the v3 signature is computed over (default: webhook URL).
    #[arg(long)]
    webhook_public_url: Option<String>,
    #[arg(long, default_value_t = 100)]
    webhook_batch_window_ms: u64,
    #[arg(long, default_value_t = 5000)]
    webhook_timeout_ms: u64,
    #[arg(long, default_value_t = 10)]
    webhook_max_attempts: u32,
    /// Scales webhook retry delays (1.0 = minutes to hours like HubSpot).
    #[arg(long, default_value_t = 0.001)]
    webhook_time_scale: f64,
    #[arg(long, default_value_t = 10)]
    webhook_concurrency: usize,
    /// Fault: webhook event drop probability (all initial portals).
    #[arg(long, default_value_t = 0.0)]
    webhook_drop_rate: f64,
    #[arg(long, default_value_t = 0.0)]
    webhook_duplicate_rate: f64,
    #[arg(long)]
    webhook_reorder: bool,
    #[arg(long, default_value_t = 0)]
    webhook_delay_ms: u64,
    /// Fault: probability of a 500 on CRM API calls.
    #[arg(long, default_value_t = 0.0)]
    api_error_rate: f64,
    #[arg(long, default_value_t = 0)]
    api_latency_ms: u64,
    #[arg(long, default_value_t = 0.0)]
    token_error_rate: f64,
    /// Probability that a merge creates a new survivor id.
    #[arg(long, default_value_t = 0.0)]
    merge_new_id_probability: f64,
    /// Print a ready-made access token per portal (default on; `--print-tokens=false` to hide).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    print_tokens: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let a = Args::parse();
    let mut cfg = SimConfig {
        bind: SocketAddr::new(a.host, a.port),
        seed: a.seed,
        portal_count: a.portals,
        first_portal_id: a.first_portal_id,
        initial_seed: SeedSpec {
            companies: a.companies,
            contacts: a.contacts,
            deals: a.deals,
            owners: a.owners,
            seed: None,
        },
        initial_faults: Faults {
            webhook_drop_rate: a.webhook_drop_rate,
            webhook_duplicate_rate: a.webhook_duplicate_rate,
            webhook_reorder: a.webhook_reorder,
            webhook_delay_ms: a.webhook_delay_ms,
            api_error_rate: a.api_error_rate,
            api_latency_ms: a.api_latency_ms,
            token_error_rate: a.token_error_rate,
            ..Default::default()
        },
        merge_new_id_probability: a.merge_new_id_probability,
        ..Default::default()
    };
    cfg.app.client_id = a.client_id;
    cfg.app.client_secret = a.client_secret;
    cfg.app.app_id = a.app_id;
    cfg.oauth.token_lifetime_secs = a.token_lifetime;
    cfg.oauth.code_lifetime_secs = a.code_lifetime;
    cfg.oauth.include_hub_id = !a.no_hub_id;
    cfg.rate_limit.enabled = !a.no_rate_limit;
    cfg.rate_limit.max_requests = a.rate_limit_max;
    cfg.rate_limit.search_per_second = a.search_rate_limit;
    cfg.search_index_lag_ms = a.search_index_lag_ms;
    cfg.webhooks.target_url = a.webhook_url;
    cfg.webhooks.public_url = a.webhook_public_url;
    cfg.webhooks.batch_window_ms = a.webhook_batch_window_ms;
    cfg.webhooks.timeout_ms = a.webhook_timeout_ms;
    cfg.webhooks.max_attempts = a.webhook_max_attempts;
    cfg.webhooks.time_scale = a.webhook_time_scale;
    cfg.webhooks.max_concurrent_per_portal = a.webhook_concurrency;

    let started = std::time::Instant::now();
    let sim = Simulator::start(cfg).await?;
    println!("hubspot-sim listening on {}", sim.base_url());
    println!(
        "  ready in {:.2?}; control API: {}/_sim/portals",
        started.elapsed(),
        sim.base_url()
    );
    for p in sim.state().portal_ids() {
        let info = sim.state().portal_info(p)?;
        println!(
            "  portal {p}: {} companies, {} contacts, {} deals",
            info.companies, info.contacts, info.deals
        );
        if a.print_tokens {
            let t = sim.issue_token(p)?;
            println!("    access token : {}", t.access_token);
            println!("    refresh token: {}", t.refresh_token);
            println!(
                "    curl -H 'Authorization: Bearer {}' '{}/crm/v3/objects/companies?limit=2'",
                t.access_token,
                sim.base_url()
            );
        }
    }
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
