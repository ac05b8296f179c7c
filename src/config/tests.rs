use super::*;

fn load(env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let env = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Settings::load_from(None, false, &env)
}

#[test]
fn defaults_are_the_contracts() {
    let s = load(&[]).expect("defaults load");
    assert_eq!(s.listen_addr.to_string(), "127.0.0.1:8667");
    assert!(s.auth.generated);
    assert_eq!(s.auth.secret.expose().len(), 40);
    assert_eq!(
        s.surrealdb.endpoint,
        DbEndpoint::SurrealKv {
            path: PathBuf::from("data/surreal")
        }
    );
    assert!(s.surrealdb.credentials.is_none());
    assert_eq!(s.surrealdb.ns, "spooky");
    assert_eq!(s.surrealdb.db, "spooky");
    assert_eq!(s.persistence_file, PathBuf::from("data/spooky_state.json"));
    assert_eq!(s.save_debounce, Duration::from_millis(2000));
    assert_eq!(s.log, "info");
    assert_eq!(s.body_limit_bytes, 1024 * 1024);
    assert_eq!(s.write_concurrency, 1, "embedded default");
    assert_eq!(s.worker.changefeed, ChangefeedMode::Auto);
    assert_eq!(s.worker.changefeed_retention, "1d");
    assert!(s.worker.tables.is_empty());
}

#[test]
fn env_overrides_and_remote_credentials() {
    let s = load(&[
        ("SPOOKY_SURREALDB_URL", "ws://127.0.0.1:8000"),
        ("SPOOKY_AUTH_SECRET", "s3cret"),
        ("SPOOKY_SAVE_DEBOUNCE_MS", "50"),
        ("SPOOKY_WORKER_TABLES", "user, thread"),
    ])
    .expect("loads");
    assert!(s.surrealdb.endpoint.is_remote());
    let creds = s.surrealdb.credentials.expect("remote gets default creds");
    assert_eq!(creds.user, "root");
    assert_eq!(creds.pass.expose(), "root");
    assert_eq!(s.auth.secret.expose(), "s3cret");
    assert!(!s.auth.generated);
    assert_eq!(s.save_debounce, Duration::from_millis(50));
    assert_eq!(s.worker.tables, vec!["user", "thread"]);
    assert_eq!(s.write_concurrency, 2, "server default");
}

#[test]
fn bad_settings_name_the_setting() {
    let err = load(&[("SPOOKY_SURREALDB_URL", "postgres://x")]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("SPOOKY_SURREALDB_URL"), "{msg}");
    assert!(msg.contains("unknown URL scheme `postgres`"), "{msg}");

    let msg = load(&[("SPOOKY_AUTH_SECRET", "")]).unwrap_err().to_string();
    assert!(msg.contains("SPOOKY_AUTH_SECRET"), "{msg}");

    let msg = load(&[("SPOOKY_LISTEN_ADDR", "nope")])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("SPOOKY_LISTEN_ADDR"), "{msg}");

    let msg = load(&[("SPOOKY_WORKER_CHANGEFEED", "sometimes")])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("worker.changefeed"), "{msg}");

    let msg = load(&[("SPOOKY_WORKER_TABLES", "thread, _spooky_list_ref")])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("SPOOKY_WORKER_TABLES"), "{msg}");
    assert!(msg.contains("SSP's own tables"), "{msg}");

    let msg = load(&[("SPOOKY_LOG", "info,[[[")]).unwrap_err().to_string();
    assert!(msg.contains("SPOOKY_LOG"), "{msg}");

    for bad in ["0", "65"] {
        let msg = load(&[("SPOOKY_WRITE_CONCURRENCY", bad)])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("SPOOKY_WRITE_CONCURRENCY"), "{msg}");
    }
    let s = load(&[("SPOOKY_WRITE_CONCURRENCY", "1")]).expect("loads");
    assert_eq!(s.write_concurrency, 1);
}

