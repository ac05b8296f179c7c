//! The applier: the one task that takes requests in order, applies them to
//! the engine and commits their edges (group commit, retries, the repair
//! after a commit that failed for good).

use super::*;
use crate::db::records::read_records;
use crate::engine::value::RecordId;

mod commit;
mod delivered;
mod fill;
mod prescan;
mod recent;
mod repair;
mod tiers;

pub(super) use commit::*;
pub(super) use delivered::Delivered;
pub(super) use fill::{Filled, Registration};
pub(super) use recent::Recent;
pub(super) use repair::Repair;

pub(super) struct Applier {
    pub(super) rx: mpsc::Receiver<Request>,
    pub(super) engine: Arc<RwLock<Engine>>,
    pub(super) sink: EdgeSink,
    pub(super) dirty: Arc<Notify>,
    /// Group commits under way; each yields the edge hashes it held.
    pub(super) in_flight: FuturesUnordered<BoxFuture<'static, Done>>,
    /// Write slots (the sink's connections) no group commit is using, the
    /// least recently used first: taking them in turn keeps every
    /// connection in use, so a broken one shows at once, not under load.
    pub(super) free_slots: std::collections::VecDeque<usize>,
    /// Ingests in the group commits under way.
    pub(super) in_flight_requests: usize,
    /// How many in-flight groups write each edge (by hash). A hash collision
    /// only makes a group wait when it need not.
    pub(super) in_flight_edges: AHashMap<u64, u32>,
    /// What must be rewritten after a write the database refused for good.
    pub(super) repair: Repair,
    pub(super) tables_wanted: Arc<Notify>,
    /// Views whose initial edges a fill is writing (see `fill`): a group
    /// that writes one of their edges waits for it.
    pub(super) filling: AHashMap<Arc<str>, fill::Filling>,
    /// Views moved to the re-query tier because their data linked into a
    /// table SSP did not hold: tried in the engine again once a table is
    /// loaded (see `promote_link_views`).
    pub(super) link_retiered: Vec<Arc<str>>,
    /// A registration's first result is being computed beside the stream
    /// (see `prescan`); `resume` holds it once done, until it registers.
    pub(super) prescanning: bool,
    pub(super) resume: Option<Box<prescan::Resume>>,
    /// See `Pipeline::prescans`.
    pub(super) prescans: Arc<std::sync::atomic::AtomicU64>,
    /// A rebuild from the database under way (see `Request::Rebuilding`).
    pub(super) rebuild: Rebuild,
    /// The tables whose definition the applier has read (see
    /// `classify_tables`).
    pub(super) classified: ahash::AHashSet<Arc<str>>,
    /// What recent groups applied, for rows read from the database (see
    /// `Pipeline::ingest_read`).
    pub(super) recent: Recent,
    /// What the change worker delivered lately, for `/ingest`s that copy
    /// an older write (see `stale_ingests`).
    pub(super) delivered: Delivered,
}

/// What a rebuild from the database must not undo: views unregistered (or
/// expired) while it runs, and a reset. A view it registers again from its
/// row steps aside for them, and for a view a client registered meanwhile.
pub(super) enum Rebuild {
    Off,
    On {
        gone: ahash::AHashSet<String>,
        reset: bool,
    },
}

impl Rebuild {
    fn gone(&mut self, id: &str) {
        if let Rebuild::On { gone, .. } = self {
            gone.insert(id.to_owned());
        }
    }

    /// Whether the view went, or everything was reset, since the rebuild
    /// began: a registration from its row must not bring it back.
    fn skips(&self, id: &str) -> bool {
        match self {
            Rebuild::On { gone, reset } => *reset || gone.contains(id),
            Rebuild::Off => false,
        }
    }
}

/// Whether `waiting` ingests should start a group commit of their own while
/// `in_flight` ingests are still being committed in other groups (a write
/// slot being free).
///
/// Every transaction pays a fixed cost (a round trip, BEGIN and COMMIT), so
/// a new group starts only when it is at least as big as what is in flight;
/// smaller, the ingests wait and join the next group. Without this rule a
/// free slot took whatever was queued: at 32 closed-loop clients over
/// `ws://`, groups of 1-6 ingests alternated with groups of 25, and each
/// small one cost nearly as much as a big one. With it, they settle at two
/// groups of 16, and the 32-client rate rose by about a sixth (6,124-7,037
/// against 5,072-6,024 ingests/s in alternating runs; see bench-results/README.md's group
/// commit figures). The wait is bounded by the commits in flight, as
/// with a single write slot.
fn worth_a_group(waiting: usize, in_flight: usize) -> bool {
    in_flight == 0 || waiting >= in_flight
}

/// The edges a view registered again from its row has in the database
/// (see `Request::Register::from_row`).
pub(super) type FromRow = Arc<Vec<reconcile::EdgeRow>>;

/// A finished group commit: what it held, to release.
pub(super) struct Done {
    /// The database refused its edges for good: they must be repaired.
    pub(super) failed: bool,
    /// The hashes of the edges it wrote.
    pub(super) edges: Vec<u64>,
    /// The ingests it answered.
    pub(super) requests: usize,
    /// The write slot it used (a fill uses none of its own).
    pub(super) slot: Option<usize>,
    /// A fill's end (see `fill`).
    pub(super) filled: Option<Box<Filled>>,
    /// A prescan's end (see `prescan`): the registration to go on with.
    pub(super) resume: Option<Box<prescan::Resume>>,
}

/// An ingest waiting for its group's commit.
pub(super) struct Waiter {
    pub(super) reply: Reply<IngestSummary>,
    pub(super) summary: IngestSummary,
}

