//! `databricks-emulator`: an in-memory emulator of the Databricks account and workspace
//! REST APIs (AWS flavour) for local development and tests. See README.md.

mod account;
mod auth;
mod emulator;
mod errors;
mod faults;
mod lifecycle;
mod requests;
mod scim;
mod sql;
mod state;
mod uc;
// The REST handlers of tables and sharing (another branch of issue 15) use the
// rest of this model; the SQL engine uses part of it. (collapsible_match: a lint of
// the newer clippy on shared_tables, left to the model's owner.)
mod uc_data;
mod workspace;

// Unity Catalog beyond `uc` (credentials, locations, volumes): catalogs and schemas,
// grants, tables, functions, tags, Delta Sharing; and their handler tests.
mod sharing;
#[cfg(test)]
mod sharing_flow_tests;
mod sharing_parties;
mod uc_catalogs;
mod uc_common;
mod uc_functions;
mod uc_grants;
mod uc_tables;
mod uc_tags;
#[cfg(test)]
mod uc_testing;

use std::io::Write;
use std::path::PathBuf;

use axum::http::{Method, Uri};
use axum::routing::{get, post};
use axum::Router;
use clap::Parser;

use crate::errors::ApiError;
use crate::state::{load_state, App, Settings, State as EmuState};

#[derive(Parser, Debug)]
#[command(
    name = "databricks-emulator",
    version,
    about = "Emulates the Databricks account and workspace REST APIs"
)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "DATABRICKS_EMULATOR_BIND", default_value = "127.0.0.1")]
    bind: String,
    /// Port to listen on; 0 picks a free port (the first stdout line names it).
    #[arg(long, env = "DATABRICKS_EMULATOR_PORT", default_value_t = 8900)]
    port: u16,
    /// Persist state to this JSON file (loaded at start, rewritten after each change).
    #[arg(long, env = "DATABRICKS_EMULATOR_STATE")]
    state: Option<PathBuf>,
    /// Id of the emulated account.
    #[arg(
        long,
        env = "DATABRICKS_EMULATOR_ACCOUNT_ID",
        default_value = "00000000-0000-0000-0000-000000000001"
    )]
    account_id: String,
    /// OAuth client id (application id) of the account-admin service principal.
    #[arg(
        long,
        env = "DATABRICKS_EMULATOR_CLIENT_ID",
        default_value = "00000000-0000-0000-0000-0000000000a1"
    )]
    client_id: String,
    /// OAuth client secret of the account-admin service principal.
    #[arg(
        long,
        env = "DATABRICKS_EMULATOR_CLIENT_SECRET",
        default_value = "dose00000000000000000000000000000001",
        hide_default_value = true,
        hide_env_values = true
    )]
    client_secret: String,
    /// Print the admin client secret at start instead of redacting it.
    #[arg(long)]
    show_secret: bool,
    /// Seconds a workspace stays PROVISIONING.
    #[arg(
        long,
        env = "DATABRICKS_EMULATOR_PROVISIONING_SECONDS",
        default_value_t = 2.0
    )]
    provisioning_seconds: f64,
    /// Seconds a cluster stays PENDING or TERMINATING.
    #[arg(
        long,
        env = "DATABRICKS_EMULATOR_CLUSTER_SECONDS",
        default_value_t = 2.0
    )]
    cluster_seconds: f64,
    /// Seconds a job run stays PENDING, then RUNNING.
    #[arg(long, env = "DATABRICKS_EMULATOR_RUN_SECONDS", default_value_t = 2.0)]
    run_seconds: f64,
    /// Seconds a SQL statement stays RUNNING (after its warehouse runs).
    #[arg(
        long,
        env = "DATABRICKS_EMULATOR_STATEMENT_SECONDS",
        default_value_t = 0.5
    )]
    statement_seconds: f64,
    /// Seconds a SQL warehouse stays STARTING, STOPPING or DELETING (default: the
    /// cluster seconds).
    #[arg(long, env = "DATABRICKS_EMULATOR_WAREHOUSE_SECONDS")]
    warehouse_seconds: Option<f64>,
    /// Lifetime of OAuth access tokens, in seconds.
    #[arg(
        long,
        env = "DATABRICKS_EMULATOR_OAUTH_TOKEN_SECONDS",
        default_value_t = 3600
    )]
    oauth_token_seconds: i64,
}

