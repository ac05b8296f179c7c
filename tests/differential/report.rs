//! The reproduction printed for a failure.

use super::*;

// ===========================================================================
// Reporting
// ===========================================================================

pub(crate) fn ids(set: &BTreeSet<RecordId>) -> String {
    let v: Vec<String> = set.iter().map(|r| r.to_string()).collect();
    format!("[{}]", v.join(", "))
}

pub(crate) fn repro(seed: u64, index: u64, case: &Case, f: &Failure, runs: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n======== differential failure: {:?} (seed {seed}, case {index}) ========",
        f.kind
    );
    let _ = writeln!(
        s,
        "rerun: SSP_DIFF_SEED={seed} SSP_DIFF_ONLY={index} cargo test --test differential -- --nocapture"
    );
    let _ = writeln!(s, "(shrunk in {runs} runs)");
    if let Some(slack) = case.window_slack {
        let _ = writeln!(s, "(engine windows keep {slack} matches past their end)");
    }
    let _ = writeln!(
        s,
        "-- SurrealQL, to paste into `surreal sql`. Each `-- [step n] batch` is one engine batch;\n\
         -- the engine.register/unregister lines are what SSP was told between them."
    );
    let _ = writeln!(
        s,
        "REMOVE TABLE IF EXISTS t; REMOVE TABLE IF EXISTS u; REMOVE TABLE IF EXISTS r;\n{}",
        crate::runner::schema()
    );
    for (i, step) in case.steps.iter().enumerate() {
        match step {
            Step::Batch(ws) => {
                let _ = writeln!(s, "-- [step {i}] batch");
                for w in ws {
                    match &w.content {
                        Some(c) if w.id.table.as_str() == "r" => {
                            let mut c = c.clone();
                            c.insert("id".into(), Value::thing(w.id.clone()));
                            let c = lit(&Value::Object(c));
                            let _ = writeln!(
                                s,
                                "IF record::exists({}) {{ UPDATE {} CONTENT {c}; }} ELSE {{ INSERT \
                                 RELATION INTO r {c}; }};",
                                w.id, w.id
                            );
                        }
                        Some(c) => {
                            let _ = writeln!(
                                s,
                                "UPSERT {} CONTENT {};",
                                w.id,
                                lit(&Value::Object(c.clone()))
                            );
                        }
                        None => {
                            let _ = writeln!(s, "DELETE {};", w.id);
                        }
                    }
                }
            }
            Step::Clock(c) => {
                let _ = writeln!(
                    s,
                    "-- [step {i}] clock: time::now() is {} from here (the engine's \
                     advance_clock; SurrealDB runs the views with it as `$ssp_now`)",
                    crate::generator::CLOCKS[*c]
                );
            }
            Step::Register(d) => {
                if let Some(def) = &case.views[*d] {
                    let _ = writeln!(
                        s,
                        "-- [step {i}] engine.register(\"{}\"): {}   params {}",
                        def.id,
                        def.sql(),
                        serde_json::Value::Object(def.engine_params())
                    );
                }
            }
            Step::Unregister(d) => {
                if let Some(def) = &case.views[*d] {
                    let _ = writeln!(s, "-- [step {i}] engine.unregister(\"{}\")", def.id);
                }
            }
        }
    }
    if let Some(def) = f.view.and_then(|d| case.views[d].as_ref()) {
        let _ = writeln!(s, "-- view \"{}\", checked after step {}:", def.id, f.step);
        for (k, v) in &def.params {
            let _ = writeln!(s, "LET ${k} = {};", lit(v));
        }
        let _ = writeln!(s, "{};", def.sql());
        let _ = writeln!(
            s,
            "-- engine params (JSON): {}",
            serde_json::Value::Object(def.engine_params())
        );
    }
    match f.kind {
        Kind::Mismatch => {
            let _ = writeln!(s, "-- SurrealDB: {}", ids(&f.surreal));
            let _ = writeln!(s, "-- engine:    {}", ids(&f.engine));
            let only_s: BTreeSet<RecordId> = f.surreal.difference(&f.engine).cloned().collect();
            let only_e: BTreeSet<RecordId> = f.engine.difference(&f.surreal).cloned().collect();
            let _ = writeln!(
                s,
                "-- only in SurrealDB: {}   only in engine: {}",
                ids(&only_s),
                ids(&only_e)
            );
            let _ = writeln!(s, "-- the engine holds: {}", f.detail);
        }
        Kind::Delta => {
            let _ = writeln!(s, "-- {}", f.detail);
            if !f.surreal.is_empty() || !f.engine.is_empty() {
                let _ = writeln!(s, "-- from deltas / expected: {}", ids(&f.surreal));
                let _ = writeln!(s, "-- engine:                 {}", ids(&f.engine));
            }
        }
        Kind::Rejected | Kind::Surreal => {
            let _ = writeln!(s, "-- error: {}", f.detail);
        }
    }
    s
}
