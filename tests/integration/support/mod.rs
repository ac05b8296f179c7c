//! The test harness: a real SurrealDB server in-process ([`surreal`]), a TCP
//! proxy to cut it off ([`proxy`]), SSP in-process ([`app`]), and helpers to
//! run a test on a big-stack runtime and to wait for states.

#![allow(dead_code)]

pub mod app;
pub mod node;
pub mod process;
pub mod proxy;
pub mod surreal;

use std::future::Future;
use std::time::Duration;

pub use app::{Backend, SECRET, TestApp, TestDb};

/// Runs a test body on a multi-threaded runtime whose threads have big
/// stacks: SurrealDB (embedded, or the in-process server) has deep stack
/// frames that can overflow the default 2 MiB. The body itself runs as a task
/// on a worker thread, not on the test thread.
pub fn run<F>(body: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let runtime = ssp::startup::runtime(Some(2)).expect("test runtime");
    let outcome = runtime.block_on(async { tokio::spawn(body).await });
    // Don't wait for leftover tasks (servers of this test) to notice.
    runtime.shutdown_background();
    if let Err(error) = outcome {
        if error.is_panic() {
            std::panic::resume_unwind(error.into_panic());
        }
        panic!("test task failed: {error}");
    }
}

/// Polls `check` until it returns `Some`, or panics after `timeout` with
/// `what`. Never a bare sleep: tests wait for states.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Generates one `#[test]` per backend for `async fn $test(backend: Backend)`:
/// `backend_tests!(name)` runs on `mem` and `ws`; `backend_tests!(name: kv, ws)`
/// picks backends.
macro_rules! backend_tests {
    ($test:ident) => {
        backend_tests!($test: mem, ws);
    };
    ($test:ident: $($backend:ident),+ $(,)?) => {
        mod $test {
            $(
                #[test]
                fn $backend() {
                    $crate::support::run(super::$test(backend_tests!(@variant $backend)));
                }
            )+
        }
    };
    (@variant mem) => { $crate::support::Backend::Mem };
    (@variant kv) => { $crate::support::Backend::Kv };
    (@variant ws) => { $crate::support::Backend::Ws };
}
