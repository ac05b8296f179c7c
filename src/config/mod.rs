//! Settings: what SSP reads before it does anything else.
//!
//! Layers, later wins:
//!
//! 1. built-in defaults (the one-command start works with no file at all);
//! 2. the TOML file (`--config PATH`, else `./config.toml` if it exists);
//! 3. the `SPOOKY_*` environment variables, mapped
//!    explicitly in [`ENV_VARS`] rather than by the `config` crate's naming
//!    convention, so that `SPOOKY_SURREALDB_URL` means `surrealdb.url` exactly
//!    and nothing else slips in.
//!
//! The raw layers are deserialised into [`RawSettings`] and then validated
//! into [`Settings`], whose fields are already parsed (addresses, durations,
//! the database endpoint). Every validation error names the setting, both as
//! its environment variable and as its TOML key, because that is what the
//! operator has to change.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "config.toml";

/// The contract's environment variables (plus SSP's own extras), each with the
/// TOML key it overrides.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("SPOOKY_LISTEN_ADDR", "listen_addr"),
    ("SPOOKY_AUTH_SECRET", "auth_secret"),
    ("SPOOKY_SURREALDB_URL", "surrealdb.url"),
    ("SPOOKY_SURREALDB_NS", "surrealdb.ns"),
    ("SPOOKY_SURREALDB_DB", "surrealdb.db"),
    ("SPOOKY_SURREALDB_USER", "surrealdb.user"),
    ("SPOOKY_SURREALDB_PASS", "surrealdb.pass"),
    ("SPOOKY_PERSISTENCE_FILE", "persistence_file"),
    ("SPOOKY_SAVE_DEBOUNCE_MS", "save_debounce_ms"),
    ("SPOOKY_LOG", "log"),
    // Extras, not in the contract's table but settable the same way.
    ("SPOOKY_BODY_LIMIT_BYTES", "body_limit_bytes"),
    ("SPOOKY_WRITE_CONCURRENCY", "write_concurrency"),
    (
        "SPOOKY_SURREALDB_CONNECT_DEADLINE_MS",
        "surrealdb.connect_deadline_ms",
    ),
    (
        "SPOOKY_SURREALDB_CALL_TIMEOUT_MS",
        "surrealdb.call_timeout_ms",
    ),
    ("SPOOKY_WORKER_TABLES", "worker.tables"),
    ("SPOOKY_WORKER_CHANGEFEED", "worker.changefeed"),
    (
        "SPOOKY_WORKER_CHANGEFEED_RETENTION",
        "worker.changefeed_retention",
    ),
    ("SPOOKY_CLUSTER_ENABLED", "cluster.enabled"),
    ("SPOOKY_CLUSTER_NODE_ID", "cluster.node_id"),
    ("SPOOKY_CLUSTER_ADVERTISE_URL", "cluster.advertise_url"),
    ("SPOOKY_CLUSTER_LEASE_MS", "cluster.lease_ms"),
];

/// Built-in defaults, as `(toml key, value)`.
mod defaults {
    pub const LISTEN_ADDR: &str = "127.0.0.1:8667";
    pub const SURREALDB_URL: &str = "surrealkv://data/surreal";
    pub const NS: &str = "spooky";
    pub const DB: &str = "spooky";
    /// Used for `ws://`/`wss://` only, when no user is configured.
    pub const REMOTE_USER: &str = "root";
    pub const REMOTE_PASS: &str = "root";
    pub const PERSISTENCE_FILE: &str = "data/spooky_state.json";
    pub const SAVE_DEBOUNCE_MS: u64 = 2000;
    pub const LOG: &str = "info";
    pub const BODY_LIMIT_BYTES: u64 = 1024 * 1024;
    /// When `write_concurrency` is unset: a SurrealDB server gets a second
    /// transaction in flight; an embedded engine, which runs on SSP's own
    /// threads, one (see `Settings::write_concurrency`).
    pub const WRITE_CONCURRENCY_REMOTE: usize = 2;
    pub const WRITE_CONCURRENCY_EMBEDDED: usize = 1;
    pub const CONNECT_DEADLINE_MS: u64 = 30_000;
    pub const CALL_TIMEOUT_MS: u64 = 10_000;
    pub const CHANGEFEED: &str = "auto";
    pub const CHANGEFEED_RETENTION: &str = "1d";
    /// How long an instance's lease lasts without renewal: how long its
    /// views wait before another instance takes them after a crash.
    pub const CLUSTER_LEASE_MS: u64 = 10_000;
}

