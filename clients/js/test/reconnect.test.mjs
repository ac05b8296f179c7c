// A dropped connection: the client's Surreal goes through a TCP proxy that
// the test cuts (and refuses for a while) and opens again. The data changes
// meanwhile; the views catch up and follow again.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
    TcpProxy,
    connect,
    env,
    eventLog,
    newSpooky,
    rid,
    run,
    skip,
    sspVersions,
    unique,
    waitFor,
} from "../testkit/support.mjs";

describe("a dropped connection", { skip }, () => {
    let root;
    before(async () => {
        root = await connect();
    });
    after(async () => {
        await root?.close();
    });

    test("the views catch up after a reconnect and follow again", async () => {
        const table = unique("thread");
        const id = (key) => `${table}:${key}`;
        for (const [key, kind] of [
            [1, "x"],
            [2, "x"],
            [3, "y"],
        ]) {
            await run(root, "UPSERT $id CONTENT $c", { id: rid(table, key), c: { kind, title: `t${key}` } });
        }

        const proxy = new TcpProxy(env.surrealUrl);
        await proxy.open();
        const client = await connect({ url: proxy.url });
        const spooky = newSpooky(client);
        const connection = eventLog(spooky, ["disconnected", "resubscribed", "error"]);
        try {
            const xs = await spooky.view({ id: unique("xs"), sql: `SELECT * FROM ${table} WHERE kind = 'x'` });
            const all = await spooky.view({ id: unique("all"), sql: `SELECT * FROM ${table}` });
            assert.deepEqual(xs.ids, [id(1), id(2)]);
            assert.deepEqual(all.ids, [id(1), id(2), id(3)]);
            const xsLog = eventLog(xs, ["enter", "update", "leave", "change"]);
            const allLog = eventLog(all, ["enter", "update", "leave", "change"]);

            await proxy.cut();
            await connection.waitFor("disconnected");

            // Meanwhile: one record changes, one is deleted, one enters xs,
            // one is created.
            await run(root, "UPDATE $id SET title = 't1, edited'", { id: rid(table, 1) });
            await run(root, "DELETE $id", { id: rid(table, 2) });
            await run(root, "UPDATE $id SET kind = 'x'", { id: rid(table, 3) });
            await run(root, "CREATE $id CONTENT $c", { id: rid(table, 4), c: { kind: "y", title: "t4" } });
            const wantXs = { [id(1)]: 2, [id(3)]: 2 };
            const wantAll = { [id(1)]: 2, [id(3)]: 2, [id(4)]: 1 };
            await waitFor("SSP to apply the writes", async () => {
                const [x, a] = await Promise.all([sspVersions(xs.id), sspVersions(all.id)]);
                return JSON.stringify(x) === JSON.stringify(wantXs) && JSON.stringify(a) === JSON.stringify(wantAll);
            });
            assert.deepEqual(xsLog.events, [], "events while disconnected");

            await proxy.open();
            await connection.waitFor("resubscribed");
            assert.deepEqual(connection.of("disconnected").length, 1);
            assert.deepEqual(connection.of("error"), []);

            // The catch-up told what changed, as events, before "resubscribed".
            const summary = (log) =>
                log.events
                    .filter((e) => e.name !== "change")
                    .map((e) => `${e.name} ${e.id} v${e.version}`)
                    .sort();
            assert.deepEqual(summary(xsLog), [`enter ${id(3)} v2`, `leave ${id(2)} v1`, `update ${id(1)} v2`]);
            assert.deepEqual(summary(allLog), [
                `enter ${id(4)} v1`,
                `leave ${id(2)} v1`,
                `update ${id(1)} v2`,
                `update ${id(3)} v2`,
            ]);
            assert.equal(xsLog.of("change").length, 1, "one change event per view for the catch-up");
            assert.deepEqual(
                xs.records.map((r) => [r.id, r.title]),
                [
                    [id(1), "t1, edited"],
                    [id(3), "t3"],
                ],
            );
            assert.deepEqual(
                Object.fromEntries(all.ids.map((i) => [i, all.version(i)])),
                wantAll,
            );
            // Records both views hold were fetched once.
            const fetched = [...xsLog.events, ...allLog.events].filter((e) => e.fetched).map((e) => e.id).sort();
            assert.deepEqual(fetched, [id(1), id(3), id(4)]);

            // And they follow again, on the new connection.
            await run(root, "UPDATE $id SET title = 't3, edited'", { id: rid(table, 3) });
            const again = await xsLog.waitFor("update", (e) => e.id === id(3) && e.version === 3);
            assert.equal(again.record.title, "t3, edited");
            await allLog.waitFor("update", (e) => e.id === id(3) && e.version === 3);
        } finally {
            await spooky.close();
            await client.close();
            await proxy.cut();
        }
    });

    test("closing a view while disconnected unregisters it; the others come back", async () => {
        const table = unique("thread");
        await run(root, "UPSERT $id SET n = 1", { id: rid(table, 1) });
        const proxy = new TcpProxy(env.surrealUrl);
        await proxy.open();
        const client = await connect({ url: proxy.url });
        const spooky = newSpooky(client);
        const connection = eventLog(spooky, ["disconnected", "resubscribed"]);
        try {
            const keep = await spooky.view({ id: unique("keep"), sql: `SELECT * FROM ${table}` });
            const drop = await spooky.view({ id: unique("drop"), sql: `SELECT * FROM ${table}` });
            await proxy.cut();
            await connection.waitFor("disconnected");
            await drop.close();
            assert.equal(await sspVersions(drop.id), undefined, "SSP still has the view closed while disconnected");
            await proxy.open();
            const resubscribed = await connection.waitFor("resubscribed");
            assert.deepEqual(resubscribed.views, [keep.id]);
            const log = eventLog(keep, ["update"]);
            await run(root, "UPDATE $id SET n = 2", { id: rid(table, 1) });
            await log.waitFor("update", (e) => e.version === 2);
        } finally {
            await spooky.close();
            await client.close();
            await proxy.cut();
        }
    });
});