/// Secrets no `Authorization: Bearer` header can carry are refused at
/// load, with a message naming the setting and what is wrong (and not
/// showing the secret).
#[test]
fn a_secret_no_bearer_header_can_carry_is_refused() {
    let cases = [
        (" s3cret", "starts or ends with whitespace"),
        ("s3cret ", "starts or ends with whitespace"),
        ("s3cret\n", "starts or ends with whitespace"),
        ("\ts3cret", "starts or ends with whitespace"),
        ("\u{a0}s3cret", "starts or ends with whitespace"),
        (
            "s3cr\u{e9}t",
            "character 5 of the secret is not printable ASCII",
        ),
        ("sécret", "character 2 of the secret is not printable ASCII"),
        (
            "s3\tcret",
            "character 3 of the secret is not printable ASCII",
        ),
        (
            "s3\u{7f}cret",
            "character 3 of the secret is not printable ASCII",
        ),
        (
            "s3\u{0}cret",
            "character 3 of the secret is not printable ASCII",
        ),
        ("", "the secret is empty"),
        ("   ", "the secret is empty"),
    ];
    for (secret, reason) in cases {
        let msg = load(&[("SPOOKY_AUTH_SECRET", secret)])
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("invalid setting SPOOKY_AUTH_SECRET (auth_secret): "),
            "{secret:?}: {msg}"
        );
        assert!(msg.contains(reason), "{secret:?}: {msg}");
        if secret.trim().len() > 3 {
            assert!(!msg.contains(secret.trim()), "shows the secret: {msg}");
        }
    }

    // The same rule for the TOML key.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ssp.toml");
    std::fs::write(&file, "auth_secret = \" s3cret\"\n").unwrap();
    let msg = Settings::load_from(Some(&file), false, &HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("SPOOKY_AUTH_SECRET (auth_secret)"), "{msg}");
    assert!(msg.contains("whitespace"), "{msg}");
}

#[test]
fn printable_ascii_secrets_with_inner_spaces_are_accepted() {
    let every_visible: String = ('!'..='~').collect();
    for secret in [
        "s3cret",
        "my long  secret",
        "a b",
        "~",
        every_visible.as_str(),
    ] {
        let s =
            load(&[("SPOOKY_AUTH_SECRET", secret)]).unwrap_or_else(|e| panic!("{secret:?}: {e}"));
        assert_eq!(s.auth.secret.expose(), secret);
    }
}

/// The rule and `bearer_matches` agree: a secret is accepted exactly
/// when a client can send it in a valid header that matches it.
#[test]
fn accepted_secrets_are_exactly_those_a_bearer_header_can_carry() {
    use crate::api::auth::bearer_matches;
    use axum::http::HeaderValue;

    let mut candidates: Vec<String> = [
        "s3cret",
        " s3cret",
        "s3cret ",
        "a b",
        "a  b",
        "a\tb",
        "a\u{b}b",
        "é",
        "a\u{a0}b",
        "\u{a0}",
        "\u{200b}x",
        "x\r",
        "",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    // Every single character below 0x100, alone and between two letters.
    for c in (0u8..=0xff).map(char::from) {
        candidates.push(c.to_string());
        candidates.push(format!("a{c}b"));
    }
    for secret in candidates {
        let accepted = check_bearer_secret(&secret).is_ok();
        let header = HeaderValue::from_str(&format!("Bearer {secret}")).ok();
        let carried = header
            .as_ref()
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| bearer_matches(Some(h), &secret));
        assert_eq!(accepted, carried, "{secret:?}");
        assert_eq!(
            accepted,
            load(&[("SPOOKY_AUTH_SECRET", &secret)]).is_ok(),
            "{secret:?}"
        );
    }
}

#[test]
fn durations() {
    for ok in ["1d", "12h", "1h30m", "500ms", "2w"] {
        assert!(parse_surreal_duration(ok).is_some(), "{ok}");
    }
    for bad in ["", "d", "1", "1 day", "1x", "-1d"] {
        assert!(parse_surreal_duration(bad).is_none(), "{bad}");
    }
}

#[test]
fn secret_is_not_debug_printed() {
    let s = load(&[("SPOOKY_AUTH_SECRET", "hunter2")]).expect("loads");
    assert!(!format!("{s:?}").contains("hunter2"));
}
