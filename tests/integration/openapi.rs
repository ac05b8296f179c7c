//! `GET /openapi.json` describes exactly the routes that exist: every
//! operation of the description is routed (not the fallback 404/405) and
//! guarded as it says (public or bearer), and every route of the router is
//! in the description.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use ssp::startup::Application;

use crate::support::{Backend, TestApp, TestDb};

/// Methods axum can route, as OpenAPI spells them.
const METHODS: &[&str] = &["get", "post", "put", "patch", "delete", "options", "trace"];

/// `(method, path)` of every operation in a description.
fn operations(spec: &Value) -> BTreeSet<(String, String)> {
    let paths = spec["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(move |m| ((*m).to_owned(), path.clone()))
        })
        .collect()
}

/// `(method, path)` of every route of an axum router, read from its `Debug`
/// output (axum has no other way to list routes): the route ids map to paths
/// in `paths: {RouteId(n): "/path", ...}` and to method routers in
/// `RouteId(n): MethodRouter(MethodRouter { get: Route, post: None, ... })`.
fn routed(router: &axum::Router) -> BTreeSet<(String, String)> {
    let debug = format!("{router:?}");
    // Only the path router: the fallback router follows it.
    let debug = debug
        .split("fallback_router:")
        .next()
        .expect("a path router");
    let paths_at = debug.find("paths: {").expect("the route paths in Debug");
    let mut ids_to_paths = std::collections::BTreeMap::new();
    let mut rest = &debug[paths_at + "paths: {".len()..];
    // `RouteId(n): "/path"` entries, until the map closes (paths may hold
    // braces: `/view/{id}`).
    while let Some(entry) = rest.strip_prefix("RouteId(") {
        let (id, after) = entry.split_once("): \"").expect("RouteId(n): \"path\"");
        let (path, after) = after.split_once('"').expect("a quoted path");
        ids_to_paths.insert(format!("RouteId({id})"), path.to_owned());
        match after.strip_prefix(", ") {
            Some(next) => rest = next,
            None => break,
        }
    }
    let mut routes = BTreeSet::new();
    for (id, path) in &ids_to_paths {
        let start = debug
            .find(&format!("{id}: MethodRouter(MethodRouter {{"))
            .unwrap_or_else(|| panic!("the method router of {id} ({path})"));
        let body = debug[start..].split('}').next().expect("method router");
        for method in METHODS {
            if body.contains(&format!(" {method}: Route")) {
                routes.insert(((*method).to_owned(), path.clone()));
            }
        }
    }
    assert!(
        routes.len() >= 5,
        "cannot read the routes from axum's Debug output (did it change?): {debug}"
    );
    routes
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "no-such-view")
}

async fn the_spec_matches_the_router(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    // Served, public, OpenAPI 3.
    let response = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let spec: Value = response.json().await.expect("JSON");
    assert!(
        spec["openapi"].as_str().unwrap_or("").starts_with("3."),
        "{}",
        spec["openapi"]
    );
    assert_eq!(
        spec,
        serde_json::to_value(ssp::api::spec()).unwrap(),
        "the served description is the one built with the routes"
    );
    let documented = operations(&spec);

    // Every documented operation is routed, and guarded as documented.
    for (method, path) in &documented {
        let op = &spec["paths"][path][method];
        let public = op["security"].as_array().is_some_and(|s| {
            s.iter()
                .all(|r| r.as_object().is_some_and(|o| o.is_empty()))
        });
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let url = app.url(&concrete(path));
        let with_token = app
            .http
            .request(method.clone(), &url)
            .bearer_auth(crate::support::SECRET)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        let status = with_token.status();
        let body = with_token.text().await.unwrap();
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {body}"
        );
        assert!(
            !(status == StatusCode::NOT_FOUND && body.contains("no route for")),
            "{method} {path} is documented but not routed: {body}"
        );
        let documented_status = op["responses"].get(status.as_str()).is_some();
        assert!(
            documented_status,
            "{method} {path}: undocumented {status}: {body}"
        );

        let anonymous = app
            .http
            .request(method.clone(), &url)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap()
            .status();
        if public {
            assert_ne!(
                anonymous,
                StatusCode::UNAUTHORIZED,
                "{method} {path} is documented public"
            );
        } else {
            assert_eq!(
                anonymous,
                StatusCode::UNAUTHORIZED,
                "{method} {path} is documented as needing the token"
            );
        }
    }

    // Methods not documented on a documented path are not routed.
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for path in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if documented.contains(&(method.to_owned(), path.clone())) {
                continue;
            }
            let status = app
                .http
                .request(
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    app.url(&concrete(path)),
                )
                .bearer_auth(crate::support::SECRET)
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} answers but is not documented"
            );
        }
    }
    app.stop().await;

    // Every route of the real router is documented, and nothing more.
    let test_db = TestDb::start(backend).await;
    let built = Application::build(test_db.settings())
        .await
        .expect("builds");
    let router = ssp::api::router(built.state());
    let routes = routed(&router);
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routed but not in /openapi.json: {undocumented:?}"
    );
    let unrouted: Vec<_> = documented.difference(&routes).collect();
    assert!(
        unrouted.is_empty(),
        "in /openapi.json but not routed: {unrouted:?}"
    );
}
backend_tests!(the_spec_matches_the_router: mem);