fn seconds_to_ms(name: &str, s: f64) -> Result<i64, String> {
    if !(0.0..=86_400.0).contains(&s) {
        return Err(format!("--{name} must be between 0 and 86400, got {s}"));
    }
    Ok((s * 1000.0).round() as i64)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "ENDPOINT_NOT_FOUND",
        format!("No API found for '{method} {}'", uri.path()),
    )
}

fn router(app: App) -> Router {
    Router::new()
        .route(
            "/.well-known/databricks-config",
            get(auth::account_host_metadata),
        )
        .route(
            "/oidc/accounts/{account_id}/.well-known/oauth-authorization-server",
            get(auth::account_authorization_server),
        )
        .route(
            "/oidc/accounts/{account_id}/v1/token",
            post(auth::account_token),
        )
        .merge(account::router())
        .nest(
            &format!("{}/{{deployment}}", auth::WORKSPACE_PATH_PREFIX),
            workspace::router(),
        )
        .route("/_emulator/info", get(emulator::info))
        .route("/_emulator/state", get(emulator::state))
        .route("/_emulator/reset", post(emulator::reset))
        .route(
            "/_emulator/faults",
            get(emulator::get_faults)
                .post(emulator::set_faults)
                .delete(emulator::clear_faults),
        )
        .route(
            "/_emulator/requests",
            get(requests::list).delete(requests::clear),
        )
        .fallback(not_found)
        // Inside the fault layer: a faulted request settles nothing, as it never
        // reached the service.
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            workspace::statements::settle_middleware,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            faults::middleware,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            requests::middleware,
        ))
        .with_state(app)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn run() -> Result<(), String> {
    let cli = Cli::parse();
    let settings = Settings {
        account_id: cli.account_id.clone(),
        admin_client_id: cli.client_id.clone(),
        admin_client_secret: cli.client_secret.clone(),
        provisioning_ms: seconds_to_ms("provisioning-seconds", cli.provisioning_seconds)?,
        cluster_ms: seconds_to_ms("cluster-seconds", cli.cluster_seconds)?,
        run_ms: seconds_to_ms("run-seconds", cli.run_seconds)?,
        statement_ms: seconds_to_ms("statement-seconds", cli.statement_seconds)?,
        warehouse_ms: seconds_to_ms(
            "warehouse-seconds",
            cli.warehouse_seconds.unwrap_or(cli.cluster_seconds),
        )?,
        oauth_token_seconds: cli.oauth_token_seconds.max(1),
        state_file: cli.state.clone(),
    };
    let state = match &cli.state {
        Some(path) => match load_state(path)
            .map_err(|e| format!("cannot load state file {}: {e}", path.display()))?
        {
            Some(mut s) => {
                if s.account_id != settings.account_id {
                    return Err(format!(
                        "state file {} belongs to account {}, not {}",
                        path.display(),
                        s.account_id,
                        settings.account_id
                    ));
                }
                s.ensure_admin(&settings);
                s
            }
            None => EmuState::initial(&settings),
        },
        None => EmuState::initial(&settings),
    };
    let app = App::new(settings, state);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((cli.bind.as_str(), cli.port))
            .await
            .map_err(|e| format!("cannot listen on {}:{}: {e}", cli.bind, cli.port))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let base = format!("http://{addr}");
        let secret = if cli.show_secret {
            cli.client_secret.clone()
        } else {
            format!(
                "{}*** (--show-secret to print)",
                &cli.client_secret[..cli.client_secret.len().min(4)]
            )
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "databricks-emulator listening on {base}");
        let _ = writeln!(out, "  account host:            {base}");
        let _ = writeln!(out, "  account id:              {}", cli.account_id);
        let _ = writeln!(out, "  admin client id:         {}", cli.client_id);
        let _ = writeln!(out, "  admin client secret:     {secret}");
        let _ = writeln!(
            out,
            "  workspace host template: {base}{}/{{deployment_name}}",
            auth::WORKSPACE_PATH_PREFIX
        );
        if let Some(p) = &cli.state {
            let _ = writeln!(out, "  state file:              {}", p.display());
        }
        let _ = out.flush();
        drop(out);
        axum::serve(listener, router(app))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| format!("server error: {e}"))
    })
}

fn main() {
    if let Err(e) = run() {
        eprintln!("databricks-emulator: {e}");
        std::process::exit(1);
    }
}
