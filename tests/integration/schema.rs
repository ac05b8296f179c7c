//! TEMP exploration of SurrealDB 3.3.5 behaviour.

use ssp::db::Query;
use surrealdb::types::RecordId;

use crate::support::{Backend, TestApp};

async fn explore(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let v = RecordId::new("_spooky_query", "v1");
    let r = RecordId::new("thread_nope", "1");
    let e4 = RecordId::new("_spooky_list_ref", surrealdb::types::Array::from(vec![surrealdb::types::Value::String("v1".into()), surrealdb::types::Value::RecordId(RecordId::new("t", "4"))]));
    let e4b = RecordId::new("_spooky_list_ref", surrealdb::types::Array::from(vec![surrealdb::types::Value::String("other".into()), surrealdb::types::Value::RecordId(RecordId::new("t", "4"))]));
    let row = |id: &RecordId, out: RecordId, version: i64| serde_json::json!(null).clone().as_null().map(|_| ()).map(|_| {
        let mut o = surrealdb::types::Object::new();
        o.insert("id".to_string(), surrealdb::types::Value::RecordId(id.clone()));
        o.insert("in".to_string(), surrealdb::types::Value::RecordId(RecordId::new("_spooky_query", "v1")));
        o.insert("out".to_string(), surrealdb::types::Value::RecordId(out));
        o.insert("clientId".to_string(), surrealdb::types::Value::String("c".into()));
        o.insert("version".to_string(), surrealdb::types::Value::Number(surrealdb::types::Number::Int(version)));
        surrealdb::types::Value::Array(vec![surrealdb::types::Value::Object(o)].into())
    }).unwrap();
    let stmts: Vec<(&str, Query)> = vec![
        ("info list_ref", Query::new("INFO FOR TABLE _spooky_list_ref")),
        ("relate1", Query::new("RELATE $v->_spooky_list_ref->$r SET clientId = 'c', version = 1, updatedAt = time::now() RETURN id").bind("v", v.clone()).bind("r", r.clone())),
        ("relate dup", Query::new("RELATE $v->_spooky_list_ref->$r SET clientId = 'c', version = 1, updatedAt = time::now()").bind("v", v.clone()).bind("r", r.clone())),
        ("relate bad version", Query::new("RELATE $v->_spooky_list_ref->$r SET clientId = 'c', version = 'x'").bind("v", v.clone()).bind("r", RecordId::new("t", "2"))),
        ("relate wrong in", Query::new("RELATE $v->_spooky_list_ref->$r SET clientId = 'c', version = 1").bind("v", RecordId::new("user", "1")).bind("r", RecordId::new("t", "3"))),
        ("insert rel e4 v1", Query::new("INSERT RELATION INTO _spooky_list_ref $rows ON DUPLICATE KEY UPDATE version = $input.version RETURN id, version").bind("rows", row(&e4, RecordId::new("t", "4"), 1))),
        ("insert rel e4 v2", Query::new("INSERT RELATION INTO _spooky_list_ref $rows ON DUPLICATE KEY UPDATE version = $input.version RETURN id, version").bind("rows", row(&e4, RecordId::new("t", "4"), 2))),
        ("insert rel other id same in/out", Query::new("INSERT RELATION INTO _spooky_list_ref $rows ON DUPLICATE KEY UPDATE version = $input.version RETURN id, version").bind("rows", row(&e4b, RecordId::new("t", "4"), 3))),
        ("relate det id again", Query::new("RELATE $v->$e->$r CONTENT { clientId: 'c', version: 2 }").bind("v", v.clone()).bind("r", RecordId::new("t", "4")).bind("e", e4.clone())),
        ("update det id", Query::new("UPDATE $e SET version = 5 RETURN version").bind("e", e4.clone())),
        ("upsert det id existing", Query::new("UPSERT $e SET version = 6 RETURN version").bind("e", e4.clone())),
        ("select edges", Query::new("SELECT id, in, out, version FROM _spooky_list_ref")),
        ("graph", Query::new("SELECT VALUE ->_spooky_list_ref->? FROM $v").bind("v", v.clone())),
        ("delete nonexistent", Query::new("DELETE $d RETURN NONE").bind("d", vec![RecordId::new("_spooky_list_ref", "nope")])),
        ("upsert query row", Query::new("UPSERT $q CONTENT { clientId: 'c', surql: 'SELECT * FROM t', params: { a: 1 }, ttl: 1h, lastActiveAt: time::now() } RETURN AFTER").bind("q", v.clone())),
        ("upsert query row again", Query::new("UPSERT $q CONTENT { clientId: 'c2', surql: 'SELECT * FROM t', params: { a: 2 }, ttl: 2h, lastActiveAt: time::now() } RETURN AFTER").bind("q", v.clone())),
    ];
    for (name, q) in stmts {
        let text = q.text();
        match app.db.run_unchecked(&q).await {
            Ok(mut resp) => {
                let n = resp.num_results();
                let mut out = vec![];
                for i in 0..n {
                    out.push(match resp.take::<surrealdb::types::Value>(i) {
                        Ok(v) => v.into_json_value().to_string(),
                        Err(e) => format!("ERR {e:?}"),
                    });
                }
                println!("=== {name} [{text}] n={n}\n{}", out.join("\n"));
            }
            Err(e) => println!("=== {name} [{text}] CALL ERR {e:?}"),
        }
    }
    app.stop().await;
}
backend_tests!(explore);