/// Why the settings could not be loaded. Each message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file given with `--config` does not exist.
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    /// The file or an override could not be read or had the wrong type.
    #[error("cannot load settings: {0}")]
    Load(#[from] config::ConfigError),
    /// A value was read but is not acceptable.
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        /// The setting, as `ENV_VAR (toml.key)`.
        setting: String,
        /// What is wrong and what is expected.
        reason: String,
    },
}

impl ConfigError {
    fn invalid(toml_key: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            setting: setting_name(toml_key),
            reason: reason.into(),
        }
    }
}

/// `SPOOKY_X (x)`: how a setting is named in messages.
fn setting_name(toml_key: &str) -> String {
    match ENV_VARS.iter().find(|(_, key)| *key == toml_key) {
        Some((env, key)) => format!("{env} ({key})"),
        None => toml_key.to_owned(),
    }
}

/// The settings exactly as the layers gave them, before validation.
#[derive(Debug, Clone, Deserialize)]
pub struct RawSettings {
    pub listen_addr: String,
    pub auth_secret: Option<String>,
    pub persistence_file: String,
    pub save_debounce_ms: u64,
    pub log: String,
    pub body_limit_bytes: u64,
    pub write_concurrency: Option<u64>,
    pub surrealdb: RawDbSettings,
    pub worker: RawWorkerSettings,
    pub cluster: RawClusterSettings,
}

/// `[cluster]` as read.
#[derive(Debug, Clone, Deserialize)]
pub struct RawClusterSettings {
    pub enabled: bool,
    pub node_id: String,
    pub advertise_url: String,
    pub lease_ms: u64,
}

/// `[surrealdb]` as read.
#[derive(Debug, Clone, Deserialize)]
pub struct RawDbSettings {
    pub url: String,
    pub ns: String,
    pub db: String,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub connect_deadline_ms: u64,
    pub call_timeout_ms: u64,
}

/// `[worker]` as read.
#[derive(Debug, Clone, Deserialize)]
pub struct RawWorkerSettings {
    pub tables: Vec<String>,
    pub changefeed: String,
    pub changefeed_retention: String,
}

/// A secret that never shows up in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is really needed.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why a configured bearer secret could never be presented by a client.
///
/// A client sends the secret as `Authorization: Bearer <secret>`. An HTTP
/// header value is visible ASCII (0x21-0x7E) with spaces and tabs between,
/// and whitespace around it is not part of it; `api::auth::bearer_matches`
/// takes everything after the scheme and its space, trimmed. So a secret
/// can be matched exactly when it is non-empty, printable ASCII (0x20-0x7E:
/// visible characters and inner spaces), and neither starts nor ends with a
/// space. Inner spaces are allowed because they do reach SSP intact
/// (`Bearer my long secret` matches `my long secret`); tabs and other
/// control characters are not, and `bearer_matches` refuses a token that
/// breaks the same rule, so the two always agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretProblem {
    /// Empty, or only whitespace.
    Empty,
    /// Whitespace before or after the secret.
    SurroundingWhitespace,
    /// A character outside printable ASCII, at this 1-based position
    /// (the character itself is not shown: it is part of a secret).
    NotPrintableAscii { position: usize },
}

impl fmt::Display for SecretProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretProblem::Empty => f.write_str(
                "the secret is empty; set a non-empty secret or leave it unset to have one generated",
            ),
            SecretProblem::SurroundingWhitespace => f.write_str(
                "the secret starts or ends with whitespace, which no bearer token can carry \
                 (HTTP drops it and SSP trims the token it receives), so every request would get 401; \
                 remove the surrounding whitespace",
            ),
            SecretProblem::NotPrintableAscii { position } => write!(
                f,
                "character {position} of the secret is not printable ASCII; an HTTP header \
                 cannot carry it, so every request would get 401; use only the characters \
                 0x21-0x7E (letters, digits, punctuation), with spaces only between them"
            ),
        }
    }
}

