//! Where changes come from, besides `POST /ingest` (in `api::ingest`):
//! SurrealDB itself, followed by the change worker.
//!
//! * `change_worker`: the task that follows tracked tables and fills gaps;
//! * `live`: LIVE SELECT subscriptions and their notifications;
//! * `changefeed`: change feeds (defining them, reading them);
//! * `snapshot`: reading a table's or some records' current rows;
//! * `cursors`: the persisted change-feed cursors.

pub mod change_worker;
pub mod changefeed;
pub mod cursors;
pub mod live;
pub mod snapshot;

pub use change_worker::{ChangeWorker, Tracker, WorkerHandle, WorkerStats};
pub use cursors::{Cursor, Cursors};
