//! `culao`: the command line of a culao box. It parses arguments and configuration and calls
//! the crates; nothing else lives here.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use culao_node::config::{Config, DEFAULT_CONFIG, PeerConfig};

mod allocator;
mod logs;

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
    /// Manage a network: its authority key (kept off the boxes) and TLS CA.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Enroll and revoke boxes of a network.
    #[command(subcommand)]
    Provision(ProvisionCommand),
    /// Run the network simulator: the island in virtual time (see docs/sim.md).
    #[command(subcommand)]
    Sim(SimCommand),
}

#[derive(Debug, Subcommand)]
enum SimCommand {
    /// Run one scenario with one seed; writes report.json and report.html. Exits non-zero if
    /// a check failed (the reports are written first).
    Run {
        /// Scenario file, optionally with a variant: sim/scenarios/phu-quy.toml#holiday.
        file: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Directory for the reports.
        #[arg(long)]
        out: PathBuf,
        /// No progress on stderr (for CI).
        #[arg(long)]
        quiet: bool,
    },
    /// Run a scenario over many seeds, and optionally over values of one parameter; writes
    /// every run's reports and a summary, sweep.json.
    Sweep {
        /// Scenario file, optionally with a variant.
        file: PathBuf,
        /// Seeds as FIRST..END (END excluded), e.g. 1..21.
        #[arg(long, default_value = "1..11")]
        seeds: String,
        /// A dotted parameter path, e.g. faults.0.for_h (the length of the first fault).
        #[arg(long, requires = "values")]
        param: Option<String>,
        /// Values of the parameter, comma-separated, e.g. 24,48,72.
        #[arg(long, value_delimiter = ',', requires = "param")]
        values: Vec<f64>,
        /// Directory for the reports.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum NetworkCommand {
    /// Create a network: its authority key and TLS CA, sealed with a passphrase.
    Init {
        /// Directory to create the network in (missing or empty).
        #[arg(long)]
        dir: PathBuf,
        /// The network's name, e.g. phu-quy.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        passphrase: PassphraseArg,
    },
}

#[derive(Debug, Subcommand)]
enum ProvisionCommand {
    /// Make a box's enrollment bundle: identity, certificate, peers, TLS material.
    Node {
        /// The network directory made by `culao network init`.
        #[arg(long)]
        network: PathBuf,
        /// hub, port, commune, clinic, resort, school or ferry.
        #[arg(long)]
        role: String,
        /// The box's site, e.g. tam-thanh-commune-hall.
        #[arg(long)]
        site: String,
        /// Directory to write the bundle to (missing or empty).
        #[arg(long)]
        out: PathBuf,
        /// Where the box will listen for sync (goes into peers' bundles and its TLS names).
        #[arg(long = "listen", value_name = "ADDR")]
        listen: Vec<SocketAddr>,
        /// An enrolled box this one dials, as NODE_ID@HOST:PORT; repeat for several.
        #[arg(long = "peer", value_name = "NODE_ID@HOST:PORT")]
        peers: Vec<String>,
        /// Days the certificate is valid.
        #[arg(long, default_value_t = provisioning::enroll::DEFAULT_VALIDITY_DAYS)]
        days: u32,
        #[command(flatten)]
        passphrase: PassphraseArg,
    },
    /// Make a site device's MQTT credentials: a client certificate that holds it to
    /// /tenants/NAME/ on the site box's broker, its key, the network CA and a password.
    /// Prints the line to add to the box's mqtt.server.users_file.
    Device {
        /// The network directory.
        #[arg(long)]
        network: PathBuf,
        /// The device's name and topic root: 1 to 24 of a-z, 0-9, unique in the network.
        #[arg(long)]
        name: String,
        /// gate, reader or speaker.
        #[arg(long)]
        class: String,
        /// The site whose box it talks to.
        #[arg(long)]
        site: String,
        /// Directory to write the credentials to (missing or empty).
        #[arg(long)]
        out: PathBuf,
        /// Also append the login line to this users file (the site box's
        /// mqtt.server.users_file).
        #[arg(long)]
        users_file: Option<PathBuf>,
        /// Days the certificate is valid.
        #[arg(long, default_value_t = 365)]
        days: u32,
        #[command(flatten)]
        passphrase: PassphraseArg,
    },
    /// Revoke a box; prints the network's revocation list, to hand to any box
    /// (`POST /v1/revocations`), from which it spreads to the others.
    Revoke {
        /// The network directory.
        #[arg(long)]
        network: PathBuf,
        /// The node id of the box to revoke.
        node: String,
        #[command(flatten)]
        passphrase: PassphraseArg,
    },
}

#[derive(Debug, clap::Args)]
struct PassphraseArg {
    /// Read the authority's passphrase from this file's first line instead of stdin.
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
}

impl PassphraseArg {
    fn read(&self) -> anyhow::Result<provisioning::Passphrase> {
        match &self.passphrase_file {
            Some(path) => Ok(provisioning::Passphrase::from_file(path)?),
            None => {
                eprint!("authority passphrase: ");
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("cannot read the passphrase from stdin")?;
                Ok(provisioning::Passphrase::new(
                    line.trim_end_matches(['\r', '\n']).to_owned(),
                ))
            }
        }
    }
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
    /// Also serve the API over HTTPS here, with the bundle's TLS certificate.
    #[arg(long)]
    https: Option<SocketAddr>,
    /// Sync (QUIC, UDP) listen address, e.g. 0.0.0.0:7071.
    #[arg(long)]
    sync: Option<SocketAddr>,
    /// A peer to keep in sync with, as NODE_ID@HOST:PORT; repeat for several.
    #[arg(long = "peer", value_name = "NODE_ID@HOST:PORT")]
    peers: Vec<String>,
    /// Run enrolled from this bundle (`culao provision node`). Without one the box runs
    /// open, for development: it syncs only with other open boxes.
    #[arg(long)]
    bundle: Option<PathBuf>,
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
        Command::Up(args) => {
            allocator::lean_for_a_box();
            up(args)
        }
        Command::Network(command) => network(command),
        Command::Provision(command) => provision(command),
        Command::Sim(command) => sim(command),
    }
}

