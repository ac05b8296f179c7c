//! The HTTP shell: auth, body limit, JSON errors, health and version.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Backend, SECRET, TestApp, TestDb};

async fn json_error(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    body
}

async fn unauthorized_without_a_valid_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({"table": "user", "op": "CREATE", "id": "user:1", "record": {}});

    let missing = app
        .http
        .post(app.url("/ingest"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        missing
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some("Bearer")
    );
    json_error(missing, StatusCode::UNAUTHORIZED, "unauthorized").await;

    for header in [
        "Bearer wrong-secret",
        "Bearer test-secret-012345678",   // a prefix of the secret
        "Bearer test-secret-01234567890", // the secret plus one character
        "Basic dGVzdDp0ZXN0",
        SECRET, // no scheme
        "Bearer",
    ] {
        let response = app
            .http
            .post(app.url("/ingest"))
            .header("authorization", header)
            .json(&body)
            .send()
            .await
            .unwrap();
        json_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }

    // Other methods and routes, known or not, are protected too.
    for path in ["/view/x", "/metrics", "/no-such-route"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        json_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }

    // The right token gets past auth (whatever the route then says).
    let ok = app.post("/ingest").json(&body).send().await.unwrap();
    assert_ne!(ok.status(), StatusCode::UNAUTHORIZED);
    let lowercase = app
        .http
        .post(app.url("/ingest"))
        .header("authorization", format!("bearer {SECRET}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_ne!(lowercase.status(), StatusCode::UNAUTHORIZED);

    // The probes are public.
    for path in ["/health", "/version"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    app.stop().await;
}
backend_tests!(unauthorized_without_a_valid_token);

async fn body_over_the_limit_is_413_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Default limit: 1 MiB. One byte more is refused.
    let limit = 1024 * 1024;
    let padding = "x".repeat(limit - r#"{"pad":""}"#.len() + 1);
    let body = format!(r#"{{"pad":"{padding}"}}"#);
    assert_eq!(body.len(), limit + 1);
    let response = app
        .post("/ingest")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("sending 1 MiB + 1: {e:?}"));
    let error = json_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert!(
        error["error"].as_str().unwrap().contains("1048576"),
        "{error}"
    );

    app.stop().await;

    // A configured limit is the one enforced.
    let test_db = TestDb::start(backend).await;
    let settings = test_db.settings_with(&[("SPOOKY_BODY_LIMIT_BYTES", "64")]);
    let app = TestApp::spawn_on(test_db, settings).await;
    let at_limit = format!(r#"{{"pad":"{}"}}"#, "x".repeat(64 - 10));
    assert_eq!(at_limit.len(), 64);
    let response = app
        .post("/ingest")
        .header("content-type", "application/json")
        .body(at_limit)
        .send()
        .await
        .unwrap();
    assert_ne!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let over = format!(r#"{{"pad":"{}"}}"#, "x".repeat(65 - 10));
    let response = app
        .post("/ingest")
        .header("content-type", "application/json")
        .body(over)
        .send()
        .await
        .unwrap();
    let error = json_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert!(
        error["error"].as_str().unwrap().contains("64 bytes"),
        "{error}"
    );

    // Auth comes first: an anonymous body over the limit is a 401. (Small, so
    // that the server has it all when it answers without reading it.)
    let anonymous = app
        .http
        .post(app.url("/ingest"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"pad":"{}"}}"#, "x".repeat(200)))
        .send()
        .await
        .unwrap();
    json_error(anonymous, StatusCode::UNAUTHORIZED, "unauthorized").await;
    app.stop().await;
}
backend_tests!(body_over_the_limit_is_413_json);

async fn errors_are_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.get("/no-such-route").send().await.unwrap();
    json_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = app.post("/version").send().await.unwrap();
    json_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    app.stop().await;
}
backend_tests!(errors_are_json);

async fn health_and_version(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let health: Value = app
        .http
        .get(app.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["db"]["status"], "up", "{health}");
    let expected_backend = match backend {
        Backend::Mem => "mem",
        Backend::Kv => "surrealkv",
        Backend::Ws => "ws",
    };
    assert_eq!(health["db"]["backend"], expected_backend, "{health}");
    // Over ws:// the second write slot (write_concurrency 2) has its own
    // connection, and /health pings it too.
    let connections = if backend == Backend::Ws { 2 } else { 1 };
    assert_eq!(health["db"]["connections"], connections, "{health}");

    let version: Value = app
        .http
        .get(app.url("/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(version["name"], "ssp");
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(version["surrealdb"], "3.3.5");
    app.stop().await;
}
backend_tests!(health_and_version);

/// Sends `head` and then `body_start` on a raw connection, never the rest of
/// the body, and reads what the server answers until it closes.
async fn answer_to_a_partial_request(app: &TestApp, head: &str, body_start: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream.write_all(body_start).await.expect("send body start");
    // The rest of the body never comes: an answer only arrives if the server
    // does not wait for it. (A deadline, not a timing assertion.) The close
    // may come as a reset, with unread bytes on the server's side: what was
    // read until then is the answer.
    let read_all = async {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            answer.extend_from_slice(&buf[..n]);
        }
        answer
    };
    let answer = tokio::time::timeout(std::time::Duration::from_secs(20), read_all)
        .await
        .expect("the server answers without the rest of the body, and closes");
    String::from_utf8_lossy(&answer).into_owned()
}

/// A refused request with a big body is answered without reading the body:
/// at most a small prefix is read, then 401 and the connection is closed
/// (it cannot carry another request with the body still coming). Whether
/// the client announces the size or streams it in chunks.
async fn a_refused_big_body_is_not_read(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let chunk = vec![b'x'; 128 * 1024];
    let announced = format!(
        "POST /ingest HTTP/1.1\r\nhost: ssp\r\nauthorization: Bearer wrong\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        1024 * 1024 - 1
    );
    let chunked = "POST /ingest HTTP/1.1\r\nhost: ssp\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    let mut first_chunk = format!("{:x}\r\n", chunk.len()).into_bytes();
    first_chunk.extend_from_slice(&chunk);
    first_chunk.extend_from_slice(b"\r\n");
    for (head, body_start) in [
        (announced.as_str(), &chunk[..16 * 1024]),
        (chunked, &first_chunk[..]),
    ] {
        let started = std::time::Instant::now();
        let answer = answer_to_a_partial_request(&app, head, body_start).await;
        eprintln!("401 to a partial body after {:?}", started.elapsed());
        let (headers, body) = answer
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("a whole HTTP answer: {answer:?}"));
        let headers = headers.to_ascii_lowercase();
        assert!(headers.starts_with("http/1.1 401"), "{headers}");
        assert!(headers.contains("connection: close"), "{headers}");
        assert!(headers.contains("www-authenticate: bearer"), "{headers}");
        let body: Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON body {body:?}: {e}"));
        assert_eq!(body["code"], "unauthorized", "{body}");
    }

    // A small refused body is read whole: the connection stays usable.
    let small = "{\"table\":\"user\"}";
    let response = app
        .http
        .post(app.url("/ingest"))
        .header("authorization", "Bearer wrong")
        .body(small)
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("connection").is_none());
    json_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    app.stop().await;
}
backend_tests!(a_refused_big_body_is_not_read: mem);
