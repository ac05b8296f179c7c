#!/usr/bin/env node
// The demo's end-to-end test, in a real browser (Debian's Chromium, driven by
// playwright-core) against a real SurrealDB server and SSP.
//
//   SSP_URL=... SSP_SECRET=... SURREAL_URL=ws://127.0.0.1:8000 SURREAL_NS=spooky SURREAL_DB=spooky \
//   SURREAL_USER=root SURREAL_PASS=root SCREENSHOT=/tmp/demo.png node test/browser.mjs
//
// Optional: CHROMIUM (default /usr/bin/chromium), HEADFUL=1 to watch it.
//
// It starts the demo's server (startDemo) in this process, with the page's
// SurrealDB address pointing at a TCP proxy the test can cut, and then:
//   1. alice signs up in page A; her live thread list shows threads written
//      as root directly in SurrealDB (a new thread by bob, an edit) and
//      through SSP's /ingest (a create, a delete), and the threads she posts
//      from the form (one private);
//   2. she opens a thread: its detail and comments are live too (a comment as
//      root, one from her form);
//   3. the proxy cuts her connection: the page says "reconnecting…"; data
//      changes meanwhile (a new thread, an edit of the open thread, a
//      comment) and does not show; the proxy reopens: "live", and the page
//      has caught up;
//   4. the backend refuses what it must: no token, a query that is not one of
//      the demo's, another user's view;
//   5. bob signs in in a second browser context: he sees public threads, not
//      alice's private one; from his page's own SurrealDB connection,
//      `_spooky_list_ref`, `_spooky_query` and private threads show nothing
//      of alice's, while root sees that alice's rows do exist; and his
//      LIVE SELECT on `_spooky_list_ref` gets his own edge notifications but
//      none of alice's;
//   6. a screenshot of alice's page goes to SCREENSHOT.
// Progress lines go to stdout. Exit 0 on success, 1 with the failure.

import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { chromium } from "playwright-core";
import { RecordId, Surreal, jsonify } from "surrealdb";
import { WebSocket } from "ws";

import { startDemo } from "../server.mjs";
import { VIEWS } from "../views.mjs";

// ------------------------------------------------------------------ setup

const env = process.env;
const required = ["SSP_URL", "SSP_SECRET", "SURREAL_URL", "SURREAL_NS", "SURREAL_DB", "SURREAL_USER", "SURREAL_PASS", "SCREENSHOT"];
const missing = required.filter((name) => !env[name]);
if (missing.length) {
    console.error(`test/browser.mjs: set ${missing.join(", ")}`);
    process.exit(2);
}
const CHROMIUM = env.CHROMIUM ?? "/usr/bin/chromium";
/** Default wait for something to show in a page. */
const TIMEOUT = 20_000;

