#!/usr/bin/env node
// The demo's backend: a forum page whose lists stay live through SSP.
//
// It does the few things a browser must not do itself:
//   - applies schema.surql as root at start (users, record access, threads,
//     comments, with their permissions);
//   - bundles public/app.js (the page's code, with the `surrealdb` SDK and
//     `@spooky/client`) with esbuild into memory, so the page loads nothing
//     from the internet;
//   - serves public/ and that bundle, and `GET /api/config` (where the
//     browser finds SurrealDB);
//   - registers, heartbeats and unregisters views in SSP for signed-in users
//     (`POST /api/views/register|heartbeat|unregister`). SSP's bearer secret
//     stays here. The caller is identified by its SurrealDB token
//     (`Authorization: Bearer <token>`), only the demo's own queries
//     (views.mjs) are accepted, view ids are prefixed with the user's key so
//     users cannot touch each other's views, and each view is registered with
//     `owner` = the user, so SurrealDB lets only that user read its edges.
//
// Everything else (signing up and in, reading records, writing threads) the
// browser does directly in SurrealDB, as its record user.
//
// Run it:   npm ci && node server.mjs
// Settings (environment variables):
//   PORT                      HTTP port                              3000
//   HOST                      listen address                         127.0.0.1
//   SSP_URL                   SSP's HTTP address                     http://127.0.0.1:8667
//   SSP_SECRET                SSP's bearer secret (falls back to SPOOKY_AUTH_SECRET; required)
//   SURREAL_URL               SurrealDB, as this server reaches it   ws://127.0.0.1:8000
//   SURREAL_URL_FOR_BROWSER   SurrealDB, as the browser reaches it   SURREAL_URL
//   SURREAL_NS, SURREAL_DB    namespace and database (SSP's)         spooky, spooky
//   SURREAL_USER, SURREAL_PASS  root credentials (to apply the schema) root, root
//
// Or from code: `const { url, close } = await startDemo({ ... })` (the same
// settings in camelCase; see startDemo below). The browser test does that.

import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import * as esbuild from "esbuild";
import { Surreal, escapeIdent } from "surrealdb";
import { WebSocket } from "ws";

import { VIEWS, recordIdOf } from "./views.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PUBLIC = path.join(HERE, "public");

/** Largest request body the API reads (a view registration is tiny). */
const BODY_LIMIT = 64 * 1024;

/** A verified token is trusted this long before SurrealDB is asked again. */
const TOKEN_CACHE_MS = 60_000;

/** Bounds of the ttl a page may ask for (SurrealDB duration, s/m/h). */
const TTL_MIN_S = 30;
/** Most views one user holds at once: each costs SSP memory until its ttl. */
const MAX_VIEWS_PER_USER = 16;
const TTL_MAX_S = 3600;

const CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
};

/** An error the API answers with its own status and a JSON body. */
class HttpError extends Error {
    constructor(status, code, message) {
        super(message);
        this.status = status;
        this.code = code;
    }
}

/** Node.js 20 has no global WebSocket; the SDK's ws:// engine needs one. */
function newSurreal() {
    return new Surreal({ websocketImpl: WebSocket });
}

// ------------------------------------------------------------------ setup

/** Applies schema.surql as root; every statement is written to run twice. */
async function applySchema({ surrealUrl, ns, db, rootUser, rootPass }) {
    const text = await readFile(path.join(HERE, "schema.surql"), "utf8");
    const root = newSurreal();
    try {
        await root.connect(surrealUrl, {
            authentication: { username: rootUser, password: rootPass },
            reconnect: false,
        });
        // SSP creates them too, but the demo may be started first.
        await root.query(`DEFINE NAMESPACE IF NOT EXISTS ${escapeIdent(ns)}`).collect();
        await root.use({ namespace: ns });
        await root.query(`DEFINE DATABASE IF NOT EXISTS ${escapeIdent(db)}`).collect();
        await root.use({ namespace: ns, database: db });
        // collect() throws on the first statement that failed, naming it.
        await root.query(text).collect();
    } catch (e) {
        throw new Error(`applying schema.surql to ${surrealUrl} (${ns}/${db}): ${e?.message ?? e}`);
    } finally {
        await root.close().catch(() => {});
    }
}

