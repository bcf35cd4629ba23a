//! `cluster run` (what `make run` starts after the build) and `cluster render-haproxy`
//! (the HAProxy config for docker-compose and other hand-made deployments).

use std::time::Duration;

use clap::{Parser, Subcommand};
use cluster::haproxy::{self, HaproxyConfig};
use cluster::{Cluster, Options};
use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, Parser)]
#[command(name = "cluster", about = "Runs the chat cluster on one machine")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start PostgreSQL, Redis (or a Redis Cluster), EDGES edges, the api-server and HAProxy in
    /// the foreground; settings from the environment (EDGES, HTTP_PORT, PG_PORT, REDIS_PORT,
    /// REDIS_SHARDS, REDIS_REPLICAS, DATA_DIR, DATABASE_URL, REDIS_URL, ...). Ctrl-C or SIGTERM
    /// stops everything.
    Run,
    /// Print the HAProxy configuration for the given servers.
    RenderHaproxy {
        /// Frontend bind address.
        #[arg(long, default_value = ":8080")]
        bind: String,
        /// Runtime API socket path.
        #[arg(long, default_value = "/var/run/haproxy.sock")]
        socket: String,
        /// Edges: `name=host:port,...` or `host:port,...` (named edge-1, edge-2, ...).
        #[arg(long)]
        edges: String,
        /// Api-servers, same form (named api-1, ...).
        #[arg(long)]
        apis: String,
        #[arg(long, default_value_t = haproxy::DEFAULT_MAXCONN)]
        maxconn: u32,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Run => run(),
        Cmd::RenderHaproxy {
            bind,
            socket,
            edges,
            apis,
            maxconn,
            out,
        } => {
            let text = haproxy::render(&HaproxyConfig {
                bind,
                stats_socket: socket,
                maxconn,
                edges: haproxy::parse_servers(&edges, "edge"),
                apis: haproxy::parse_servers(&apis, "api"),
                global: Vec::new(),
                defaults: Vec::new(),
            });
            match out {
                Some(path) => std::fs::write(path, text)?,
                None => print!("{text}"),
            }
            Ok(())
        }
    }
}

fn run() -> anyhow::Result<()> {
    let opts = Options::from_env()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut cluster = tokio::select! {
            c = Cluster::start(opts) => c?,
            // Dropping the half-started cluster stops what it started.
            _ = sigint.recv() => return Ok(()),
            _ = sigterm.recv() => return Ok(()),
        };
        print_urls(&cluster);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = sigint.recv() => break,
                _ = sigterm.recv() => break,
                _ = tick.tick() => {
                    for (id, status) in cluster.poll_exits() {
                        println!("[exit]  {id:<9} {status} (see {}/logs/{id}.log)",
                            cluster.data_dir().display());
                    }
                }
            }
        }
        println!("stopping (edges drain first)...");
        tokio::task::block_in_place(|| cluster.stop());
        println!("stopped");
        Ok(())
    })
}

fn print_urls(c: &Cluster) {
    let url = c.http_url();
    println!();
    println!("  web client    {url}/");
    println!("  websocket     {}", c.ws_url());
    println!("  api           {url}/api");
    println!("  health        {url}/health");
    println!("  haproxy stats {url}/haproxy?stats");
    match c.redis_nodes().first() {
        Some(first) => {
            let p = first.port;
            println!("  redis cluster redis-cli -c -p {p} cluster nodes");
            println!(
                "  topics        redis-cli --cluster call 127.0.0.1:{p} pubsub shardnumsub channel-5"
            );
        }
        None => {
            let redis = c.redis_url().trim_start_matches("redis://");
            let (host, port) = redis.split_once(':').unwrap_or((redis, "6379"));
            let port = port.split('/').next().unwrap_or(port);
            println!("  topics        redis-cli -h {host} -p {port} pubsub channels 'channel-*'");
        }
    }
    println!(
        "  processes     {}/cluster.json  (logs in {}/logs/)",
        c.data_dir().display(),
        c.data_dir().display()
    );
    println!("Ctrl-C stops everything.");
}