const started = Date.now();
function step(message) {
    console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${message}`);
}

class TestFailure extends Error {}
function fail(message) {
    throw new TestFailure(message);
}
function check(condition, message) {
    if (!condition) fail(message);
}

/**
 * Polls `probe` until it returns something truthy; fails naming `what` and
 * what was seen last (`describe()`, else the probe's last answer).
 */
async function waitFor(what, probe, timeout = TIMEOUT, describe = undefined) {
    const deadline = Date.now() + timeout;
    let last;
    for (;;) {
        try {
            last = await probe();
            if (last) return last;
        } catch (e) {
            if (e instanceof TestFailure) throw e;
            last = `error: ${e?.message ?? e}`;
        }
        if (Date.now() > deadline) {
            if (describe) last = await Promise.resolve(describe()).catch((e) => `error: ${e?.message ?? e}`);
            fail(`timed out after ${timeout} ms waiting for ${what}${last === undefined ? "" : ` (last seen: ${show(last)})`}`);
        }
        await sleep(150);
    }
}

function show(value) {
    const text = typeof value === "string" ? value : String(JSON.stringify(value));
    return text.length > 600 ? `${text.slice(0, 600)}…` : text;
}

// A word that makes this run's record ids (and, when "alice" or "bob" is
// taken, its user names) unique, so the test can run again on a database
// that holds earlier runs' data. Titles are found by id, or by author.
const RUN = Math.random().toString(36).slice(2, 8);

// What the threads say (the screenshot shows them).
const TITLE = {
    welcome: "Welcome to the Spooky forum",
    welcome2: "Welcome to the Spooky forum!",
    welcome3: "Welcome to the Spooky forum! (pinned)",
    ingested: "This one came through /ingest",
    alicePublic: "How do live views work?",
    alicePrivate: "Notes to self",
    alicePrivate2: "Notes to self (updated)",
    offline: "Posted while alice was offline",
    everyone: "Release notes: views have owners now",
};
const COMMENT = {
    bob: "First! (written as root, as bob)",
    alice: "Hi bob, this one comes from my page.",
    offline: "Alice, are you there? (written while she was offline)",
    last: "Every list on this page is an SSP view, kept live.",
};

// ---------------------------------------------------------- a cuttable link

/**
 * A TCP proxy between the pages and SurrealDB. `cut()` destroys every open
 * connection and refuses new ones (accepts and closes them at once, as a
 * dead network would) until `reopen()`.
 */
class CuttableProxy {
    constructor(targetUrl) {
        const target = new URL(targetUrl);
        this.host = target.hostname;
        this.port = Number(target.port || 80);
        this.open = true;
        this.sockets = new Set();
        this.server = net.createServer((client) => this.#accept(client));
    }

    async start() {
        await new Promise((resolve) => this.server.listen(0, "127.0.0.1", resolve));
        return this.server.address().port;
    }

    #accept(client) {
        if (!this.open) {
            client.destroy();
            return;
        }
        const upstream = net.connect(this.port, this.host);
        for (const [a, b] of [
            [client, upstream],
            [upstream, client],
        ]) {
            this.sockets.add(a);
            a.on("error", () => b.destroy());
            a.on("close", () => {
                this.sockets.delete(a);
                b.destroy();
            });
            a.pipe(b);
        }
    }

    cut() {
        this.open = false;
        for (const socket of this.sockets) socket.destroy();
    }

    reopen() {
        this.open = true;
    }

    async close() {
        this.cut();
        await new Promise((resolve) => this.server.close(() => resolve()));
    }
}

// --------------------------------------------------------------- the pages

const sel = (testid) => `[data-testid="${testid}"]`;

/** The titles in a page's thread list, top to bottom. */
function listTitles(page) {
    return page.$$eval(sel("thread-item-title"), (nodes) => nodes.map((n) => n.textContent));
}

/** One thread in a page's list: { title, author, private } or null. */
async function listItem(page, id) {
    return page.evaluate(
        ({ id }) => {
            const li = document.querySelector(`[data-testid="thread-item"][data-id="${id}"]`);
            if (!li) return null;
            const text = (t) => li.querySelector(`[data-testid="${t}"]`)?.textContent ?? null;
            return { title: text("thread-item-title"), author: text("thread-item-author"), private: !!li.querySelector('[data-testid="thread-item-private"]') };
        },
        { id },
    );
}

async function waitForThread(page, who, id, expected, timeout = TIMEOUT) {
    return waitFor(
        `${who}'s list to show ${id} as ${JSON.stringify(expected)}`,
        async () => {
            const item = await listItem(page, id);
            return item && Object.entries(expected).every(([k, v]) => item[k] === v) && item;
        },
        timeout,
        () => pageState(page, id),
    );
}

async function waitForNoThread(page, who, id, timeout = TIMEOUT) {
    await waitFor(`${who}'s list to drop ${id}`, async () => (await listItem(page, id)) === null, timeout, () => pageState(page, id));
}

/** What a page shows, for failure messages. */
async function pageState(page, id) {
    return {
        status: await statusOf(page),
        item: id ? await listItem(page, id) : undefined,
        titles: await listTitles(page),
        error: await page.$eval(sel("app-error"), (n) => (n.hidden ? undefined : n.textContent)),
    };
}

async function statusOf(page) {
    return page.$eval(sel("status"), (n) => n.textContent);
}

async function waitForStatus(page, who, text, timeout = TIMEOUT) {
    await waitFor(`${who}'s status to read "${text}"`, async () => (await statusOf(page)) === text, timeout, () => pageState(page));
}

/** The open thread, for failure messages. */
async function detailState(page) {
    return {
        status: await statusOf(page),
        title: await page.textContent(sel("detail-title")),
        meta: await page.textContent(sel("detail-meta")),
        comments: await commentTexts(page),
        error: await page.$eval(sel("app-error"), (n) => (n.hidden ? undefined : n.textContent)),
    };
}

async function commentTexts(page) {
    return page.$$eval(sel("comment-item-text"), (nodes) => nodes.map((n) => n.textContent));
}

