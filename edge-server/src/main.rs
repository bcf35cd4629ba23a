//! The `edge-server` binary: reads the environment, binds `LISTEN`, and runs until SIGTERM or
//! SIGINT, then drains and exits.

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::logging::init();
    let config = edge_server::Config::from_env()?;
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:9001".to_owned());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("signal received: draining");
        token.cancel();
    });
    edge_server::run(config, listener, shutdown).await
}