/// Checks that `secret` can be sent as a bearer token (see [`SecretProblem`]).
pub fn check_bearer_secret(secret: &str) -> Result<(), SecretProblem> {
    if secret.trim().is_empty() {
        return Err(SecretProblem::Empty);
    }
    if secret.trim() != secret {
        return Err(SecretProblem::SurroundingWhitespace);
    }
    match secret.chars().position(|c| !matches!(c, ' '..='~')) {
        Some(index) => Err(SecretProblem::NotPrintableAscii {
            position: index + 1,
        }),
        None => Ok(()),
    }
}

/// The bearer secret and where it came from.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub secret: Secret,
    /// True when no secret was configured and SSP made one up for this run:
    /// startup prints it once and warns.
    pub generated: bool,
}

/// Which kind of SurrealDB the URL points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbEndpoint {
    /// A server over `ws://` or `wss://` (the URL as given).
    Remote { url: String },
    /// The in-memory embedded engine (`mem://`): gone when SSP stops.
    Memory,
    /// The embedded SurrealKV engine, stored under this directory.
    SurrealKv { path: PathBuf },
}

impl DbEndpoint {
    /// True for `ws://`/`wss://`.
    pub fn is_remote(&self) -> bool {
        matches!(self, DbEndpoint::Remote { .. })
    }

    /// A short name for logs and `/health`: `ws`, `wss`, `mem` or `surrealkv`.
    pub fn kind(&self) -> &'static str {
        match self {
            DbEndpoint::Remote { url } if url.starts_with("wss://") => "wss",
            DbEndpoint::Remote { .. } => "ws",
            DbEndpoint::Memory => "mem",
            DbEndpoint::SurrealKv { .. } => "surrealkv",
        }
    }

    /// Parses `ws://host:port`, `wss://host:port`, `mem://` or `surrealkv://PATH`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(format!(
                "`{url}` is not a URL; expected ws://HOST:PORT, wss://HOST:PORT, mem:// or surrealkv://PATH"
            ));
        };
        match scheme {
            "ws" | "wss" => {
                let authority = rest.split('/').next().unwrap_or_default();
                if authority.is_empty() {
                    return Err(format!(
                        "`{url}` has no host; expected {scheme}://HOST:PORT"
                    ));
                }
                Ok(DbEndpoint::Remote {
                    url: url.to_owned(),
                })
            }
            "mem" | "memory" => {
                if rest.is_empty() {
                    Ok(DbEndpoint::Memory)
                } else {
                    Err(format!(
                        "`{url}`: the in-memory engine takes no path; use mem://"
                    ))
                }
            }
            "surrealkv" => {
                if rest.is_empty() {
                    Err(format!("`{url}` has no path; expected surrealkv://PATH"))
                } else {
                    Ok(DbEndpoint::SurrealKv {
                        path: PathBuf::from(rest),
                    })
                }
            }
            other => Err(format!(
                "unknown URL scheme `{other}` in `{url}`; expected ws://, wss://, mem:// or surrealkv://PATH"
            )),
        }
    }
}

/// Root credentials for SurrealDB.
#[derive(Debug, Clone)]
pub struct DbCredentials {
    pub user: String,
    pub pass: Secret,
}

/// How to reach SurrealDB.
#[derive(Debug, Clone)]
pub struct DbSettings {
    /// The URL as configured (for messages).
    pub url: String,
    /// The URL, parsed.
    pub endpoint: DbEndpoint,
    pub ns: String,
    pub db: String,
    /// Root credentials. Always set for `ws://`/`wss://` (default root/root);
    /// on an embedded engine only when explicitly configured, and then the
    /// embedded engine runs with authentication on.
    pub credentials: Option<DbCredentials>,
    /// How long the first connect keeps retrying before startup gives up.
    pub connect_deadline: Duration,
    /// The longest any single database call may take.
    pub call_timeout: Duration,
}

/// What the change worker does about SurrealDB change feeds on tracked tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangefeedMode {
    /// Define a change feed on a tracked table when it has none.
    Auto,
    /// Use the change feeds that exist; never alter the schema.
    Manual,
    /// Do not use change feeds (gaps are not filled).
    Off,
}

impl ChangefeedMode {
    fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "auto" => Some(ChangefeedMode::Auto),
            "manual" => Some(ChangefeedMode::Manual),
            "off" => Some(ChangefeedMode::Off),
            _ => None,
        }
    }
}

