//! Logging: one `tracing` subscriber for the whole process, filtered by
//! `SPOOKY_LOG` (the `log` setting), writing to stderr.
//!
//! Installed once by the binary. Tests do not call it (many in-process servers
//! share one test process); they may call [`try_init`] to see logs.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

/// Installs the global subscriber with `filter` (e.g. `info`, `ssp=debug`).
///
/// Returns an error when a subscriber is already installed or the filter does
/// not parse; the filter was already checked when the settings were loaded.
pub fn try_init(filter: &str) -> Result<(), String> {
    let filter = EnvFilter::try_new(filter).map_err(|e| format!("SPOOKY_LOG: {e}"))?;
    tracing_subscriber::registry()
        .with(filter)
        .with(
            fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(true),
        )
        .try_init()
        .map_err(|e| e.to_string())
}
