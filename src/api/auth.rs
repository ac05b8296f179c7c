//! Bearer-token authentication.
//!
//! Applied to the whole router, with an explicit allow-list of public routes
//! (the probes, `GET /version` and `GET /openapi.json`), so that a route added later is protected
//! by default and unknown paths do not reveal whether they exist. The token is
//! compared in constant time (`subtle`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;
use crate::config::check_bearer_secret;

/// Routes that need no token.
const PUBLIC_ROUTES: &[(Method, &str)] = &[
    (Method::GET, "/health"),
    (Method::GET, "/health/live"),
    (Method::GET, "/version"),
    (Method::GET, "/openapi.json"),
];

/// Most of a refused request's body that is read before the 401. Reading
/// it lets a client that is still sending finish and see the answer (a
/// server that answers and closes with data unread makes the kernel reset
/// the connection, and the client may never see the 401). Beyond a small
/// request, reading would spend our time and bandwidth on an unauthenticated
/// client, so a longer body gets the 401 at once and the connection is
/// closed instead.
const REFUSED_BODY_READ: usize = 64 * 1024;
/// How long reading that prefix may take: a client that announces a small
/// body and trickles it must not hold the answer (nor a task) for long.
const REFUSED_BODY_WAIT: Duration = Duration::from_secs(2);

fn is_public(method: &Method, path: &str) -> bool {
    PUBLIC_ROUTES
        .iter()
        .any(|(m, p)| (m == method || method == Method::HEAD) && *p == path)
}

/// True when `header` is `Bearer <secret>` (scheme case-insensitive).
///
/// The token is everything after the scheme and its space, trimmed: inner
/// spaces are part of it. A token that no configured secret could be (see
/// [`check_bearer_secret`], which the settings apply to the secret) never
/// matches, so the secrets SSP accepts are exactly those a client can send.
pub fn bearer_matches(header: Option<&str>, secret: &str) -> bool {
    let Some(value) = header else {
        return false;
    };
    let Some((scheme, token)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    let token = token.trim();
    if check_bearer_secret(token).is_err() {
        return false;
    }
    // `ct_eq` on slices of different lengths is false without comparing the
    // contents; the length of the secret is not treated as secret.
    bool::from(token.as_bytes().ct_eq(secret.as_bytes()))
}

/// Middleware: 401 unless the route is public or the bearer token matches.
pub async fn require_bearer(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if is_public(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if bearer_matches(header, state.settings.auth.secret.expose()) {
        next.run(request).await
    } else {
        let http1 = request.version() <= Version::HTTP_11;
        let read_whole = refuse_reading(request).await;
        let mut response = ApiError::Unauthorized.into_response();
        let headers = response.headers_mut();
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        if !read_whole && http1 {
            // The rest of the body is still coming: this connection cannot
            // carry another request.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// Reads (and drops) a refused request's body if it is small; true when all
/// of it was read. A declared length over [`REFUSED_BODY_READ`] is not read
/// at all.
async fn refuse_reading(request: Request) -> bool {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > REFUSED_BODY_READ as u64) {
        return false;
    }
    let read = axum::body::to_bytes(request.into_body(), REFUSED_BODY_READ);
    matches!(
        tokio::time::timeout(REFUSED_BODY_WAIT, read).await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer() {
        assert!(bearer_matches(Some("Bearer abc"), "abc"));
        assert!(bearer_matches(Some("bearer abc"), "abc"));
        assert!(!bearer_matches(Some("Bearer abd"), "abc"));
        assert!(!bearer_matches(Some("Bearer ab"), "abc"));
        assert!(!bearer_matches(Some("Basic abc"), "abc"));
        assert!(!bearer_matches(Some("abc"), "abc"));
        assert!(!bearer_matches(None, "abc"));
        assert!(!bearer_matches(Some("Bearer "), "abc"));
        // Surrounding whitespace is not part of the token; inner spaces are.
        assert!(bearer_matches(Some("  Bearer   abc  "), "abc"));
        assert!(bearer_matches(
            Some("Bearer my long secret"),
            "my long secret"
        ));
        assert!(!bearer_matches(Some("Bearer my long secret"), "my long"));
        // A token no accepted secret could be never matches, even itself.
        assert!(!bearer_matches(Some("Bearer a\tb"), "a\tb"));
        assert!(!bearer_matches(Some("Bearer caf\u{e9}"), "caf\u{e9}"));
    }

    #[test]
    fn public_routes() {
        assert!(is_public(&Method::GET, "/health"));
        assert!(is_public(&Method::GET, "/version"));
        assert!(is_public(&Method::GET, "/health/live"));
        assert!(!is_public(&Method::POST, "/health"));
        assert!(!is_public(&Method::GET, "/metrics"));
    }
}