/// `[worker]`: the change worker's settings.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Tables tracked even when no view reads them.
    pub tables: Vec<String>,
    pub changefeed: ChangefeedMode,
    /// A SurrealDB duration such as `1d` or `12h`, used when SSP defines a
    /// change feed itself.
    pub changefeed_retention: String,
    /// `changefeed_retention`, parsed: a cursor older than this means a resync.
    pub retention: Duration,
}

/// `[cluster]`: several SSP instances sharing the views (see
/// `crate::cluster`). Off by default: then SSP writes no `_spooky_node` row
/// and checks no lease.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub enabled: bool,
    /// This instance's id, unique among the live ones. Unset: a random one
    /// per start (a restarted instance is a new one).
    pub node_id: String,
    /// Where the other instances reach this one's HTTP API.
    pub advertise_url: String,
    /// How long the instance's lease (and so its hold on its views) lasts
    /// unless renewed; it is renewed every third of it.
    pub lease: Duration,
}

/// Validated settings: everything SSP needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen_addr: SocketAddr,
    pub auth: AuthSettings,
    pub persistence_file: PathBuf,
    pub save_debounce: Duration,
    /// A `tracing` filter, e.g. `info`, `debug` or `info,surrealdb=debug`.
    /// A bare level above `warn` is for SSP's own lines, dependencies stay at
    /// `warn` unless named: see `telemetry::with_defaults`.
    pub log: String,
    /// Largest accepted request body, in bytes; larger ones get 413.
    pub body_limit_bytes: usize,
    /// Most group transactions of edges in flight at once (see `pipeline`).
    /// Unset, 2 for a SurrealDB server and 1 embedded: measured on 2 cores
    /// (`ssp-bench`, 32 clients), a second transaction in flight gives ~11%
    /// more ingests/s over `ws://`, where the server works while SSP applies
    /// the next group, and ~10% fewer on an embedded engine, whose work runs
    /// on SSP's own runtime threads and takes the CPU the HTTP side needs.
    pub write_concurrency: usize,
    pub surrealdb: DbSettings,
    pub worker: WorkerSettings,
    pub cluster: ClusterSettings,
}

impl Settings {
    /// Loads settings the way the binary does: the file (explicit `--config`
    /// path, else `./config.toml` if present) and then the process environment.
    pub fn load(config_file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::load_from(config_file, true, &env)
    }

    /// Loads settings from an explicit file and environment map; `use_default_file`
    /// says whether `./config.toml` is read when `config_file` is `None`.
    /// Tests use this to stay independent of the process environment.
    pub fn load_from(
        config_file: Option<&Path>,
        use_default_file: bool,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        Self::validate(Self::load_raw(config_file, use_default_file, env)?)
    }