/** Signs up or in through the page's form and waits for the live list. */
async function enter(page, who, kind, name, password) {
    await page.locator(sel("auth-form")).waitFor({ state: "visible", timeout: TIMEOUT });
    await page.fill(sel("auth-name"), name);
    await page.fill(sel("auth-password"), password);
    await page.click(sel(kind));
    await waitFor(`${who} to be signed in (the forum to show)`, async () => {
        const error = await page.$eval(sel("auth-error"), (n) => (n.hidden ? "" : n.textContent));
        if (error) fail(`${who}'s ${kind} failed on the page: ${error}`);
        return page.isVisible(sel("app"));
    });
    await waitForStatus(page, who, "live");
    return page.evaluate(() => window.demo.me);
}

// ------------------------------------------------------------------ main

async function main() {
    step(`run ${RUN}: SurrealDB ${env.SURREAL_URL} (${env.SURREAL_NS}/${env.SURREAL_DB}), SSP ${env.SSP_URL}`);
    await waitFor(`Chromium at ${CHROMIUM} (set CHROMIUM to another path)`, () => existsSync(CHROMIUM), 120_000);

    const cleanups = [];
    try {
        await run(cleanups);
    } finally {
        // Last opened, first closed; a failing close does not hide the error.
        for (const cleanup of cleanups.reverse()) await cleanup().catch((e) => console.error(`cleanup: ${e?.message ?? e}`));
    }
}

