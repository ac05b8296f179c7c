#!/usr/bin/env node
// A browser-style SSP client, in Node.js with the official `surrealdb` SDK.
//
// It does what a web page would do (see the README's "The client protocol"):
//   1. registers its view through SSP's HTTP API (in a real app your backend
//      does this: the bearer secret must never reach a browser);
//   2. subscribes to its own edges in SurrealDB with
//      `LIVE SELECT * FROM _spooky_list_ref WHERE clientId = $clientId`;
//   3. reads its current edges once (after subscribing, so nothing falls in
//      between) and then follows the notifications: it fetches the record an
//      edge points at only when the edge's `version` is newer than its cached
//      copy, and drops records that left every view;
//   4. heartbeats the view while it runs.
//
// It prints one JSON object per line on stdout, one per event, for people and
// for the integration test (tests/integration/node_client.rs). Diagnostics go
// to stderr. It stops cleanly on SIGTERM/SIGINT, and on end of stdin when
// started with --stop-on-stdin-eof, then prints its final local copy.
//
// Configuration: environment variables (below), or the same names as
// --flags, e.g. --client-id=browser-42 (flags win).

import { WebSocket } from "ws";
import { ChannelIterator, Surreal, RecordId, jsonify } from "surrealdb";

// Node.js 20 has no global WebSocket; the SDK's ws:// engine uses it.
globalThis.WebSocket ??= WebSocket;

// Work around a bug of surrealdb 2.0.x (fixed upstream in surrealdb.js PR
// #664, not released yet): the SDK's ChannelIterator hands a value submitted
// while its reader is busy to an already settled promise, so of a burst of
// LIVE notifications (two edges of one transaction, say) only the first
// arrives. The patch keeps the iterator's interface and queues values and
// readers; it is applied only when a probe shows the value loss.
async function fixChannelIterator() {
    const probe = new ChannelIterator();
    const first = probe.next();
    probe.submit(1);
    probe.submit(2);
    await first;
    const second = await Promise.race([probe.next(), Promise.resolve("lost")]);
    if (second !== "lost") return false;
    const proto = ChannelIterator.prototype;
    const original = { return: proto.return, cancel: proto.cancel };
    const states = new WeakMap();
    const state = (it) => {
        let s = states.get(it);
        if (!s) states.set(it, (s = { queue: [], readers: [], done: false }));
        return s;
    };
    const finish = (s) => {
        s.done = true;
        for (const reader of s.readers.splice(0)) reader({ value: undefined, done: true });
    };
    proto.next = function () {
        const s = state(this);
        if (s.queue.length > 0) return Promise.resolve({ value: s.queue.shift(), done: false });
        if (s.done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => s.readers.push(resolve));
    };
    proto.submit = function (value) {
        const s = state(this);
        if (s.done) return;
        const reader = s.readers.shift();
        if (reader) reader({ value, done: false });
        else s.queue.push(value);
    };
    // The originals still run for their cleanup (unsubscribing the channel).
    proto.return = function () {
        finish(state(this));
        return original.return.call(this);
    };
    proto.throw = function (error) {
        finish(state(this));
        original.return.call(this);
        return Promise.reject(error);
    };
    proto.cancel = function () {
        finish(state(this));
        original.cancel.call(this);
    };
    return true;
}

// ---------------------------------------------------------------- settings

