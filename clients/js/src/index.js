// @spooky/client: follow SSP views from a browser or from Node.js.
//
// SSP keeps each registered view's membership in SurrealDB as edges
// `_spooky_query:<view> -> _spooky_list_ref -> <record>`, each with the
// record's `version`. This library implements the client side of that
// protocol (README.md, "The client protocol"): it registers a view through a
// backend, LIVE-selects the view's edges, reads them once, fetches the
// records they point at (once per version, shared by all views of one
// Spooky), and keeps a local copy that it reports as events.
//
// The library never imports `surrealdb`: everything goes through the app's
// own connected `Surreal` instance. Two copies of the SDK (one the app's, one
// the library's) would otherwise disagree on `instanceof` and on which
// ChannelIterator class needs the burst fix below. It has no Node-only
// imports either, so it bundles for the browser as it is.

const LIVE_EDGES = "LIVE SELECT * FROM _spooky_list_ref WHERE in = type::record('_spooky_query', $view)";
const CURRENT_EDGES = "SELECT * FROM _spooky_list_ref WHERE in = type::record('_spooky_query', $view)";
const FETCH_RECORDS = "SELECT * FROM $ids";

/** Records fetched per query when a view loads or catches up. */
const FETCH_CHUNK = 256;

/** A view's LIVE query ended by the server again within this is not restarted. */
const KILLED_RETRY_MS = 5000;

// ------------------------------------------------------------ the SDK fix

// surrealdb 2.0.x (fixed upstream in surrealdb.js PR #664, not released as
// of 2.0.8): `ChannelIterator.submit` hands a value to the reader's promise
// even when that promise was already settled by an earlier value, so of two
// values submitted before the reader asks again, the second is lost. Every
// LIVE notification passes through two such iterators (the engine's and the
// subscription's), so a burst (one transaction that touches the edges of two
// views, or two notifications in one TCP read) loses all but its first.
//
// The class is not reachable without importing the SDK, and importing it
// here could load a second copy of the SDK (the app's `Surreal` would keep
// using the buggy class of its own copy). So the fix reaches the class
// through the app's own `Surreal`: `liveOf` on an id that no query has gives
// a subscription that never receives anything, and its iterator's prototype
// is the class (see `checkChannels`). This must happen before this
// library starts its first LIVE query: a `for await` loop (the SDK's own,
// inside every subscription) reads `next` once, when it starts, and keeps
// calling that function. The patch is applied once per class, only when a
// probe shows the loss, and is marked with a registry symbol so that two
// copies of this library do not stack it.

const PATCHED = Symbol.for("@spooky/client.channel-iterator-fixed");
const probed = new WeakSet();
/** Surreal instance -> the promise of its check, so that one db is probed once. */
const checkedDbs = new WeakMap();

/** True when the iterator class loses the second of two quick values. */
async function losesValues(Channel) {
    const probe = new Channel();
    const first = probe.next();
    probe.submit(1);
    probe.submit(2);
    await first;
    const second = await Promise.race([probe.next(), Promise.resolve("lost")]);
    probe.return();
    return second === "lost";
}

/**
 * Reaches the ChannelIterator class of `db`'s SDK copy through a
 * subscription to an id no LIVE query has (it never receives anything; the
 * SDK keeps its empty listener until the connection is closed) and fixes the
 * class if needed. Once per Surreal instance; again after a failure (not
 * connected, say: the LIVE query would fail too).
 */
function checkChannels(db) {
    let check = checkedDbs.get(db);
    if (!check) {
        check = (async () => {
            const probe = await db.liveOf(`spooky-channel-probe-${Math.random().toString(36).slice(2)}`);
            const iterator = probe[Symbol.asyncIterator]();
            try {
                return await fixChannelIterator(iterator);
            } finally {
                iterator.return?.();
            }
        })();
        checkedDbs.set(db, check);
        check.catch(() => checkedDbs.delete(db));
    }
    return check;
}

/**
 * Fixes the class of `iterator` (a ChannelIterator of the app's SDK copy)
 * if it has the bug. Returns "fixed", "fine" (no bug, or fixed before) or
 * "unfixable" (the patch did not help: an SDK this fix does not know).
 */