/** Bundles the page's code in memory: path ("/app.js", "/app.js.map") -> bytes. */
async function bundlePage() {
    const result = await esbuild.build({
        entryPoints: [path.join(PUBLIC, "app.js")],
        bundle: true,
        format: "esm",
        platform: "browser",
        target: "es2022",
        outfile: path.join(HERE, "dist", "app.js"),
        sourcemap: "linked",
        write: false,
        logLevel: "silent",
    });
    const files = new Map();
    for (const file of result.outputFiles) files.set(`/${path.basename(file.path)}`, file.contents);
    return files;
}

// ------------------------------------------------------------ the caller

/**
 * Who sent this request: the record id (text, `user:<key>`) of the record
 * user whose SurrealDB token is in `Authorization: Bearer`. SurrealDB itself
 * checks the token (signature, expiry, access method): the server opens a
 * connection, authenticates with it and asks for `$auth.id`.
 */
function tokenVerifier({ surrealUrl, ns, db }) {
    /** token -> { user, until } */
    const cache = new Map();

    async function ask(token) {
        const conn = newSurreal();
        try {
            try {
                await conn.connect(surrealUrl, { reconnect: false });
            } catch (e) {
                throw new HttpError(503, "db_unavailable", `could not check the token: ${e?.message ?? e}`);
            }
            try {
                await conn.authenticate(token);
            } catch {
                return null; // expired, forged, of another database: SurrealDB said no
            }
            const [who] = await conn
                .query("RETURN { id: $auth.id, ns: session::ns(), db: session::db(), ac: session::ac() }")
                .collect();
            return who;
        } finally {
            await conn.close().catch(() => {});
        }
    }

    return async function verify(req) {
        const header = req.headers.authorization ?? "";
        const m = /^Bearer\s+(\S+)$/i.exec(header);
        if (!m) throw new HttpError(401, "unauthorized", "sign in first: missing `Authorization: Bearer <SurrealDB token>`");
        const token = m[1];
        const now = Date.now();
        const hit = cache.get(token);
        if (hit && hit.until > now) return hit.user;
        const who = await ask(token);
        const user = who?.id == null ? null : String(who.id);
        // Only a record user of this demo's access method, in its database.
        if (!user || !recordIdOf("user", user) || who.ns !== ns || who.db !== db || who.ac !== "account") {
            throw new HttpError(401, "unauthorized", "the token is not a signed-in user of this demo");
        }
        // Trusted until it expires, or for TOKEN_CACHE_MS, whichever is first.
        const exp = jwtExpiry(token);
        cache.set(token, { user, until: Math.min(now + TOKEN_CACHE_MS, exp ?? Infinity) });
        if (cache.size > 10_000) cache.delete(cache.keys().next().value);
        return user;
    };
}

/** The `exp` claim of a JWT, in ms; null when there is none. Not a check. */
function jwtExpiry(token) {
    try {
        const payload = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));
        return typeof payload.exp === "number" ? payload.exp * 1000 : null;
    } catch {
        return null;
    }
}

// --------------------------------------------------------- view requests

/** `user:abc` -> `abc`: the prefix of the user's view ids and client ids. */
function userKey(user) {
    return user.slice(user.indexOf(":") + 1);
}

/**
 * The SSP view id of a page's view: `<user key>__<name>`. A name may not
 * contain `_`, so the last `__` splits an id back unambiguously, and no id
 * of one user can be an id of another.
 */
const VIEW_NAME = /^[a-z][a-z0-9-]{0,79}$/i;
const CLIENT_ID = /^[A-Za-z0-9-]{1,64}$/;

