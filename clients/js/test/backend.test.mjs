// httpBackend against a small app server of the kind the README describes:
// it checks the user's token, names the user as the view's owner, prefixes
// view ids per user and forwards to SSP with the secret. Plus heartbeats,
// re-registration of a view SSP forgot, and sspBackend's browser guard.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { Spooky, httpBackend, sspBackend } from "../src/index.js";
import { connect, env, eventLog, rid, run, skip, sspGet, sspPost, unique, waitFor } from "../testkit/support.mjs";

/** The app's backend: POST /spooky/{register,heartbeat,unregister}. */
async function startAppServer({ tokens }) {
    const calls = [];
    const server = http.createServer(async (req, res) => {
        let body = "";
        for await (const chunk of req) body += chunk;
        const reply = (status, value) => {
            res.writeHead(status, { "content-type": "application/json" });
            res.end(typeof value === "string" ? value : JSON.stringify(value));
        };
        const user = tokens[req.headers.authorization?.replace(/^Bearer /, "")];
        const path = req.url.replace(/^\/spooky/, "");
        calls.push({ path, user, body });
        if (!user) return reply(401, "who are you?");
        const input = JSON.parse(body);
        // A user may only touch their own views: the prefix says whose.
        const prefix = `${user.replace(":", "-")}-`;
        if (path === "/register") {
            const { status, json, text } = await sspPost("/view/register", {
                id: `${prefix}${input.id}`,
                sql: input.sql,
                params: input.params,
                ttl: input.ttl,
                clientId: `app-${user}`,
                owner: user,
            });
            return reply(status, json ?? text);
        }
        if (path === "/heartbeat" || path === "/unregister") {
            if (!String(input.id).startsWith(prefix)) return reply(403, "not your view");
            const { status, json, text } = await sspPost(`/view${path}`, { id: input.id });
            return reply(status, json ?? text);
        }
        return reply(404, "no such route");
    });
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { url: `http://127.0.0.1:${server.address().port}/spooky`, calls, close: () => server.close() };
}

describe("backends", { skip }, () => {
    let root;
    let users;
    let access;
    before(async () => {
        root = await connect();
        users = unique("user");
        access = unique("access");
        await run(
            root,
            `DEFINE TABLE ${users} SCHEMALESS PERMISSIONS FOR select WHERE id = $auth.id;
             DEFINE ACCESS ${access} ON DATABASE TYPE RECORD
                 SIGNIN (SELECT * FROM ${users} WHERE name = $name) DURATION FOR SESSION 1h;`,
        );
        await run(root, "UPSERT $id SET name = 'alice'", { id: rid(users, "alice") });
    });
    after(async () => {
        await run(root, `REMOVE ACCESS ${access} ON DATABASE`).catch(() => {});
        await root?.close();
    });

    test("httpBackend: an app server registers for the signed-in user; heartbeats; re-registers a forgotten view", async () => {
        const table = unique("thread");
        await run(root, `DEFINE TABLE ${table} SCHEMALESS PERMISSIONS FOR select FULL`);
        await run(root, "UPSERT $id SET title = 'one'", { id: rid(table, 1) });
        const app = await startAppServer({ tokens: { "token-alice": `${users}:alice` } });
        const alice = await connect({ signin: false });
        await alice.signin({ access, variables: { name: "alice" } });
        let token = "token-alice";
        const spooky = new Spooky({
            db: alice,
            backend: httpBackend(app.url, { headers: () => ({ authorization: `Bearer ${token}` }) }),
            heartbeatMs: 150,
        });
        const errors = eventLog(spooky, ["error"]);
        try {
            const view = await spooky.view({ id: "threads", sql: `SELECT * FROM ${table}`, ttl: "1h" });
            // The id the backend answered with, not the one asked for.
            assert.equal(view.id, `${users}-alice-threads`);
            assert.deepEqual(view.ids, [`${table}:1`]);
            assert.equal(view.get(`${table}:1`).title, "one");
            const { json } = await sspGet(`/view/${view.id}`);
            assert.equal(json.owner, `${users}:alice`);
            assert.deepEqual(JSON.parse(app.calls[0].body), { id: "threads", sql: `SELECT * FROM ${table}`, ttl: "1h" });

            await waitFor("two heartbeats", () => app.calls.filter((c) => c.path === "/heartbeat").length >= 2);
            assert.ok(app.calls.every((c) => c.user === `${users}:alice`), "a call without the header's user");

            // SSP forgets the view (its ttl ran out while the page slept,
            // say): the next heartbeat gets 404 and registers it again.
            const log = eventLog(view, ["enter", "leave"]);
            assert.equal((await sspPost("/view/unregister", { id: view.id })).status, 200);
            await log.waitFor("leave", (e) => e.id === `${table}:1`);
            await log.waitFor("enter", (e) => e.id === `${table}:1`);
            assert.equal((await sspGet(`/view/${view.id}`)).status, 200);
            assert.deepEqual(view.ids, [`${table}:1`]);
            assert.deepEqual(errors.events, []);

            // A failing backend call is an Error with the status and body.
            token = "nobody";
            const refused = await spooky.view({ id: "other", sql: `SELECT * FROM ${table}` }).then(
                () => undefined,
                (e) => e,
            );
            assert.ok(refused instanceof Error);
            assert.equal(refused.status, 401);
            assert.match(refused.message, /401 who are you\?/);
            token = "token-alice";

            await view.close();
            assert.equal((await sspGet(`/view/${view.id}`)).status, 404);
            assert.equal(app.calls.at(-1).path, "/unregister");
        } finally {
            await spooky.close();
            await alice.close();
            app.close();
        }
    });

    test("httpBackend takes plain header objects and a custom fetch", async () => {
        const seen = [];
        const backend = httpBackend("http://backend.invalid/api/", {
            headers: { "x-user": "u1" },
            fetch: async (url, init) => {
                seen.push({ url, init });
                return new Response(url.endsWith("/register") ? '{"id":"v-1"}' : "", { status: 200 });
            },
        });
        assert.deepEqual(await backend.register({ id: "v", sql: "SELECT * FROM t" }), { id: "v-1" });
        assert.equal(await backend.heartbeat("v-1"), undefined);
        assert.deepEqual(
            seen.map((s) => [s.url, s.init.method, s.init.headers["x-user"], s.init.body]),
            [
                ["http://backend.invalid/api/register", "POST", "u1", '{"id":"v","sql":"SELECT * FROM t"}'],
                ["http://backend.invalid/api/heartbeat", "POST", "u1", '{"id":"v-1"}'],
            ],
        );
    });

    test("sspBackend refuses to run in a browser", () => {
        globalThis.document = {};
        try {
            assert.throws(() => sspBackend({ url: env.sspUrl, secret: env.secret }), /must not run in a browser/);
        } finally {
            delete globalThis.document;
        }
    });
});