function readConfig(argv, env) {
    const flags = {};
    for (const arg of argv) {
        const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
        if (!m) throw new Error(`unknown argument ${arg} (flags look like --name=value)`);
        flags[m[1]] = m[2] ?? "true";
    }
    // flag name -> [environment variable, default]
    const spec = {
        "ssp-url": ["SSP_URL", "http://127.0.0.1:8667"],
        "ssp-secret": ["SSP_SECRET", env.SPOOKY_AUTH_SECRET],
        "surreal-url": ["SURREAL_URL", "ws://127.0.0.1:8000"],
        "surreal-ns": ["SURREAL_NS", "spooky"],
        "surreal-db": ["SURREAL_DB", "spooky"],
        "surreal-user": ["SURREAL_USER", "root"],
        "surreal-pass": ["SURREAL_PASS", "root"],
        "client-id": ["CLIENT_ID", `node-client-${process.pid}`],
        "view-id": ["VIEW_ID", undefined],
        "view-sql": ["VIEW_SQL", "SELECT * FROM thread WHERE author = $uid"],
        "view-params": ["VIEW_PARAMS", '{"uid": "user:1"}'],
        "view-ttl": ["VIEW_TTL", "1h"],
        "heartbeat-ms": ["HEARTBEAT_MS", "30000"],
        "unregister-on-exit": ["UNREGISTER_ON_EXIT", "false"],
        "stop-on-stdin-eof": ["STOP_ON_STDIN_EOF", "false"],
    };
    const known = new Set(Object.keys(spec));
    for (const name of Object.keys(flags)) {
        if (!known.has(name)) throw new Error(`unknown flag --${name}`);
    }
    const c = {};
    for (const [flag, [variable, fallback]] of Object.entries(spec)) {
        c[flag] = flags[flag] ?? env[variable] ?? fallback;
    }
    if (!c["ssp-secret"]) throw new Error("set SSP_SECRET (or SPOOKY_AUTH_SECRET): SSP's bearer secret");
    let params;
    try {
        params = JSON.parse(c["view-params"]);
    } catch (e) {
        throw new Error(`VIEW_PARAMS is not JSON: ${e.message}`);
    }
    const heartbeatMs = Number(c["heartbeat-ms"]);
    if (!Number.isFinite(heartbeatMs) || heartbeatMs < 0) throw new Error("HEARTBEAT_MS must be a number >= 0");
    return {
        sspUrl: c["ssp-url"].replace(/\/+$/, ""),
        secret: c["ssp-secret"],
        surrealUrl: c["surreal-url"],
        namespace: c["surreal-ns"],
        database: c["surreal-db"],
        username: c["surreal-user"],
        password: c["surreal-pass"],
        clientId: c["client-id"],
        viewId: c["view-id"] ?? `${c["client-id"]}-view`,
        sql: c["view-sql"],
        params,
        ttl: c["view-ttl"],
        heartbeatMs,
        unregisterOnExit: c["unregister-on-exit"] === "true",
        stopOnStdinEof: c["stop-on-stdin-eof"] === "true",
    };
}

// ----------------------------------------------------------------- output

