#!/usr/bin/env node
// A browser-style SSP client, in Node.js, on the @spooky/client library
// (clients/js) and the official `surrealdb` SDK.
//
// It does what a web page would do (see the README's "The client protocol");
// the library does the protocol:
//   1. registers its view (here straight with SSP's HTTP API through
//      `sspBackend`, because this is trusted code; a web page asks your
//      backend, which holds the bearer secret);
//   2. subscribes to the view's edges, reads them once, fetches the records
//      they point at, follows the notifications (a record is fetched only
//      when an edge's `version` is newer than the cached copy), and catches
//      up after a reconnect;
//   3. heartbeats the view while it runs.
//
// It prints one JSON object per line on stdout, one per event, for people and
// for the integration test (tests/integration/node_client.rs). Diagnostics go
// to stderr. It stops cleanly on SIGTERM/SIGINT, and on end of stdin when
// started with --stop-on-stdin-eof, then prints its final local copy. With
// --stdin-commands it reads one JSON command per line on stdin:
//   {"open": {"id": "...", "sql": "...", "params": {...}, "ttl": "1h"}}
//   {"close": "<view id>"}
//
// Configuration: environment variables (below), or the same names as
// --flags, e.g. --client-id=browser-42 (flags win).

import readline from "node:readline";
import { WebSocket } from "ws";
import { Surreal } from "surrealdb";
import { Spooky, sspBackend } from "@spooky/client";

// Node.js 20 has no global WebSocket; the SDK's ws:// engine uses it.
globalThis.WebSocket ??= WebSocket;

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
        owner: ["OWNER", undefined],
        "view-id": ["VIEW_ID", undefined],
        "view-sql": ["VIEW_SQL", "SELECT * FROM thread WHERE author = $uid"],
        "view-params": ["VIEW_PARAMS", '{"uid": "user:1"}'],
        "view-ttl": ["VIEW_TTL", "1h"],
        "heartbeat-ms": ["HEARTBEAT_MS", "30000"],
        "unregister-on-exit": ["UNREGISTER_ON_EXIT", "false"],
        "stop-on-stdin-eof": ["STOP_ON_STDIN_EOF", "false"],
        "stdin-commands": ["STDIN_COMMANDS", "false"],
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
        owner: c.owner || undefined,
        view: {
            id: c["view-id"] ?? `${c["client-id"]}-view`,
            sql: c["view-sql"],
            params,
            ttl: c["view-ttl"],
        },
        heartbeatMs,
        unregisterOnExit: c["unregister-on-exit"] === "true",
        stopOnStdinEof: c["stop-on-stdin-eof"] === "true",
        stdinCommands: c["stdin-commands"] === "true",
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

function message(e) {
    return String(e?.message ?? e);
}

// ------------------------------------------------------------------ main