async function run(cleanups) {
    // Root, straight to SurrealDB: "another app" writing data.
    const root = new Surreal({ websocketImpl: WebSocket });
    await root.connect(env.SURREAL_URL, {
        namespace: env.SURREAL_NS,
        database: env.SURREAL_DB,
        authentication: { username: env.SURREAL_USER, password: env.SURREAL_PASS },
    });
    cleanups.push(() => root.close());
    const sql = async (text, vars) => (await root.query(text, vars).collect()).at(-1);

    const proxy = new CuttableProxy(env.SURREAL_URL);
    const proxyPort = await proxy.start();
    cleanups.push(() => proxy.close());

    const demo = await startDemo({
        port: 0,
        sspUrl: env.SSP_URL,
        sspSecret: env.SSP_SECRET,
        surrealUrl: env.SURREAL_URL,
        surrealUrlForBrowser: `ws://127.0.0.1:${proxyPort}`,
        ns: env.SURREAL_NS,
        db: env.SURREAL_DB,
        rootUser: env.SURREAL_USER,
        rootPass: env.SURREAL_PASS,
        log: (line) => step(`demo: ${line}`),
    });
    cleanups.push(() => demo.close());
    step(`demo server at ${demo.url}; the pages reach SurrealDB through the proxy on :${proxyPort}`);

    const browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: !env.HEADFUL,
        args: [
            ...(env.HEADFUL ? [] : ["--headless"]),
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    });
    cleanups.push(() => browser.close());
    step(`Chromium ${browser.version()} started`);

    // The page may load nothing but the demo's own files.
    const offsite = [];
    const pageErrors = [];
    async function newPage(who) {
        const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1 });
        await context.route("**/*", (route) => {
            const url = route.request().url();
            if (url.startsWith(`${demo.url}/`)) return route.continue();
            offsite.push(`${who}: ${url}`);
            return route.abort();
        });
        const page = await context.newPage();
        page.on("pageerror", (e) => pageErrors.push(`${who}: ${e?.message ?? e}`));
        page.on("console", (m) => {
            if (m.type() === "error") step(`${who}'s console: ${m.text()}`);
        });
        await page.goto(demo.url);
        return page;
    }

    // -------------------------------------------------------- 1. alice's list
    // "alice" and "bob" on a fresh database, suffixed where an earlier run took them.
    const freeName = async (name) => ((await sql("SELECT VALUE id FROM user WHERE name = $name", { name })).length ? `${name}${RUN}` : name);
    const aliceName = await freeName("alice");
    const bobName = await freeName("bob");

    const alicePage = await newPage("alice");
    const alice = await enter(alicePage, "alice", "signup", aliceName, "alice-pw-1");
    const aliceRid = new RecordId("user", alice.id.split(":")[1]);
    step(`alice signed up as ${alice.id}; her list is live`);

    // Bob exists before he ever opens the page (created as root, with a password).
    const [bob] = await sql("CREATE user SET name = $name, password = crypto::argon2::generate($pw) RETURN id, name", {
        name: bobName,
        pw: "bob-pw-1",
    });
    const bobId = String(bob.id);

    // Root writes straight into SurrealDB; SSP's change worker picks it up.
    const t1 = new RecordId("thread", `bobhello${RUN}`);
    await sql("CREATE $id SET title = $title, body = $body, public = true, author = $author", {
        id: t1,
        title: TITLE.welcome,
        body: "This thread was written as root, straight into SurrealDB. SSP's change worker saw it, and every page whose view it belongs to got it within moments.",
        author: bob.id,
    });
    await waitForThread(alicePage, "alice", String(t1), { title: TITLE.welcome, author: bob.name });
    step("a thread written as root in SurrealDB showed up, with its author's name");

    await sql("UPDATE $id SET title = $title", { id: t1, title: TITLE.welcome2 });
    await waitForThread(alicePage, "alice", String(t1), { title: TITLE.welcome2 });
    step("an edit as root showed up");

    // Through /ingest: the app writes, then tells SSP (no waiting for the worker).
    const ingest = async (change) => {
        const response = await fetch(`${env.SSP_URL}/ingest`, {
            method: "POST",
            headers: { authorization: `Bearer ${env.SSP_SECRET}`, "content-type": "application/json" },
            body: JSON.stringify(change),
        });
        const text = await response.text();
        check(response.ok, `POST /ingest ${JSON.stringify(change)} answered ${response.status}: ${text}`);
        return JSON.parse(text);
    };
    const t2 = new RecordId("thread", `ingested${RUN}`);
    const [written] = await sql("CREATE $id SET title = $title, body = 'Written as root, then sent to /ingest.', public = true, author = $author", {
        id: t2,
        title: TITLE.ingested,
        author: bob.id,
    });
    const { id: _, ...content } = jsonify(written);
    await ingest({ table: "thread", op: "CREATE", id: String(t2), record: content });
    await waitForThread(alicePage, "alice", String(t2), { title: TITLE.ingested, author: bob.name });
    step("a thread written as root and sent to SSP's /ingest showed up");

    await sql("DELETE $id", { id: t2 });
    await ingest({ table: "thread", op: "DELETE", id: String(t2) });
    await waitForNoThread(alicePage, "alice", String(t2));
    step("its deletion through /ingest removed it");

    // Alice posts from the form: one public thread, one private.
    await alicePage.fill(sel("thread-title"), TITLE.alicePublic);
    await alicePage.fill(sel("thread-body"), "Posted from the page, as alice, straight into SurrealDB.");
    await alicePage.setChecked(sel("thread-public"), true);
    await alicePage.click(sel("thread-submit"));
    const aPublic = await waitFor("alice's posted thread in the database", async () =>
        (await sql("SELECT VALUE id FROM thread WHERE author = $a AND title = $t", { a: aliceRid, t: TITLE.alicePublic }))[0],
    );
    await waitForThread(alicePage, "alice", String(aPublic), { title: TITLE.alicePublic, author: alice.name, private: false });
    step("alice's thread, posted from the form, showed up");
    await waitFor("the post form reset", async () =>
        (await alicePage.inputValue(sel("thread-title"))) === "" && (await alicePage.isChecked(sel("thread-public"))),
    );

    await alicePage.fill(sel("thread-title"), TITLE.alicePrivate);
    await alicePage.fill(sel("thread-body"), "Only alice may read this.");
    await alicePage.setChecked(sel("thread-public"), false);
    await alicePage.click(sel("thread-submit"));
    const aPrivate = await waitFor("alice's private thread in the database", async () =>
        (await sql("SELECT VALUE id FROM thread WHERE author = $a AND title = $t", { a: aliceRid, t: TITLE.alicePrivate }))[0],
    );
    // The page resets the form (\`public\` checked again) once its write
    // returns, which may be after the row is visible here: wait for it
    // rather than set the box at the same time (a race that failed once).
    await waitFor("the post form reset", async () =>
        (await alicePage.inputValue(sel("thread-title"))) === "" && (await alicePage.isChecked(sel("thread-public"))),
    );
    await waitForThread(alicePage, "alice", String(aPrivate), { title: TITLE.alicePrivate, private: true });
    step("alice's private thread showed up in her list, marked private");

    // ------------------------------------------------------ 2. one thread
    const aliceDetail = () => detailState(alicePage);
    await alicePage.click(`[data-testid="thread-item"][data-id="${t1}"]`);
    await waitFor(
        "the detail of bob's thread",
        async () =>
            (await alicePage.textContent(sel("detail-title"))) === TITLE.welcome2 &&
            (await alicePage.textContent(sel("detail-meta"))).startsWith(`by ${bob.name}`),
        TIMEOUT,
        aliceDetail,
    );
    await sql("CREATE comment SET thread = $t, author = $a, text = $text", { t: t1, a: bob.id, text: COMMENT.bob });
    await waitFor("bob's comment in the detail", async () => (await commentTexts(alicePage)).includes(COMMENT.bob), TIMEOUT, aliceDetail);
    await alicePage.fill(sel("comment-text"), COMMENT.alice);
    await alicePage.click(sel("comment-submit"));
    await waitFor("alice's comment in the detail", async () => (await commentTexts(alicePage)).includes(COMMENT.alice), TIMEOUT, aliceDetail);
    step("the thread's detail opened; comments written as root and from the page showed up");

    // ------------------------------------------------ 3. cut the connection
    proxy.cut();
    await waitForStatus(alicePage, "alice", "reconnecting…", 15_000);
    step("connection cut: the page says reconnecting…");

    const t3 = new RecordId("thread", `offline${RUN}`);
    await sql("CREATE $id SET title = $title, body = 'While alice was away.', public = true, author = $author", {
        id: t3,
        title: TITLE.offline,
        author: bob.id,
    });
    await sql("UPDATE $id SET title = $title", { id: t1, title: TITLE.welcome3 });
    await sql("CREATE comment SET thread = $t, author = $a, text = $text", { t: t1, a: bob.id, text: COMMENT.offline });
    // SSP has written the edges (alice's list view now holds t3) ...
    await waitFor("SSP to add the offline thread to alice's list view (as root)", async () =>
        (await sql("SELECT VALUE id FROM _spooky_list_ref WHERE out = $t AND owner = $a", { t: t3, a: aliceRid })).length > 0,
    );
    // ... and the page, cut off, cannot know.
    await sleep(500);
    check((await listItem(alicePage, String(t3))) === null, "the page showed a thread written while its connection was cut");
    check((await statusOf(alicePage)) === "reconnecting…", `status should still read reconnecting… but reads ${await statusOf(alicePage)}`);
    step("changed data while cut off; the page did not see it");

    proxy.reopen();
    await waitForStatus(alicePage, "alice", "live", 30_000);
    await waitForThread(alicePage, "alice", String(t3), { title: TITLE.offline });
    await waitForThread(alicePage, "alice", String(t1), { title: TITLE.welcome3 });
    await waitFor("the open thread's new title", async () => (await alicePage.textContent(sel("detail-title"))) === TITLE.welcome3, TIMEOUT, aliceDetail);
    await waitFor("the comment written while offline", async () => (await commentTexts(alicePage)).includes(COMMENT.offline), TIMEOUT, aliceDetail);
    step("connection back: live again, and the page caught up (new thread, edit, comment)");

    // ---------------------------------------------- 4. the backend's guards
    const token = await alicePage.evaluate(() => window.demo.db.accessToken);
    const api = async (route, body, headers = {}) => {
        const r = await fetch(`${demo.url}/api/views/${route}`, {
            method: "POST",
            headers: { "content-type": "application/json", ...headers },
            body: JSON.stringify(body),
        });
        return { status: r.status, body: await r.text() };
    };
    const auth = { authorization: `Bearer ${token}` };
    let r = await api("register", { id: "threads", sql: "SELECT * FROM thread", params: {} });
    check(r.status === 401, `register without a token answered ${r.status}, not 401: ${r.body}`);
    r = await api("register", { id: "threads", sql: "SELECT * FROM thread", params: {} }, { authorization: "Bearer not-a-token" });
    check(r.status === 401, `register with a bad token answered ${r.status}, not 401: ${r.body}`);
    r = await api("register", { id: "everything", sql: "SELECT * FROM user", params: {} }, auth);
    check(r.status === 400, `register of a query outside the allow-list answered ${r.status}, not 400: ${r.body}`);
    r = await api("register", { id: "peek", sql: "SELECT * FROM thread WHERE id = $thread AND (public = true OR author = $auth) FETCH author", params: { thread: "thread:x", auth: bobId } }, auth);
    check(r.status === 400, `register with an extra param (auth) answered ${r.status}, not 400: ${r.body}`);
    const bobKey = bobId.split(":")[1];
    r = await api("heartbeat", { id: `${bobKey}__threads` }, auth);
    check(r.status === 403, `heartbeat of another user's view answered ${r.status}, not 403: ${r.body}`);
    r = await api("unregister", { id: `_spooky_query:${bobKey}__threads` }, auth);
    check(r.status === 403, `unregister of another user's view answered ${r.status}, not 403: ${r.body}`);
    step("the backend refused: no token, a bad token, a query off the allow-list, an extra param, another user's view");

    // A cap on the views one user holds: more are refused (429) until one
    // is closed.
    const threadView = VIEWS.thread.sql;
    const extra = [];
    let capped = null;
    for (let i = 0; i < 20 && capped === null; i++) {
        r = await api("register", { id: `thread-cap${i}`, sql: threadView, params: { thread: `thread:cap${i}` }, ttl: "5m" }, auth);
        if (r.status === 200) extra.push(JSON.parse(r.body).id);
        else capped = r;
    }
    check(capped !== null && capped.status === 429, `registering 20 more views was never refused with 429 (last: ${capped?.status} ${capped?.body})`);
    check(extra.length > 0, "no view registered before the cap");
    r = await api("unregister", { id: extra.pop() }, auth);
    check(r.status === 200, `unregister answered ${r.status}: ${r.body}`);
    r = await api("register", { id: "thread-capagain", sql: threadView, params: { thread: "thread:capagain" }, ttl: "5m" }, auth);
    check(r.status === 200, `after closing one, a view registers again: ${r.status} ${r.body}`);
    extra.push(JSON.parse(r.body).id);
    for (const id of extra) {
        r = await api("unregister", { id }, auth);
        check(r.status === 200, `unregister ${id} answered ${r.status}: ${r.body}`);
    }
    step(`the cap: ${extra.length} more views, then 429 until one was closed`);

    // ------------------------------------------------------------- 5. bob
    const bobPage = await newPage("bob");
    const bobMe = await enter(bobPage, "bob", "signin", bob.name, "bob-pw-1");
    check(bobMe.id === bobId, `bob signed in as ${bobMe.id}, expected ${bobId}`);
    await waitForThread(bobPage, "bob", String(aPublic), { title: TITLE.alicePublic, author: alice.name });
    await waitForThread(bobPage, "bob", String(t3), { title: TITLE.offline });
    check((await listItem(bobPage, String(aPrivate))) === null, "bob's list shows alice's private thread");
    check(!(await listTitles(bobPage)).includes(TITLE.alicePrivate), "bob's list shows the title of alice's private thread");
    step("bob signed in: his list shows the public threads, not alice's private one");

    // Root sees alice's rows, so the checks below cannot pass for want of data.
    const rootEdges = await sql("SELECT VALUE id FROM _spooky_list_ref WHERE owner = $a", { a: aliceRid });
    const rootViews = await sql("SELECT VALUE id FROM _spooky_query WHERE owner = $a", { a: aliceRid });
    const rootPrivate = await sql("SELECT VALUE id FROM thread WHERE public = false AND author = $a", { a: aliceRid });
    check(rootEdges.length > 0, "root sees no edge owned by alice: the isolation checks would prove nothing");
    check(rootViews.length > 0, "root sees no view owned by alice");
    check(rootPrivate.length > 0, "root sees no private thread of alice");
    step(`as root: alice owns ${rootEdges.length} edges, ${rootViews.length} views, ${rootPrivate.length} private thread(s)`);

    // The same questions, from bob's page, over its own signed-in connection.
    const seenByBob = await bobPage.evaluate(async () => {
        const q = async (text) => JSON.parse(JSON.stringify((await window.demo.db.query(text).collect())[0]));
        return {
            edges: await q("SELECT id, in, out, owner, clientId FROM _spooky_list_ref"),
            views: await q("SELECT id, owner, clientId FROM _spooky_query"),
            privateThreads: await q("SELECT id, author, title FROM thread WHERE public = false"),
        };
    });
    const aliceKey = alice.id.split(":")[1];
    if (env.DEBUG) step(`seen by bob: ${JSON.stringify(seenByBob)}`);
    const alicesEdge = seenByBob.edges.find((e) => e.owner !== bobId || String(e.in).includes(aliceKey));
    check(!alicesEdge, `bob can select an edge that is not his: ${show(alicesEdge)}`);
    const alicesView = seenByBob.views.find((v) => v.owner !== bobId || String(v.id).includes(aliceKey));
    check(!alicesView, `bob can select a view row that is not his: ${show(alicesView)}`);
    const alicesThread = seenByBob.privateThreads.find((t) => t.author === alice.id);
    check(!alicesThread, `bob can select alice's private thread: ${show(alicesThread)}`);
    check(seenByBob.edges.length > 0 && seenByBob.views.length > 0, `bob sees none of his own edges or views: ${show(seenByBob)}`);
    step(`as bob: ${seenByBob.edges.length} edges and ${seenByBob.views.length} view(s), all his; no private thread of alice's`);

    // Bob's LIVE SELECT on every edge he may see, while both lists change.
    await bobPage.evaluate(async () => {
        const db = window.demo.db;
        window.bobLive = [];
        const [id] = await db.query("LIVE SELECT * FROM _spooky_list_ref").collect();
        const live = await db.liveOf(id);
        window.bobLiveSub = live;
        live.subscribe((m) => window.bobLive.push(JSON.parse(JSON.stringify({ action: m.action, value: m.value }))));
    });
    // A public thread enters both lists; a private one only alice's.
    const t4 = new RecordId("thread", `both${RUN}`);
    await sql("CREATE $id SET title = $title, body = 'Everyone sees this one.', public = true, author = $author", {
        id: t4,
        title: TITLE.everyone,
        author: bob.id,
    });
    await sql("UPDATE $id SET title = $title", { id: aPrivate, title: TITLE.alicePrivate2 });
    await waitForThread(alicePage, "alice", String(t4), { title: TITLE.everyone });
    await waitForThread(alicePage, "alice", String(aPrivate), { title: TITLE.alicePrivate2 });
    await waitForThread(bobPage, "bob", String(t4), { title: TITLE.everyone });
    await waitFor("bob's LIVE SELECT to get his own edge of the new thread", () =>
        bobPage.evaluate((t4) => window.bobLive.some((m) => m.value?.out === t4), String(t4)),
    );
    await sleep(1000); // room for a notification that should not come
    const bobLive = await bobPage.evaluate(() => window.bobLive);
    const leaked = bobLive.find((m) => m.value?.owner !== bobId || String(m.value?.in).includes(aliceKey) || m.value?.out === String(aPrivate));
    check(!leaked, `bob's LIVE SELECT got a notification of an edge that is not his: ${show(leaked)}`);
    step(`bob's LIVE SELECT got ${bobLive.length} notification(s), all of his own edges; none of alice's`);
    await bobPage.evaluate(() => window.bobLiveSub.kill());

    // ------------------------------------------------------- 6. screenshot
    await sql("CREATE comment SET thread = $t, author = $a, text = $text", {
        t: t1,
        a: bob.id,
        text: COMMENT.last,
    });
    await waitFor("the last comment", async () => (await commentTexts(alicePage)).length >= 4, TIMEOUT, aliceDetail);
    await waitForStatus(alicePage, "alice", "live");
    await alicePage.bringToFront();
    await sleep(500); // let the entry animations finish
    await mkdir(path.dirname(path.resolve(env.SCREENSHOT)), { recursive: true });
    // Down to the bottom of the content, without the empty page below it.
    const height = await alicePage.evaluate(() =>
        Math.ceil(Math.max(...[...document.querySelectorAll(".column")].map((c) => c.getBoundingClientRect().bottom)) + 28),
    );
    await alicePage.screenshot({ path: env.SCREENSHOT, clip: { x: 0, y: 0, width: 1280, height: Math.min(860, Math.max(400, height)) } });
    step(`screenshot of alice's page: ${env.SCREENSHOT}`);

    check(offsite.length === 0, `the page tried to load from elsewhere: ${offsite.join(", ")}`);
    check(pageErrors.length === 0, `uncaught errors in the pages: ${pageErrors.join("; ")}`);

    // Tidy up: the pages unregister their views.
    for (const page of [alicePage, bobPage]) await page.evaluate(() => window.demo.spooky?.close()).catch(() => {});
}

main().then(
    () => {
        step("PASS");
        process.exit(0);
    },
    (e) => {
        console.error(`FAIL: ${e instanceof TestFailure ? e.message : (e?.stack ?? e)}`);
        process.exit(1);
    },
);
