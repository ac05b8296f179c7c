use ssp::engine::value::*;
use ssp::engine::*;
#[test]
fn dbg() {
    let mut e = Engine::new();
    let d = e.register(ViewMeta{id: "v0".into(), client_id: "c".into(), sql: "SELECT * FROM t WHERE score INSIDE [0.0]".into(), params: Default::default(), ttl: "1h".into(), last_active_at: chrono::Utc::now()}).unwrap();
    println!("{d:?}");
    let o = Object::from_pairs(vec![("score".into(), Value::Number(Number::Float(-0.0)))]);
    let out = e.apply_batch(&[Change{id: RecordId::parse("t:3").unwrap(), content: Some(o)}]);
    println!("{out:?}");
    println!("{:?}", e.view_records("v0"));
}
