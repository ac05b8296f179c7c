//! SSP, the Spooky Stream Processor.
//!
//! Data flows through the crate in one direction:
//!
//! ```text
//!  sources ──► pipeline ──► engine ──► sink
//!  (api::ingest,          (one ordered   (incremental   (edges written to
//!   sources::change_worker) queue)        views)          SurrealDB, one tx/batch)
//! ```
//!
//! with `config`, `db` (connections, migrations, the `_spooky_*` schema names)
//! and `persistence` (the state file, the saver) beside it. `app` is what the
//! routes and the bootstrap share; `startup` builds the server, `bootstrap`
//! restores the engine and starts the pipeline while it answers. `cluster`
//! lets several instances share the views (off by default).

pub mod api;
pub mod app;
pub mod bootstrap;
pub mod cluster;
pub mod config;
pub mod db;
pub mod engine;
pub mod persistence;
pub mod pipeline;
pub mod progress;
pub mod requery;
pub mod shutdown;
pub mod sink;
pub mod sources;
pub mod startup;
pub mod telemetry;