impl Applier {
    pub(super) async fn run(mut self) {
        // Ingests received but not yet in a group, and the changes they hold.
        let mut queued: Vec<Request> = Vec::new();
        let mut queued_changes = 0;
        // A view operation received after `queued`: it runs once they and
        // every commit before it are done.
        let mut admin: Option<Request> = None;
        let mut closed = false;
        loop {
            if self.repair.due() {
                // Alone, like a view operation: every commit before it done.
                self.drain().await;
                self.run_repair().await;
            }
            // Take whatever is already waiting, up to one group's worth.
            while admin.is_none() && !closed && queued_changes < MAX_GROUP_CHANGES {
                match self.rx.try_recv() {
                    Ok(r) => self.accept(r, &mut queued, &mut queued_changes, &mut admin),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => closed = true,
                }
            }
            if !queued.is_empty()
                && !self.free_slots.is_empty()
                && (self.in_flight.is_empty()
                    || admin.is_some()
                    || closed
                    || queued_changes >= MAX_GROUP_CHANGES
                    || worth_a_group(queued.len(), self.in_flight_requests))
            {
                queued_changes = 0;
                self.ingest_group(std::mem::take(&mut queued)).await;
                self.retier_link_views().await;
                continue;
            }
            if self.resume.is_some() {
                self.finish_prescan().await;
                continue;
            }
            if queued.is_empty() {
                if let Some(request) = admin.take() {
                    // And the registration a prescan computes for.
                    self.finish_prescan().await;
                    // View operations see every earlier commit done (but
                    // fills of other views: see `fill`).
                    if let Some(request) = self.join_fill(request) {
                        self.settle_before(&request).await;
                        self.admin(request).await;
                    }
                    continue;
                }
                if closed {
                    self.drain().await;
                    return;
                }
            }
            let may_receive = admin.is_none() && !closed && queued_changes < MAX_GROUP_CHANGES;
            // A time window's record changes its answer: a group of no
            // ingests writes what that changes (`ingest_group` moves the
            // clock), in one transaction like any other.
            let flip = self
                .next_flip()
                .filter(|_| admin.is_none() && !self.free_slots.is_empty());
            tokio::select! {
                // Completions first: they free a slot and answer callers.
                biased;
                Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.release(done);
                }
                r = self.rx.recv(), if may_receive => match r {
                    Some(r) => self.accept(r, &mut queued, &mut queued_changes, &mut admin),
                    None => closed = true,
                },
                () = tokio::time::sleep_until(self.repair.at), if self.repair.pending() => {}
                () = sleep_until_some(flip), if flip.is_some() => {
                    self.ingest_group(Vec::new()).await;
                }
            }
        }
    }

    pub(super) fn accept(
        &self,
        request: Request,
        queued: &mut Vec<Request>,
        queued_changes: &mut usize,
        admin: &mut Option<Request>,
    ) {
        match request {
            Request::Ingest { ref changes, .. } => {
                *queued_changes += changes.len().max(1);
                queued.push(request);
            }
            other => *admin = Some(other),
        }
    }

    /// Forgets the edges of a finished group commit.
    pub(super) fn release(&mut self, done: Done) {
        metrics::gauge!("ssp_edge_tx_in_flight").decrement(1.0);
        if done.failed {
            self.repair.needed();
        }
        self.in_flight_requests -= done.requests;
        if let Some(slot) = done.slot {
            self.free_slots.push_back(slot);
        }
        for h in done.edges {
            if let std::collections::hash_map::Entry::Occupied(mut e) =
                self.in_flight_edges.entry(h)
            {
                *e.get_mut() -= 1;
                if *e.get() == 0 {
                    e.remove();
                }
            }
        }
        if let Some(filled) = done.filled {
            self.filled(*filled);
        }
        if let Some(resume) = done.resume {
            self.resume = Some(resume);
        }
    }

    /// Waits for every group commit in flight
    /// (and a prescan's registration, with what it writes).
    pub(super) async fn drain(&mut self) {
        loop {
            while let Some(done) = self.in_flight.next().await {
                self.release(done);
            }
            if !self.prescanning {
                return;
            }
            self.finish_prescan().await;
        }
    }

    pub(super) fn engine(&self) -> std::sync::RwLockWriteGuard<'_, Engine> {
        let mut engine = self.engine.write().unwrap_or_else(|p| p.into_inner());
        // Free while no `time::now()` answer changes on the way; the rest
        // is `advance_clock`'s, with edges to write.
        engine.catch_up_clock(chrono::Utc::now());
        engine
    }

    /// When the clock reaches the next record whose answer to a
    /// `time::now()` comparison changes (see `engine::clock`).
    fn next_flip(&self) -> Option<tokio::time::Instant> {
        let at = self
            .engine
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .next_flip()?;
        let wait = (at - chrono::Utc::now()).to_std().unwrap_or_default();
        Some(tokio::time::Instant::now() + wait)
    }

    /// Replaces what the change worker delivered (LIVE notifications,
    /// change-feed entries) by each record's current content in SurrealDB,
    /// read here, at its turn in the pipeline.
    ///
    /// Why: a notification can arrive after a newer state of its record was
    /// applied (an `/ingest` of a later write, sent as soon as the write
    /// committed, overtakes the LIVE notification of an earlier one).
    /// Applied as delivered, it would put the old state back until the next
    /// notification: a deleted record re-entering its views, an update
    /// going back, versions rising for nothing. Read at its turn, it can
    /// only bring the record forward to what the database holds now, which
    /// is as new as anything applied before it, since an `/ingest` comes
    /// after its write. Everything the worker delivers becomes "this record
    /// changed"; the database says to what. One read per group (one round
    /// trip per 1,000 records). While the database is unavailable the read
    /// is retried (with backoff, as commits are); if it fails otherwise, the
    /// changes are applied as delivered (as before this step), with a
    /// warning and `ssp_worker_resolve_failures_total`: never dropped.
    ///
    /// Rows of a table's snapshot (`Pipeline::ingest_read`) are the same
    /// kind of old news, but for a whole table: only those whose record a
    /// group applied after the snapshot's read began are read again
    /// (`ssp_worker_snapshot_rereads_total`), as are rows whose read is too
    /// far back for `recent` to tell. The group's own other changes count
    /// as applied after it, whatever their order in the group. So are the
    /// `/ingest` changes in `stale` (see `stale_ingests`): late copies of
    /// writes the worker already delivered.
    ///
    /// Ingested edges (records of a `TYPE RELATION` table in `relations`)
    /// are read too. SurrealDB deletes a record's edges with it, but only
    /// if the record exists then; the engine cascades the same way. When
    /// the worker's notifications of a batch come first, the engine has
    /// already deleted `user:4` (and its edges) when the `/ingest` of
    /// `RELATE user:4->wrote->post:1; DELETE user:4` replays it: the edge
    /// would come back, and the delete of a record the engine no longer
    /// holds deletes nothing. Read at its turn, the edge is what the
    /// database holds: gone.
    async fn resolve_from_database(
        db: &crate::db::Db,
        group: &mut [Request],
        relations: &std::collections::BTreeSet<Arc<str>>,
        recent: &Recent,
        own: &[u64],
        stale: &ahash::AHashSet<(usize, u64)>,
    ) {
        // Per request, the rows to read again: `None` for none, `Some(None)`
        // for all of them, `Some(Some(records))` for those records.
        let snapshot_rows: Vec<Option<Option<ahash::AHashSet<u64>>>> = group
            .iter()
            .map(|req| match req {
                Request::Ingest {
                    read_at: Some(mark),
                    ..
                } => Some(recent.since(*mark).map(|mut records| {
                    records.extend(own.iter().copied());
                    records
                })),
                _ => None,
            })
            .collect();
        let resolved = |i: usize, source: &Source, id: &RecordId| {
            matches!(source, Source::Live | Source::ChangeFeed)
                || relations.contains(id.table.as_str())
                || (!stale.is_empty() && stale.contains(&(i, recent::record_hash(id))))
                || match &snapshot_rows[i] {
                    None => false,
                    Some(None) => true,
                    Some(Some(records)) => records.contains(&recent::record_hash(id)),
                }
        };
        let mut ids: Vec<RecordId> = Vec::new();
        let mut seen: ahash::AHashSet<&RecordId> = ahash::AHashSet::new();
        let mut rereads = 0u64;
        for (i, req) in group.iter().enumerate() {
            if let Request::Ingest {
                changes, source, ..
            } = req
            {
                for c in changes {
                    if resolved(i, source, &c.id) {
                        if snapshot_rows[i].is_some() {
                            rereads += 1;
                        }
                        if seen.insert(&c.id) {
                            ids.push(c.id.clone());
                        }
                    }
                }
            }
        }
        if ids.is_empty() {
            return;
        }
        if rereads > 0 {
            metrics::counter!("ssp_worker_snapshot_rereads_total").increment(rereads);
        }
        if !stale.is_empty() {
            metrics::counter!("ssp_ingest_rereads_total").increment(stale.len() as u64);
        }
        // While the database is down, wait for it, as commits do: applied
        // as delivered, a stale notification could move a record back.
        let mut backoff =
            crate::db::backoff_forever(Duration::from_millis(50), Duration::from_secs(2));
        let current = loop {
            match read_records(db, &ids).await {
                Ok(current) => break current,
                Err(e) if e.is_unavailable() => {
                    let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(2));
                    tracing::warn!(
                        error = %e,
                        retry_in_ms = wait.as_millis() as u64,
                        "reading the records the change worker reported failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    metrics::counter!("ssp_worker_resolve_failures_total").increment(1);
                    tracing::warn!(
                        error = %e,
                        records = ids.len(),
                        "could not read the current content of the records the change worker reported; applying them as delivered"
                    );
                    return;
                }
            }
        };
        let current: AHashMap<RecordId, Option<crate::engine::value::Object>> =
            current.into_iter().map(|c| (c.id, c.content)).collect();
        for (i, req) in group.iter_mut().enumerate() {
            if let Request::Ingest {
                changes, source, ..
            } = req
            {
                for c in changes.iter_mut() {
                    if resolved(i, source, &c.id)
                        && let Some(now) = current.get(&c.id)
                    {
                        c.content = now.clone();
                    }
                }
            }
        }
    }

    /// The `/ingest` changes of `group` to read again at their turn, as
    /// (request, record hash): those that copy a content the change worker
    /// already delivered for their record while the engine holds another
    /// (see `delivered`). Notes the worker's deliveries of the group, in
    /// order, so that an `/ingest` later in the same group is checked
    /// against them too.
    ///
    /// Only the late copy of an older write (or a write of a content seen
    /// before, an A-B-A) pays a read: an `/ingest` of a new content was
    /// never delivered, and one whose notification came first finds the
    /// engine holding its content already. A deployment without the change
    /// worker has nothing delivered, so nothing is read.
    fn stale_ingests(&mut self, group: &[Request]) -> ahash::AHashSet<(usize, u64)> {
        let mut stale = ahash::AHashSet::new();
        let from_worker = |req: &Request| {
            matches!(
                req,
                Request::Ingest {
                    source: Source::Live | Source::ChangeFeed,
                    ..
                }
            )
        };
        if self.delivered.is_empty() && !group.iter().any(from_worker) {
            return stale;
        }
        let engine = self.engine.read().unwrap_or_else(|p| p.into_inner());
        // Records an earlier request of the group changes: the engine's
        // copy of them says nothing about the order within the group.
        let mut named: ahash::AHashSet<&RecordId> = ahash::AHashSet::new();
        for (i, req) in group.iter().enumerate() {
            let Request::Ingest {
                changes, source, ..
            } = req
            else {
                continue;
            };
            match source {
                Source::Live | Source::ChangeFeed => {
                    for c in changes {
                        self.delivered.note(&c.id, c.content.as_ref());
                    }
                }
                Source::Http => {
                    for c in changes {
                        if self.delivered.has(&c.id, c.content.as_ref())
                            && (named.contains(&c.id)
                                || !delivered::same(
                                    engine.record_fields(&c.id),
                                    c.content.as_ref(),
                                ))
                        {
                            stale.insert((i, recent::record_hash(&c.id)));
                        }
                    }
                }
                Source::Bootstrap => {}
            }
            named.extend(changes.iter().map(|c| &c.id));
        }
        stale
    }

    /// Reads the database's table definitions when the group names a table
    /// the applier has not seen: the engine deletes a record's edges with
    /// it (as SurrealDB does) only in tables it knows are `TYPE RELATION`,
    /// and an edge kept past its record's delete would come back into a
    /// view registered later. One `INFO FOR DB` per new table name; if it
    /// fails, the tables are tried again with the next group (the
    /// registration of a traversing view reads them too).
    async fn classify_tables(&mut self, db: &crate::db::Db, group: &[Request]) {
        let unseen = group.iter().any(|req| {
            matches!(req, Request::Ingest { changes, .. }
                if changes.iter().any(|c| !self.classified.contains(c.id.table.as_str())))
        });
        if !unseen {
            return;
        }
        match crate::sources::changefeed::table_infos(db).await {
            Ok(infos) => {
                let relations = crate::sources::changefeed::relations_of(&infos);
                self.classified
                    .extend(infos.keys().map(|name| Arc::from(name.as_str())));
                // A table the database does not define (yet: records only
                // ingested) is no relation table: not read again.
                for req in group {
                    if let Request::Ingest { changes, .. } = req {
                        for c in changes {
                            self.classified.insert(Arc::from(c.id.table.as_str()));
                        }
                    }
                }
                let mut engine = self.engine();
                if *engine.relation_tables() != relations {
                    engine.set_relation_tables(relations);
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading the database's table definitions failed"),
        }
    }

    /// A delete of a record SSP does not hold deleted its edges in the
    /// database only if the record existed, which SSP cannot tell: the
    /// edges the engine would delete with it are read from the database
    /// first, and those it still holds stay (see `Engine::set_kept_edges`).
    /// While the database is down the read waits, as commits do; when it
    /// fails otherwise the engine deletes them (logged and counted). A
    /// group without deletes (most) costs nothing here.
    async fn surviving_edges(
        &mut self,
        db: &crate::db::Db,
        group: &[Request],
    ) -> ahash::AHashSet<RecordId> {
        let deletes = group.iter().any(|req| {
            matches!(req, Request::Ingest { changes, .. } if changes.iter().any(|c| c.content.is_none()))
        });
        if !deletes {
            return Default::default();
        }
        let unsure: Vec<RecordId> = {
            let engine = self.engine.read().unwrap_or_else(|p| p.into_inner());
            let mut unsure: Vec<RecordId> = group
                .iter()
                .filter_map(|req| match req {
                    Request::Ingest { changes, .. } => Some(engine.unsure_cascades(changes)),
                    _ => None,
                })
                .flatten()
                .collect();
            unsure.sort();
            unsure.dedup();
            unsure
        };
        if unsure.is_empty() {
            return Default::default();
        }
        let mut backoff =
            crate::db::backoff_forever(Duration::from_millis(50), Duration::from_secs(2));
        loop {
            match read_records(db, &unsure).await {
                Ok(current) => {
                    return current
                        .into_iter()
                        .filter(|c| c.content.is_some())
                        .map(|c| c.id)
                        .collect();
                }
                Err(e) if e.is_unavailable() => {
                    let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(2));
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "reading the edges of deleted records failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    metrics::counter!("ssp_worker_resolve_failures_total").increment(1);
                    tracing::warn!(error = %e, edges = unsure.len(), "reading the edges of deleted records SSP does not hold failed; deleting them with those records");
                    return Default::default();
                }
            }
        }
    }

    pub(super) async fn ingest_group(&mut self, mut group: Vec<Request>) {
        let span = tracing::debug_span!("ingest_group", requests = group.len());
        let db = Arc::clone(self.sink.db());
        self.classify_tables(&db, &group)
            .instrument(span.clone())
            .await;
        let relations = self
            .engine
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .relation_tables()
            .clone();
        let own = record_hashes(&group, false);
        let stale = self.stale_ingests(&group);
        Self::resolve_from_database(&db, &mut group, &relations, &self.recent, &own, &stale)
            .instrument(span.clone())
            .await;
        let kept = self
            .surviving_edges(&db, &group)
            .instrument(span.clone())
            .await;
        // Numbered after its reads: a snapshot read after this mark is no
        // older than anything the group applies.
        self.recent.note(own);
        // The records this group names, for the wait below: a group whose
        // changes an earlier group already applied (the worker's copy of an
        // `/ingest`, or the other way round) changes no edge itself, yet
        // must not answer before that earlier group's edges are committed.
        let records = record_hashes(&group, true);
        let mut edges = EdgeChanges::default();
        let mut waiters = Vec::with_capacity(group.len());
        // Re-query views this group may have changed, and for each waiter
        // the ones its own changes touched (its summary counts them).
        let mut due: Vec<crate::engine::RequeryTask> = Vec::new();
        let mut due_by_waiter: Vec<Vec<Arc<str>>> = Vec::new();
        {
            let _g = span.enter();
            let mut engine = self.engine();
            // The records the clock reached since the last group first, so
            // that this group's changes apply to views as they are now.
            let flipped = engine.advance_clock(chrono::Utc::now());
            if !flipped.is_empty() {
                let counts = EdgeCounts::of(&flipped);
                metrics::counter!("ssp_edge_ops_total", "kind" => "created")
                    .increment(counts.created as u64);
                metrics::counter!("ssp_edge_ops_total", "kind" => "deleted")
                    .increment(counts.deleted as u64);
                edges.absorb(&flipped);
            }
            // For this group's batches only (see `surviving_edges`).
            let keeps = !kept.is_empty();
            if keeps {
                engine.set_kept_edges(kept);
            }
            for req in group {
                let Request::Ingest {
                    changes,
                    source,
                    reply,
                    ..
                } = req
                else {
                    continue;
                };
                let deletes = changes.iter().filter(|c| c.content.is_none()).count() as u64;
                metrics::counter!("ssp_ingest_changes_total", "source" => source.as_str(), "op" => "upsert")
                    .increment(changes.len() as u64 - deletes);
                metrics::counter!("ssp_ingest_changes_total", "source" => source.as_str(), "op" => "delete")
                    .increment(deletes);
                metrics::histogram!("ssp_ingest_batch_size").record(changes.len() as f64);
                let unfollowed = engine.links_not_followed();
                let deltas = engine.apply_batch(&changes);
                if engine.links_not_followed() > unfollowed {
                    // Not silent: the view may differ from SurrealDB until it
                    // is registered again (which moves it to the re-query tier).
                    metrics::counter!("ssp_links_not_followed_total").increment(1);
                    let tables: std::collections::BTreeSet<&str> =
                        changes.iter().map(|c| c.id.table.as_str()).collect();
                    tracing::warn!(
                        ?tables,
                        "a change put a record link where an incremental view reads a path through it; SSP moves the view to the re-query tier"
                    );
                }
                if engine.requery_count() > 0 {
                    // The tables the changes name, changed or not: an
                    // `/ingest` may come before its write commits, and the
                    // worker's copy of it (identical, so no change to the
                    // engine) is what re-runs the query on committed data.
                    let tables: ahash::AHashSet<&str> =
                        changes.iter().map(|c| c.id.table.as_str()).collect();
                    let mine = engine.requery_due(&tables);
                    due_by_waiter.push(mine.iter().map(|t| t.view.clone()).collect());
                    for t in mine {
                        if !due.iter().any(|d| d.view == t.view) {
                            due.push(t);
                        }
                    }
                } else {
                    due_by_waiter.push(Vec::new());
                }
                let summary = IngestSummary {
                    views_affected: deltas.len(),
                    edges: EdgeCounts::of(&deltas),
                };
                edges.absorb(&deltas);
                metrics::counter!("ssp_edge_ops_total", "kind" => "created")
                    .increment(summary.edges.created as u64);
                metrics::counter!("ssp_edge_ops_total", "kind" => "updated")
                    .increment(summary.edges.updated as u64);
                metrics::counter!("ssp_edge_ops_total", "kind" => "deleted")
                    .increment(summary.edges.deleted as u64);
                waiters.push(Waiter { reply, summary });
            }
            if keeps {
                engine.set_kept_edges(Default::default());
            }
        }
        // Views this group's data sent through a link the engine does not
        // follow: to the re-query tier now, and re-run with the group, so
        // that their edges are SurrealDB's answer in this very commit.
        for task in self.retier_in_group().instrument(span.clone()).await {
            if !due.iter().any(|d| d.view == task.view) {
                due.push(task);
            }
        }
        if !due.is_empty() {
            self.rerun(due, &mut edges, &mut waiters, &due_by_waiter)
                .instrument(span.clone())
                .await;
        }
        if waiters.is_empty() && edges.is_empty() {
            return; // A tick that changed no view.
        }
        self.dirty.notify_one();
        // An edge (or a record) still being written by an earlier group:
        // wait for it, so that each edge's writes commit in the engine's
        // order, and an answer about a record follows its earlier commits.
        let mut hashes = edges.edge_hashes();
        hashes.extend(records);
        hashes.sort_unstable();
        hashes.dedup();
        // The same for the edges of a view being filled.
        while hashes.iter().any(|h| self.in_flight_edges.contains_key(h))
            || (!self.filling.is_empty() && edges.touches_any(|v| self.filling.contains_key(v)))
        {
            match self.in_flight.next().await {
                Some(done) => self.release(done),
                None => break,
            }
        }
        for h in &hashes {
            *self.in_flight_edges.entry(*h).or_default() += 1;
        }
        metrics::histogram!("ssp_group_commit_requests").record(waiters.len() as f64);
        let requests = waiters.len();
        self.in_flight_requests += requests;
        metrics::gauge!("ssp_edge_tx_in_flight").increment(1.0);
        let sink = self.sink.clone();
        // `run` starts a group only with a slot free.
        let slot = self.free_slots.pop_front().unwrap_or(0);
        self.in_flight.push(Box::pin(
            async move {
                let result = commit_on(&sink, slot, &edges).await;
                for w in waiters {
                    let _ = w.reply.send(match &result {
                        Ok(()) => Ok(w.summary),
                        // Clustered: a view of the group moved to another
                        // instance. It applies the change from the database;
                        // this one repairs the views it still holds.
                        Err(e) if e.is_fenced() => Err(PipelineError::Unavailable(format!(
                            "{e}; another instance holds one of the views now: the change \
                             reaches every view once the edges are repaired, and retrying \
                             is harmless"
                        ))),
                        Err(e) => Err(PipelineError::Write(format!(
                            "{e}; SSP keeps the change and rewrites its edges once the \
                             database takes the write"
                        ))),
                    });
                }
                Done {
                    failed: result.is_err(),
                    edges: hashes,
                    requests,
                    slot: Some(slot),
                    filled: None,
                    resume: None,
                }
            }
            .instrument(span),
        ));
    }

    /// Re-runs the re-query views of a group in SurrealDB and adds the
    /// records that entered or left them to the group's edges (one
    /// transaction still). A query SurrealDB now refuses on its data keeps
    /// its last answer: the view shows the error (`GET /view`), the log
    /// and `ssp_requery_errors_total` count it.
    pub(super) async fn rerun(
        &mut self,
        due: Vec<crate::engine::RequeryTask>,
        edges: &mut EdgeChanges,
        waiters: &mut [Waiter],
        due_by_waiter: &[Vec<Arc<str>>],
    ) {
        let answers = requery::run_all(self.sink.db(), due).await;
        let mut deltas = Vec::with_capacity(answers.len());
        let mut grew = false;
        {
            let mut engine = self.engine();
            for (view, answer) in answers {
                match answer {
                    Ok(a) => {
                        if let Some((d, new_links)) =
                            engine.requery_answer(&view, a.members, a.linked.into_iter().collect())
                        {
                            grew |= new_links;
                            if !d.is_empty() {
                                deltas.push(d);
                            }
                        }
                    }
                    Err(e) => {
                        metrics::counter!("ssp_requery_errors_total").increment(1);
                        tracing::warn!(view = %view, error = %e, "a re-query view's query failed; its edges keep the last answer");
                        engine.requery_failed(&view, e.to_string());
                    }
                }
            }
        }
        if grew {
            self.tables_wanted.notify_one();
        }
        edges.absorb(&deltas);
        for (w, mine) in waiters.iter_mut().zip(due_by_waiter) {
            for d in deltas.iter().filter(|d| mine.contains(&d.view)) {
                let c = EdgeCounts::of(std::slice::from_ref(d));
                w.summary.views_affected += 1;
                w.summary.edges.created += c.created;
                w.summary.edges.deleted += c.deleted;
            }
        }
    }

    pub(super) async fn admin(&mut self, req: Request) {
        match req {
            Request::Ingest { .. } => unreachable!("ingests are grouped"),
            Request::Flush { reply } => {
                let _ = reply.send(Ok(()));
            }
            Request::ForgetTable { table, reply } => {
                let dropped = self.engine().forget_table(&table);
                if dropped > 0 {
                    self.dirty.notify_one();
                    tracing::info!(table = %table, records = dropped, "no view reads the table: its records are let go");
                }
                let _ = reply.send(Ok(dropped));
            }
            Request::Disown { ids, reply } => {
                let mut had = 0;
                {
                    let mut engine = self.engine();
                    for id in &ids {
                        had += usize::from(engine.unregister(id).is_some());
                    }
                }
                if let Some(holds) = self.sink.holds() {
                    for id in &ids {
                        holds.remove(id);
                        self.repair.views.remove(id);
                    }
                }
                self.dirty.notify_one();
                // Their tables may be read by no view now.
                self.tables_wanted.notify_one();
                let _ = reply.send(Ok(had));
            }
            Request::RaiseVersions { versions, reply } => {
                {
                    let mut engine = self.engine();
                    for (record, version) in &versions {
                        engine.raise_version(record, *version);
                    }
                }
                self.dirty.notify_one();
                let _ = reply.send(Ok(()));
            }
            Request::Prune { id, edges, reply } => {
                let _ = reply.send(self.prune(id, edges).await);
            }
            Request::TableLoaded { table, reply } => {
                self.engine().mark_loaded(std::slice::from_ref(&table));
                self.promote_link_views().await;
                let _ = reply.send(Ok(()));
            }
            Request::Register {
                meta,
                requery,
                loaded,
                from_row,
                reply,
            } => {
                if let Some(edges) = &from_row
                    && let Some(answer) = self.step_aside(&meta.id, edges).await
                {
                    let _ = reply.send(answer);
                    return;
                }
                if !loaded.is_empty() {
                    self.engine().mark_loaded(&loaded);
                }
                // A big first result is computed beside the stream.
                let (meta, from_row, reply) = match requery {
                    Some(_) => (meta, from_row, reply),
                    None => match self.try_prescan(meta, from_row, reply) {
                        Some(given_back) => given_back,
                        None => return,
                    },
                };
                self.register(meta, requery, None, from_row, reply).await;
            }
            Request::Unregister { id, orphan, reply } => {
                if orphan && self.read_engine(|e| e.view(&id).is_some()) {
                    let _ = reply.send(Ok(false));
                    return;
                }
                self.rebuild.gone(&id);
                let _ = reply.send(
                    self.unregister(id.into())
                        .await
                        .map(|known| known || orphan),
                );
            }
            Request::Rebuilding { on, reply } => {
                self.rebuild = match on {
                    true => Rebuild::On {
                        gone: Default::default(),
                        reset: false,
                    },
                    false => Rebuild::Off,
                };
                let _ = reply.send(Ok(()));
            }
            Request::Expire { id, now, reply } => {
                let expired = self
                    .read_engine(|e| e.view(&id).is_some_and(|v| ttl_sweep::is_expired(&v, now)));
                let _ = reply.send(match expired {
                    true => {
                        self.rebuild.gone(&id);
                        self.unregister(id.into()).await
                    }
                    false => Ok(false),
                });
            }
            Request::Heartbeat { id, at, reply } => {
                let known = self.engine().touch(&id, at);
                if !known {
                    let _ = reply.send(Ok(false));
                    return;
                }
                self.dirty.notify_one();
                let result = retry(|| self.sink.touch_view(&id, at)).await;
                if result.is_err() {
                    self.repair.views.insert(id.as_str().into());
                    self.repair.needed();
                }
                let _ = reply.send(result.map(|()| true).map_err(|e| {
                    PipelineError::Write(format!(
                        "{e}; the view is kept alive in SSP and its row is rewritten once \
                         the database takes the write"
                    ))
                }));
            }
            Request::Reset { reply } => {
                if let Rebuild::On { reset, .. } = &mut self.rebuild {
                    *reset = true;
                }
                self.engine().reset();
                self.dirty.notify_one();
                let mut edges = EdgeChanges::default();
                edges.reset();
                let result = commit(&self.sink, &edges).await;
                if result.is_err() {
                    self.repair.reset = true;
                    self.repair.needed();
                }
                let _ = reply.send(result.map_err(|e| {
                    PipelineError::Write(format!(
                        "{e}; SSP is reset and removes every edge and view row once the \
                         database takes the write"
                    ))
                }));
            }
        }
    }

    pub(super) fn read_engine<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        f(&self.engine.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Registers a view: the engine first, then its row and initial edges,
    /// then answers `reply`. If the database refuses them for good, the
    /// engine goes back to what it had (the previous version of the view,
    /// or none) and a repair makes the row and edges match it: a failed
    /// registration leaves no half-registered view behind.
    ///
    /// A view with more initial edges than one transaction takes is filled
    /// off this loop (see `fill`): ingests that do not touch it go on
    /// meanwhile, and it answers once all its edges are committed.
    pub(super) async fn register(
        &mut self,
        meta: ViewMeta,
        requery: Option<RequeryPlan>,
        prescanned: Option<crate::engine::Prescanned>,
        from_row: Option<FromRow>,
        reply: Reply<ViewDelta>,
    ) {
        let previous =
            self.read_engine(|e| e.view(&meta.id).map(|v| (v, e.requery_state(&meta.id))));
        let delta = match self.register_in_engine(&meta, requery, prescanned).await {
            // Registered again from its row: its edges are mostly right
            // already; only what differs is written.
            Ok(_) if from_row.is_some() => {
                let edges = from_row.as_deref().map(Vec::as_slice).unwrap_or_default();
                reconcile::plan_view(&mut self.engine(), &meta.id, edges)
            }
            Ok(delta) => delta,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        self.dirty.notify_one();
        let owner_changed = previous
            .as_ref()
            .is_some_and(|(old, _)| old.owner != meta.owner);
        let registration = Registration {
            meta,
            previous,
            delta,
            reply,
        };
        if let Err(e) = retry(|| self.sink.upsert_view(&registration.meta, owner_changed)).await {
            self.registered(registration, Err(e));
            return;
        }
        let mut edges = EdgeChanges::default();
        edges.absorb(std::slice::from_ref(&registration.delta));
        if edges.len() > MAX_EDGES_PER_TX {
            self.fill(registration, edges);
        } else {
            let result = commit(&self.sink, &edges).await;
            self.registered(registration, result);
        }
    }

    /// The engine's side of [`Applier::register`]: the view in the engine
    /// (or, for what the engine does not maintain, in the re-query tier,
    /// with SurrealDB's first answer), and the edges that makes.
    async fn register_in_engine(
        &mut self,
        meta: &ViewMeta,
        requery: Option<RequeryPlan>,
        prescanned: Option<crate::engine::Prescanned>,
    ) -> Result<ViewDelta, PipelineError> {
        let registered = match (requery, prescanned) {
            (None, None) => self.engine().register(meta.clone()).map_err(Ok),
            (None, Some(p)) => {
                let registered = self.engine().register_prescanned(meta.clone(), p);
                registered
                    .map(|(delta, used)| {
                        match used {
                            true => self
                                .prescans
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                            false => {
                                tracing::debug!(view = %meta.id, "the prescan's result was not used");
                                0
                            }
                        };
                        delta
                    })
                    .map_err(Ok)
            }
            (Some(plan), _) => Err(Err(plan)),
        };
        let requery = match registered {
            Ok(delta) => Ok(delta),
            // Planned fine, but evaluating it on the data needs what the
            // engine cannot do (follow a record link): the re-query tier.
            Err(Ok(e)) if e.is_unsupported() => {
                let reason = e.to_string();
                match requery::plan(self.sink.db(), &meta.sql, &meta.params, reason).await {
                    Ok(plan) => Err(plan),
                    Err(requery::AnalyseError::Refused(why)) => {
                        return Err(PipelineError::Query(format!(
                            "{e}; and SSP cannot re-run it in SurrealDB either: {why}"
                        )));
                    }
                    Err(requery::AnalyseError::Db(e)) => {
                        return Err(PipelineError::Unavailable(e.to_string()));
                    }
                }
            }
            Err(Ok(e)) => return Err(e.into()),
            Err(Err(plan)) => Err(plan),
        };
        let delta = match requery {
            Ok(delta) => delta,
            Err(plan) => {
                let answer = requery::run_until_answered(self.sink.db(), &meta.sql, &meta.params)
                    .await
                    .map_err(|e| PipelineError::Query(e.to_string()))?;
                let delta = self.engine().register_requery(
                    meta.clone(),
                    plan.reason,
                    plan.tables,
                    answer.members,
                    answer.linked.into_iter().collect(),
                );
                // Its links may name tables no view read before.
                self.tables_wanted.notify_one();
                delta
            }
        };
        Ok(delta)
    }

    /// A registration from a view's row (a rebuild) that must not happen:
    /// the view went (or everything was reset) since the rebuild began, or
    /// a client registered it again. In that last case its edges from
    /// before are made to match its new result (the client's registration
    /// did not know them). `None`: the registration goes on.
    async fn step_aside(
        &mut self,
        id: &str,
        edges: &[reconcile::EdgeRow],
    ) -> Option<Result<ViewDelta, PipelineError>> {
        if self.rebuild.skips(id) {
            return Some(Ok(ViewDelta::default()));
        }
        if self.read_engine(|e| e.view(id).is_none()) {
            return None;
        }
        let delta = reconcile::plan_view(&mut self.engine(), id, edges);
        let mut changes = EdgeChanges::default();
        changes.absorb(std::slice::from_ref(&delta));
        let result = commit_in_parts(&self.sink, changes, MAX_EDGES_PER_TX).await;
        if result.is_err() {
            self.repair.views.insert(id.into());
            self.repair.needed();
        }
        Some(
            result
                .map(|()| delta)
                .map_err(|e| PipelineError::Write(e.to_string())),
        )
    }

    /// Ends a registration whose row and edges were written (`result`):
    /// answers it, or undoes it in the engine and has the database repaired.
    pub(super) fn registered(&mut self, r: Registration, result: Result<(), DbError>) {
        let Registration {
            meta,
            previous,
            delta,
            reply,
        } = r;
        if let Err(e) = result {
            {
                let mut engine = self.engine();
                match previous {
                    Some((old, Some(r))) => {
                        engine.register_requery(old, r.reason, r.tables, r.members, r.linked);
                    }
                    Some((old, None)) => {
                        // It planned before; it plans again.
                        if let Err(error) = engine.register(old) {
                            tracing::error!(view = %meta.id, %error, "the previous version of a view no longer registers");
                        }
                    }
                    None => {
                        engine.unregister(&meta.id);
                    }
                }
            }
            self.dirty.notify_one();
            if e.is_fenced() {
                // Another instance holds the view: nothing of it was written.
                let _ = reply.send(Err(PipelineError::NotQueued(format!(
                    "{e}; the view was not registered here: retry it (it goes to the \
                     instance that holds it)"
                ))));
                return;
            }
            self.repair.views.insert(meta.id.clone());
            self.repair.needed();
            let _ = reply.send(Err(PipelineError::Write(format!(
                "{e}; the view was not registered (SSP keeps what it had before)"
            ))));
            return;
        }
        let _ = reply.send(Ok(delta));
    }

    /// Deletes the edges of view `id` among `edges` whose record is not in
    /// the view's result (see [`Request::Prune`]).
    async fn prune(&mut self, id: Arc<str>, edges: Vec<RecordId>) -> Result<usize, PipelineError> {
        let Some((meta, members)) =
            self.read_engine(|e| Some((e.view(&id)?, e.view_records(&id)?)))
        else {
            return Ok(0);
        };
        let members: ahash::AHashSet<RecordId> = members.into_iter().map(|(r, _)| r).collect();
        let deleted: Vec<RecordId> = edges.into_iter().filter(|r| !members.contains(r)).collect();
        if deleted.is_empty() {
            return Ok(0);
        }
        let count = deleted.len();
        let mut changes = EdgeChanges::default();
        changes.absorb(&[ViewDelta {
            view: id,
            client_id: meta.client_id,
            deleted,
            ..Default::default()
        }]);
        commit(&self.sink, &changes)
            .await
            .map(|()| count)
            .map_err(|e| PipelineError::Write(e.to_string()))
    }

    /// Removes a view from the engine, then its row and edges. Always
    /// deletes the row and edges: the database may hold a view this process
    /// does not know (unregister is idempotent).
    pub(super) async fn unregister(&mut self, id: Arc<str>) -> Result<bool, PipelineError> {
        let existed = self.engine().unregister(&id).is_some();
        self.dirty.notify_one();
        let mut edges = EdgeChanges::default();
        edges.remove_view(id.clone());
        // Clustered, a view this instance does not hold is removed unfenced:
        // the route sends an unregister here only when no live instance
        // holds the view (see `cluster::forward`).
        let unheld = self.sink.holds().is_some_and(|h| h.epoch(&id).is_none());
        let result = match unheld {
            true => retry(|| self.sink.write_unfenced(&edges)).await,
            false => commit(&self.sink, &edges).await,
        };
        if result.is_err() {
            self.repair.views.insert(id);
            self.repair.needed();
        }
        result.map(|()| existed).map_err(|e| {
            PipelineError::Write(format!(
                "{e}; the view is unregistered in SSP and its row and edges are removed once \
                 the database takes the write"
            ))
        })
    }
}

/// One hash per record the group's changes name, in a space of their own
/// beside the edges' (a collision only makes a group wait when it need not).
/// Sleeps until `at`; `None` never comes (the branch is off then anyway).
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The records a group's changes name (by `recent::record_hash`); with
/// `rows_read` false, leaving out the rows read from the database (what
/// `Recent` remembers).
fn record_hashes(group: &[Request], rows_read: bool) -> Vec<u64> {
    let mut out = Vec::new();
    for req in group {
        if let Request::Ingest {
            changes, read_at, ..
        } = req
            && (rows_read || read_at.is_none())
        {
            out.extend(changes.iter().map(|c| recent::record_hash(&c.id)));
        }
    }
    out
}

#[cfg(test)]
mod tests;
