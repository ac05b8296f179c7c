// The record cache shared by the views of one Spooky, and bursts of LIVE
// notifications (the surrealdb 2.0.x ChannelIterator bug).
//
// Node's test runner runs each file in a process of its own, so the first
// test here sees the SDK as the app loads it, before any Spooky patched it.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ChannelIterator } from "surrealdb";
import { connect, eventLog, newSpooky, rid, run, skip, unique, waitFor } from "../testkit/support.mjs";

/** True when the SDK's ChannelIterator loses the second of two quick values. */
async function losesValues() {
    const probe = new ChannelIterator();
    const first = probe.next();
    probe.submit(1);
    probe.submit(2);
    await first;
    const second = await Promise.race([probe.next(), Promise.resolve("lost")]);
    probe.return();
    return second === "lost";
}

describe("the shared cache and bursts", { skip }, () => {
    let root;
    before(async () => {
        root = await connect();
    });
    after(async () => {
        await root?.close();
    });

    test("the app's SDK copy is fixed before the first LIVE query; the app's own live query still works", async (t) => {
        const lostBefore = await losesValues();
        if (!lostBefore) t.diagnostic("this surrealdb SDK does not lose values: nothing to fix");

        // The app's own live query, started before Spooky patches the SDK:
        // its loop keeps the SDK's original `next`, and must keep working.
        const table = unique("thing");
        await run(root, "UPSERT $id SET n = 0", { id: rid(table, 1) });
        const [liveId] = await run(root, `LIVE SELECT * FROM ${table}`);
        const live = await root.liveOf(liveId);
        const seen = [];
        (async () => {
            for await (const message of live) seen.push(message.value?.n);
        })();

        const spooky = newSpooky(root);
        try {
            await spooky.view({ id: unique("view"), sql: `SELECT * FROM ${table}` });
            assert.equal(await losesValues(), false, "the SDK's ChannelIterator still loses values after the first view");
            // One at a time: the app's own loop still has the SDK's original
            // `next`, which loses the second of two values that come at once
            // (under load, two quick updates did); what is checked here is
            // that the patch did not break that loop.
            for (const n of [1, 2, 3]) {
                await run(root, "UPDATE $id SET n = $n", { id: rid(table, 1), n });
                await waitFor(`the app's live query to see update ${n}`, () => seen.length >= n);
            }
            assert.deepEqual(seen.slice(0, 3), [1, 2, 3]);
        } finally {
            await live.kill().catch(() => {});
            await spooky.close();
        }
    });

    test("two views holding one record: one change, one fetch", async () => {
        const table = unique("thread");
        await run(root, "UPSERT $id CONTENT $c", { id: rid(table, 1), c: { kind: "x", n: 1 } });
        await run(root, "UPSERT $id CONTENT $c", { id: rid(table, 2), c: { kind: "y", n: 2 } });
        const spooky = newSpooky(root);
        const fetches = eventLog(spooky, ["fetch"]);
        try {
            const all = await spooky.view({ id: unique("all"), sql: `SELECT * FROM ${table}` });
            const xs = await spooky.view({ id: unique("xs"), sql: `SELECT * FROM ${table} WHERE kind = 'x'` });
            // The second view found its record cached.
            assert.deepEqual(
                fetches.of("fetch").map((f) => f.id),
                [`${table}:1`, `${table}:2`],
            );
            assert.equal(xs.get(`${table}:1`), all.get(`${table}:1`));

            const allLog = eventLog(all, ["update"]);
            const xsLog = eventLog(xs, ["update"]);
            await run(root, "UPDATE $id SET n = 10", { id: rid(table, 1) });
            const a = await allLog.waitFor("update", (e) => e.id === `${table}:1`);
            const b = await xsLog.waitFor("update", (e) => e.id === `${table}:1`);
            assert.equal(a.version, 2);
            assert.equal(b.version, 2);
            assert.equal(a.record.n, 10);
            assert.equal(b.record.n, 10);
            assert.equal(
                [a.fetched, b.fetched].filter(Boolean).length,
                1,
                `one fetch for two edges of one version: ${JSON.stringify([a, b])}`,
            );
            assert.deepEqual(
                fetches.of("fetch", (f) => f.id === `${table}:1`).map((f) => f.version),
                [1, 2],
            );

        } finally {
            await spooky.close();
        }
    });

    test("a record no view holds any more is fetched again; one still held is not", async () => {
        const table = unique("thread");
        await run(root, "UPSERT $id CONTENT $c", { id: rid(table, 1), c: { kind: "x" } });
        await run(root, "UPSERT $id CONTENT $c", { id: rid(table, 2), c: { kind: "x" } });
        const spooky = newSpooky(root);
        const fetches = eventLog(spooky, ["fetch"]);
        try {
            const xs = await spooky.view({ id: unique("xs"), sql: `SELECT * FROM ${table} WHERE kind = 'x'` });
            const ones = await spooky.view({ id: unique("one"), sql: `SELECT * FROM ${table} WHERE id = ${table}:1` });
            assert.equal(fetches.of("fetch").length, 2);
            // Both leave xs; record 1 is still held by `ones`, record 2 by nobody.
            const log = eventLog(xs, ["leave"]);
            await run(root, `UPDATE ${table} SET kind = 'y'`);
            await log.waitFor("leave", (e) => e.id === `${table}:1`);
            await log.waitFor("leave", (e) => e.id === `${table}:2`);
            await waitFor("the `one` view to see version 2", () => ones.version(`${table}:1`) === 2);
            const before = fetches.of("fetch").length;
            const ys = await spooky.view({ id: unique("ys"), sql: `SELECT * FROM ${table} WHERE kind = 'y'` });
            const fetchedNow = fetches.events.slice(before).map((f) => f.id);
            assert.deepEqual(fetchedNow, [`${table}:2`], "only the record no view held is fetched again");
            assert.deepEqual(
                ys.records.map((r) => r.id),
                [`${table}:1`, `${table}:2`],
            );
        } finally {
            await spooky.close();
        }
    });

    test("a burst: one transaction that changes the edges of two views, all arrive", async () => {
        const table = unique("thread");
        const spooky = newSpooky(root);
        try {
            const evens = await spooky.view({ id: unique("evens"), sql: `SELECT * FROM ${table} WHERE n % 2 = 0` });
            const all = await spooky.view({ id: unique("all"), sql: `SELECT * FROM ${table}` });
            const evensLog = eventLog(evens, ["enter"]);
            const allLog = eventLog(all, ["enter"]);
            const keys = [...Array(12).keys()].map((k) => k + 1);
            await run(
                root,
                `BEGIN; ${keys.map((k) => `CREATE ${table}:${k} SET n = ${k};`).join(" ")} COMMIT;`,
            );
            await waitFor("all 12 records in `all`", () => all.records.length === 12).catch((error) => {
                error.message += `\nall: ${JSON.stringify(allLog.events.map((e) => e.id))}`;
                throw error;
            });
            await waitFor("6 records in `evens`", () => evens.records.length === 6).catch((error) => {
                error.message += `\nevens: ${JSON.stringify(evensLog.events.map((e) => e.id))}`;
                throw error;
            });
            assert.equal(allLog.of("enter").length, 12);
            assert.equal(evensLog.of("enter").length, 6);
            // Each record fetched once, though 18 edges point at 12 records.
            const fetched = [...allLog.events, ...evensLog.events].filter((e) => e.fetched).length;
            assert.equal(fetched, 12);

            // One transaction updating records both views hold.
            const allUpdates = eventLog(all, ["update"]);
            const evensUpdates = eventLog(evens, ["update"]);
            await run(root, `BEGIN; UPDATE ${table}:2 SET m = 1; UPDATE ${table}:4 SET m = 1; UPDATE ${table}:5 SET m = 1; COMMIT;`);
            await waitFor("3 updates in `all`", () => allUpdates.of("update").length === 3);
            await waitFor("2 updates in `evens`", () => evensUpdates.of("update").length === 2);
        } finally {
            await spooky.close();
        }
    });
});
