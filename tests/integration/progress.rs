//! Long loads in pages (issue 8, progress): a table's snapshot is read page
//! by page in record-id order so that it can report progress; the pages must
//! still cover every row exactly once, whatever the keys' types.

use std::collections::BTreeSet;

use ssp::db::Query;
use ssp::engine::value::RecordId;
use ssp::sources::snapshot::{TablePages, count_rows, row_to_change};

use crate::support::{Backend, TestApp};

async fn pages_cover_every_row_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = &app.db;
    // Keys of every kind a record id can have, in one table.
    let setup = "DEFINE TABLE nothing_here;
        FOR $i IN 1..=23 { CREATE type::record('mixed', $i) SET n = $i };
        CREATE mixed:alpha, mixed:beta, mixed:⟨with space⟩ SET n = 0;
        CREATE mixed:[1, 'x'], mixed:[2], mixed:{ a: 1 } SET n = 0;
        CREATE mixed:u'0190b6a4-5f2c-7a3e-9c1d-2b3c4d5e6f70' SET n = 0;
        CREATE mixed:-5, mixed:0 SET n = 0;";
    db.run(Query::new(setup)).await.expect("setup");
    // What one plain read returns.
    let mut response = db
        .run(Query::new("SELECT * FROM mixed"))
        .await
        .expect("rows");
    let want: BTreeSet<RecordId> = response
        .take::<Vec<surrealdb::types::Value>>(0)
        .expect("rows")
        .into_iter()
        .filter_map(row_to_change)
        .map(|c| c.id)
        .collect();
    // (SSP's engine skips key kinds it does not model, e.g. object keys.)
    assert!(want.len() >= 30, "{} rows", want.len());
    assert_eq!(count_rows(db, "mixed").await.expect("count"), 32);
    assert_eq!(count_rows(db, "nothing_here").await.expect("count"), 0);

    for size in [1, 4, 31, 32, 33, 1000] {
        let mut pages = TablePages::new("mixed", size);
        let mut got = Vec::new();
        let mut n_pages = 0;
        while let Some(page) = pages.next(db).await.expect("page") {
            assert!(page.len() <= size);
            n_pages += 1;
            got.extend(page.into_iter().map(|c| c.id));
        }
        assert_eq!(got.len(), want.len(), "page size {size}: every row once");
        let ids: BTreeSet<RecordId> = got.into_iter().collect();
        assert_eq!(ids, want, "page size {size}: the same rows as one read");
        assert!(
            n_pages >= want.len().div_ceil(size),
            "page size {size}: {n_pages} pages"
        );
    }
    let mut empty = TablePages::new("nothing_here", 10);
    assert!(empty.next(db).await.expect("page").is_none());
}

backend_tests!(pages_cover_every_row_once: mem, ws);
