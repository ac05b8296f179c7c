//! Shrinking a failing case to a small reproduction.

use super::*;

// ===========================================================================
// Shrinking a failing case
// ===========================================================================

impl Runner {
    /// Smaller cases that may still fail the same way.
    pub(crate) fn candidates(case: &Case) -> Vec<Case> {
        let mut out = Vec::new();
        // Whole steps, later ones first.
        for i in (0..case.steps.len()).rev() {
            let mut c = case.clone();
            c.steps.remove(i);
            out.push(c);
        }
        // Whole views.
        for d in 0..case.views.len() {
            if case.views[d].is_some() {
                let mut c = case.clone();
                c.views[d] = None;
                c.steps
                    .retain(|s| !matches!(s, Step::Register(x) | Step::Unregister(x) if *x == d));
                out.push(c);
            }
        }
        // Single writes; a batch split in two.
        for (i, s) in case.steps.iter().enumerate() {
            if let Step::Batch(ws) = s
                && ws.len() > 1
            {
                for j in 0..ws.len() {
                    let mut c = case.clone();
                    if let Step::Batch(ws) = &mut c.steps[i] {
                        ws.remove(j);
                    }
                    out.push(c);
                }
                let mut c = case.clone();
                let (a, b) = ws.split_at(ws.len() / 2);
                c.steps[i] = Step::Batch(a.to_vec());
                c.steps.insert(i + 1, Step::Batch(b.to_vec()));
                out.push(c);
            }
        }
        // Simpler queries and fewer params.
        for (d, def) in case.views.iter().enumerate() {
            let Some(def) = def else { continue };
            for q in def.q.shrinks() {
                let mut c = case.clone();
                let v = c.views[d].as_mut().expect("checked");
                v.q = q;
                v.prune_params();
                out.push(c);
            }
        }
        // Simpler records: drop a field, or simplify its value.
        for (i, s) in case.steps.iter().enumerate() {
            let Step::Batch(ws) = s else { continue };
            for (j, w) in ws.iter().enumerate() {
                let Some(content) = &w.content else { continue };
                for (k, (_, v)) in content.iter().enumerate() {
                    let mut simpler = vec![None];
                    match v {
                        Value::Array(a) if !a.is_empty() => {
                            for x in 0..a.len() {
                                let mut a2 = a.clone();
                                a2.remove(x);
                                simpler.push(Some(Value::Array(a2)));
                            }
                        }
                        Value::Object(o) if !o.is_empty() => {
                            for x in 0..o.len() {
                                let mut o2 = o.clone();
                                o2.remove_at(x);
                                simpler.push(Some(Value::Object(o2)));
                            }
                        }
                        _ => {}
                    }
                    for sv in simpler {
                        let mut c = case.clone();
                        if let Step::Batch(ws) = &mut c.steps[i]
                            && let Some(content) = &mut ws[j].content
                        {
                            match sv {
                                None => content.remove_at(k),
                                Some(v) => content.set_at(k, v),
                            }
                        }
                        out.push(c);
                    }
                }
            }
        }
        out
    }

    pub(crate) async fn shrink(
        &self,
        mut case: Case,
        mut failure: Failure,
    ) -> (Case, Failure, usize) {
        let mut runs = 0;
        case.steps.truncate(failure.step + 1);
        'outer: loop {
            for cand in Self::candidates(&case) {
                if runs >= SHRINK_BUDGET {
                    break 'outer;
                }
                runs += 1;
                if let Err(f) = self.run(&cand, &mut Stats::default()).await
                    && f.kind == failure.kind
                {
                    case = cand;
                    case.steps.truncate(f.step + 1);
                    failure = f;
                    continue 'outer;
                }
            }
            break;
        }
        (case, failure, runs)
    }
}
