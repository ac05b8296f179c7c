// The demo page: a forum whose thread list and thread pages stay live.
//
// The page talks to SurrealDB directly, as the signed-in record user: it signs
// up or in there, writes threads and comments there, and reads records there
// (SurrealDB's permissions decide what it may read and write). It never asks
// SSP for data. Through the demo's backend (`/api/views/*`, which holds SSP's
// secret) it registers views, and @spooky/client follows their edges in
// SurrealDB and keeps each view's records up to date. Whoever writes a thread
// (this page, another user, a script as root), the list changes.
//
// server.mjs bundles this file with esbuild; the browser gets the bundle.
// Tests drive it through `data-testid` attributes and `window.demo`.

import { RecordId, Surreal } from "surrealdb";
import { Spooky, httpBackend } from "@spooky/client";

import { VIEWS } from "../views.mjs";

/** How long a view lives in SSP without a heartbeat (the client heartbeats every 30 s). */
const VIEW_TTL = "10m";
const TOKEN_KEY = "spooky-demo.token";

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

/** The page's state; `window.demo` exposes it to tests (and to the curious). */
const demo = {
    config: null,
    /** The Surreal connection, signed in as the user once `me` is set. */
    db: null,
    spooky: null,
    /** { id: "user:…", name } */
    me: null,
    threads: null,
    /** The open thread: { id, threadView, commentsView } */
    detail: null,
    /** "connecting" | "live" | "reconnecting" | "offline" */
    status: "connecting",
};
window.demo = demo;

// ----------------------------------------------------------------- helpers

/** `thread:abc` for a record id (an SDK RecordId or its text). */
function idText(id) {
    return id == null ? "" : String(id);
}

function tableOf(id) {
    if (id instanceof RecordId) return id.table.name;
    const text = idText(id);
    return text.slice(0, text.indexOf(":"));
}

/** A view's records as an array, whatever collection the library keeps them in. */
function recordsOf(view) {
    const records = view?.records;
    if (!records) return [];
    if (records instanceof Map) return [...records.values()];
    if (Array.isArray(records)) return records;
    return Object.values(records);
}

function timeOf(value) {
    const t = value == null ? NaN : new Date(String(value)).getTime();
    return Number.isNaN(t) ? 0 : t;
}

function ago(value) {
    const t = timeOf(value);
    if (!t) return "";
    const s = Math.max(0, Math.round((Date.now() - t) / 1000));
    if (s < 45) return "just now";
    if (s < 90) return "1 min ago";
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return new Date(t).toLocaleDateString();
}

/** A small element builder: el("li", { class: "x", dataset: { id } }, child, ...). */
function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
        if (v == null || v === false) continue;
        if (k === "dataset") Object.assign(node.dataset, v);
        else if (k === "testid") node.dataset.testid = v;
        else if (k === "class") node.className = v;
        else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) if (child != null && child !== false) node.append(child);
    return node;
}

/**
 * Makes `list`'s children exactly `items`, in order, moving only what is out
 * of place: an element that stays where it was is not touched, so only new
 * (or moved) ones play the entry animation.
 */
function reconcile(list, items) {
    items.forEach((item, i) => {
        if (list.children[i] !== item) list.insertBefore(item, list.children[i] ?? null);
    });
    while (list.children.length > items.length) list.lastElementChild.remove();
}

function show(testid, visible) {
    $(testid).hidden = !visible;
}

function setError(testid, error) {
    const node = $(testid);
    node.textContent = error ? String(error?.message ?? error) : "";
    node.hidden = !error;
}

// ------------------------------------------------------------ connection

/** The connection status in the header; it is what a user (and the test) sees. */
function setStatus(status) {
    demo.status = status;
    const node = $("status");
    node.dataset.state = status;
    node.textContent = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…", offline: "offline" }[status];
}

