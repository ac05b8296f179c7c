//! Routing: any instance answers any request. A view request goes to the
//! instance that holds the view (for a new view, the one the hash picks);
//! `/ingest` and `/reset` go to every live instance and answer once all
//! of them did. A request forwarded once carries [`FORWARDED`] and is
//! served where it lands: never a second hop.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Cluster, Peer, ownership};
use crate::api::{ApiError, AppState};

/// Marks a request another instance forwarded (its value: that instance).
pub const FORWARDED: &str = "x-spooky-forwarded";

/// The middleware. Without clustering it only passes requests on.
pub async fn route(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let Some(cluster) = state.cluster.clone() else {
        return next.run(request).await;
    };
    if request.headers().contains_key(FORWARDED) {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    match (&method, path.as_str()) {
        (&Method::POST, "/ingest" | "/reset") => fan_out(&state, &cluster, request, next).await,
        (&Method::POST, "/view/register" | "/view/unregister" | "/view/heartbeat") => {
            let (parts, body) = request.into_parts();
            let bytes = match read_body(&state, body).await {
                Ok(bytes) => bytes,
                Err(response) => return response,
            };
            let id = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("id")?.as_str().map(str::to_owned))
                .and_then(|id| crate::api::views::normalize_view_id(&id).ok());
            let request = Request::from_parts(parts, Body::from(bytes));
            match id {
                // A malformed body: the handler here says what is wrong.
                None => next.run(request).await,
                Some(id) => {
                    let new_goes_by_hash = path == "/view/register";
                    to_holder(&state, &cluster, &id, new_goes_by_hash, request, next).await
                }
            }
        }
        (&Method::GET, p) if p.starts_with("/view/") => {
            match percent_decode(&p["/view/".len()..])
                .and_then(|id| crate::api::views::normalize_view_id(&id).ok())
            {
                Some(id) => to_holder(&state, &cluster, &id, false, request, next).await,
                None => next.run(request).await,
            }
        }
        _ => next.run(request).await,
    }
}

/// Serves `request` here if this instance holds view `id` (or nobody live
/// does, and `new_goes_by_hash` is false or the hash picks this one), and
/// forwards it to the instance that should otherwise.
async fn to_holder(
    state: &AppState,
    cluster: &Cluster,
    id: &str,
    new_goes_by_hash: bool,
    request: Request,
    next: Next,
) -> Response {
    let holder = match ownership::live_holder(&state.db, id).await {
        Ok(holder) => holder,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let peers = cluster.peers();
    let target: Option<Peer> = match holder {
        Some(node) if node == cluster.node() => None,
        Some(node) => match peers.iter().find(|p| p.id == node) {
            Some(p) => Some(p.clone()),
            None => {
                return ApiError::NotQueued(format!(
                    "the view is held by instance `{node}`, which this one does not know yet; \
                     nothing was done: retry it"
                ))
                .into_response();
            }
        },
        None if new_goes_by_hash => ownership::rendezvous(id, &peers)
            .filter(|p| p.id != cluster.node())
            .cloned(),
        None => None,
    };
    let Some(target) = target else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let bytes = match read_body(state, body).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let path = path_of(&parts);
    match forward(
        state,
        cluster,
        &target,
        &parts.method,
        &path,
        &parts.headers,
        bytes,
    )
    .await
    {
        Ok(response) => response,
        Err(Failure::NotSent(e)) | Err(Failure::Unknown(e)) => ApiError::NotQueued(format!(
            "the instance holding the view (`{}`) did not answer: {e}; retry it",
            target.id
        ))
        .into_response(),
    }
}

/// A request's body, whole (up to the body limit: 413 past it).
async fn read_body(state: &AppState, body: Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, state.settings.body_limit_bytes)
        .await
        .map_err(|_| {
            ApiError::PayloadTooLarge {
                limit: state.settings.body_limit_bytes,
            }
            .into_response()
        })
}

/// The path and query a request is forwarded to.
fn path_of(parts: &axum::http::request::Parts) -> String {
    parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default()
}

enum Failure {
    /// The request never reached the instance (it is gone).
    NotSent(String),
    /// It may have reached it; no answer came.
    Unknown(String),
}