function ownViewId(user, id) {
    if (typeof id !== "string" || !VIEW_NAME.test(id)) {
        throw new HttpError(400, "bad_request", "`id` must be 1-80 letters, digits and `-`, starting with a letter");
    }
    return `${userKey(user)}__${id}`;
}

/** Checks that `id` (as SSP or the page writes it) is one of the caller's views. */
function checkOwnViewId(user, id) {
    if (typeof id !== "string") throw new HttpError(400, "bad_request", "`id` must be a string");
    const bare = id.replace(/^_spooky_query:/, "").replace(/^⟨(.*)⟩$/, "$1");
    const prefix = `${userKey(user)}__`;
    if (!bare.startsWith(prefix) || !VIEW_NAME.test(bare.slice(prefix.length))) {
        throw new HttpError(403, "forbidden", "not one of your views");
    }
    return bare;
}

/** `30s`, `10m`, `1h` -> seconds; null if not such a duration. */
function ttlSeconds(ttl) {
    const m = /^(\d{1,5})(s|m|h)$/.exec(ttl);
    return m ? Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2]] : null;
}

/**
 * Checks a registration against the allow-list (views.mjs): the exact query
 * text of one of the demo's views, exactly its params, each the record id of
 * the table it must be. The viewer is not a param: `owner` sets `$auth`.
 */
function checkRegistration(body) {
    const entry = Object.values(VIEWS).find((v) => v.sql === body.sql);
    if (!entry) throw new HttpError(400, "bad_request", "not one of the demo's views: only the queries in views.mjs are allowed");
    const params = body.params ?? {};
    if (typeof params !== "object" || Array.isArray(params)) throw new HttpError(400, "bad_request", "`params` must be an object");
    const want = Object.keys(entry.params).sort();
    const got = Object.keys(params).sort();
    if (want.join() !== got.join()) {
        throw new HttpError(400, "bad_request", `this view takes the params [${want.join(", ")}], got [${got.join(", ")}]`);
    }
    for (const [name, table] of Object.entries(entry.params)) {
        if (!recordIdOf(table, params[name])) {
            throw new HttpError(400, "bad_request", `params.${name} must be a ${table} record id (\`${table}:<key>\`)`);
        }
    }
    const ttl = body.ttl ?? "10m";
    const seconds = typeof ttl === "string" ? ttlSeconds(ttl) : null;
    if (seconds === null || seconds < TTL_MIN_S || seconds > TTL_MAX_S) {
        throw new HttpError(400, "bad_request", `\`ttl\` must be a duration like 10m, between ${TTL_MIN_S}s and ${TTL_MAX_S / 60}m`);
    }
    return { sql: entry.sql, params, ttl };
}

/**
 * The view routes, over SSP's HTTP API. A user holds at most
 * MAX_VIEWS_PER_USER views at once (counted here until each is unregistered
 * or its ttl runs out without a heartbeat, as SSP counts them).
 */
