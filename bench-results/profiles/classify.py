#!/usr/bin/env python3
"""Classify perf samples (perf script output) by the component on their stack.
usage: perf script -F comm,tid,ip,sym --no-inline -i X.data | classify.py TITLE"""
import sys, collections, re
RULES = [  # first match wins, checked over the whole stack (leaf to root)
    ("SurrealDB: query execution (executor, documents, indexes, kv, commit)", re.compile(r"surrealdb_core::|surrealdb_kvs|surrealmx|surrealdb_datastore|surrealdb_idx|reblessive")),
    ("SurrealDB: SQL parser", re.compile(r"surrealdb_syn|surrealdb_core::syn|surrealdb_parser")),
    ("SurrealDB SDK (router, value conversion)", re.compile(r"surrealdb::|surrealdb_types")),
    ("SSP engine", re.compile(r"ssp::engine::")),
    ("SSP sink: edge query building", re.compile(r"ssp::sink::")),
    ("SSP db wrapper", re.compile(r"ssp::db::")),
    ("SSP pipeline (applier, group commit)", re.compile(r"ssp::pipeline::")),
    ("SSP /ingest handler (JSON parse, auth)", re.compile(r"ssp::api::")),
    ("HTTP server (hyper, axum, tower)", re.compile(r"hyper::|axum::|tower::|tower_http::|hyper_util::")),
    ("bench client (HTTP client, timing)", re.compile(r"ssp_bench::")),
    ("tokio scheduler / park / timers", re.compile(r"tokio::")),
]
title = sys.argv[1] if len(sys.argv) > 1 else ""
counts = collections.Counter(); leaf = collections.Counter(); total = 0
stack = []; header = None
def flush():
    global total
    if header is None: return
    total += 1
    syms = [s for s in stack]
    kernel_leaf = bool(syms) and syms[0].startswith("[k]")
    cls = None
    for name, rx in RULES:
        if any(rx.search(s) for s in syms):
            cls = name; break
    if cls is None:
        cls = "kernel (syscalls, scheduling)" if kernel_leaf or not syms else "other (libc, alloc, unresolved)"
    counts[cls] += 1
    if syms: leaf[syms[0]] += 1
for line in sys.stdin:
    line = line.rstrip("\n")
    if not line.strip():
        flush(); header = None; stack = []; continue
    if not line.startswith(("\t", " ")):
        flush(); header = line; stack = []; continue
    parts = line.strip().split(None, 1)
    sym = parts[1] if len(parts) > 1 else parts[0]
    sym = re.sub(r"\s*\(.*\)$", "", sym)
    if "[kernel" in line: sym = "[k] " + sym
    stack.append(sym)
flush()
print(f"== {title}: {total} samples (CPU time, all threads)")
print("-- by component (first match on the stack):")
for k, v in counts.most_common():
    print(f"{100.0*v/total:6.1f}%  {k}")
print("-- top leaf frames (self time):")
for k, v in leaf.most_common(25):
    print(f"{100.0*v/total:6.1f}%  {k[:150]}")
