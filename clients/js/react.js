// @mcpush/client/react: React hooks over ProgressClient. Needs react >= 18 (an optional peer
// dependency of the package; nothing here loads unless this entry is imported).
//
//   <ProgressClientProvider client={client}> … </ProgressClientProvider>
//   const { status, estimate, connection, error } = useJobStatus(inputFile, { token });
//   const { statuses, status, connection, error } = useFolder('uploads/u1/', { token: folderToken });
//
// Every component watching one file (or folder) with one client shares one watch: the first
// subscriber starts it, the last one to leave stops it a tick later, so StrictMode's
// mount-unmount-mount keeps a single subscription. Nothing connects during server rendering: the
// server snapshot is empty and watches start only in the browser's effects.
import { createContext, createElement, useCallback, useContext, useSyncExternalStore } from 'react';
import { estimate as estimateOf } from './mcpush-client.js';

const ClientContext = createContext(null);

/** Gives the hooks below it a client (theirs when they pass `{ client }`). */
export function ProgressClientProvider({ client, children }) {
  return createElement(ClientContext.Provider, { value: client }, children);
}

/** The client of the nearest `ProgressClientProvider`, or `null`. */
export function useProgressClient() {
  return useContext(ClientContext);
}

const EMPTY = Object.freeze({ status: null, statuses: Object.freeze({}), connection: 'connecting', error: null });
const NOTHING = Object.freeze({ ...EMPTY, connection: 'idle' });
const noSubscription = () => () => {};

/** Client → (kind + name) → store: one shared watch per file or folder per client. */
const stores = new WeakMap();

function storeFor(client, kind, name) {
  let byName = stores.get(client);
  if (!byName) stores.set(client, (byName = new Map()));
  const key = `${kind}:${name}`;
  let store = byName.get(key);
  if (!store) {
    store = createStore(client, kind, name, () => byName.get(key) === store && byName.delete(key));
    byName.set(key, store);
  }
  return store;
}

function createStore(client, kind, name, forget) {
  const listeners = new Set();
  let snapshot = EMPTY;
  let watch = null;
  let stopTimer = null;
  const set = (change) => {
    snapshot = { ...snapshot, ...change };
    for (const listener of [...listeners]) listener();
  };
  const start = (token) => {
    const hooks = { token, onTransport: (connection) => set({ connection }), onError: (error) => set({ error }) };
    if (kind === 'file') {
      watch = client.watch(name, (status) => set({ status, error: null }), hooks);
      watch.done.then(() => set({ connection: 'done' }), (e) => set({ connection: 'closed', error: e.message }));
    } else {
      watch = client.watchPrefix(name, (status) => set({ status, statuses: { ...snapshot.statuses, [status.input_file]: status } }), hooks);
    }
  };
  return {
    token: undefined,
    getSnapshot: () => snapshot,
    subscribe(listener) {
      listeners.add(listener);
      clearTimeout(stopTimer);
      stopTimer = null;
      if (!watch) start(this.token);
      return () => {
        listeners.delete(listener);
        if (listeners.size > 0) return;
        // A tick later: a remount (StrictMode, a moved component) keeps the same watch.
        stopTimer = setTimeout(() => {
          if (listeners.size > 0) return;
          watch?.stop();
          watch = null;
          forget();
        }, 0);
      };
    },
  };
}

function useStore(kind, name, options) {
  const fromContext = useContext(ClientContext);
  const client = options.client ?? fromContext;
  if (name && !client) throw new Error(`use${kind === 'file' ? 'JobStatus' : 'Folder'} needs a client: pass { client } or render inside <ProgressClientProvider>`);
  const store = name ? storeFor(client, kind, name) : null;
  if (store && store.token === undefined) store.token = options.token;
  const subscribe = useCallback((listener) => store.subscribe(listener), [store]);
  return useSyncExternalStore(store ? subscribe : noSubscription, store ? store.getSnapshot : () => NOTHING, () => (store ? EMPTY : NOTHING));
}

/**
 * Follows one input file: `{ status, estimate, connection, error }`. `status` is the newest state
 * (null until one is known), `estimate` the client's `estimate(status)` at this render,
 * `connection` how it arrives (`connecting`, `websocket`, `polling`; `done` once the job is final,
 * `closed` after a refusal ended the watch) and `error` the latest error message. A falsy
 * `inputFile` watches nothing (`connection: 'idle'`).
 * @param {string | null | undefined} inputFile
 * @param {{token?: string | null | (() => string | Promise<string>), client?: import('./mcpush-client.js').ProgressClient}} [options]
 */
export function useJobStatus(inputFile, options = {}) {
  const { status, connection, error } = useStore('file', inputFile, options);
  return { status, estimate: status ? estimateOf(status, Date.now()) : undefined, connection, error };
}

/**
 * Follows every file under a folder: `{ statuses, status, estimate, connection, error }` with
 * `statuses` each file's newest state by input file, `status` the latest one to change and
 * `estimate` its estimate.
 * @param {string | null | undefined} prefix  ending in `/`
 * @param {{token?: string | null | (() => string | Promise<string>), client?: import('./mcpush-client.js').ProgressClient}} [options]
 */
export function useFolder(prefix, options = {}) {
  const { statuses, status, connection, error } = useStore('folder', prefix, options);
  return { statuses, status, estimate: status ? estimateOf(status, Date.now()) : undefined, connection, error };
}