fn sim(command: SimCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        SimCommand::Run {
            file,
            seed,
            out: dir,
            quiet,
        } => {
            let summary = culao_sim::run_file(&file, seed, &dir, !quiet)?;
            writeln!(
                out,
                "{} seed {}: {:.0} s simulated, {} writes, {} messages; every check passed",
                summary.scenario,
                summary.seed,
                summary.simulated_s,
                summary.writes,
                summary.messages
            )?;
            writeln!(out, "report   {}", summary.report_html.display())?;
            writeln!(out, "json     {}", summary.report_json.display())?;
        }
        SimCommand::Sweep {
            file,
            seeds,
            param,
            values,
            out: dir,
        } => {
            let (first, end) = seeds
                .split_once("..")
                .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
                .filter(|(a, b)| a < b)
                .ok_or_else(|| {
                    anyhow::anyhow!("--seeds {seeds:?}: expected FIRST..END with FIRST < END")
                })?;
            let summary = culao_sim::sweep(&file, first..end, param.map(|p| (p, values)), &dir)?;
            let mut failed = 0;
            for point in &summary.points {
                failed += point.failed.len();
                let value = point.value.map_or("-".to_owned(), |v| v.to_string());
                writeln!(
                    out,
                    "{value:>8}  runs {:>3}  failed {:>3}  worst p95 lag {:>8.0} s  msgs/write {:>6.1}",
                    point.runs,
                    point.failed.len(),
                    point.lag_p95_worst_scope_median_s,
                    point.messages_per_write_mean
                )?;
            }
            writeln!(out, "summary  {}", summary.summary_json.display())?;
            if failed > 0 {
                anyhow::bail!(
                    "{failed} runs failed a check; see {}",
                    summary.summary_json.display()
                );
            }
        }
    }
    Ok(())
}

