//! Logging: one `tracing` subscriber for the whole process, filtered by
//! `SPOOKY_LOG` (the `log` setting), writing to stderr.
//!
//! Installed once by the binary. Tests do not call it (many in-process servers
//! share one test process); they may call [`try_init`] to see logs.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

/// The SurrealDB SDK's own attempt to end a LIVE query when its stream is
/// dropped. In 3.3.5 it runs on a clone of the client, which is a new session
/// with no namespace, so it always fails with "Specify a namespace to use"
/// and logs a WARN. SSP ends every LIVE query it drops itself, with `KILL` on
/// its own session (`sources::live::kill`, which warns when that fails), so
/// these lines are noise; a filter that names this target keeps control.
const SDK_DROP_KILL: &str = "surrealdb::method::live";

/// `filter` with the SDK's failing drop-kill WARN silenced, unless the filter
/// says something about that target itself.
fn with_defaults(filter: &str) -> String {
    if filter.contains(SDK_DROP_KILL) {
        filter.to_string()
    } else if filter.trim().is_empty() {
        format!("{SDK_DROP_KILL}=error")
    } else {
        format!("{filter},{SDK_DROP_KILL}=error")
    }
}

/// Installs the global subscriber with `filter` (e.g. `info`, `ssp=debug`).
///
/// Returns an error when a subscriber is already installed or the filter does
/// not parse; the filter was already checked when the settings were loaded.
pub fn try_init(filter: &str) -> Result<(), String> {
    let filter =
        EnvFilter::try_new(with_defaults(filter)).map_err(|e| format!("SPOOKY_LOG: {e}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_drop_kill_warn_is_silenced_unless_named() {
        assert_eq!(with_defaults("info"), "info,surrealdb::method::live=error");
        assert_eq!(
            with_defaults("surrealdb::method::live=warn,info"),
            "surrealdb::method::live=warn,info"
        );
        for f in ["info", "ssp=debug,warn", ""] {
            assert!(EnvFilter::try_new(with_defaults(f)).is_ok(), "{f}");
        }
    }
}