async function fixChannelIterator(iterator) {
    const proto = Object.getPrototypeOf(iterator);
    if (!proto || proto[PATCHED] || probed.has(proto)) return "fine";
    probed.add(proto);
    const Channel = proto.constructor;
    if (typeof Channel !== "function" || typeof proto.submit !== "function") return "fine";
    if (!(await losesValues(Channel))) return "fine";
    patchChannelIterator(proto);
    return (await losesValues(Channel)) ? "unfixable" : "fixed";
}

/**
 * Wraps the original methods instead of replacing them: the originals keep
 * their private state (queue, waiter, cleanup), and iterators read by loops
 * that started before the patch keep calling the original `next` (a loop
 * keeps the `next` it started with), so for them `submit` must stay the
 * original too: an iterator is handled here only once its `next` is seen.
 *
 * What the wrapper knows about the original: after `next()` its waiter is
 * either fresh (nothing was queued, a reader now waits) or unset (it handed
 * out a queued value, and values are queued only while no waiter was ever
 * set). In both states one `submit` is safe: it resolves the fresh waiter
 * or joins the queue. A second one could hit the now settled waiter and be
 * lost, so later values are held here, and each `next()` passes one on.
 * Order is kept: held values are always newer than queued ones.
 */
function patchChannelIterator(proto) {
    const original = {
        next: proto.next,
        submit: proto.submit,
        return: proto.return,
        throw: proto.throw,
        cancel: proto.cancel,
    };
    const states = new WeakMap();
    const state = (it) => {
        let s = states.get(it);
        if (!s) states.set(it, (s = { seen: false, credit: true, held: [], ended: false }));
        return s;
    };
    proto.next = function next() {
        const s = state(this);
        s.seen = true;
        const result = original.next.call(this);
        s.credit = true;
        if (s.held.length > 0) {
            s.credit = false;
            original.submit.call(this, s.held.shift());
        }
        return result;
    };
    proto.submit = function submit(value) {
        const s = state(this);
        if (s.ended) return;
        if (!s.seen || (s.credit && s.held.length === 0)) {
            // Not read yet (the value is queued), read by a loop older
            // than the patch (as before), or safe (see above).
            s.credit = false;
            original.submit.call(this, value);
        } else {
            s.held.push(value);
        }
    };
    for (const name of ["return", "throw", "cancel"]) {
        if (typeof original[name] !== "function") continue;
        proto[name] = function (...args) {
            const s = state(this);
            s.ended = true;
            s.held.length = 0;
            return original[name].apply(this, args);
        };
    }
    proto[PATCHED] = true;
}

// ---------------------------------------------------------------- helpers

/** A minimal event emitter; a throwing listener is reported, not fatal. */
class Emitter {
    #listeners = new Map();
    #onListenerError;

    constructor(onListenerError) {
        this.#onListenerError = onListenerError;
    }

    on(name, fn) {
        if (typeof fn !== "function") throw new TypeError(`on("${name}", fn): fn must be a function`);
        let set = this.#listeners.get(name);
        if (!set) this.#listeners.set(name, (set = new Set()));
        // A wrapper, so that the same function added twice is two listeners
        // with an unsubscribe each.
        const listener = (payload) => fn(payload);
        set.add(listener);
        return () => {
            set.delete(listener);
        };
    }