async function connect() {
    demo.config = await (await fetch("/api/config")).json();
    const db = new Surreal();
    demo.db = db;
    // The socket drops (a network change, a restarting server): the SDK
    // reconnects and signs the user in again with its token, and
    // @spooky/client subscribes again and catches up ("resubscribed").
    db.subscribe("reconnecting", () => setStatus("reconnecting"));
    db.subscribe("disconnected", () => setStatus("offline"));
    db.subscribe("connected", () => {
        if (!demo.spooky) setStatus("live");
    });
    // The token expired (or SurrealDB refused it after a reconnect): the
    // connection is anonymous now and would see nothing. Ask again.
    db.subscribe("auth", (tokens) => {
        if (!tokens && demo.me) signOut("Your session expired: sign in again.").catch((e) => console.error(e));
    });
    await db.connect(demo.config.surrealUrl, {
        namespace: demo.config.ns,
        database: demo.config.db,
        // Keep trying, and not too slowly: a page stays open for hours.
        reconnect: { enabled: true, attempts: -1, retryDelay: 250, retryDelayMax: 2000 },
    });
}

// ---------------------------------------------------------- signing in

async function signInOrUp(kind, name, password) {
    const auth = {
        namespace: demo.config.ns,
        database: demo.config.db,
        access: "account",
        variables: { name, password },
    };
    const tokens = kind === "signup" ? await demo.db.signup(auth) : await demo.db.signin(auth);
    sessionStorage.setItem(TOKEN_KEY, tokens.access);
}

/** What SurrealDB says about the signed-in user. */
async function whoAmI() {
    const [[me]] = await demo.db.query("SELECT id, name FROM $auth").collect();
    if (!me) throw new Error("not signed in");
    return { id: idText(me.id), name: me.name };
}

function bindAuthForm() {
    const form = $("auth-form");
    form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const kind = event.submitter?.name === "signup" ? "signup" : "signin";
        const data = new FormData(form);
        setError("auth-error", null);
        for (const b of form.querySelectorAll("button")) b.disabled = true;
        try {
            await signInOrUp(kind, String(data.get("name")).trim(), String(data.get("password")));
            await enterForum();
            form.reset();
        } catch (e) {
            setError("auth-error", friendlyAuthError(kind, e));
        } finally {
            for (const b of form.querySelectorAll("button")) b.disabled = false;
        }
    });
    $("signout").addEventListener("click", () => signOut().catch((e) => console.error(e)));
}

function friendlyAuthError(kind, e) {
    const text = String(e?.message ?? e);
    if (kind === "signin" && /no record|credentials|authentication/i.test(text)) return "Wrong name or password.";
    if (kind === "signup" && /already contains|unique|exists/i.test(text)) return "That name is taken.";
    if (kind === "signup" && /assert|len|alphanum/i.test(text)) return "Names are 2-32 letters and digits.";
    return text;
}

/** Shows (or, with null, hides) a problem that is not about one form. */
function setBanner(message) {
    setError("app-error", message);
}

async function signOut(why) {
    closeDetail();
    const spooky = demo.spooky;
    demo.spooky = null;
    demo.threads = null;
    demo.me = null;
    await spooky?.close().catch(() => {});
    sessionStorage.removeItem(TOKEN_KEY);
    await demo.db.invalidate().catch(() => {});
    $("thread-list").replaceChildren();
    show("app", false);
    show("me", false);
    show("signout", false);
    show("auth", true);
    setBanner(null);
    setError("auth-error", why ?? null);
    setStatus(demo.db.status === "connected" ? "live" : "reconnecting");
}

// --------------------------------------------------------------- the forum

async function enterForum() {
    demo.me = await whoAmI();
    $("me").textContent = demo.me.name;
    show("me", true);
    show("signout", true);
    show("auth", false);
    show("app", true);
    setStatus("connecting");

    demo.spooky = new Spooky({
        db: demo.db,
        // The backend checks this token with SurrealDB and registers the view
        // for this user. The SDK may renew the token: ask it each time.
        backend: httpBackend("/api/views", {
            headers: () => ({ authorization: `Bearer ${demo.db.accessToken ?? sessionStorage.getItem(TOKEN_KEY)}` }),
        }),
        heartbeatMs: 30_000,
    });
    demo.spooky.on("disconnected", () => setStatus("reconnecting"));
    demo.spooky.on("resubscribed", () => setStatus("live"));

    // Failures in the background (a heartbeat, a catch-up) are shown, not thrown.
    demo.spooky.on("error", ({ error, context }) => {
        console.error("[spooky]", context, error);
        setBanner(`${context ?? "live updates"}: ${error?.message ?? error}`);
    });
    demo.spooky.on("resubscribed", () => setBanner(null));

    try {
        demo.threads = await demo.spooky.view({ id: "threads", sql: VIEWS.threads.sql, params: {}, ttl: VIEW_TTL });
    } catch (e) {
        setStatus("offline");
        setBanner(`Could not open the thread list: ${e?.message ?? e}`);
        return;
    }
    demo.threads.on("change", renderThreads);
    renderThreads();
    setStatus(demo.db.status === "connected" ? "live" : "reconnecting");
}

