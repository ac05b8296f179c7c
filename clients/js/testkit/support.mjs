// Shared pieces of the tests. They run against a real SurrealDB server and a
// real SSP given by environment variables (see README.md, "Tests"); nothing
// here mocks either. (This file is outside test/ because Node 20's
// `node --test test/` runs every file in that folder as a test.)

import net from "node:net";
import { WebSocket } from "ws";
import { RecordId, Surreal } from "surrealdb";
import { Spooky, sspBackend } from "../src/index.js";

// Node.js 20 has no global WebSocket; the SDK's ws:// engine uses it.
globalThis.WebSocket ??= WebSocket;

export const env = {
    sspUrl: process.env.SSP_URL?.replace(/\/+$/, ""),
    secret: process.env.SSP_SECRET,
    surrealUrl: process.env.SURREAL_URL ?? "ws://127.0.0.1:8000",
    namespace: process.env.SURREAL_NS ?? "spooky",
    database: process.env.SURREAL_DB ?? "spooky",
    username: process.env.SURREAL_USER ?? "root",
    password: process.env.SURREAL_PASS ?? "root",
};

/** Set when the tests cannot run: `test(name, { skip }, ...)`. */
export const skip = env.sspUrl
    ? false
    : "SSP_URL is not set: these tests need a running SurrealDB and SSP (SSP_URL, SSP_SECRET, SURREAL_URL, SURREAL_NS, SURREAL_DB, SURREAL_USER, SURREAL_PASS)";

if (!skip && !env.secret) throw new Error("SSP_URL is set but SSP_SECRET is not");

/** How long one expected thing may take (SSP usually answers in ~100 ms). */
export const TIMEOUT_MS = Number(process.env.SPOOKY_TEST_TIMEOUT_MS ?? 20000);

/** A random suffix: tests share one database, so names must not collide. */
export function unique(prefix) {
    return `${prefix}_${Math.random().toString(36).slice(2, 10)}`;
}

export function rid(table, key) {
    return new RecordId(table, key);
}

/**
 * A connected Surreal. Root by default; `{ signin: false }` for one that
 * only selects the namespace and database (a record user signs in later).
 */
export async function connect({ url = env.surrealUrl, signin = true } = {}) {
    const db = new Surreal();
    await db.connect(url, {
        namespace: env.namespace,
        database: env.database,
        ...(signin ? { authentication: { username: env.username, password: env.password } } : {}),
        // Retry quickly and for ever: the reconnect test cuts the socket.
        reconnect: { enabled: true, attempts: -1, retryDelay: 100, retryDelayMax: 500 },
    });
    return db;
}

/** Runs SurrealQL; returns the results of every statement. */
export async function run(db, sql, vars) {
    return db.query(sql, vars).collect();
}

/** Polls `check` until it returns something truthy, which is returned. */
export async function waitFor(what, check, timeoutMs = TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
        try {
            const value = await check();
            if (value) return value;
            last = value;
        } catch (error) {
            last = error;
        }
        if (Date.now() > deadline) {
            const seen = last instanceof Error ? last.message : JSON.stringify(last);
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last check: ${seen})`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
}

async function sspRequest(method, path, body) {
    const response = await fetch(`${env.sspUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${env.secret}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let json;
    try {
        json = JSON.parse(text);
    } catch {
        json = undefined;
    }
    return { status: response.status, text, json };
}

/** GET on SSP's API with the bearer secret: { status, text, json }. */
export function sspGet(path) {
    return sspRequest("GET", path);
}

/** POST on SSP's API with the bearer secret: { status, text, json }. */
export function sspPost(path, body) {
    return sspRequest("POST", path, body);
}

/** SSP's view as record id -> version, or undefined when SSP has no such view. */
export async function sspVersions(viewId) {
    const { status, json } = await sspGet(`/view/${encodeURIComponent(viewId)}`);
    if (status === 404) return undefined;
    if (status !== 200) throw new Error(`GET /view/${viewId}: ${status}`);
    return Object.fromEntries(json.records.map((r) => [r.id, r.version]));
}

/** What an app does after it wrote: tell SSP with /ingest. */
export async function ingest(table, op, id, record) {
    const { status, text } = await sspPost("/ingest", { table, op, id, record });
    if (status !== 200) throw new Error(`ingest ${op} ${id}: ${status} ${text}`);
}

/** A Spooky with SSP's own backend (trusted test code), heartbeats off. */
export function newSpooky(db, { owner, heartbeatMs = 0, clientId = unique("client") } = {}) {
    const backend = sspBackend({ url: env.sspUrl, secret: env.secret, clientId, owner });
    return new Spooky({ db, backend, heartbeatMs });
}

/** Collects a view's (or a Spooky's) events, to wait for and assert on. */
export function eventLog(target, names) {
    const events = [];
    const offs = names.map((name) => target.on(name, (payload) => events.push({ name, ...payload })));
    return {
        events,
        stop: () => offs.forEach((off) => off()),
        /** The events named `name` (with `pred`), as they came. */
        of: (name, pred = () => true) => events.filter((e) => e.name === name && pred(e)),
        /** Waits for an event named `name` matching `pred`; returns it. */
        waitFor: (name, pred = () => true, what = `a "${name}" event`) =>
            waitFor(what, () => events.find((e) => e.name === name && pred(e))).catch((error) => {
                error.message += `\nevents so far: ${JSON.stringify(events.map(({ records, ...e }) => e))}`;
                throw error;
            }),
    };
}

/**
 * A TCP proxy in front of SurrealDB, so that a test can cut a client's
 * connection: `cut()` destroys every socket and stops listening (so the
 * client's reconnects are refused), `open()` listens again on the same port.
 */
export class TcpProxy {
    #target;
    #server = null;
    #sockets = new Set();
    port = 0;

    constructor(targetUrl) {
        const url = new URL(targetUrl);
        this.#target = { host: url.hostname, port: Number(url.port || 80) };
    }

    get url() {
        return `ws://127.0.0.1:${this.port}`;
    }

    async open() {
        const server = net.createServer((client) => {
            const upstream = net.connect(this.#target);
            for (const s of [client, upstream]) {
                this.#sockets.add(s);
                s.on("close", () => this.#sockets.delete(s));
                s.on("error", () => {});
            }
            client.pipe(upstream);
            upstream.pipe(client);
            client.on("close", () => upstream.destroy());
            upstream.on("close", () => client.destroy());
        });
        await new Promise((resolve, reject) => {
            server.once("error", reject);
            server.listen(this.port, "127.0.0.1", () => {
                server.off("error", reject);
                resolve();
            });
        });
        this.port = server.address().port;
        this.#server = server;
    }

    async cut() {
        const server = this.#server;
        this.#server = null;
        const closed = server ? new Promise((resolve) => server.close(resolve)) : Promise.resolve();
        for (const s of this.#sockets) s.destroy();
        this.#sockets.clear();
        await closed;
    }
}