    has(name) {
        return (this.#listeners.get(name)?.size ?? 0) > 0;
    }

    emit(name, payload) {
        for (const listener of [...(this.#listeners.get(name) ?? [])]) {
            try {
                listener(payload);
            } catch (error) {
                this.#onListenerError(error, name);
            }
        }
    }
}

/** A record id as text, e.g. `thread:1` (the SDK's RecordId prints so). */
function idText(id) {
    return String(id);
}

/** A view id as SSP stores it: without `_spooky_query:` and `⟨⟩`. */
function viewKey(id) {
    let key = String(id);
    if (key.startsWith("_spooky_query:")) key = key.slice("_spooky_query:".length);
    if (key.startsWith("⟨") && key.endsWith("⟩")) key = key.slice(1, -1);
    return key;
}

/**
 * The cache key of a record as an edge shows it. With several SSP
 * instances (SSP's cluster mode) each counts versions of its own, and an
 * edge names its instance (`node`): versions are compared only between
 * edges of one instance, so a higher number from one instance is never
 * taken for newer content than another instance's.
 */
function cacheKey(edge, id) {
    return edge?.node ? `${edge.node}\u0000${id}` : id;
}

function toVersion(v) {
    const n = Number(v);
    return Number.isFinite(n) ? n : 0;
}

function byIdText(a, b) {
    const x = idText(a.id);
    const y = idText(b.id);
    return x < y ? -1 : x > y ? 1 : 0;
}

const VIEW_EVENTS = new Set(["enter", "update", "leave", "change"]);
const SPOOKY_EVENTS = new Set(["disconnected", "resubscribed", "error", "fetch"]);

// ----------------------------------------------------------- record cache

/**
 * One copy of each record held by any view of a Spooky, with the version it
 * was fetched for. Views claim the ids they hold; an entry goes when no view
 * claims it. A fetch in flight is shared: a view that needs the same record
 * at the same (or an older) version waits for it instead of fetching again.
 */
class RecordCache {
    #db;
    #onFetch;
    /** cache key (see `cacheKey`) -> { version, record, refs, pending: { version, promise } | null } */
    #entries = new Map();

    constructor(db, onFetch) {
        this.#db = db;
        this.#onFetch = onFetch;
    }

    claim(key) {
        let entry = this.#entries.get(key);
        if (!entry) this.#entries.set(key, (entry = { version: -Infinity, record: undefined, refs: 0, pending: null }));
        entry.refs += 1;
    }

    release(key) {
        const entry = this.#entries.get(key);
        if (!entry) return;
        entry.refs -= 1;
        if (entry.refs <= 0) this.#entries.delete(key);
    }

    /**
     * The records for `items` ({ id, key, rid, version }, claimed by the caller),
     * fetching in one query those whose cached copy is older than `version`.
     * Returns, per item, { record, fetched }; `record` is undefined when the
     * record does not exist or the signed-in user may not read it.
     */
    async ensure(items) {
        const results = new Array(items.length);
        const waits = [];
        const batch = [];
        items.forEach((item, i) => {
            const entry = this.#entries.get(item.key) ?? {
                version: -Infinity,
                record: undefined,
                refs: 0,
                pending: null,
            };
            if (entry.version >= item.version) {
                results[i] = { record: entry.record, fetched: false };
            } else if (entry.pending && entry.pending.version >= item.version) {
                waits.push(
                    entry.pending.promise.then(() => {
                        results[i] = { record: entry.record, fetched: false };
                    }),
                );
            } else {
                batch.push({ i, item, entry });
            }
        });
        // Marked handled now: if our own fetch fails first, these are not awaited.
        const waited = Promise.all(waits);
        waited.catch(() => {});
        if (batch.length > 0) {
            const promise = this.#fetch(batch.map(({ item }) => item.rid));
            for (const { item, entry } of batch) entry.pending = { version: item.version, promise };
            let found;
            try {
                found = await promise;
            } finally {
                for (const { entry } of batch) if (entry.pending?.promise === promise) entry.pending = null;
            }
            for (const { i, item, entry } of batch) {
                const record = found.get(item.id);
                // A fetch for a newer version may have finished first.
                if (entry.version < item.version) {
                    entry.version = item.version;
                    entry.record = record;
                }
                results[i] = { record: entry.record, fetched: true };
                this.#onFetch({ id: item.id, version: item.version, found: record !== undefined });
            }
        }
        await waited;
        return results;
    }

    /** id text -> record (as JSON), for the records that exist and may be read. */
    async #fetch(rids) {
        const unique = new Map();
        for (const rid of rids) unique.set(idText(rid), rid);
        const all = [...unique.values()];
        const found = new Map();
        for (let start = 0; start < all.length; start += FETCH_CHUNK) {
            const ids = all.slice(start, start + FETCH_CHUNK);
            // `.json()`: the app's SDK turns its own value types (record
            // ids, datetimes, ...) into plain JSON, ids as `table:key`.
            const [rows] = await this.#db.query(FETCH_RECORDS, { ids }).json().collect();
            for (const row of rows ?? []) if (row && row.id !== undefined) found.set(idText(row.id), row);
        }
        return found;
    }
}

// ------------------------------------------------------------------ views

// Methods of View that only its Spooky calls.
const OPEN = Symbol("open");
const RESUBSCRIBE = Symbol("resubscribe");
const DISCARD = Symbol("discard");

/**
 * One registered view, followed live. Created by `Spooky#view`.
 */
class View {
    #id;
    #core;
    #spec;
    #sort;
    /** record id text -> { version, record } */
    #members = new Map();
    #records = Object.freeze([]);
    #byId = new Map();
    #events;
    /** Notifications, loads and catch-ups run one at a time, in order. */
    #chain = Promise.resolve();
    #live = null;
    #iterator = null;
    #heartbeat = null;
    #killedAt = -Infinity;
    #closed = false;
    #closing = null;

