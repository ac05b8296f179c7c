// The demo's views: the only queries its backend lets a browser register.
//
// Shared by the page (bundled into app.js) and the backend (server.mjs), so
// the text the page sends is, byte for byte, the text the backend accepts:
// the backend matches a registration on the exact `sql` and checks its
// params, and refuses anything else. An open "register any SELECT" endpoint
// would let any signed-in user make SSP (which runs every view as root) read
// tables or rows the database's permissions hide from them.
//
// SSP evaluates a view as root, with `$auth` bound to the view's owner (the
// signed-in user, set by the backend, never by the page). So each view
// repeats the select permission of the tables it reads (schema.surql):
// `public = true OR author = $auth` for threads, the same through `thread.`
// for comments. `FETCH author` makes the linked author records members of the
// view too, so the page has their names without a query of its own.

/** The thread list: public threads and the viewer's own, newest first. */
const threads = {
    sql: "SELECT * FROM thread WHERE public = true OR author = $auth ORDER BY createdAt DESC LIMIT 50 FETCH author",
    params: {},
};

/** One thread, if the viewer may see it. */
const thread = {
    sql: "SELECT * FROM thread WHERE id = $thread AND (public = true OR author = $auth) FETCH author",
    params: { thread: "thread" },
};

/** The comments of one thread, oldest first, if the viewer may see the thread. */
const comments = {
    sql: "SELECT * FROM comment WHERE thread = $thread AND (thread.public = true OR thread.author = $auth) ORDER BY createdAt ASC LIMIT 200 FETCH author",
    params: { thread: "thread" },
};

/**
 * name -> { sql, params }, where params maps each parameter the query needs
 * to the table whose record id it must be. The view id the page asks for
 * starts with the name (`threads`, `thread-<key>`, `comments-<key>`).
 */
export const VIEWS = Object.freeze({ threads, thread, comments });

/** A record key as SurrealDB generates them (and as the demo writes them). */
export const KEY = /^[A-Za-z0-9_]{1,64}$/;

/** The record id text `table:key`, or null when `text` is not one of `table`. */
export function recordIdOf(table, text) {
    if (typeof text !== "string" || !text.startsWith(`${table}:`)) return null;
    const key = text.slice(table.length + 1);
    return KEY.test(key) ? text : null;
}
