//! Migrations: applied once, recorded with a checksum, skipped after, and a
//! changed text stops startup.

use std::borrow::Cow;

use serde_json::Value;
use ssp::db::migrations::{self, MIGRATIONS, Migration, MigrationError};
use ssp::db::{Db, DbError, Query};
use ssp::startup::{Application, StartupError};

use crate::support::{Backend, TestApp};

async fn info_for_db(db: &Db) -> Value {
    db.run(Query::new("INFO FOR DB"))
        .await
        .expect("INFO FOR DB")
        .take_json(0)
        .expect("info")
}

async fn count(db: &Db, table: &str) -> i64 {
    let value = db
        .run(Query::new(format!("SELECT count() FROM {table} GROUP ALL")))
        .await
        .expect("count")
        .take_json(0)
        .expect("rows");
    value[0]["count"].as_i64().unwrap_or(0)
}

async fn schema_is_created_and_a_second_run_is_a_no_op(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let info = info_for_db(&app.db).await;
    let tables = info["tables"].as_object().expect("tables in INFO FOR DB");
    for table in ["_spooky_query", "_spooky_list_ref", "_spooky_migration"] {
        assert!(tables.contains_key(table), "{table} missing: {info}");
    }
    let edge = tables["_spooky_list_ref"].as_str().unwrap_or_default();
    assert!(edge.contains("TYPE RELATION"), "{edge}");

    let applied = migrations::applied(&app.db).await.expect("applied");
    assert_eq!(applied.len(), MIGRATIONS.len());
    for migration in MIGRATIONS {
        assert_eq!(
            applied.get(migration.name.as_ref()),
            Some(&migration.checksum()),
            "{} recorded with its checksum",
            migration.name
        );
    }

    // Again on the same connection: nothing applied, nothing changed.
    let report = migrations::migrate(&app.db).await.expect("second run");
    assert!(report.applied.is_empty(), "{report:?}");
    assert_eq!(
        report.skipped,
        MIGRATIONS
            .iter()
            .map(|m| m.name.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(info_for_db(&app.db).await, info);
    assert_eq!(
        count(&app.db, "_spooky_migration").await,
        MIGRATIONS.len() as i64
    );

    // And through a second SSP start on the same database.
    let settings = app.test_db.settings();
    let second = match backend {
        Backend::Ws => Application::build(settings).await,
        _ => Application::build_with_db(settings, app.db.clone()).await,
    }
    .expect("second start");
    drop(second);
    assert_eq!(info_for_db(&app.db).await, info);
    assert_eq!(
        count(&app.db, "_spooky_migration").await,
        MIGRATIONS.len() as i64
    );
    app.stop().await;
}
backend_tests!(schema_is_created_and_a_second_run_is_a_no_op);

async fn a_tampered_migration_stops_startup(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Record a different checksum, as if the file had changed since.
    app.db
        .run(
            Query::new("UPDATE _spooky_migration SET checksum = $c WHERE name = $n")
                .bind("c", "0".repeat(64))
                .bind("n", "0001_spooky_schema"),
        )
        .await
        .expect("tamper");

    let settings = app.test_db.settings();
    let result = match backend {
        Backend::Ws => Application::build(settings).await,
        _ => Application::build_with_db(settings, app.db.clone()).await,
    };
    let error = result.expect_err("startup must stop");
    assert!(
        matches!(
            error,
            StartupError::Migration(MigrationError::Changed { ref name, .. }) if name == "0001_spooky_schema"
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("0001_spooky_schema was changed after it was applied"),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
    app.stop().await;
}
backend_tests!(a_tampered_migration_stops_startup);

async fn a_changed_migration_text_is_detected(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let v1 = Migration {
        name: Cow::Borrowed("9000_extra"),
        sql: Cow::Borrowed("DEFINE TABLE extra SCHEMALESS;\n"),
    };
    let mut list = MIGRATIONS.to_vec();
    list.push(v1.clone());
    let report = migrations::migrate_with(&app.db, &list).await.expect("v1");
    assert_eq!(report.applied, vec!["9000_extra"]);

    let v2 = Migration {
        sql: Cow::Borrowed("DEFINE TABLE extra SCHEMAFULL;\n"),
        ..v1
    };
    list.pop();
    list.push(v2);
    let error = migrations::migrate_with(&app.db, &list)
        .await
        .expect_err("changed");
    assert!(matches!(error, MigrationError::Changed { .. }), "{error:?}");
    app.stop().await;
}
backend_tests!(a_changed_migration_text_is_detected);

async fn a_failing_migration_is_rolled_back_and_names_its_statement(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let bad = Migration {
        name: Cow::Borrowed("9001_bad"),
        sql: Cow::Borrowed(
            "DEFINE TABLE t9001 SCHEMAFULL;\n\
             DEFINE FIELD x ON t9001 TYPE int;\n\
             CREATE t9001:1 SET x = 'not an int';\n\
             DEFINE TABLE t9001_after;\n",
        ),
    };
    let mut list = MIGRATIONS.to_vec();
    list.push(bad);
    let error = migrations::migrate_with(&app.db, &list)
        .await
        .expect_err("must fail");
    let MigrationError::Failed {
        name,
        source: DbError::Statement(statement),
    } = &error
    else {
        panic!("unexpected error: {error:?}");
    };
    assert_eq!(name, "9001_bad");
    assert_eq!(statement.index, 2, "{error}");
    assert_eq!(
        statement.statement.as_deref(),
        Some("CREATE t9001:1 SET x = 'not an int';")
    );
    assert!(!statement.message.contains("not executed"), "{error}");

    // Rolled back: neither the tables nor the record of the migration exist.
    let info = info_for_db(&app.db).await;
    let tables = info["tables"].as_object().expect("tables");
    assert!(!tables.contains_key("t9001"), "{info}");
    assert!(!tables.contains_key("t9001_after"), "{info}");
    let applied = migrations::applied(&app.db).await.expect("applied");
    assert!(!applied.contains_key("9001_bad"));
    app.stop().await;
}
backend_tests!(a_failing_migration_is_rolled_back_and_names_its_statement);

/// Migration 0004 on a database that SSP 0003 wrote: edges of array- and
/// object-keyed records move to their new ids (`[view, record, text]`),
/// keeping version and client, two records equal as values keep two edges,
/// other edges keep theirs, and the unique index reads the exact id.
async fn edges_of_composite_keys_move_to_their_exact_ids(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = &app.db;
    // The schema as 0003 left it, with edges under the old ids.
    db.run(Query::new(
        "DELETE _spooky_migration:`0004_spooky_edge_key`;
         REMOVE INDEX _spooky_list_ref_in_out ON _spooky_list_ref;
         REMOVE FIELD outKey ON _spooky_list_ref;
         DEFINE INDEX _spooky_list_ref_in_out ON _spooky_list_ref FIELDS in, out UNIQUE;
         INSERT RELATION INTO _spooky_list_ref [
            { id: _spooky_list_ref:['v', k:[1, 'a']], in: _spooky_query:v, out: k:[1, 'a'], clientId: 'c1', version: 3 },
            { id: _spooky_list_ref:['v', k:1], in: _spooky_query:v, out: k:1, clientId: 'c1', version: 2 },
            { id: _spooky_list_ref:['v', k:{ a: 1 }], in: _spooky_query:v, out: k:{ a: 1 }, clientId: 'c2', version: 5 }
         ];",
    ))
    .await
    .expect("the 0003 state");
    let report = migrations::migrate(db).await.expect("0004 applies");
    assert_eq!(report.applied, vec!["0004_spooky_edge_key"]);

    let rows = db
        .run(Query::new(
            "SELECT id, out, clientId, version, outKey FROM _spooky_list_ref ORDER BY version",
        ))
        .await
        .expect("edges")
        .take_json(0)
        .expect("rows");
    let want = [
        ("k:1", "c1", 2),
        ("k:[1, 'a']", "c1", 3),
        ("k:{ a: 1 }", "c2", 5),
    ];
    assert_eq!(rows.as_array().map(Vec::len), Some(want.len()), "{rows}");
    for (row, (out, client, version)) in rows.as_array().unwrap().iter().zip(want) {
        let record = ssp::engine::value::RecordId::parse_in_table("k", out).expect("an id");
        let id = surrealdb::types::ToSql::to_sql(&surrealdb::types::Value::RecordId(
            ssp::db::schema::edge_id("v", &record),
        ));
        assert_eq!(row["id"], id.as_str(), "{rows}");
        assert_eq!(row["out"], out, "{rows}");
        assert_eq!(row["outKey"], out, "{rows}");
        assert_eq!(row["clientId"], client, "{rows}");
        assert_eq!(row["version"], version, "{rows}");
    }
    // And the record equal to `k:[1, 'a']` as a value gets its own edge.
    db.run(Query::new(
        "INSERT RELATION INTO _spooky_list_ref [{ id: _spooky_list_ref:['v', k:[1f, 'a'], \"k:[1f, 'a']\"], in: _spooky_query:v, out: k:[1f, 'a'], clientId: 'c1', version: 1 }];",
    ))
    .await
    .expect("a second edge");
    let n = db
        .run(Query::new("SELECT count() FROM _spooky_list_ref GROUP ALL"))
        .await
        .expect("count")
        .take_json(0)
        .expect("rows");
    assert_eq!(n[0]["count"], 4, "{n}");
    app.stop().await;
}
backend_tests!(edges_of_composite_keys_move_to_their_exact_ids: mem, ws);