    constructor(core, id, spec, sort) {
        this.#id = id;
        this.#core = core;
        this.#spec = spec;
        this.#sort = sort ?? byIdText;
        this.#events = new Emitter((error, name) => core.report(error, this.id, `a "${name}" listener threw`));
    }

    /** The view id the backend answered with. */
    get id() {
        return this.#id;
    }

    /**
     * The view's records (as plain JSON, record ids as `table:key` text),
     * sorted by id text or by the spec's `sort`. A new frozen array after
     * each change, the same one in between; records that do not exist or
     * that the user may not read are left out (see `ids`).
     */
    get records() {
        return this.#records;
    }

    /** Ids of every record in the view, readable or not, sorted as text. */
    get ids() {
        return [...this.#members.keys()].sort();
    }

    /** True once `close()` was called. */
    get closed() {
        return this.#closed;
    }

    /** One record by id text (`thread:1`), or undefined. */
    get(id) {
        return this.#byId.get(idText(id));
    }

    /** The version SSP gave the record in this view, or undefined. */
    version(id) {
        return this.#members.get(idText(id))?.version;
    }

    /** Listens to "enter", "update", "leave" or "change"; returns unsubscribe. */
    on(name, fn) {
        if (!VIEW_EVENTS.has(name)) throw new TypeError(`unknown view event "${name}" (${[...VIEW_EVENTS].join(", ")})`);
        return this.#events.on(name, fn);
    }

    /**
     * Stops following the view: kills its LIVE query, stops its heartbeats,
     * and unregisters it through the backend (unless `unregister: false`:
     * the view then stays in SSP until its ttl runs out, for a process that
     * comes back to it). Idempotent; the first call decides.
     */
    close({ unregister = true } = {}) {
        if (!this.#closing) {
            this.#closing = (async () => {
                this.#shutDown();
                if (unregister) await this.#core.backend.unregister(this.id);
            })();
        }
        return this.#closing;
    }

    /** Local end without unregistering (a failed open). */
    [DISCARD]() {
        this.#shutDown();
    }

    #shutDown() {
        if (this.#closed) return;
        this.#closed = true;
        clearInterval(this.#heartbeat);
        this.#detach();
        for (const { key } of this.#members.values()) this.#core.cache.release(key);
        this.#members.clear();
        this.#records = Object.freeze([]);
        this.#byId = new Map();
        this.#core.forget(this);
    }

    /** First load: subscribe, read, fetch. No events (nobody listens yet). */
    async [OPEN]() {
        await this.#enqueue(() => this.#subscribe(false));
        if (this.#core.heartbeatMs > 0) {
            this.#heartbeat = setInterval(() => {
                this.#keepAlive().catch((e) => this.#core.report(e, this.id, "heartbeat failed"));
            }, this.#core.heartbeatMs);
        }
    }

    /**
     * After a reconnect (the old LIVE query died with its socket): make sure
     * SSP still has the view, subscribe again and catch up, with events.
     */
    async [RESUBSCRIBE]() {
        if (this.#core.heartbeatMs > 0) {
            await this.#keepAlive().catch((e) => this.#core.report(e, this.id, "heartbeat failed"));
        }
        await this.#enqueue(() => this.#subscribe(true));
    }

    /**
     * Heartbeats the view; re-registers it when SSP no longer knows it (its
     * ttl ran out while the page slept, say) so that it comes back.
     */
    async #keepAlive() {
        if (this.#closed) return;
        try {
            await this.#core.backend.heartbeat(this.id);
        } catch (error) {
            if (error?.status !== 404 || this.#closed) throw error;
            const answer = await this.#core.backend.register(this.#spec);
            const id = answer?.id ? String(answer.id) : this.id;
            if (id !== this.id && !this.#closed) {
                this.#core.rename(this, id);
                this.#id = id;
                await this.#enqueue(() => this.#subscribe(true));
            }
        }
    }

    #enqueue(task) {
        const run = this.#chain.then(() => (this.#closed ? undefined : task()));
        this.#chain = run.then(
            () => {},
            () => {},
        );
        return run;
    }

