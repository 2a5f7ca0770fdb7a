//! `culao`: the command line of a culao box. It parses arguments and configuration and calls
//! the crates; nothing else lives here.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use culao_node::config::{Config, DEFAULT_CONFIG, PeerConfig};
use tracing_subscriber::EnvFilter;

/// A culao box: an offline-first replica of an island district's records.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a box. With no arguments: data in ./culao-data, HTTP on 127.0.0.1:7070.
    Up(UpArgs),
    /// Print this box's node id, creating its identity if needed.
    Id {
        /// Data directory holding identity.key.
        #[arg(long, default_value = "./culao-data")]
        data_dir: PathBuf,
    },
    /// Print the commented default configuration.
    Config,
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    /// TOML configuration file (see `culao config`); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory (store and identity key).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// HTTP listen address, e.g. 127.0.0.1:7070 (port 0 picks a free one).
    #[arg(long)]
    http: Option<SocketAddr>,
    /// Sync (QUIC, UDP) listen address, e.g. 0.0.0.0:7071.
    #[arg(long)]
    sync: Option<SocketAddr>,
    /// A peer to keep in sync with, as NODE_ID@HOST:PORT; repeat for several.
    #[arg(long = "peer", value_name = "NODE_ID@HOST:PORT")]
    peers: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Config => {
            std::io::stdout().write_all(DEFAULT_CONFIG.as_bytes())?;
            Ok(())
        }
        Command::Id { data_dir } => {
            let identity = culao_node::identity::load_or_create(&data_dir)?;
            writeln!(std::io::stdout(), "{}", identity.node_id())?;
            Ok(())
        }
        Command::Up(args) => up(args),
    }
}

fn config_from(args: UpArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(http) = args.http {
        config.http.listen = http;
    }
    if let Some(sync) = args.sync {
        config.sync.listen = sync;
    }
    for peer in &args.peers {
        config.sync.peers.push(peer.parse::<PeerConfig>()?);
    }
    config.validate()?;
    Ok(config)
}

fn up(args: UpArgs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_env("CULAO_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,iroh=warn,noq=warn,noq_proto=warn,sled=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let config = config_from(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let data_dir = config.data_dir.clone();
        let node = culao_node::start(config)
            .await
            .with_context(|| format!("cannot start the box in {}", data_dir.display()))?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "node id  {}", node.node_id)?;
        writeln!(out, "http     http://{}", node.http_addr)?;
        for addr in &node.sync_addrs {
            writeln!(out, "sync     {addr}")?;
        }
        writeln!(
            out,
            "peer     {}@{}",
            node.node_id,
            node.sync_addrs
                .first()
                .map(ToString::to_string)
                .unwrap_or_default()
        )?;
        out.flush()?;
        drop(out);

        wait_for_signal().await?;
        tracing::info!("stopping");
        node.shutdown().await;
        Ok(())
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot watch SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
