//! Logging: one `tracing` subscriber for the whole process, filtered by
//! `SPOOKY_LOG` (the `log` setting), writing to stderr.
//!
//! A bare level in the filter is for SSP's own lines: `info` shows SSP's
//! INFO lines, not the ~20 that SurrealDB and SurrealKV print at every start
//! (see [`with_defaults`]).
//!
//! Installed once by the binary. Tests do not call it (many in-process servers
//! share one test process); they may call [`try_init`] to see logs.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

/// The targets whose lines are SSP's own: the library (`ssp::...`), the
/// `ssp` binary (whose crate is also `ssp`), `ssp-bench`, and the request
/// traces of the HTTP server (tower-http's `TraceLayer`, which logs each
/// request under `tower_http::trace::...`).
pub const OWN_TARGETS: &[&str] = &["ssp", "ssp_bench", "tower_http::trace"];

/// The level dependencies stay at when the filter gives only a bare level:
/// SurrealDB and SurrealKV print ~20 INFO lines of their internals at every
/// start, which are not SSP's to report.
const DEPENDENCY_LEVEL: LevelFilter = LevelFilter::WARN;

/// The SurrealDB SDK's own attempt to end a LIVE query when its stream is
/// dropped. In 3.3.5 it runs on a clone of the client, which is a new session
/// with no namespace, so it always fails with "Specify a namespace to use"
/// and logs a WARN. SSP ends every LIVE query it drops itself, with `KILL` on
/// its own session (`sources::live::kill`, which warns when that fails), so
/// these lines are noise; a filter that names this target keeps control.
const SDK_DROP_KILL: &str = "surrealdb::method::live";

/// The filter SSP installs for the `log` setting (`SPOOKY_LOG`).
///
/// - A bare level more verbose than `warn` (`info`, `debug`, `trace`) is for
///   SSP's own lines ([`OWN_TARGETS`]); everything else stays at `warn`:
///   `info` becomes `warn,ssp=info,ssp_bench=info,tower_http::trace=info`.
///   An own target the filter names itself keeps the filter's level, and a
///   dependency the filter names gets its level (`info,surrealdb=debug`).
///   A bare `warn`, `error` or `off` applies to everything, as before.
/// - The SDK's failing drop-kill WARN is silenced (that target at `error`,
///   or `off` when the bare level is `off`) unless the filter says
///   something about that target itself.
///
/// Directives are split on `,` the way `EnvFilter` splits them; anything
/// that is not a bare level is kept as written.
pub fn with_defaults(filter: &str) -> String {
    let named: Vec<&str> = filter
        .split(',')
        .map(|d| directive_target(d.trim()))
        .filter(|t| !t.is_empty())
        .collect();
    let mut directives: Vec<String> = Vec::new();
    let mut bare = None;
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        match directive.parse::<LevelFilter>() {
            Ok(level) if level > DEPENDENCY_LEVEL => {
                bare = Some(level);
                directives.push(DEPENDENCY_LEVEL.to_string());
                for target in OWN_TARGETS.iter().filter(|t| !named.contains(t)) {
                    directives.push(format!("{target}={level}"));
                }
            }
            Ok(level) => {
                bare = Some(level);
                directives.push(directive.to_owned());
            }
            Err(_) => directives.push(directive.to_owned()),
        }
    }
    if !filter.contains(SDK_DROP_KILL) {
        // `error` silences the WARN; under `off` it would turn errors on.
        let level = bare.map_or(LevelFilter::ERROR, |b| b.min(LevelFilter::ERROR));
        directives.push(format!("{SDK_DROP_KILL}={level}"));
    }
    directives.join(",")
}