async function main() {
    const config = readConfig(process.argv.slice(2), process.env);

    // Connect to SurrealDB as the client. (A web page signs in as the app's
    // record user; with OWNER set, SSP lets only that user read the edges.)
    const db = new Surreal();
    await db.connect(config.surrealUrl, {
        namespace: config.namespace,
        database: config.database,
        authentication: { username: config.username, password: config.password },
        // The SDK's default gives up after 5 attempts (~3 s); a page keeps trying.
        reconnect: { enabled: true, attempts: -1, retryDelayMax: 5000 },
    });

    // SSP's own API, with the secret: fine here, never in a browser. The
    // wrapper prints what SSP answers to each registration.
    const ssp = sspBackend({
        url: config.sspUrl,
        secret: config.secret,
        clientId: config.clientId,
        owner: config.owner,
    });
    const backend = {
        ...ssp,
        async register(spec) {
            const answer = await ssp.register(spec);
            emit("registered", { view: answer.id, clientId: answer.clientId, records: answer.records });
            return answer;
        },
    };
    const spooky = new Spooky({ db, backend, heartbeatMs: config.heartbeatMs });

    let stopping = false;
    // Records read from SurrealDB, to report how many a load or catch-up took.
    let fetches = 0;
    let fetchesAtDrop = 0;
    // Between "disconnected" and "resubscribed" the views catch up; that is
    // reported once, as the "resubscribed" snapshot, not edge by edge.
    let catchingUp = false;

    spooky.on("fetch", () => {
        fetches += 1;
    });
    spooky.on("error", ({ error, view, context }) => {
        if (!stopping) emit("error", { message: message(error), ...(view ? { view } : {}), ...(context ? { context } : {}) });
    });

    /** The local copy: which records each view holds, and each record once. */
    function snapshot() {
        const views = {};
        const records = {};
        const open = [...spooky.views.values()].sort((a, b) => a.id.localeCompare(b.id));
        for (const view of open) {
            if (view.ids.length > 0) views[view.id] = view.ids;
        }
        for (const id of open.flatMap((view) => view.ids).sort()) {
            const holders = open.filter((view) => view.version(id) !== undefined);
            const version = Math.max(...holders.map((view) => view.version(id)));
            const content = holders.map((view) => view.get(id)).find((r) => r !== undefined) ?? null;
            records[id] = { version, content };
        }
        return { views, records };
    }

    function follow(view) {
        const edge = (action) => (e) => {
            if (catchingUp || stopping) return;
            emit("edge", {
                action,
                view: view.id,
                record: e.id,
                version: e.version,
                fetched: e.fetched,
                ...(e.fetched ? { content: e.record ?? null } : {}),
            });
        };
        view.on("enter", edge("CREATE"));
        view.on("update", edge("UPDATE"));
        view.on("leave", (e) => {
            if (catchingUp || stopping) return;
            // Dropped from the local copy unless another view holds it.
            const dropped = ![...spooky.views.values()].some((v) => v.version(e.id) !== undefined);
            emit("edge", { action: "DELETE", view: view.id, record: e.id, version: e.version, fetched: false, dropped });
        });
    }

    async function open(spec) {
        const before = fetches;
        const view = await spooky.view(spec);
        follow(view);
        emit("ready", { view: view.id, edges: view.ids.length, fetched: fetches - before, ...snapshot() });
        return view;
    }

    spooky.on("disconnected", () => {
        if (stopping) return;
        catchingUp = true;
        fetchesAtDrop = fetches;
        emit("disconnected");
    });
    spooky.on("resubscribed", () => {
        if (stopping) return;
        catchingUp = false;
        const edges = [...spooky.views.values()].reduce((n, view) => n + view.ids.length, 0);
        emit("resubscribed", { edges, fetched: fetches - fetchesAtDrop, ...snapshot() });
    });

    await open(config.view);

    let done;
    const finished = new Promise((resolve) => {
        done = resolve;
    });

    async function stop(why) {
        if (stopping) return;
        stopping = true;
        const final = snapshot();
        try {
            await spooky.close({ unregister: config.unregisterOnExit });
        } catch (e) {
            log("close:", message(e));
        }
        emit("stopped", { reason: why, ...final });
        await db.close().catch(() => {});
        done();
    }

    // Commands run one at a time, in order.
    let commands = Promise.resolve();
    async function command(line) {
        if (line.trim() === "") return;
        let c;
        try {
            c = JSON.parse(line);
        } catch (e) {
            emit("error", { message: `a command is not JSON: ${message(e)}` });
            return;
        }
        try {
            if (c.open) {
                await open(c.open);
            } else if (c.close) {
                const view = spooky.views.get(String(c.close));
                if (!view) throw new Error(`no open view "${c.close}"`);
                await view.close();
                emit("closed", { view: view.id });
            } else {
                throw new Error(`unknown command ${line} (give "open" or "close")`);
            }
        } catch (e) {
            emit("error", { message: message(e), command: c });
        }
    }

    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    if (config.stdinCommands || config.stopOnStdinEof) {
        const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
        lines.on("line", (line) => {
            if (config.stdinCommands && !stopping) commands = commands.then(() => command(line));
        });
        lines.on("close", () => {
            if (config.stopOnStdinEof) commands.then(() => stop("stdin closed"));
        });
    }
    await finished;
}

main().then(
    () => process.exit(0),
    (e) => {
        emit("error", { message: message(e), fatal: true });
        log(e?.stack ?? e);
        process.exit(1);
    },
);