function viewApi({ sspUrl, sspSecret, verify }) {
    /** user -> (view id -> { ttlMs, expires }) */
    const held = new Map();
    function viewsOf(user) {
        let mine = held.get(user);
        if (!mine) held.set(user, (mine = new Map()));
        const now = Date.now();
        for (const [id, v] of mine) if (v.expires < now) mine.delete(id);
        return mine;
    }

    async function ssp(route, body) {
        let response;
        try {
            response = await fetch(`${sspUrl}${route}`, {
                method: "POST",
                headers: { authorization: `Bearer ${sspSecret}`, "content-type": "application/json" },
                body: JSON.stringify(body),
            });
        } catch (e) {
            throw new HttpError(502, "ssp_unreachable", `SSP did not answer: ${e?.cause?.message ?? e?.message ?? e}`);
        }
        const text = await response.text();
        let json;
        try {
            json = JSON.parse(text);
        } catch {
            json = { error: text };
        }
        // SSP's 4xx (a bad query, an unknown view) and 503 (retry) reach the
        // page as they are; a 401 would be this server's misconfiguration.
        if (response.status === 401) throw new HttpError(502, "ssp_refused", "SSP refused this server's secret");
        if (!response.ok) throw new HttpError(response.status, json.code ?? "ssp_error", json.error ?? text);
        return json;
    }

    return {
        async register(req, body) {
            const user = await verify(req);
            const { sql, params, ttl } = checkRegistration(body);
            const id = ownViewId(user, body.id);
            // One client id per page (the library may send its own); scoped to
            // the user as view ids are.
            const clientPart = body.clientId === undefined ? "page" : body.clientId;
            if (typeof clientPart !== "string" || !CLIENT_ID.test(clientPart)) {
                throw new HttpError(400, "bad_request", "`clientId` must be 1-64 letters, digits and `-`");
            }
            const clientId = `${userKey(user)}__${clientPart}`;
            const mine = viewsOf(user);
            if (!mine.has(id) && mine.size >= MAX_VIEWS_PER_USER) {
                throw new HttpError(429, "too_many_views", `a user holds at most ${MAX_VIEWS_PER_USER} views at once: close one first`);
            }
            const view = await ssp("/view/register", { id, sql, params, ttl, clientId, owner: user });
            const ttlMs = ttlSeconds(ttl) * 1000;
            mine.set(id, { ttlMs, expires: Date.now() + ttlMs });
            return view;
        },
        async heartbeat(req, body) {
            const user = await verify(req);
            const id = checkOwnViewId(user, body.id);
            const answer = await ssp("/view/heartbeat", { id });
            const v = viewsOf(user).get(id);
            if (v) v.expires = Date.now() + v.ttlMs;
            return answer;
        },
        async unregister(req, body) {
            const user = await verify(req);
            const id = checkOwnViewId(user, body.id);
            const answer = await ssp("/view/unregister", { id });
            viewsOf(user).delete(id);
            return answer;
        },
    };
}

// ------------------------------------------------------------------ HTTP

async function readJson(req) {
    const chunks = [];
    let size = 0;
    for await (const chunk of req) {
        size += chunk.length;
        if (size > BODY_LIMIT) throw new HttpError(413, "payload_too_large", `bodies are at most ${BODY_LIMIT} bytes`);
        chunks.push(chunk);
    }
    try {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        if (body === null || typeof body !== "object" || Array.isArray(body)) throw new Error("not an object");
        return body;
    } catch (e) {
        throw new HttpError(400, "bad_request", `the body must be a JSON object (${e.message})`);
    }
}

function send(res, status, body, headers = {}) {
    res.writeHead(status, { "cache-control": "no-store", ...headers });
    res.end(body);
}

function sendJson(res, status, value) {
    send(res, status, JSON.stringify(value), { "content-type": "application/json; charset=utf-8" });
}