fn now_unix_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn network(command: NetworkCommand) -> anyhow::Result<()> {
    let NetworkCommand::Init {
        dir,
        name,
        passphrase,
    } = command;
    let name: provisioning::NetworkName = name.parse()?;
    let network = provisioning::NetworkDir::init(&dir, &name, &passphrase.read()?, now_unix_s())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "network  {} ({})", network.name(), network.id())?;
    writeln!(out, "dir      {}", dir.display())?;
    writeln!(out, "keep the passphrase and this directory off the boxes")?;
    Ok(())
}

fn provision(command: ProvisionCommand) -> anyhow::Result<()> {
    match command {
        ProvisionCommand::Node {
            network,
            role,
            site,
            out,
            listen,
            peers,
            days,
            passphrase,
        } => {
            let network = provisioning::NetworkDir::open(&network)?;
            let authority = network.unlock(&passphrase.read()?)?;
            let request = provisioning::EnrollRequest {
                role: role.parse()?,
                site: site.parse()?,
                validity_days: days,
                listen,
                peers: peers
                    .iter()
                    .map(|p| p.parse::<provisioning::PeerSpec>())
                    .collect::<Result<_, _>>()?,
                now_unix_s: now_unix_s(),
            };
            let bundle = provisioning::enroll(&authority, &request)?;
            bundle.write_to(&out)?;
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "node id  {}", bundle.node_id())?;
            writeln!(stdout, "bundle   {}", out.display())?;
            writeln!(stdout, "run it   culao up --bundle {}", out.display())?;
            Ok(())
        }
        ProvisionCommand::Device {
            network,
            name,
            class,
            site,
            out,
            users_file,
            days,
            passphrase,
        } => {
            let request = provisioning::DeviceRequest {
                name: name.parse()?,
                class: class.parse()?,
                site: site.parse()?,
                validity_days: days,
                now_unix_s: now_unix_s(),
            };
            let network = provisioning::NetworkDir::open(&network)?;
            let authority = network.unlock(&passphrase.read()?)?;
            let device = provisioning::issue_device(&authority, &request)?;
            device.write_to(&out)?;
            if let Some(path) = &users_file {
                device.add_to_users_file(path)?;
            }
            let mut stdout = std::io::stdout().lock();
            writeln!(
                stdout,
                "device       {} ({} at {})",
                device.name, device.class, device.site
            )?;
            writeln!(stdout, "credentials  {}", out.display())?;
            writeln!(stdout, "topics       {}#", device.name.topic_root())?;
            match &users_file {
                Some(path) => writeln!(stdout, "users file   {} (line added)", path.display())?,
                None => writeln!(stdout, "users line   {}", device.users_line())?,
            }
            Ok(())
        }
        ProvisionCommand::Revoke {
            network,
            node,
            passphrase,
        } => {
            let network = provisioning::NetworkDir::open(&network)?;
            let authority = network.unlock(&passphrase.read()?)?;
            let node: crdt_model::NodeId = node
                .parse()
                .map_err(|e| anyhow::anyhow!("node id {node:?}: {e}"))?;
            provisioning::revoke(&authority, &node, now_unix_s())?;
            let list = authority.network().revocations()?;
            std::io::stdout().write_all(list.to_armored().as_bytes())?;
            Ok(())
        }
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
    if let Some(https) = args.https {
        config.http.tls_listen = Some(https);
    }
    if let Some(sync) = args.sync {
        config.sync.listen = sync;
    }
    if let Some(bundle) = args.bundle {
        config.bundle = Some(bundle);
    }
    for peer in &args.peers {
        config.sync.peers.push(peer.parse::<PeerConfig>()?);
    }
    config.validate()?;
    Ok(config)
}

fn up(args: UpArgs) -> anyhow::Result<()> {
    logs::init();

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
        if let Some(addr) = node.https_addr {
            writeln!(out, "https    https://{addr}")?;
        }
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
