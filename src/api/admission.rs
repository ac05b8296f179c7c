//! Admission: a bound on the request bodies SSP holds at once.
//!
//! A write request holds its body (and what is parsed from it) from the
//! moment it is read until its changes commit. While the database is down
//! nothing commits: every request waits its write budget, and without a
//! bound a client that keeps sending grows SSP's memory without limit. So
//! each request with a body first takes its share of a fixed budget — its
//! declared length, or the body limit when it declares none — waiting for
//! one at most a quarter of the write budget, and past that is answered 503 `not_queued`
//! without its body being read. The budget is [`BODIES_IN_FLIGHT`] bodies of
//! the largest size allowed: at the default 1 MiB limit, 64 MiB.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::AppState;
use super::error::ApiError;

/// How many bodies of the largest allowed size SSP holds at once.
pub const BODIES_IN_FLIGHT: usize = 64;

/// The budget is counted in KiB: a semaphore counts permits in `u32`.
const UNIT: usize = 1024;

/// The shared budget of body bytes in flight.
pub struct Admission {
    permits: Semaphore,
    body_limit: usize,
}

impl Admission {
    pub fn new(body_limit: usize) -> Self {
        let units = units(body_limit).saturating_mul(BODIES_IN_FLIGHT);
        Admission {
            permits: Semaphore::new(units.min(Semaphore::MAX_PERMITS)),
            body_limit,
        }
    }

    /// Bytes of body budget free now (for `/health` and tests).
    pub fn available_bytes(&self) -> usize {
        self.permits.available_permits() * UNIT
    }
}

/// How long a request waits for its share: a quarter of the write budget.
/// Shorter than the budget, so that while the database is down the requests
/// past the budget are turned away before the admitted ones give up (and
/// free their share for the next in line, who would wait again): an
/// overloaded SSP says so quickly instead of stringing clients along.
fn admission_wait(write_budget: std::time::Duration) -> std::time::Duration {
    write_budget / 4
}

fn units(bytes: usize) -> usize {
    bytes.div_ceil(UNIT).max(1)
}

/// Middleware: takes a share of the body budget for requests that carry a
/// body (POST), or answers 503 once the write budget has passed.
pub async fn admit(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let admission = &state.admission;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    // Over the limit it will be refused with 413 as it is read; it takes
    // no more than the limit meanwhile.
    let bytes = declared
        .unwrap_or(admission.body_limit)
        .min(admission.body_limit);
    let wanted = u32::try_from(units(bytes)).unwrap_or(u32::MAX);
    let permit = tokio::time::timeout(
        admission_wait(state.write_budget),
        admission.permits.acquire_many(wanted),
    )
    .await;
    match permit {
        Ok(Ok(_permit)) => next.run(request).await,
        _ => {
            metrics::counter!("ssp_requests_not_admitted_total").increment(1);
            let mut response = ApiError::NotQueued(format!(
                "SSP holds as many request bodies as it may ({} MiB) while earlier requests \
                 wait for the database: this request was not read and nothing was done; retry it",
                admission.body_limit * BODIES_IN_FLIGHT / (1024 * 1024)
            ))
            .into_response();
            // Its body was not read: close rather than read it for nothing.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}
