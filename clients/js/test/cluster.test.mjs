// Edges of several SSP instances (SSP's cluster mode): each instance counts
// a record's versions on its own, and each edge names its instance
// (`node`). The shared cache compares versions only between edges of one
// instance: a lower number from another instance can be newer content.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Spooky } from "../src/index.js";
import { connect, eventLog, rid, run, skip, unique } from "../testkit/support.mjs";

describe("edges of several SSP instances", { skip }, () => {
    let root;
    before(async () => {
        root = await connect();
    });
    after(async () => {
        await root?.close();
    });

    test("a record's versions are compared per instance", async () => {
        const table = unique("thread");
        const record = rid(table, 1);
        const id = `${table}:1`;
        await run(root, "UPSERT $id SET n = 1", { id: record });
        // A backend standing for two SSP instances: it writes the view rows;
        // the test writes the edges as each instance would.
        const backend = {
            register: async (spec) => {
                await run(root, "UPSERT type::record('_spooky_query', $id) SET clientId = 'c', surql = $sql", {
                    id: spec.id,
                    sql: spec.sql,
                });
                return { id: spec.id };
            },
            heartbeat: async () => ({}),
            unregister: async (view) => run(root, "DELETE type::record('_spooky_query', $view)", { view }),
        };
        const edge = (view, version, node) =>
            run(
                root,
                `INSERT RELATION INTO _spooky_list_ref {
                     id: type::record('_spooky_list_ref', [$view, $out]),
                     in: type::record('_spooky_query', $view), out: $out,
                     clientId: 'c', version: $version, node: $node
                 } ON DUPLICATE KEY UPDATE version = $input.version, node = $input.node`,
                { view, out: record, version, node },
            );
        const a = unique("a");
        const b = unique("b");
        // Instance x holds view a and has counted 3 versions of the record;
        // instance y holds view b and has counted 7.
        await edge(a, 3, "x");
        await edge(b, 7, "y");
        const spooky = new Spooky({ db: root, backend, heartbeatMs: 0 });
        const fetches = eventLog(spooky, ["fetch"]);
        try {
            const va = await spooky.view({ id: a, sql: `SELECT * FROM ${table}` });
            const vb = await spooky.view({ id: b, sql: `SELECT * FROM ${table}` });
            assert.equal(va.get(id)?.n, 1);
            assert.equal(vb.get(id)?.n, 1);
            assert.equal(fetches.of("fetch").length, 2, "one fetch per instance");

            // The record changes; x applies it first (its version 4), y not yet.
            await run(root, "UPDATE $id SET n = 2", { id: record });
            const aLog = eventLog(va, ["update"]);
            await edge(a, 4, "x");
            const ua = await aLog.waitFor("update", (e) => e.id === id);
            assert.equal(ua.version, 4);
            assert.equal(ua.record.n, 2, "x's version 4 is new content, whatever y's 7 says");
            assert.equal(ua.fetched, true);

            // y catches up (its version 8): b shows the new content too.
            const bLog = eventLog(vb, ["update"]);
            await edge(b, 8, "y");
            const ub = await bLog.waitFor("update", (e) => e.id === id);
            assert.equal(ub.record.n, 2);

            // View a moves to instance y (taken over at a version above what
            // x showed): the record is fetched under y's versions.
            await edge(a, 9, "y");
            const moved = await aLog.waitFor("update", (e) => e.id === id && e.version === 9);
            assert.equal(moved.record.n, 2);
        } finally {
            await spooky.close();
        }
    });
});