/** One event, one line of JSON on stdout. */
function emit(event, fields = {}) {
    process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

function log(...args) {
    console.error("[node-client]", ...args);
}

// -------------------------------------------------------------- SSP's API

async function ssp(config, path, body) {
    const response = await fetch(`${config.sspUrl}${path}`, {
        method: "POST",
        headers: {
            authorization: `Bearer ${config.secret}`,
            "content-type": "application/json",
        },
        body: JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`POST ${path}: ${response.status} ${text}`);
    return JSON.parse(text);
}

// ------------------------------------------------------- the local copy

/** Text of a record id as SSP's API writes it, e.g. `thread:1`. */
function idText(id) {
    return id.toString();
}

/** The view key of an edge's `in` (`_spooky_query:<view>` -> `<view>`). */
function viewKey(inId) {
    return inId instanceof RecordId ? String(inId.id) : String(inId).replace(/^_spooky_query:/, "");
}

/**
 * The client's local copy: which records each view holds (from the edges),
 * and one cached copy of each record with the version it was fetched for.
 */
class LocalCopy {
    constructor(db) {
        this.db = db;
        /** view key -> Set of record id texts */
        this.views = new Map();
        /** record id text -> { version, content } */
        this.records = new Map();
    }

    /** Fetches `out` unless the cached copy is at `version` or newer. */
    async ensure(out, version) {
        const key = idText(out);
        const cached = this.records.get(key);
        if (cached && cached.version >= version) return { fetched: false, cached };
        const content = await this.db.select(out);
        const entry = { version, content: content === undefined ? null : jsonify(content) };
        this.records.set(key, entry);
        return { fetched: true, cached: entry };
    }

    holders(key) {
        let n = 0;
        for (const members of this.views.values()) if (members.has(key)) n += 1;
        return n;
    }

    /** Applies one edge notification; returns the event to print. */
    async apply(action, edge) {
        const view = viewKey(edge.in);
        const record = idText(edge.out);
        const version = Number(edge.version);
        if (action === "DELETE") {
            this.views.get(view)?.delete(record);
            const dropped = this.holders(record) === 0 && this.records.delete(record);
            return { action, view, record, version, fetched: false, dropped };
        }
        if (!this.views.has(view)) this.views.set(view, new Set());
        this.views.get(view).add(record);
        const { fetched, cached } = await this.ensure(edge.out, version);
        return {
            action,
            view,
            record,
            version,
            fetched,
            ...(fetched ? { content: cached.content } : {}),
        };
    }

    /**
     * Replaces the membership with the current edges (a first load, or after
     * a reconnect when notifications may have been missed), fetching what is
     * new or newer and dropping what left.
     */
    async sync(edges) {
        this.views = new Map();
        let fetched = 0;
        for (const edge of edges) {
            const view = viewKey(edge.in);
            if (!this.views.has(view)) this.views.set(view, new Set());
            this.views.get(view).add(idText(edge.out));
            if ((await this.ensure(edge.out, Number(edge.version))).fetched) fetched += 1;
        }
        for (const key of [...this.records.keys()]) {
            if (this.holders(key) === 0) this.records.delete(key);
        }
        return fetched;
    }

    snapshot() {
        const views = {};
        for (const [view, members] of [...this.views].sort(([a], [b]) => a.localeCompare(b))) {
            if (members.size > 0) views[view] = [...members].sort();
        }
        const records = {};
        for (const key of [...this.records.keys()].sort()) records[key] = this.records.get(key);
        return { views, records };
    }
}

// ------------------------------------------------------------------ main

const LIVE_EDGES = "LIVE SELECT * FROM _spooky_list_ref WHERE clientId = $clientId";
const CURRENT_EDGES = "SELECT * FROM _spooky_list_ref WHERE clientId = $clientId";

async function main() {
    const config = readConfig(process.argv.slice(2), process.env);
    if (await fixChannelIterator()) log("patched the SDK's ChannelIterator (lost burst notifications)");

    // 1. Register the view (your backend's job in a real app).
    const view = await ssp(config, "/view/register", {
        id: config.viewId,
        clientId: config.clientId,
        surql: config.sql,
        params: config.params,
        ttl: config.ttl,
    });
    emit("registered", { view: view.id, clientId: view.clientId, records: view.records });

    // 2. Connect to SurrealDB as the client.
    const db = new Surreal();
    await db.connect(config.surrealUrl, {
        namespace: config.namespace,
        database: config.database,
        authentication: { username: config.username, password: config.password },
        // The SDK's default gives up after 5 attempts (~3 s); a page keeps trying.
        reconnect: { enabled: true, attempts: -1, retryDelayMax: 5000 },
    });
    const local = new LocalCopy(db);

    // Notifications are applied one at a time, in order, by one loop.
    let subscription;
    let stopping = false;
    let done;
    const finished = new Promise((resolve) => {
        done = resolve;
    });

    async function follow(live) {
        try {
            for await (const message of live) {
                if (message.action === "KILLED") {
                    emit("killed", { liveId: String(message.queryId) });
                    break;
                }
                emit("edge", await local.apply(message.action, message.value));
            }
        } catch (e) {
            if (!stopping) emit("error", { message: String(e?.message ?? e) });
        }
    }

    // 3. Subscribe, then read the current edges: a change between the two
    //    shows up in the read, in a notification, or in both (and versions
    //    make applying it twice harmless).
    async function subscribe(reason) {
        const [liveId] = await db.query(LIVE_EDGES, { clientId: config.clientId }).collect();
        const live = await db.liveOf(liveId);
        const iterator = live[Symbol.asyncIterator](); // attach before anything can arrive
        const [edges] = await db.query(CURRENT_EDGES, { clientId: config.clientId }).collect();
        const fetched = await local.sync(edges);
        subscription = live;
        emit(reason, { liveId: String(liveId), edges: edges.length, fetched, ...local.snapshot() });
        follow({ [Symbol.asyncIterator]: () => iterator });
    }

    await subscribe("ready");

    // A dropped socket ends every LIVE query of the connection; the SDK
    // reconnects, and the client subscribes and catches up again.
    let connected = true;
    const lost = () => {
        if (connected && !stopping) emit("disconnected");
        connected = false;
    };
    db.subscribe("reconnecting", lost);
    db.subscribe("disconnected", lost);
    db.subscribe("connected", () => {
        connected = true;
        if (stopping) return;
        subscribe("resubscribed").catch((e) => emit("error", { message: String(e?.message ?? e) }));
    });

    // 4. Keep the view alive.
    const heartbeat =
        config.heartbeatMs > 0
            ? setInterval(() => {
                  ssp(config, "/view/heartbeat", { id: config.viewId }).catch((e) =>
                      emit("error", { message: String(e?.message ?? e) }),
                  );
              }, config.heartbeatMs)
            : undefined;

    async function stop(why) {
        if (stopping) return;
        stopping = true;
        clearInterval(heartbeat);
        try {
            await subscription?.kill();
        } catch (e) {
            log("kill:", e?.message ?? e);
        }
        if (config.unregisterOnExit) {
            try {
                await ssp(config, "/view/unregister", { id: config.viewId });
            } catch (e) {
                log("unregister:", e?.message ?? e);
            }
        }
        emit("stopped", { reason: why, ...local.snapshot() });
        await db.close().catch(() => {});
        done();
    }

    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    if (config.stopOnStdinEof) {
        process.stdin.on("end", () => stop("stdin closed"));
        process.stdin.resume();
    }
    await finished;
}

main().then(
    () => process.exit(0),
    (e) => {
        emit("error", { message: String(e?.message ?? e), fatal: true });
        log(e?.stack ?? e);
        process.exit(1);
    },
);
