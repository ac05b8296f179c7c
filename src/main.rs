//! The `ssp` binary: `ssp` / `ssp serve` runs the server, `ssp migrate`
//! applies the migrations and exits.
//!
//! Any error ends the process with ONE line on stderr and exit code 1: an
//! operator with a typo in a setting should read what to fix, not a panic or
//! a backtrace.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ssp::config::Settings;
use ssp::startup::{self, Application};

/// Spooky Stream Processor: live SurrealQL views kept up to date incrementally.
#[derive(Debug, Parser)]
#[command(name = "ssp", version, about)]
struct Cli {
    /// Settings file (TOML). Default: ./config.toml if it exists.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the server (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
}

/// glibc's malloc was ~40% of SSP's CPU per ingest in the `ws://` profile
/// (small, short-lived buffers on every request and SDK call).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    startup::disable_transparent_huge_pages();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Our errors carry their causes in their own message, so the top one says it all.
            let message = error.to_string();
            let one_line = message.split_whitespace().collect::<Vec<_>>().join(" ");
            eprintln!("ssp: error: {one_line}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    // Only fails if a subscriber is already installed, which cannot happen here.
    let _ = ssp::telemetry::try_init(&settings.log);
    let runtime = startup::runtime(None)
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;

    let command = cli.command.unwrap_or(Command::Serve);
    // The work runs as a task on a worker thread (big stack, see
    // `startup::runtime`), not on the main thread that blocks on it.
    runtime.block_on(async move {
        let result = tokio::spawn(execute(command, settings))
            .await
            .map_err(|e| anyhow::anyhow!("the server task failed: {e}"))?;
        // Let the embedded SurrealDB finish closing its datastore before the
        // runtime (and every task on it) is dropped.
        let left = startup::wait_for_background_tasks(startup::BACKGROUND_TASKS_GRACE).await;
        if left > 0 {
            tracing::debug!(tasks = left, "tasks still running at exit");
        }
        result
    })
}

async fn execute(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = Application::build(settings).await?;
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            let report = startup::migrate_only(&settings).await?;
            let list = |names: &[String]| {
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            };
            println!(
                "migrations applied: {}; already applied: {}",
                list(&report.applied),
                list(&report.skipped)
            );
        }
    }
    Ok(())
}
