use std::sync::Arc;

use super::worth_a_group;

#[test]
fn a_second_group_starts_only_when_as_big_as_what_is_in_flight() {
    // Nothing in flight: any waiting ingest goes at once.
    assert!(worth_a_group(1, 0));
    // One ingest in flight (a lone client, or the start of a burst).
    assert!(worth_a_group(1, 1));
    // A group of 16 in flight: 3 waiting ingests join the next group
    // instead of paying a transaction of their own; 16 start one.
    assert!(!worth_a_group(3, 16));
    assert!(!worth_a_group(15, 16));
    assert!(worth_a_group(16, 16));
    assert!(worth_a_group(20, 16));
}

/// A pipeline on a fresh embedded database, with one view registered:
/// `big`, `SELECT * FROM u WHERE n > 1`.
async fn with_view_big() -> (crate::pipeline::Pipeline, Arc<crate::db::Db>) {
    let (pipeline, db) = crate::pipeline::on_a_fresh_database().await;
    pipeline
        .register(crate::engine::ViewMeta {
            id: "big".into(),
            client_id: "c".into(),
            sql: "SELECT * FROM u WHERE n > 1".into(),
            params: Default::default(),
            ttl: "1h".into(),
            last_active_at: chrono::Utc::now(),
            owner: None,
        })
        .await
        .expect("register");
    (pipeline, db)
}

/// The view edges in the database, as `[key, version]`, by record.
async fn edges(db: &crate::db::Db) -> Vec<String> {
    let mut r = db
        .run(crate::db::Query::new(
            "SELECT VALUE [record::id(out), version] FROM _spooky_list_ref ORDER BY out",
        ))
        .await
        .expect("edges");
    let edges: Vec<surrealdb::types::Value> = r.take(0).expect("rows");
    edges.iter().map(surrealdb::types::ToSql::to_sql).collect()
}

/// A snapshot's rows were read, then an `/ingest` of a newer write was
/// applied before them: they must not move the record back (its version
/// rising for nothing, its views briefly wrong). Rows of records nothing
/// touched since the read are applied as read.
#[test]
fn rows_read_before_a_newer_ingest_do_not_move_a_record_back() {
    use crate::db::Query;
    use crate::db::records::read_records;
    use crate::engine::Change;
    use crate::engine::value::RecordId;
    use crate::pipeline::Source;

    let runtime = crate::startup::runtime(Some(2)).expect("runtime");
    runtime.block_on(async {
        let (pipeline, db) = with_view_big().await;
        let write = |sql: &'static str| {
            let db = Arc::clone(&db);
            async move { db.run(Query::new(sql)).await.expect("write") }
        };
        let (one, two) = (
            RecordId::parse("u:1").expect("id"),
            RecordId::parse("u:2").expect("id"),
        );

        // The snapshot reads u:1 at n = 1 (outside the view) and u:2.
        write("UPSERT u:1 CONTENT { n: 1 }; UPSERT u:2 CONTENT { n: 5 }").await;
        let mark = pipeline.read_mark();
        let rows = read_records(&db, &[one.clone(), two.clone()])
            .await
            .expect("read");
        // The app writes n = 2 (into the view) and ingests it; the rows
        // reach the pipeline after that.
        write("UPSERT u:1 CONTENT { n: 2 }").await;
        let ingested: Vec<Change> = read_records(&db, std::slice::from_ref(&one))
            .await
            .expect("read");
        let newer = ingested[0].content.clone();
        pipeline
            .ingest(ingested, Source::Http)
            .await
            .expect("ingest");
        pipeline.ingest_read(rows, mark).await.expect("rows");

        let content = |id: &RecordId| {
            pipeline.read(|e| {
                e.record(id).and_then(|r| match r {
                    crate::engine::value::Value::Object(o) => o.get("n").cloned(),
                    _ => None,
                })
            })
        };
        assert_eq!(
            pipeline.read(|e| e.version(&one)),
            Some(1),
            "u:1 was created once and never went back"
        );
        assert_eq!(content(&one), newer.and_then(|o| o.get("n").cloned()));
        assert_eq!(pipeline.read(|e| e.version(&two)), Some(1));
        assert!(content(&two).is_some(), "u:2, untouched, applied as read");

        // The edges say the same: u:1 is in the view at version 1.
        assert_eq!(edges(&db).await, ["[1, 1]", "[2, 1]"]);
    });
    runtime.shutdown_background();
}