/** Every user record any open view holds: id text -> record. */
function knownUsers() {
    const users = new Map();
    for (const view of [demo.threads, demo.detail?.threadView, demo.detail?.commentsView]) {
        for (const r of recordsOf(view)) if (tableOf(r.id) === "user") users.set(idText(r.id), r);
    }
    if (demo.me) users.set(demo.me.id, users.get(demo.me.id) ?? demo.me);
    return users;
}

/** The author's name; the view fetched the author record (FETCH author). */
function authorName(record, users) {
    const a = record.author;
    if (a && typeof a === "object" && !(a instanceof RecordId) && a.name) return a.name;
    return users.get(idText(a))?.name ?? "someone";
}

function renderThreads() {
    if (!demo.threads) return;
    const users = knownUsers();
    const threads = recordsOf(demo.threads)
        .filter((r) => tableOf(r.id) === "thread")
        .sort((a, b) => timeOf(b.createdAt) - timeOf(a.createdAt) || idText(a.id).localeCompare(idText(b.id)));

    const list = $("thread-list");
    // Keyed by record id, so a thread that stays keeps its element (and only
    // a new one plays the entry animation).
    const existing = new Map([...list.children].map((li) => [li.dataset.id, li]));
    const items = threads.map((t) => {
        const id = idText(t.id);
        const li = existing.get(id) ?? el("li", { class: "card thread", testid: "thread-item", dataset: { id } });
        li.classList.toggle("selected", demo.detail?.id === id);
        li.replaceChildren(
            el(
                "div",
                { class: "title" },
                el("span", { testid: "thread-item-title" }, t.title ?? ""),
                t.public === false ? el("span", { class: "badge", testid: "thread-item-private" }, "private") : null,
            ),
            el(
                "div",
                { class: "meta" },
                "by ",
                el("span", { testid: "thread-item-author" }, authorName(t, users)),
                ` · ${ago(t.createdAt)}`,
            ),
        );
        return li;
    });
    reconcile(list, items);
    $("thread-count").textContent = threads.length ? `(${threads.length})` : "";
    show("thread-empty", threads.length === 0);
}

function bindForum() {
    $("thread-list").addEventListener("click", (event) => {
        const li = event.target.closest("[data-testid=thread-item]");
        if (li) openThread(li.dataset.id).catch((e) => setBanner(`Could not open the thread: ${e?.message ?? e}`));
    });

    const form = $("new-thread");
    form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const data = new FormData(form);
        setError("thread-error", null);
        try {
            // Written as the user; SurrealDB checks `author = $auth.id`. SSP's
            // change worker sees the write and the list follows.
            const [created] = await demo.db
                .query("CREATE thread SET title = $title, body = $body, public = $public, author = $auth.id", {
                    title: String(data.get("title")).trim(),
                    body: String(data.get("body") ?? ""),
                    public: data.get("public") === "on",
                })
                .collect();
            // SurrealDB answers a write its permissions refuse with no rows.
            if (!created?.length) throw new Error("not allowed");
            form.reset();
        } catch (e) {
            setError("thread-error", e);
        }
    });

    $("detail-close").addEventListener("click", () => closeDetail());

    const commentForm = $("comment-form");
    commentForm.addEventListener("submit", async (event) => {
        event.preventDefault();
        const detail = demo.detail;
        if (!detail) return;
        const text = String(new FormData(commentForm).get("text")).trim();
        try {
            const [created] = await demo.db
                .query("CREATE comment SET thread = $thread, author = $auth.id, text = $text", {
                    thread: detail.rid,
                    text,
                })
                .collect();
            // SurrealDB answers a write its permissions refuse with no rows.
            if (!created?.length) throw new Error("not allowed");
            commentForm.reset();
        } catch (e) {
            setBanner(`Could not send the comment: ${e?.message ?? e}`);
        }
    });

    // Keep "3 min ago" true.
    setInterval(() => {
        renderThreads();
        renderDetail();
    }, 30_000);
}

