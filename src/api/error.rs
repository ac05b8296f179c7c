//! API errors: every failure leaves the server as `{"error": "...", "code": "..."}`
//! with the status of the README's error table.
//!
//! Three sources are folded into that one shape:
//! - handlers return [`ApiError`];
//! - the [`ApiJson`] extractor turns axum's own JSON rejections into
//!   [`ApiError`] (400 for bad JSON, 413 over the body limit);
//! - [`normalize_error_responses`] rewrites any other error response that is
//!   not JSON yet (axum's 405, the body-limit layer's 413, ...).

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::db::DbError;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed JSON, a missing or ill-typed field.
    #[error("{0}")]
    BadRequest(String),
    /// 401: missing or wrong bearer token.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// 404: unknown view or route.
    #[error("{0}")]
    NotFound(String),
    /// 413: body over the configured limit.
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 422: SurrealQL that is invalid or outside the supported subset.
    #[error("{message}")]
    Unprocessable { message: String, code: &'static str },
    /// 503: the database is unavailable past the retry budget; the request
    /// is queued and is carried out when the database answers again.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// 503: the request never entered SSP's queue (it stayed full, or what
    /// had to come first did not finish in time); nothing was done.
    #[error("{0}")]
    NotQueued(String),
    /// 500: the database refused a write for good; the message says what
    /// SSP does about it.
    #[error("{0}")]
    WriteFailed(String),
    /// 503: SSP is still starting (restoring its state); nothing was done.
    #[error("{0}")]
    NotReady(String),
    /// 500: anything else; the details go to the log, not to the client.
    #[error("internal error")]
    Internal(String),
}

/// The JSON body of every error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What is wrong, for people.
    pub error: String,
    /// For programs: `bad_request`, `unauthorized`, `not_found`,
    /// `payload_too_large`, `unsupported_query`, `invalid_query`,
    /// `db_unavailable`, `not_queued`, `write_failed`, `not_ready`,
    /// `method_not_allowed`, `internal`...
    #[schema(value_type = String, example = "not_ready")]
    pub code: &'static str,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) | ApiError::NotQueued(_) | ApiError::NotReady(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::WriteFailed(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable `code` field.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Unprocessable { code, .. } => code,
            ApiError::Unavailable(_) => "db_unavailable",
            ApiError::NotQueued(_) => "not_queued",
            ApiError::WriteFailed(_) => "write_failed",
            ApiError::NotReady(_) => "not_ready",
            ApiError::Internal(_) => "internal",
        }
    }

    /// A 422 for a query SSP cannot serve, with a specific code such as
    /// `unsupported_query` or `invalid_query`.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unprocessable {
            message: message.into(),
            code,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(details) = &self {
            tracing::error!(%details, "internal error");
        }
        let status = self.status();
        let body = ErrorBody {
            error: self.to_string(),
            code: self.code(),
        };
        (status, Json(body)).into_response()
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        if error.is_unavailable() {
            ApiError::Unavailable(error.to_string())
        } else {
            ApiError::Internal(error.to_string())
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge {
                limit: current_body_limit(),
            },
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::BadRequest(
                "expected a JSON body with Content-Type: application/json".into(),
            ),
            _ => ApiError::BadRequest(rejection.body_text()),
        }
    }
}

/// `Json<T>` whose rejections are [`ApiError`]s. Use it instead of
/// `axum::Json` in handlers.
///
/// It reads the whole body (up to the limit) before it looks at the content
/// type. `axum::Json` refuses a wrong content type first, without reading:
/// the server then closes a connection that still has unread data, and the
/// client may lose the 400, or its next request on that kept-alive
/// connection (seen with a 200 KB `text/plain` body: "IncompleteMessage"
/// on the following request, a few times in a hundred).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, bytes) = read_body(request, state).await?;
        // The same checks as before (content type, then JSON), on a body
        // that is already read.
        let request = Request::from_parts(parts, Body::from(bytes));
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(ApiJson(value))
    }
}

/// Reads a request's whole body, with the API's errors: 413 over the body
/// limit (with the limit in the message), 400 for a body that breaks off.
pub(crate) async fn read_body<S: Send + Sync>(
    request: Request,
    state: &S,
) -> Result<(axum::http::request::Parts, Bytes), ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
        .await
        .map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge {
                limit: current_body_limit(),
            },
            _ => ApiError::BadRequest(rejection.body_text()),
        })?;
    Ok((parts, bytes))
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

tokio::task_local! {
    /// The body limit of the server answering this request, for messages.
    static BODY_LIMIT: usize;
}

fn current_body_limit() -> usize {
    BODY_LIMIT.try_with(|l| *l).unwrap_or_default()
}

/// Middleware: rewrites error responses that are not JSON yet into the
/// [`ErrorBody`] shape, and makes the body limit known to error messages.
pub async fn normalize_error_responses(
    axum::extract::State(body_limit): axum::extract::State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let response = BODY_LIMIT.scope(body_limit, next.run(request)).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let error = match status {
        StatusCode::BAD_REQUEST => ApiError::BadRequest("bad request".into()),
        StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
        StatusCode::NOT_FOUND => ApiError::NotFound("no such route".into()),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit: body_limit },
        StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable("service unavailable".into()),
        other => {
            let body = ErrorBody {
                error: other
                    .canonical_reason()
                    .unwrap_or("error")
                    .to_ascii_lowercase(),
                code: code_for(other),
            };
            let mut rewritten = (other, Json(body)).into_response();
            // Keep headers such as `Allow` on a 405.
            for (name, value) in response.headers() {
                if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                    rewritten.headers_mut().insert(name.clone(), value.clone());
                }
            }
            return rewritten;
        }
    };
    let mut rewritten = error.into_response();
    rewritten.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    rewritten
}

fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        let cases = [
            (ApiError::BadRequest("x".into()), 400, "bad_request"),
            (ApiError::Unauthorized, 401, "unauthorized"),
            (ApiError::NotFound("x".into()), 404, "not_found"),
            (
                ApiError::PayloadTooLarge { limit: 1 },
                413,
                "payload_too_large",
            ),
            (
                ApiError::unprocessable("unsupported_query", "GROUP BY"),
                422,
                "unsupported_query",
            ),
            (ApiError::Unavailable("x".into()), 503, "db_unavailable"),
            (ApiError::NotReady("x".into()), 503, "not_ready"),
            (ApiError::Internal("x".into()), 500, "internal"),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status().as_u16(), status);
            assert_eq!(error.code(), code);
        }
    }
}