    /** Ends the current LIVE subscription, if any. */
    #detach() {
        const live = this.#live;
        this.#live = null;
        this.#iterator = null;
        // kill() cancels the local iterators at once and asks the server to
        // end the query; after a drop the server has ended it already and
        // answers with an error, which does not matter.
        live?.kill().catch(() => {});
    }

    /**
     * Subscribe FIRST, then read the current edges: a change between the two
     * shows in the read, in a notification, or both (versions make applying
     * it twice harmless). Runs inside the chain, so the new subscription's
     * notifications wait until the read is applied.
     */
    async #subscribe(announce) {
        this.#detach();
        await this.#core.fixChannels();
        const db = this.#core.db;
        const vars = { view: viewKey(this.id) };
        const [liveId] = await db.query(LIVE_EDGES, vars).collect();
        const live = await db.liveOf(liveId);
        if (this.#closed) {
            live.kill().catch(() => {});
            return;
        }
        const iterator = live[Symbol.asyncIterator]();
        this.#live = live;
        this.#iterator = iterator;
        this.#pump(iterator);
        const [edges] = await db.query(CURRENT_EDGES, vars).collect();
        await this.#sync(edges ?? [], announce);
    }

    /** Moves notifications from the iterator into the chain, as they come. */
    async #pump(iterator) {
        for (;;) {
            let step;
            try {
                step = await iterator.next();
            } catch (error) {
                if (iterator === this.#iterator) this.#core.report(error, this.id, "LIVE notifications failed");
                return;
            }
            if (step.done || iterator !== this.#iterator) return;
            const message = step.value;
            if (message?.action === "KILLED") {
                // The server ended the query (not us: we detach first).
                // Subscribe again, but not in a loop if it keeps doing so:
                // then the view waits for the next reconnect.
                const now = Date.now();
                if (now - this.#killedAt < KILLED_RETRY_MS) {
                    this.#core.report(new Error("the server ended the view's LIVE query twice in a row"), this.id, "KILLED");
                    return;
                }
                this.#killedAt = now;
                this.#enqueue(() => this.#subscribe(true)).catch((e) =>
                    this.#core.report(e, this.id, "subscribing again after KILLED failed"),
                );
                return;
            }
            this.#enqueue(() => this.#apply(message)).catch((e) =>
                this.#core.report(e, this.id, `applying a ${message?.action} notification failed`),
            );
        }
    }

    /** One notification: an edge created, updated or deleted. */
    async #apply(message) {
        const edge = message?.value;
        if (!edge || edge.out === undefined) return;
        const id = idText(edge.out);
        const version = toVersion(edge.version);
        const events = [];
        if (message.action === "DELETE") {
            const member = this.#members.get(id);
            if (member) {
                this.#members.delete(id);
                this.#core.cache.release(member.key);
                events.push(["leave", { id, version }]);
            }
        } else {
            const entered = await this.#admit([{ id, key: cacheKey(edge, id), rid: edge.out, version }]);
            events.push(...entered);
        }
        this.#publish(events, true);
    }

    /**
     * Brings `items` ({ id, key, rid, version }) into the view: those not
     * held yet or held at an older version. The cache claim comes first, so
     * that another view dropping the record meanwhile does not evict it; the
     * member is updated only once its record is there, so that a failed
     * fetch is retried by the next catch-up. (A view that moved to another
     * SSP instance shows its records under that instance's key.)
     */
    async #admit(items) {
        const wanted = items.filter(({ id, version }) => !(this.#members.get(id)?.version >= version));
        const claimed = wanted.filter(({ id, key }) => this.#members.get(id)?.key !== key);
        for (const { key } of claimed) this.#core.cache.claim(key);
        let got;
        try {
            got = await this.#core.cache.ensure(wanted);
        } catch (error) {
            for (const { key } of claimed) this.#core.cache.release(key);
            throw error;
        }
        if (this.#closed) {
            for (const { key } of claimed) this.#core.cache.release(key);
            return [];
        }
        return wanted.map(({ id, key, version }, i) => {
            const { record, fetched } = got[i];
            const before = this.#members.get(id);
            const kind = before ? "update" : "enter";
            if (before && before.key !== key) this.#core.cache.release(before.key);
            this.#members.set(id, { version, record, key });
            return [kind, { id, record, version, fetched }];
        });
    }

    /**
     * Replaces the membership with the current edges: fetches what is new
     * or newer, lets go of what left.
     */
    async #sync(edges, announce) {
        const current = new Map();
        for (const edge of edges) {
            if (!edge || edge.out === undefined) continue;
            const id = idText(edge.out);
            const version = toVersion(edge.version);
            if (!(current.get(id)?.version >= version))
                current.set(id, { id, key: cacheKey(edge, id), rid: edge.out, version });
        }
        const entered = await this.#admit([...current.values()]);
        if (this.#closed) return;
        const left = [];
        for (const [id, member] of this.#members) {
            if (current.has(id)) continue;
            this.#members.delete(id);
            this.#core.cache.release(member.key);
            left.push(["leave", { id, version: member.version }]);
        }
        this.#publish([...left, ...entered], announce);
    }

    #publish(events, announce) {
        if (this.#closed || events.length === 0) return;
        const records = [];
        const byId = new Map();
        for (const [id, { record }] of this.#members) {
            if (record === undefined || record === null) continue;
            records.push(record);
            byId.set(id, record);
        }
        records.sort(this.#sort);
        this.#records = Object.freeze(records);
        this.#byId = byId;
        if (!announce) return;
        for (const [name, payload] of events) this.#events.emit(name, payload);
        this.#events.emit("change", { records: this.#records });
    }
}

// ----------------------------------------------------------------- Spooky

/**
 * Follows SSP views over one connected, signed-in `Surreal` (surrealdb 2.x,
 * browser or Node), registering them through `backend`.
 */
export class Spooky {
    #db;
    #backend;
    #views = new Map();
    #opening = new Set();
    #cache;
    #events;
    #core;
    #unsubscribeDb = [];
    /** Bumped on every drop, so that a catch-up overtaken by another drop stays quiet. */
    #generation = 0;
    #down = false;
    #closed = false;
    #warnedUnfixable = false;

    constructor({ db, backend, heartbeatMs = 30000 } = {}) {
        if (!db || typeof db.query !== "function" || typeof db.liveOf !== "function") {
            throw new TypeError("new Spooky({ db }): db must be a connected Surreal of the surrealdb 2.x SDK");
        }
        for (const method of ["register", "heartbeat", "unregister"]) {
            if (typeof backend?.[method] !== "function") {
                throw new TypeError(`new Spooky({ backend }): backend.${method} must be a function`);
            }
        }
        const period = Number(heartbeatMs);
        if (!Number.isFinite(period) || period < 0) throw new TypeError("heartbeatMs must be a number >= 0");
        this.#db = db;
        this.#backend = backend;
        this.#events = new Emitter((error, name) => this.#report(error, undefined, `a "${name}" listener threw`));
        this.#cache = new RecordCache(db, (fetch) => this.#events.emit("fetch", fetch));
        const spooky = this;
        this.#core = {
            db,
            backend,
            heartbeatMs: period,
            cache: this.#cache,
            report: (error, view, context) => this.#report(error, view, context),
            fixChannels: () => this.#fixChannels(),
            forget: (view) => {
                if (spooky.#views.get(view.id) === view) spooky.#views.delete(view.id);
            },
            rename: (view, id) => {
                if (spooky.#views.get(view.id) === view) spooky.#views.delete(view.id);
                spooky.#views.set(id, view);
            },
        };
        // A dropped socket ends every LIVE query of the connection, and the
        // SDK does not resubscribe queries it did not start itself
        // (`liveOf`). "connected" comes after the SDK restored the session
        // (signin, namespace, database) on the new socket.
        const lost = () => this.#lost();
        this.#unsubscribeDb.push(
            db.subscribe("disconnected", lost),
            db.subscribe("reconnecting", lost),
            db.subscribe("connected", () => this.#back()),
        );
    }

    /**
     * Registers a view through the backend and follows it. Resolves once its
     * current records are loaded.
     * @param spec { id, sql, params?, ttl?, sort? }; all but `sort` go to
     *   `backend.register`.
     */
    async view(spec) {
        if (this.#closed) throw new Error("this Spooky is closed");
        if (!spec || typeof spec.id !== "string" || spec.id === "") throw new TypeError("view(spec): spec.id must be a non-empty string");
        if (typeof spec.sql !== "string" || spec.sql === "") throw new TypeError("view(spec): spec.sql must be a non-empty string");
        if (spec.sort !== undefined && typeof spec.sort !== "function") throw new TypeError("view(spec): spec.sort must be a function");
        const { sort, ...request } = spec;
        if (this.#views.has(spec.id) || this.#opening.has(spec.id)) throw new Error(`view "${spec.id}" is already open`);
        this.#opening.add(spec.id);
        let view;
        try {
            const answer = await this.#backend.register(request);
            const id = answer?.id ? String(answer.id) : spec.id;
            if (this.#closed) {
                await this.#backend.unregister(id).catch(() => {});
                throw new Error("this Spooky was closed while the view was being registered");
            }
            // Another view may already follow this id (a backend that maps
            // two spec ids to one): it keeps its registration.
            if (this.#views.has(id)) throw new Error(`view "${id}" is already open`);
            view = new View(this.#core, id, request, sort);
            this.#views.set(id, view);
        } finally {
            this.#opening.delete(spec.id);
        }
        try {
            await view[OPEN]();
        } catch (error) {
            view[DISCARD]();
            await this.#backend.unregister(view.id).catch(() => {});
            throw error;
        }
        return view;
    }

    /** Views open now, by id. */
    get views() {
        return new Map(this.#views);
    }

    /**
     * Listens to "disconnected", "resubscribed" (after a reconnect, once
     * every view caught up), "error" ({ error, view, context }: failures in
     * the background) or "fetch" ({ id, version, found }: one record read).
     * Returns unsubscribe.
     */
    on(name, fn) {
        if (!SPOOKY_EVENTS.has(name)) throw new TypeError(`unknown Spooky event "${name}" (${[...SPOOKY_EVENTS].join(", ")})`);
        return this.#events.on(name, fn);
    }

    /** Closes every view (see `View#close` for `unregister`); does not close `db`. */
    async close({ unregister = true } = {}) {
        this.#closed = true;
        for (const off of this.#unsubscribeDb.splice(0)) off();
        const results = await Promise.allSettled([...this.#views.values()].map((view) => view.close({ unregister })));
        const errors = results.filter((r) => r.status === "rejected").map((r) => r.reason);
        if (errors.length === 1) throw errors[0];
        if (errors.length > 1) throw new AggregateError(errors, "closing views failed");
    }

    #lost() {
        if (this.#down || this.#closed) return;
        this.#down = true;
        this.#generation += 1;
        this.#events.emit("disconnected", {});
    }

    async #back() {
        if (!this.#down || this.#closed) return;
        this.#down = false;
        const generation = this.#generation;
        const views = [...this.#views.values()];
        const results = await Promise.allSettled(views.map((view) => view[RESUBSCRIBE]()));
        // Dropped again meanwhile: the next "connected" catches up again.
        if (generation !== this.#generation || this.#closed) return;
        const live = [];
        results.forEach((r, i) => {
            if (r.status === "rejected") this.#report(r.reason, views[i].id, "subscribing again after a reconnect failed");
            else if (!views[i].closed) live.push(views[i].id);
        });
        this.#events.emit("resubscribed", { views: live });
    }

    async #fixChannels() {
        const outcome = await checkChannels(this.#db);
        if (outcome === "unfixable" && !this.#warnedUnfixable) {
            this.#warnedUnfixable = true;
            this.#report(
                new Error("the surrealdb SDK's ChannelIterator loses values and the fix did not help: notifications that arrive together may be lost"),
                undefined,
                "SDK check",
            );
        }
    }

    #report(error, view, context) {
        if (this.#events.has("error")) {
            this.#events.emit("error", { error, view, context });
        } else {
            console.warn("[@spooky/client]", context ?? "", view ? `(view ${view})` : "", error);
        }
    }
}

// --------------------------------------------------------------- backends

async function postJson(doFetch, url, body, headers) {
    const response = await doFetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) {
        const error = new Error(`POST ${url}: ${response.status} ${text}`);
        error.status = response.status;
        error.body = text;
        throw error;
    }
    if (text.trim() === "") return undefined;
    try {
        return JSON.parse(text);
    } catch {
        return text;
    }
}

/** The fetch to use: the given one, else the global one, looked up per call. */
function fetcher(custom) {
    if (custom !== undefined && typeof custom !== "function") throw new TypeError("fetch must be a function");
    return (...args) => (custom ?? globalThis.fetch)(...args);
}

/**
 * A backend reached over HTTP: your app's server, which checks the user and
 * forwards to SSP with the secret. POSTs JSON to `${baseUrl}/register` (the
 * spec; answers JSON `{ id, ... }`), `${baseUrl}/heartbeat` and
 * `${baseUrl}/unregister` (`{ id }`).
 * @param options.headers an object, or a function (may be async) returning
 *   one per request, e.g. to add the user's current token.
 * @param options.fetch a fetch implementation (default: the global one).
 */
export function httpBackend(baseUrl, { headers, fetch } = {}) {
    if (typeof baseUrl !== "string" || baseUrl === "") throw new TypeError("httpBackend(baseUrl): baseUrl must be a string");
    const base = baseUrl.replace(/\/+$/, "");
    const doFetch = fetcher(fetch);
    const post = async (path, body) => {
        const extra = typeof headers === "function" ? await headers() : headers;
        return postJson(doFetch, `${base}${path}`, body, extra ?? {});
    };
    return {
        register: (spec) => post("/register", spec),
        heartbeat: (id) => post("/heartbeat", { id }),
        unregister: (id) => post("/unregister", { id }),
    };
}

/**
 * SSP's own view API, called directly with its bearer secret. For trusted
 * server-side code only (Node scripts, your backend): the secret lets its
 * holder register any query for any owner, i.e. read anything; in a browser
 * it would be every user's. Browsers use `httpBackend` to your server.
 * @param options.url SSP's address, e.g. http://127.0.0.1:8667
 * @param options.secret SSP's bearer secret
 * @param options.clientId the client the edges are written for
 * @param options.owner the app user's record id (`user:1`) whose views
 *   these are: only that record user may then read their rows and edges
 */
export function sspBackend({ url, secret, clientId, owner, fetch } = {}) {
    if (typeof document !== "undefined") {
        throw new Error("sspBackend holds SSP's secret and must not run in a browser; use httpBackend to your server");
    }
    if (typeof url !== "string" || url === "") throw new TypeError("sspBackend({ url }): url must be SSP's address");
    if (typeof secret !== "string" || secret === "") throw new TypeError("sspBackend({ secret }): secret must be SSP's bearer secret");
    const base = url.replace(/\/+$/, "");
    const client = clientId ?? `spooky-${Math.random().toString(36).slice(2, 10)}`;
    const doFetch = fetcher(fetch);
    const auth = { authorization: `Bearer ${secret}` };
    return {
        register: (spec) =>
            postJson(
                doFetch,
                `${base}/view/register`,
                { id: spec.id, sql: spec.sql, params: spec.params, ttl: spec.ttl, clientId: client, owner },
                auth,
            ),
        heartbeat: (id) => postJson(doFetch, `${base}/view/heartbeat`, { id }, auth),
        unregister: (id) => postJson(doFetch, `${base}/view/unregister`, { id }, auth),
    };
}