/// Sends a request on to `peer`, and its answer back as it came.
async fn forward(
    state: &AppState,
    cluster: &Cluster,
    peer: &Peer,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, Failure> {
    let mut out = cluster
        .http()
        .request(method.clone(), format!("{}{path}", peer.address))
        .header(FORWARDED, cluster.node())
        .timeout(state.write_budget + std::time::Duration::from_secs(5))
        .body(body);
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(v) = headers.get(&name) {
            out = out.header(name, v.clone());
        }
    }
    metrics::counter!("ssp_cluster_forwarded_total").increment(1);
    let answer = out.send().await.map_err(|e| {
        if e.is_connect() {
            Failure::NotSent(e.to_string())
        } else {
            Failure::Unknown(e.to_string())
        }
    })?;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = answer
        .bytes()
        .await
        .map_err(|e| Failure::Unknown(e.to_string()))?;
    let mut response = (status, bytes).into_response();
    if let Some(ct) = content_type {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    Ok(response)
}

/// `/ingest` and `/reset`: here and on every other live instance at once;
/// the answer comes when all have answered. An instance that cannot be
/// reached at all is skipped: it is gone, and whoever takes its views
/// rebuilds them from the database, where the change already is (an
/// `/ingest` comes after its write). One that may have received it and did
/// not answer makes the request a 503, to be retried (both are idempotent).
async fn fan_out(state: &AppState, cluster: &Cluster, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match read_body(state, body).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let path = path_of(&parts);
    let method = parts.method.clone();
    let headers = parts.headers.clone();
    let others = cluster.others();
    let local = next.run(Request::from_parts(parts, Body::from(bytes.clone())));
    let remote = futures::future::join_all(others.iter().map(|peer| {
        forward(
            state,
            cluster,
            peer,
            &method,
            &path,
            &headers,
            bytes.clone(),
        )
    }));
    let (local, remote) = tokio::join!(local, remote);
    if !local.status().is_success() {
        return local;
    }
    let mut answers = Vec::with_capacity(remote.len());
    for (peer, answer) in others.iter().zip(remote) {
        match answer {
            Ok(response) if response.status().is_success() => answers.push(response),
            Ok(response) => {
                tracing::warn!(peer = %peer.id, status = %response.status(), %path, "cluster: another instance refused a request sent to all");
                return response;
            }
            Err(Failure::NotSent(e)) => {
                tracing::debug!(peer = %peer.id, error = %e, "cluster: an instance is unreachable (gone); skipped");
            }
            Err(Failure::Unknown(e)) => {
                return ApiError::Unavailable(format!(
                    "instance `{}` did not confirm the request: {e}; it may be carried out \
                     there later, and retrying it is harmless",
                    peer.id
                ))
                .into_response();
            }
        }
    }
    if path.starts_with("/ingest") {
        return sum_ingest(local, answers).await;
    }
    local
}

/// The `/ingest` answers of all instances as one: their views are
/// disjoint, so the counts add up.
async fn sum_ingest(local: Response, remote: Vec<Response>) -> Response {
    async fn json(r: Response) -> Option<serde_json::Value> {
        let bytes = axum::body::to_bytes(r.into_body(), usize::MAX).await.ok()?;
        serde_json::from_slice(&bytes).ok()
    }
    let Some(mut total) = json(local).await else {
        return ApiError::Internal("an /ingest answer was not JSON".into()).into_response();
    };
    for r in remote {
        let Some(other) = json(r).await else { continue };
        add(&mut total, &other, &["views_affected"]);
        for k in ["created", "updated", "deleted"] {
            add(&mut total, &other, &["edges", k]);
        }
    }
    (StatusCode::OK, axum::Json(total)).into_response()
}

fn add(total: &mut serde_json::Value, other: &serde_json::Value, path: &[&str]) {
    let get = |v: &serde_json::Value| {
        path.iter()
            .try_fold(v, |v, k| v.get(k))
            .and_then(|v| v.as_u64())
    };
    let sum = get(total).unwrap_or(0) + get(other).unwrap_or(0);
    let mut slot = total;
    for k in path {
        match slot.get_mut(*k) {
            Some(next) => slot = next,
            None => return,
        }
    }
    *slot = serde_json::Value::from(sum);
}

/// `%XX` escapes of a path segment, decoded (`None` if not UTF-8 or malformed).
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_decoded() {
        assert_eq!(percent_decode("a%20b%3Bc").as_deref(), Some("a b;c"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("bad%2"), None);
    }

    #[test]
    fn ingest_counts_add_up() {
        let mut total = serde_json::json!({"views_affected": 1, "edges": {"created": 1, "updated": 0, "deleted": 2}});
        let other = serde_json::json!({"views_affected": 2, "edges": {"created": 3, "updated": 1, "deleted": 0}});
        add(&mut total, &other, &["views_affected"]);
        for k in ["created", "updated", "deleted"] {
            add(&mut total, &other, &["edges", k]);
        }
        assert_eq!(
            total,
            serde_json::json!({"views_affected": 3, "edges": {"created": 4, "updated": 1, "deleted": 2}})
        );
    }
}