/** A public/ file, or null; never a path outside public/. */
async function staticFile(urlPath) {
    let rel;
    try {
        rel = decodeURIComponent(urlPath);
    } catch {
        return null;
    }
    if (rel === "/") rel = "/index.html";
    const file = path.resolve(PUBLIC, `.${rel}`);
    if (!file.startsWith(PUBLIC + path.sep)) return null;
    // public/app.js is the bundle's source: the browser gets the bundle.
    if (file === path.join(PUBLIC, "app.js")) return null;
    try {
        return { body: await readFile(file), type: CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream" };
    } catch {
        return null;
    }
}

/**
 * Starts the demo: applies the schema, bundles the page, listens.
 * Returns { url, close }.
 */
export async function startDemo({
    port = 0,
    host = "127.0.0.1",
    sspUrl = "http://127.0.0.1:8667",
    sspSecret,
    surrealUrl = "ws://127.0.0.1:8000",
    surrealUrlForBrowser = surrealUrl,
    ns = "spooky",
    db = "spooky",
    rootUser = "root",
    rootPass = "root",
    log = (line) => console.error(`[demo] ${line}`),
} = {}) {
    if (!sspSecret) throw new Error("sspSecret (SSP's bearer secret) is required");
    sspUrl = sspUrl.replace(/\/+$/, "");

    await applySchema({ surrealUrl, ns, db, rootUser, rootPass });
    log(`applied schema.surql to ${ns}/${db}`);
    const bundle = await bundlePage();
    log(`bundled the page (${Math.round(bundle.get("/app.js").length / 1024)} KiB)`);

    const verify = tokenVerifier({ surrealUrl, ns, db });
    const views = viewApi({ sspUrl, sspSecret, verify });
    const config = JSON.stringify({ surrealUrl: surrealUrlForBrowser, ns, db });
    // The page may load only from here, and connect only here and to SurrealDB.
    const browserOrigin = new URL(surrealUrlForBrowser).origin;
    const csp = [
        "default-src 'self'",
        `connect-src 'self' ${browserOrigin}`,
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ].join("; ");

    const server = http.createServer(async (req, res) => {
        const url = new URL(req.url, "http://demo");
        try {
            if (url.pathname.startsWith("/api/")) {
                if (req.method === "GET" && url.pathname === "/api/config") {
                    return send(res, 200, config, { "content-type": "application/json; charset=utf-8" });
                }
                const m = /^\/api\/views\/(register|heartbeat|unregister)$/.exec(url.pathname);
                if (!m) throw new HttpError(404, "not_found", `no route ${req.method} ${url.pathname}`);
                if (req.method !== "POST") throw new HttpError(405, "method_not_allowed", "use POST");
                const body = await readJson(req);
                return sendJson(res, 200, await views[m[1]](req, body));
            }
            if (req.method !== "GET" && req.method !== "HEAD") throw new HttpError(405, "method_not_allowed", "use GET");
            const built = bundle.get(url.pathname);
            const file = built ? { body: built, type: CONTENT_TYPES[path.extname(url.pathname)] } : await staticFile(url.pathname);
            if (!file) throw new HttpError(404, "not_found", `no file ${url.pathname}`);
            return send(res, 200, req.method === "HEAD" ? undefined : file.body, {
                "content-type": file.type,
                "content-security-policy": csp,
                "x-content-type-options": "nosniff",
            });
        } catch (e) {
            if (e instanceof HttpError) return sendJson(res, e.status, { error: e.message, code: e.code });
            log(`${req.method} ${url.pathname}: ${e?.stack ?? e}`);
            return sendJson(res, 500, { error: "internal error", code: "internal" });
        }
    });

    await new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, resolve);
    });
    const address = server.address();
    const url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
    log(`listening on ${url}`);

    return {
        url,
        async close() {
            // Browsers keep idle connections open; do not wait for them.
            server.closeAllConnections?.();
            await new Promise((resolve) => server.close(() => resolve()));
        },
    };
}

// ------------------------------------------------------------------ main

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
    const env = process.env;
    const secret = env.SSP_SECRET ?? env.SPOOKY_AUTH_SECRET;
    if (!secret) {
        console.error("server.mjs: set SSP_SECRET (or SPOOKY_AUTH_SECRET): SSP's bearer secret");
        process.exit(2);
    }
    startDemo({
        port: Number(env.PORT ?? 3000),
        host: env.HOST ?? "127.0.0.1",
        sspUrl: env.SSP_URL,
        sspSecret: secret,
        surrealUrl: env.SURREAL_URL,
        surrealUrlForBrowser: env.SURREAL_URL_FOR_BROWSER,
        ns: env.SURREAL_NS,
        db: env.SURREAL_DB,
        rootUser: env.SURREAL_USER,
        rootPass: env.SURREAL_PASS,
    }).then(
        (demo) => {
            console.log(`demo: open ${demo.url}`);
            const stop = () => demo.close().then(() => process.exit(0));
            process.on("SIGINT", stop);
            process.on("SIGTERM", stop);
        },
        (e) => {
            console.error(`server.mjs: ${e?.message ?? e}`);
            process.exit(1);
        },
    );
}
