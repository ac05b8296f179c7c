//! The state file: the engine's views and records (with versions) and the
//! change-feed cursors, saved so that a restart resumes instead of rebuilding.
//!
//! * `state_file`: the versioned format, atomic writes, and loading;
//! * `saver`: the debounced background saver.

pub mod saver;
pub mod state_file;

pub use saver::{Saver, SaverHandle};
pub use state_file::{LoadError, StateFile};