// -------------------------------------------------------------- one thread

/**
 * Opens a thread: two views of its own (the thread, its comments), so what
 * the panel shows stays live too. They close when another thread opens.
 */
let openings = 0;

async function openThread(id) {
    if (demo.detail?.id === id) return;
    closeDetail();
    const key = id.slice(id.indexOf(":") + 1);
    const detail = { id, rid: new RecordId("thread", key), threadView: null, commentsView: null, closed: false };
    demo.detail = detail;
    renderThreads();
    renderDetail();
    const params = { thread: id };
    // A fresh id per opening: the unregister of an earlier opening of this
    // thread may still be on its way, and must not remove this one.
    const n = (openings += 1);
    const tag = `${key.replace(/[^A-Za-z0-9]/g, "").slice(0, 40)}-${n}`;
    const opened = await Promise.allSettled([
        demo.spooky.view({ id: `thread-${tag}`, sql: VIEWS.thread.sql, params, ttl: VIEW_TTL }),
        demo.spooky.view({ id: `comments-${tag}`, sql: VIEWS.comments.sql, params, ttl: VIEW_TTL }),
    ]);
    const failed = opened.find((r) => r.status === "rejected");
    if (failed || detail.closed) {
        // Closed meanwhile (another thread was opened), or half open: let go
        // of what did open.
        for (const r of opened) if (r.status === "fulfilled") r.value.close().catch(() => {});
        if (failed && !detail.closed) closeDetail();
        if (failed) throw failed.reason;
        return;
    }
    const [threadView, commentsView] = opened.map((r) => r.value);
    detail.threadView = threadView;
    detail.commentsView = commentsView;
    threadView.on("change", renderDetail);
    commentsView.on("change", renderDetail);
    renderDetail();
}

function closeDetail() {
    const detail = demo.detail;
    if (!detail) return;
    detail.closed = true;
    demo.detail = null;
    for (const view of [detail.threadView, detail.commentsView]) view?.close().catch(() => {});
    renderDetail();
    renderThreads();
}

function renderDetail() {
    const detail = demo.detail;
    show("detail", !!detail);
    show("detail-empty", !detail);
    if (!detail) return;
    const users = knownUsers();
    const thread = recordsOf(detail.threadView).find((r) => idText(r.id) === detail.id);
    const loading = !detail.threadView;
    $("detail-title").textContent = thread?.title ?? (loading ? "Loading…" : "This thread is not available");
    $("detail-meta").textContent = thread
        ? `by ${authorName(thread, users)} · ${ago(thread.createdAt)}${thread.public === false ? " · private" : ""}`
        : "";
    $("detail-body").textContent = thread?.body ?? "";
    show("comment-form", !!thread);

    const comments = recordsOf(detail.commentsView)
        .filter((r) => tableOf(r.id) === "comment")
        .sort((a, b) => timeOf(a.createdAt) - timeOf(b.createdAt) || idText(a.id).localeCompare(idText(b.id)));
    const list = $("comment-list");
    const existing = new Map([...list.children].map((li) => [li.dataset.id, li]));
    const items = comments.map((c) => {
        const id = idText(c.id);
        const li = existing.get(id) ?? el("li", { testid: "comment-item", dataset: { id } });
        li.replaceChildren(
            el("span", { class: "who" }, authorName(c, users)),
            el("span", { class: "when" }, ago(c.createdAt)),
            el("div", { class: "text", testid: "comment-item-text" }, c.text ?? ""),
        );
        return li;
    });
    reconcile(list, items);
    $("comment-count").textContent = comments.length ? `(${comments.length})` : "";
}

// ------------------------------------------------------------------ start

async function main() {
    bindAuthForm();
    bindForum();
    await connect();
    // A reload in the same tab keeps the user signed in.
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) {
        try {
            await demo.db.authenticate(saved);
            await enterForum();
            return;
        } catch {
            sessionStorage.removeItem(TOKEN_KEY);
        }
    }
    setStatus("live");
    show("auth", true);
}

main().catch((e) => {
    console.error(e);
    setStatus("offline");
    show("auth", true);
    setError("auth-error", `Could not start: ${e?.message ?? e}`);
});
