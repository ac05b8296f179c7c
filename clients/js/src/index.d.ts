// Types of @spooky/client (hand-written; the library is plain JavaScript).

import type { Surreal } from "surrealdb";

/** A record as JSON (the SDK's `jsonify`): record ids as `table:key` text. */
export type SpookyRecord = { id: string; [field: string]: unknown };

/** What `backend.register` receives: the spec without `sort`. */
export interface RegisterSpec {
    /** The view id asked for; the backend may answer another (a per-user prefix, say). */
    id: string;
    /** The SurrealQL SELECT SSP keeps live. */
    sql: string;
    /** Values of the query's `$parameters`. */
    params?: Record<string, unknown>;
    /** How long the view lives without a heartbeat (SurrealQL duration; SSP's default `1h`). */
    ttl?: string;
    /** Further fields reach `backend.register` as they are (httpBackend posts them). */
    [extra: string]: unknown;
}

/** What a view is opened with. */
export interface ViewSpec<R extends SpookyRecord = SpookyRecord> extends RegisterSpec {
    /** Order of `view.records` (default: by id text). */
    sort?: (a: R, b: R) => number;
}

/** The answer of `backend.register`: at least the view id to use from then on. */
export interface RegisterAnswer {
    id: string;
    [field: string]: unknown;
}

/** Registers, heartbeats and unregisters views: your server, or SSP itself (trusted code only). */
export interface Backend {
    register(spec: RegisterSpec): Promise<RegisterAnswer>;
    /** Should reject with an error whose `status` is 404 when the view is unknown: the view is then registered again. */
    heartbeat(id: string): Promise<unknown>;
    unregister(id: string): Promise<unknown>;
}

export interface SpookyOptions {
    /** A connected, signed-in Surreal of the surrealdb 2.x SDK (browser or Node). */
    db: Surreal;
    backend: Backend;
    /** Heartbeat period per view, in ms; 0 for none. Default 30000. */
    heartbeatMs?: number;
}

export interface EnterEvent<R extends SpookyRecord = SpookyRecord> {
    id: string;
    /** undefined when the record does not exist or the user may not read it. */
    record: R | undefined;
    /** The record's version, as SSP's edge gives it. */
    version: number;
    /** Whether this event read the record from SurrealDB (false: the shared cache had it). */
    fetched: boolean;
}
export type UpdateEvent<R extends SpookyRecord = SpookyRecord> = EnterEvent<R>;
export interface LeaveEvent {
    id: string;
    version: number;
}
export interface ChangeEvent<R extends SpookyRecord = SpookyRecord> {
    /** The view's records after the change (the same array as `view.records`). */
    records: readonly R[];
}

export interface CloseOptions {
    /** Call backend.unregister (default true). */
    unregister?: boolean;
}

export interface ViewEvents<R extends SpookyRecord = SpookyRecord> {
    enter: EnterEvent<R>;
    update: UpdateEvent<R>;
    leave: LeaveEvent;
    change: ChangeEvent<R>;
}

export interface View<R extends SpookyRecord = SpookyRecord> {
    /** The view id the backend answered with. */
    readonly id: string;
    /**
     * The view's readable records, in SSP's membership, sorted by id text or
     * by the spec's `sort`. A new frozen array after each change. Records
     * are shared between views: treat them as read-only.
     */
    readonly records: readonly R[];
    /** Ids of every record in the view, readable or not, sorted as text. */
    readonly ids: string[];
    /** True once close() was called. */
    readonly closed: boolean;
    /** One record by id text (`thread:1`), or undefined. */
    get(id: string): R | undefined;
    /** The version SSP gave the record in this view, or undefined. */
    version(id: string): number | undefined;
    /** Returns unsubscribe. "change" follows each batch of enter/update/leave. */
    on<K extends keyof ViewEvents<R>>(event: K, listener: (event: ViewEvents<R>[K]) => void): () => void;
    /**
     * Kills its LIVE query, stops its heartbeats, calls backend.unregister(id)
     * (unless `unregister: false`: SSP keeps the view until its ttl runs
     * out). Idempotent; the first call decides.
     */
    close(options?: CloseOptions): Promise<void>;
}

export interface SpookyEvents {
    /** The connection dropped: the views stand still until it is back. */
    disconnected: Record<string, never>;
    /** After a reconnect, once every view subscribed again and caught up (with events); `views`: those that did (a failure is an "error"). */
    resubscribed: { views: string[] };
    /** A failure in the background (a notification, a heartbeat, a catch-up, a listener). */
    error: { error: unknown; view: string | undefined; context: string | undefined };
    /** One record read from SurrealDB (`found` false: missing or not readable). */
    fetch: { id: string; version: number; found: boolean };
}

export declare class Spooky {
    constructor(options: SpookyOptions);
    /** Registers the view through the backend and follows it; resolves once its records are loaded. */
    view<R extends SpookyRecord = SpookyRecord>(spec: ViewSpec<R>): Promise<View<R>>;
    /** The open views, by id (a copy). */
    readonly views: Map<string, View>;
    /** Returns unsubscribe. */
    on<K extends keyof SpookyEvents>(event: K, listener: (event: SpookyEvents[K]) => void): () => void;
    /** Closes every view (unregistering each unless `unregister: false`); does not close the db. */
    close(options?: CloseOptions): Promise<void>;
}

export interface HttpBackendOptions {
    /** Headers for every request, or a function (may be async) returning them per request. */
    headers?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);
    /** A fetch implementation (default: the global fetch). */
    fetch?: typeof fetch;
}

/**
 * Your server over HTTP: POST `${baseUrl}/register` (the spec; answers
 * `{ id, ... }`), `${baseUrl}/heartbeat` and `${baseUrl}/unregister`
 * (`{ id }`). A non-2xx answer rejects with an Error carrying `status` and
 * `body`.
 */
export declare function httpBackend(baseUrl: string, options?: HttpBackendOptions): Backend;

export interface SspBackendOptions {
    /** SSP's address, e.g. http://127.0.0.1:8667 */
    url: string;
    /** SSP's bearer secret. */
    secret: string;
    /** The client the edges are written for (default: a random one). */
    clientId?: string;
    /** The app user's record id (`user:1`): only that record user may read the views' rows and edges. */
    owner?: string;
    fetch?: typeof fetch;
}

/**
 * SSP's own API with its secret: trusted server-side code only (it throws
 * where `document` exists). The secret allows registering any query for any
 * owner, that is reading anything.
 */
export declare function sspBackend(options: SspBackendOptions): Backend;