/// Two apps write one record, A then B, and their `/ingest` calls cross:
/// B's first, then the worker's notifications of both writes, then A's.
/// A's late copy must not put its older state back: the worker delivered
/// that content already, so the record is read at its turn. An `/ingest`
/// of a content nobody delivered is applied as sent.
#[test]
fn a_late_ingest_of_an_older_write_does_not_move_a_record_back() {
    use crate::db::Query;
    use crate::db::records::read_records;
    use crate::engine::Change;
    use crate::engine::value::RecordId;
    use crate::pipeline::Source;

    let runtime = crate::startup::runtime(Some(2)).expect("runtime");
    runtime.block_on(async {
        let (pipeline, db) = with_view_big().await;
        let one = RecordId::parse("u:1").expect("id");
        // Each write as its app sees it committed: the record read back.
        let write = |sql: &'static str| {
            let (db, one) = (Arc::clone(&db), one.clone());
            async move {
                db.run(Query::new(sql)).await.expect("write");
                read_records(&db, &[one]).await.expect("read")
            }
        };
        let n = |pipeline: &crate::pipeline::Pipeline| {
            pipeline.read(|e| e.record_fields(&one).and_then(|o| o.get("n").cloned()))
        };
        let int = |i: i64| Some(crate::engine::value::Value::from(&serde_json::json!(i)));

        let a: Vec<Change> = write("UPSERT u:1 CONTENT { n: 2 }").await;
        let b: Vec<Change> = write("UPSERT u:1 CONTENT { n: 3 }").await;
        pipeline.ingest(b.clone(), Source::Http).await.expect("B");
        // The worker's notifications, as delivered, in commit order.
        pipeline.ingest(a.clone(), Source::Live).await.expect("A's");
        pipeline.ingest(b, Source::Live).await.expect("B's");
        assert_eq!(n(&pipeline), int(3));
        pipeline.ingest(a, Source::Http).await.expect("A, late");
        assert_eq!(n(&pipeline), int(3), "A's late /ingest moved u:1 back");
        assert_eq!(pipeline.read(|e| e.version(&one)), Some(1));

        // A new write whose `/ingest` comes before its notification: as sent.
        let c: Vec<Change> = write("UPSERT u:1 CONTENT { n: 4 }").await;
        pipeline.ingest(c.clone(), Source::Http).await.expect("C");
        assert_eq!(n(&pipeline), int(4));
        assert_eq!(pipeline.read(|e| e.version(&one)), Some(2));
        // Its notification, then the same `/ingest` again: nothing changes.
        pipeline.ingest(c.clone(), Source::Live).await.expect("C's");
        pipeline.ingest(c, Source::Http).await.expect("C again");
        assert_eq!(pipeline.read(|e| e.version(&one)), Some(2));

        // A delete crossed by a newer create: the late delete reads u:1 back.
        let gone: Vec<Change> = write("DELETE u:1").await;
        let back: Vec<Change> = write("UPSERT u:1 CONTENT { n: 5 }").await;
        pipeline
            .ingest(back.clone(), Source::Http)
            .await
            .expect("create");
        pipeline
            .ingest(gone.clone(), Source::Live)
            .await
            .expect("delete's");
        pipeline.ingest(back, Source::Live).await.expect("create's");
        pipeline
            .ingest(gone, Source::Http)
            .await
            .expect("delete, late");
        assert_eq!(n(&pipeline), int(5), "the late delete removed u:1");

        // The edge says the same.
        let version = pipeline.read(|e| e.version(&one)).expect("held");
        assert_eq!(edges(&db).await, [format!("[1, {version}]")]);
    });
    runtime.shutdown_background();
}