    /// The layered, unvalidated settings.
    pub fn load_raw(
        config_file: Option<&Path>,
        use_default_file: bool,
        env: &HashMap<String, String>,
    ) -> Result<RawSettings, ConfigError> {
        let mut builder = config::Config::builder()
            .set_default("listen_addr", defaults::LISTEN_ADDR)?
            .set_default("persistence_file", defaults::PERSISTENCE_FILE)?
            .set_default("save_debounce_ms", defaults::SAVE_DEBOUNCE_MS)?
            .set_default("log", defaults::LOG)?
            .set_default("body_limit_bytes", defaults::BODY_LIMIT_BYTES)?
            .set_default("surrealdb.url", defaults::SURREALDB_URL)?
            .set_default("surrealdb.ns", defaults::NS)?
            .set_default("surrealdb.db", defaults::DB)?
            .set_default(
                "surrealdb.connect_deadline_ms",
                defaults::CONNECT_DEADLINE_MS,
            )?
            .set_default("surrealdb.call_timeout_ms", defaults::CALL_TIMEOUT_MS)?
            .set_default("worker.tables", Vec::<String>::new())?
            .set_default("worker.changefeed", defaults::CHANGEFEED)?
            .set_default(
                "worker.changefeed_retention",
                defaults::CHANGEFEED_RETENTION,
            )?
            .set_default("cluster.enabled", false)?
            .set_default("cluster.node_id", "")?
            .set_default("cluster.advertise_url", "")?
            .set_default("cluster.lease_ms", defaults::CLUSTER_LEASE_MS)?;

        match config_file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError::MissingFile(path.to_owned()));
                }
                builder = builder.add_source(
                    config::File::from(path)
                        .format(config::FileFormat::Toml)
                        .required(true),
                );
            }
            None if use_default_file => {
                builder = builder.add_source(
                    config::File::new(DEFAULT_CONFIG_FILE, config::FileFormat::Toml)
                        .required(false),
                );
            }
            None => {}
        }

        for (var, key) in ENV_VARS {
            let Some(value) = env.get(*var) else {
                continue;
            };
            builder = if *key == "worker.tables" {
                let tables: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect();
                builder.set_override(*key, tables)?
            } else {
                builder.set_override(*key, value.as_str())?
            };
        }

        Ok(builder.build()?.try_deserialize::<RawSettings>()?)
    }

    /// Checks and parses the raw layers.
    pub fn validate(raw: RawSettings) -> Result<Self, ConfigError> {
        let listen_addr: SocketAddr = raw.listen_addr.trim().parse().map_err(|_| {
            ConfigError::invalid(
                "listen_addr",
                format!(
                    "`{}` is not an IP:PORT address such as 127.0.0.1:8667",
                    raw.listen_addr
                ),
            )
        })?;

        let auth = match raw.auth_secret {
            Some(secret) => {
                check_bearer_secret(&secret)
                    .map_err(|problem| ConfigError::invalid("auth_secret", problem.to_string()))?;
                AuthSettings {
                    secret: Secret::new(secret),
                    generated: false,
                }
            }
            None => AuthSettings {
                secret: Secret::new(generate_secret()),
                generated: true,
            },
        };

        if raw.persistence_file.trim().is_empty() {
            return Err(ConfigError::invalid(
                "persistence_file",
                "the path is empty",
            ));
        }
        if raw.save_debounce_ms == 0 {
            return Err(ConfigError::invalid(
                "save_debounce_ms",
                "must be at least 1",
            ));
        }
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&raw.log) {
            return Err(ConfigError::invalid(
                "log",
                format!("`{}` is not a tracing filter: {error}", raw.log),
            ));
        }
        let body_limit_bytes = usize::try_from(raw.body_limit_bytes)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                ConfigError::invalid("body_limit_bytes", "must be a positive number of bytes")
            })?;

        let surrealdb = validate_db(raw.surrealdb)?;
        let worker = validate_worker(raw.worker)?;
        let write_concurrency = match raw.write_concurrency {
            None if surrealdb.endpoint.is_remote() => defaults::WRITE_CONCURRENCY_REMOTE,
            None => defaults::WRITE_CONCURRENCY_EMBEDDED,
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| {
                    ConfigError::invalid(
                        "write_concurrency",
                        "must be between 1 and 64 transactions",
                    )
                })?,
        };

        let cluster = validate_cluster(raw.cluster, listen_addr)?;

        Ok(Settings {
            listen_addr,
            auth,
            persistence_file: PathBuf::from(raw.persistence_file),
            save_debounce: Duration::from_millis(raw.save_debounce_ms),
            log: raw.log,
            body_limit_bytes,
            write_concurrency,
            surrealdb,
            worker,
            cluster,
        })
    }
}

fn validate_cluster(
    raw: RawClusterSettings,
    listen_addr: SocketAddr,
) -> Result<ClusterSettings, ConfigError> {
    let node_id = match raw.node_id.trim() {
        "" => format!("ssp-{}", generate_secret()[..12].to_ascii_lowercase()),
        id if id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            id.to_owned()
        }
        id => {
            return Err(ConfigError::invalid(
                "cluster.node_id",
                format!("`{id}` is not 1-64 letters, digits, `-` or `_`"),
            ));
        }
    };
    let advertise_url = match raw.advertise_url.trim().trim_end_matches('/') {
        "" if listen_addr.ip().is_unspecified() && raw.enabled => {
            return Err(ConfigError::invalid(
                "cluster.advertise_url",
                format!(
                    "SSP listens on {listen_addr}: say where the other instances reach it \
                     (e.g. http://10.0.0.5:{})",
                    listen_addr.port()
                ),
            ));
        }
        "" => format!("http://{listen_addr}"),
        url if url.starts_with("http://") || url.starts_with("https://") => url.to_owned(),
        url => {
            return Err(ConfigError::invalid(
                "cluster.advertise_url",
                format!("`{url}` is not an http:// or https:// URL"),
            ));
        }
    };
    if raw.lease_ms < 300 {
        return Err(ConfigError::invalid(
            "cluster.lease_ms",
            "must be at least 300 (it is renewed every third of it)",
        ));
    }
    Ok(ClusterSettings {
        enabled: raw.enabled,
        node_id,
        advertise_url,
        lease: Duration::from_millis(raw.lease_ms),
    })
}

