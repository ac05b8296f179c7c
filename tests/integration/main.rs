//! SSP's integration tests: one test binary (linking SurrealDB is slow), one
//! module per concern. Tests run against the embedded engine and a real
//! SurrealDB server over `ws://` (see `support`).
#![recursion_limit = "256"]

#[macro_use]
mod support;

mod bench_smoke;
mod cli;
mod cluster;
mod connection;
mod corpus;
mod functions;
mod fuzz_bodies;
mod graph;
mod hardening;
mod http;
mod js_clients;
mod links;
mod metrics;
mod migrations;
mod mixed_sources;
mod node_client;
mod openapi;
mod owner;
mod persistence;
mod pipeline;
mod readiness;
mod record_keys;
mod requery;
mod schema;
mod subqueries;
mod time_windows;
mod value_types;
mod view_shapes;
mod worker;