/// The target a directive names for all of it (`ssp` in `ssp=debug` or a
/// bare `ssp`), or "" for a bare level or a directive limited to a span
/// (`ssp[request]=debug` leaves `ssp` outside that span to the bare level).
fn directive_target(directive: &str) -> &str {
    if directive.contains('[') {
        return "";
    }
    let target = directive.split('=').next().unwrap_or_default().trim();
    if !directive.contains('=') && target.parse::<LevelFilter>().is_ok() {
        ""
    } else {
        target
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
    use std::sync::{Arc, Mutex};

    use tracing::{Event, Subscriber};
    use tracing_subscriber::layer::{Context, Layer};

    use super::*;

    #[test]
    fn a_bare_level_is_for_ssp_and_dependencies_stay_at_warn() {
        assert_eq!(
            with_defaults("info"),
            "warn,ssp=info,ssp_bench=info,tower_http::trace=info,surrealdb::method::live=error"
        );
        assert_eq!(
            with_defaults("DEBUG"),
            "warn,ssp=debug,ssp_bench=debug,tower_http::trace=debug,surrealdb::method::live=error"
        );
        // A dependency the filter names keeps its level.
        assert_eq!(
            with_defaults("info,surrealdb=debug"),
            "warn,ssp=info,ssp_bench=info,tower_http::trace=info,surrealdb=debug,surrealdb::method::live=error"
        );
        // An own target the filter names is not given the bare level too.
        assert_eq!(
            with_defaults("ssp=debug, info"),
            "ssp=debug,warn,ssp_bench=info,tower_http::trace=info,surrealdb::method::live=error"
        );
        // ... unless only within a span.
        assert_eq!(
            with_defaults("info,ssp[request]=debug"),
            "warn,ssp=info,ssp_bench=info,tower_http::trace=info,ssp[request]=debug,surrealdb::method::live=error"
        );
        // warn and quieter: for everything, as written.
        for level in ["warn", "error"] {
            assert_eq!(
                with_defaults(level),
                format!("{level},surrealdb::method::live=error")
            );
        }
        assert_eq!(with_defaults("off"), "off,surrealdb::method::live=off");
        // No bare level: nothing to expand.
        assert_eq!(
            with_defaults("ssp=debug"),
            "ssp=debug,surrealdb::method::live=error"
        );
    }

    #[test]
    fn the_sdk_drop_kill_warn_is_silenced_unless_named() {
        assert_eq!(with_defaults(""), "surrealdb::method::live=error");
        assert_eq!(
            with_defaults("surrealdb::method::live=warn,info"),
            "surrealdb::method::live=warn,warn,ssp=info,ssp_bench=info,tower_http::trace=info"
        );
        for f in [
            "info",
            "ssp=debug,warn",
            "",
            "trace",
            "info,surrealdb=debug",
            "ssp[request]=debug,info",
            "ssp",
        ] {
            assert!(EnvFilter::try_new(with_defaults(f)).is_ok(), "{f}");
        }
    }

    /// Records `target LEVEL` of every event that gets through the filter.
    struct Record(Arc<Mutex<Vec<String>>>);

    impl<S: Subscriber> Layer<S> for Record {
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            let meta = event.metadata();
            let line = format!("{} {}", meta.target(), meta.level());
            self.0.lock().unwrap().push(line);
        }
    }

    /// Which of a fixed set of events the installed filter for `filter` lets
    /// through, as `target LEVEL`.
    fn passes(filter: &str) -> Vec<String> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry()
            .with(EnvFilter::try_new(with_defaults(filter)).expect("parses"))
            .with(Record(Arc::clone(&seen)));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "ssp", "e");
            tracing::debug!(target: "ssp", "e");
            tracing::info!(target: "ssp::startup", "e");
            tracing::debug!(target: "ssp::startup", "e");
            tracing::info!(target: "ssp_bench", "e");
            tracing::debug!(target: "tower_http::trace::on_response", "e");
            tracing::info!(target: "surrealdb::core::kvs::ds", "e");
            tracing::debug!(target: "surrealdb::core", "e");
            tracing::info!(target: "surrealkv", "e");
            tracing::warn!(target: "surrealkv", "e");
            tracing::warn!(target: "surrealdb::method::live", "e");
            tracing::error!(target: "surrealdb::method::live", "e");
        });
        seen.lock().unwrap().clone()
    }

    #[test]
    fn what_each_filter_lets_through() {
        assert_eq!(
            passes("info"),
            [
                "ssp INFO",
                "ssp::startup INFO",
                "ssp_bench INFO",
                "surrealkv WARN",
                "surrealdb::method::live ERROR",
            ]
        );
        assert_eq!(
            passes("debug"),
            [
                "ssp INFO",
                "ssp DEBUG",
                "ssp::startup INFO",
                "ssp::startup DEBUG",
                "ssp_bench INFO",
                "tower_http::trace::on_response DEBUG",
                "surrealkv WARN",
                "surrealdb::method::live ERROR",
            ]
        );
        assert_eq!(
            passes("info,surrealdb=debug"),
            [
                "ssp INFO",
                "ssp::startup INFO",
                "ssp_bench INFO",
                "surrealdb::core::kvs::ds INFO",
                "surrealdb::core DEBUG",
                "surrealkv WARN",
                "surrealdb::method::live ERROR",
            ]
        );
        assert_eq!(
            passes("info,surrealkv=info,surrealdb::method::live=warn"),
            [
                "ssp INFO",
                "ssp::startup INFO",
                "ssp_bench INFO",
                "surrealkv INFO",
                "surrealkv WARN",
                "surrealdb::method::live WARN",
                "surrealdb::method::live ERROR",
            ]
        );
        assert_eq!(
            passes("ssp::startup=debug,info"),
            [
                "ssp INFO",
                "ssp::startup INFO",
                "ssp::startup DEBUG",
                "ssp_bench INFO",
                "surrealkv WARN",
                "surrealdb::method::live ERROR",
            ]
        );
        assert_eq!(
            passes("warn"),
            ["surrealkv WARN", "surrealdb::method::live ERROR"]
        );
        assert_eq!(passes("error"), ["surrealdb::method::live ERROR"]);
        assert!(passes("off").is_empty());
    }
}
