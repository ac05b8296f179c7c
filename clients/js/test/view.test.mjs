// A view follows the data: enter, update, leave, `records`, `get`, sort,
// close; written directly in SurrealDB and the app's way (write + /ingest).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
    connect,
    eventLog,
    ingest,
    newSpooky,
    rid,
    run,
    skip,
    sspGet,
    sspVersions,
    unique,
    waitFor,
} from "../testkit/support.mjs";

describe("a view", { skip }, () => {
    let root;
    before(async () => {
        root = await connect();
    });
    after(async () => {
        await root?.close();
    });

    test("follows enter, update and leave; records and get", async () => {
        const table = unique("thread");
        const id = (key) => `${table}:${key}`;
        await run(root, "UPSERT $id CONTENT $c", { id: rid(table, 1), c: { author: "a", title: "one" } });
        await run(root, "UPSERT $id CONTENT $c", { id: rid(table, 9), c: { author: "b", title: "other" } });

        const spooky = newSpooky(root);
        const fetches = eventLog(spooky, ["fetch"]);
        const view = await spooky.view({
            id: unique("view"),
            sql: `SELECT * FROM ${table} WHERE author = $author`,
            params: { author: "a" },
            ttl: "10m",
        });
        try {
            // The first load: records are there when view() resolves.
            assert.deepEqual(view.records, [{ id: id(1), author: "a", title: "one" }]);
            assert.deepEqual(view.ids, [id(1)]);
            assert.equal(view.version(id(1)), 1);
            assert.equal(view.get(id(1)).title, "one");
            assert.equal(view.get(id(9)), undefined);
            assert.deepEqual(fetches.of("fetch"), [{ name: "fetch", id: id(1), version: 1, found: true }]);

            const log = eventLog(view, ["enter", "update", "leave", "change"]);

            // A direct write that enters the view.
            await run(root, "UPSERT $id CONTENT $c", { id: rid(table, 2), c: { author: "a", title: "two" } });
            const entered = await log.waitFor("enter", (e) => e.id === id(2));
            assert.deepEqual(entered, {
                name: "enter",
                id: id(2),
                record: { id: id(2), author: "a", title: "two" },
                version: 1,
                fetched: true,
            });
            const change = await log.waitFor("change", (e) => e.records.some((r) => r.id === id(2)));
            assert.deepEqual(
                change.records.map((r) => r.id),
                [id(1), id(2)],
            );

            // An update inside the view: refetched at the new version.
            await run(root, "UPDATE $id SET title = 'two, edited'", { id: rid(table, 2) });
            const updated = await log.waitFor("update", (e) => e.id === id(2));
            assert.equal(updated.version, 2);
            assert.equal(updated.fetched, true);
            assert.equal(updated.record.title, "two, edited");
            await waitFor("records to show the edit", () => view.get(id(2))?.title === "two, edited");

            // The app's way: write, then /ingest.
            await run(root, "UPSERT $id CONTENT $c", { id: rid(table, 3), c: { author: "a", title: "three" } });
            await ingest(table, "CREATE", id(3), { author: "a", title: "three" });
            const viaIngest = await log.waitFor("enter", (e) => e.id === id(3));
            assert.equal(viaIngest.record.title, "three");

            // A record leaves the view.
            await run(root, "UPDATE $id SET author = 'b'", { id: rid(table, 1) });
            const left = await log.waitFor("leave", (e) => e.id === id(1));
            assert.deepEqual(left, { name: "leave", id: id(1), version: 1 });
            await waitFor("records without the record that left", () => view.get(id(1)) === undefined);
            assert.deepEqual(
                view.records.map((r) => r.id),
                [id(2), id(3)],
            );
            assert.deepEqual(view.ids, [id(2), id(3)]);

            // The app deletes a record.
            await run(root, "DELETE $id", { id: rid(table, 3) });
            await ingest(table, "DELETE", id(3), null);
            await log.waitFor("leave", (e) => e.id === id(3));

            // The local copy is SSP's view, at SSP's versions.
            const versions = await sspVersions(view.id);
            assert.deepEqual(versions, { [id(2)]: 2 });
            assert.deepEqual(
                Object.fromEntries(view.ids.map((i) => [i, view.version(i)])),
                versions,
            );
            // Nothing outside the view was ever fetched.
            assert.ok(
                fetches.of("fetch").every((f) => f.id !== id(9)),
                `fetched a record outside the view: ${JSON.stringify(fetches.events)}`,
            );
            // `change` always carried the current records.
            const last = log.of("change").at(-1);
            assert.equal(last.records, view.records);
        } finally {
            await spooky.close();
        }
    });

    test("sorts by the spec's sort", async () => {
        const table = unique("thread");
        for (const [key, title] of [
            [1, "b"],
            [2, "c"],
            [3, "a"],
        ]) {
            await run(root, "UPSERT $id CONTENT $c", { id: rid(table, key), c: { title } });
        }
        const spooky = newSpooky(root);
        try {
            const view = await spooky.view({
                id: unique("view"),
                sql: `SELECT * FROM ${table}`,
                sort: (x, y) => x.title.localeCompare(y.title),
            });
            assert.deepEqual(
                view.records.map((r) => r.title),
                ["a", "b", "c"],
            );
            const log = eventLog(view, ["change"]);
            await run(root, "UPSERT $id CONTENT $c", { id: rid(table, 4), c: { title: "0" } });
            const change = await log.waitFor("change", (e) => e.records.length === 4);
            assert.deepEqual(
                change.records.map((r) => r.title),
                ["0", "a", "b", "c"],
            );
        } finally {
            await spooky.close();
        }
    });

    test("close() unregisters the view and stops following it", async () => {
        const table = unique("thread");
        await run(root, "UPSERT $id CONTENT $c", { id: rid(table, 1), c: { title: "one" } });
        const spooky = newSpooky(root);
        try {
            const view = await spooky.view({ id: unique("view"), sql: `SELECT * FROM ${table}` });
            // A second view on the same table witnesses that SSP moved on.
            const witness = await spooky.view({ id: unique("witness"), sql: `SELECT * FROM ${table}` });
            assert.equal((await sspGet(`/view/${view.id}`)).status, 200);
            const log = eventLog(view, ["enter", "update", "leave", "change"]);

            await view.close();
            assert.equal(view.closed, true);
            assert.equal((await sspGet(`/view/${view.id}`)).status, 404, "SSP still has the closed view");
            assert.deepEqual(view.records, []);
            assert.equal(spooky.views.has(view.id), false);
            await view.close(); // idempotent

            // The witness still follows the table; the closed view hears nothing.
            const witnessLog = eventLog(witness, ["update"]);
            await run(root, "UPDATE $id SET title = 'one, edited'", { id: rid(table, 1) });
            const updated = await witnessLog.waitFor("update", (e) => e.id === `${table}:1`);
            assert.equal(updated.record.title, "one, edited");
            assert.deepEqual(log.events, [], "the closed view still sent events");
        } finally {
            await spooky.close();
        }
        assert.equal(spooky.views.size, 0);
        await assert.rejects(spooky.view({ id: unique("late"), sql: `SELECT * FROM ${table}` }), /closed/);
    });

    test("keeps a record the user may not read as absent (record user, owner)", async () => {
        const users = unique("user");
        const access = unique("access");
        const table = unique("secret");
        await run(
            root,
            `DEFINE TABLE ${users} SCHEMALESS PERMISSIONS FOR select WHERE id = $auth.id;
             DEFINE ACCESS ${access} ON DATABASE TYPE RECORD
                 SIGNIN (SELECT * FROM ${users} WHERE name = $name) DURATION FOR SESSION 1h;
             DEFINE TABLE ${table} SCHEMALESS PERMISSIONS FOR select WHERE visible = true;`,
        );
        await run(root, "UPSERT $id SET name = 'alice'", { id: rid(users, "alice") });
        await run(root, "UPSERT $id CONTENT $c", { id: rid(table, 1), c: { visible: true, n: 1 } });
        await run(root, "UPSERT $id CONTENT $c", { id: rid(table, 2), c: { visible: false, n: 2 } });

        // The client signs in as the app user; the view is registered for
        // that user, so the user may read its edges (and only theirs).
        const alice = await connect({ signin: false });
        await alice.signin({ access, variables: { name: "alice" } });
        const spooky = newSpooky(alice, { owner: `${users}:alice` });
        try {
            const view = await spooky.view({ id: unique("view"), sql: `SELECT * FROM ${table}` });
            assert.deepEqual(view.ids, [`${table}:1`, `${table}:2`]);
            assert.deepEqual(
                view.records.map((r) => r.id),
                [`${table}:1`],
            );
            assert.equal(view.get(`${table}:2`), undefined);
            assert.equal(view.version(`${table}:2`), 1);

            const log = eventLog(view, ["enter", "update"]);
            await run(root, "UPSERT $id CONTENT $c", { id: rid(table, 3), c: { visible: false, n: 3 } });
            const hidden = await log.waitFor("enter", (e) => e.id === `${table}:3`);
            assert.equal(hidden.record, undefined);
            assert.equal(hidden.fetched, true);
            // Made readable: the next version is fetched and shows.
            await run(root, "UPDATE $id SET visible = true", { id: rid(table, 3) });
            const shown = await log.waitFor("update", (e) => e.id === `${table}:3`);
            assert.equal(shown.record.n, 3);
            assert.deepEqual(
                view.records.map((r) => r.id),
                [`${table}:1`, `${table}:3`],
            );
        } finally {
            await spooky.close();
            await alice.close();
            await run(root, `REMOVE ACCESS ${access} ON DATABASE`).catch(() => {});
        }
    });

    test("refuses a second view with an open view's id", async () => {
        const table = unique("thread");
        const spooky = newSpooky(root);
        try {
            const id = unique("view");
            await spooky.view({ id, sql: `SELECT * FROM ${table}` });
            await assert.rejects(spooky.view({ id, sql: `SELECT * FROM ${table}` }), /already open/);
            assert.throws(() => spooky.on("nope", () => {}), /unknown Spooky event/);
        } finally {
            await spooky.close();
        }
    });
});
