//! The `leadbus` command line.

mod bench;
mod dlq;
mod load;
mod load_prep;
mod publish;
mod reprocess;
mod run;
mod servers;
mod signals;
mod token;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use leadbus_shared::Config;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's allocator: the event path allocates small buffers on every
/// message, and glibc's malloc and free took about 8% of the services' CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// leadbus: CRM lead events in, real-time intelligence out.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file; `LEADBUS_*` variables override it.
    #[arg(long, global = true, env = "LEADBUS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole platform in one process, starting nats-server and redis-server when
    /// none answers at the configured addresses.
    Run,
    /// Run only the inference service.
    Inference,
    /// Run only the gateway.
    Gateway,
    /// Publish a leads CSV as events, receive the intelligence over the gateway's WebSocket,
    /// and report what arrived (counts, AUC, latency).
    Load(load::LoadArgs),
    /// Publish one lead event.
    Publish(publish::PublishArgs),
    /// Read dead letters and re-inject them.
    Dlq(dlq::DlqArgs),
    /// Reprocess a time range of LEAD_EVENTS at low priority (results marked replay: true).
    Replay(reprocess::ReplayArgs),
    /// Rebuild lead profiles and the Redis cache from LEAD_EVENTS (run with inference stopped).
    Rebuild(reprocess::RebuildArgs),
    /// Fit a model from a CSV and write its artifact.
    Train(train::TrainArgs),
    /// Mint a development token for a tenant.
    Token(token::TokenArgs),
    /// Benchmark the platform against raw JetStream (see README, Benchmarks).
    Bench(bench::BenchArgs),
}

fn init_tracing(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = !matches!(
        cli.command,
        Command::Run | Command::Inference | Command::Gateway
    );
    init_tracing(if quiet { "warn" } else { "info" });
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(error) => {
            eprintln!("leadbus: {error}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Run => {
            run::run(
                config,
                run::Parts {
                    servers: true,
                    inference: true,
                    gateway: true,
                },
            )
            .await
        }
        Command::Inference => {
            run::run(
                config,
                run::Parts {
                    servers: false,
                    inference: true,
                    gateway: false,
                },
            )
            .await
        }
        Command::Gateway => {
            run::run(
                config,
                run::Parts {
                    servers: false,
                    inference: false,
                    gateway: true,
                },
            )
            .await
        }
        Command::Load(args) => load::run(&config, args).await,
        Command::Publish(args) => publish::run(&config, args).await,
        Command::Dlq(args) => dlq::run(&config, args).await,
        Command::Replay(args) => reprocess::replay(&config, args).await,
        Command::Rebuild(args) => reprocess::rebuild(&config, args).await,
        Command::Train(args) => train::run(&config, args),
        Command::Token(args) => token::run(&config, args),
        Command::Bench(args) => bench::run(&config, args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("leadbus: {}", error_chain(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each cause said once: many errors already name their cause in
/// their own message, and printing the chain after them would repeat it.
fn error_chain(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    /// Names its cause in its message and also returns it as its source.
    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot read f: {}", self.0)
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = anyhow::Error::new(Outer(io)).context("loading leads");
        assert_eq!(
            error_chain(&error),
            "loading leads: cannot read f: no such file"
        );
    }
}