fn validate_db(raw: RawDbSettings) -> Result<DbSettings, ConfigError> {
    let url = raw.url.trim().to_owned();
    let endpoint =
        DbEndpoint::parse(&url).map_err(|reason| ConfigError::invalid("surrealdb.url", reason))?;
    if raw.ns.trim().is_empty() {
        return Err(ConfigError::invalid(
            "surrealdb.ns",
            "the namespace is empty",
        ));
    }
    if raw.db.trim().is_empty() {
        return Err(ConfigError::invalid(
            "surrealdb.db",
            "the database is empty",
        ));
    }
    let credentials = match (raw.user, raw.pass) {
        (Some(user), _) if user.trim().is_empty() => {
            return Err(ConfigError::invalid("surrealdb.user", "the user is empty"));
        }
        (Some(user), Some(pass)) => Some(DbCredentials {
            user,
            pass: Secret::new(pass),
        }),
        (Some(_), None) => {
            return Err(ConfigError::invalid(
                "surrealdb.pass",
                "a user is configured but no password",
            ));
        }
        (None, Some(pass)) if endpoint.is_remote() => Some(DbCredentials {
            user: defaults::REMOTE_USER.to_owned(),
            pass: Secret::new(pass),
        }),
        (None, Some(_)) => {
            return Err(ConfigError::invalid(
                "surrealdb.user",
                "a password is configured but no user",
            ));
        }
        (None, None) if endpoint.is_remote() => Some(DbCredentials {
            user: defaults::REMOTE_USER.to_owned(),
            pass: Secret::new(defaults::REMOTE_PASS),
        }),
        (None, None) => None,
    };
    if raw.connect_deadline_ms == 0 {
        return Err(ConfigError::invalid(
            "surrealdb.connect_deadline_ms",
            "must be at least 1",
        ));
    }
    if raw.call_timeout_ms == 0 {
        return Err(ConfigError::invalid(
            "surrealdb.call_timeout_ms",
            "must be at least 1",
        ));
    }
    Ok(DbSettings {
        url,
        endpoint,
        ns: raw.ns,
        db: raw.db,
        credentials,
        connect_deadline: Duration::from_millis(raw.connect_deadline_ms),
        call_timeout: Duration::from_millis(raw.call_timeout_ms),
    })
}

fn validate_worker(raw: RawWorkerSettings) -> Result<WorkerSettings, ConfigError> {
    for table in &raw.tables {
        if !is_identifier(table) {
            return Err(ConfigError::invalid(
                "worker.tables",
                format!("`{table}` is not a plain table name (letters, digits and _)"),
            ));
        }
        // Every edge SSP writes changes its own tables: following them would
        // feed SSP its own writes.
        if crate::engine::value::is_reserved_table(table) {
            return Err(ConfigError::invalid(
                "worker.tables",
                format!(
                    "`{table}` is one of SSP's own tables (`_spooky_*`); SSP does not follow them"
                ),
            ));
        }
    }
    let changefeed = ChangefeedMode::parse(&raw.changefeed).ok_or_else(|| {
        ConfigError::invalid(
            "worker.changefeed",
            format!("`{}` is not one of auto, manual, off", raw.changefeed),
        )
    })?;
    let Some(retention) = parse_surreal_duration(&raw.changefeed_retention) else {
        return Err(ConfigError::invalid(
            "worker.changefeed_retention",
            format!(
                "`{}` is not a SurrealDB duration such as 1d, 12h or 1h30m",
                raw.changefeed_retention
            ),
        ));
    };
    Ok(WorkerSettings {
        tables: raw.tables,
        changefeed,
        changefeed_retention: raw.changefeed_retention,
        retention,
    })
}

/// A plain SurrealQL identifier: safe to name a table without escaping.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses a SurrealDB duration (`1d`, `12h`, `1h30m`, `500ms`) with
/// SurrealDB's own parser, so SSP accepts exactly what SurrealDB does.
pub fn parse_surreal_duration(text: &str) -> Option<Duration> {
    surrealdb_syn::duration(text).ok().map(|d| d.into_inner())
}

/// A random 40-character alphanumeric secret.
fn generate_secret() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(40)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests;
