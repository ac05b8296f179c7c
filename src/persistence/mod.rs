//! The state file: the engine's views and records (with versions) and the
//! change-feed cursors, saved so that a restart resumes instead of rebuilding.
//!
//! * `state_file`: the versioned format of the full snapshot, atomic
//!   writes, and loading;
//! * `change_log`: what changed, appended per save between snapshots;
//! * `saver`: the debounced background saver, which picks one or the other.

pub mod change_log;
pub mod saver;
pub mod state_file;

pub use saver::{Saver, SaverHandle};
pub use state_file::{LoadError, StateFile};
