// MediaConvert push notifier: a browser client. Plain ES module, no dependencies, no build step.
//
//   import { ProgressClient, requestUpload, upload } from './mcpush-client.js';
//   const client = new ProgressClient({ websocketUrl: 'wss://ws.example.com/prod', restUrl: 'https://api.example.com' });
//   const granted = await requestUpload('https://api.example.com', file);          // POST /media/uploads
//   const watch = client.watch(granted.input_file, (status) => render(status), { token: granted.token });
//   await upload(granted.upload, file, { onProgress: (f) => … });                  // straight to S3
//   const board = client.watchPrefix('uploads/u1/', (status) => row(status), { token: folderToken });  // a dashboard
//
// With OIDC sign-in (OIDC_ISSUER / OIDC_AUDIENCE), send the user's access token to both:
//   requestUpload(api, file, { fetchOptions: { headers: { Authorization: `Bearer ${jwt}` } } });
//   new ProgressClient({ websocketUrl, restUrl, accessToken: () => currentJwt() });  // ?access_token= on connect
//
// The client keeps one WebSocket for all watched files and subscribes each by input file (the
// server answers with the current state at once, then pushes every change). When the socket cannot
// open or drops, it reconnects with exponential backoff and full jitter, and meanwhile polls
// `GET {restUrl}/media/status?input_file=F` so progress keeps moving. A watch ends by itself on
// COMPLETE, ERROR or CANCELED. A prefix watch follows every file under a folder until stopped: the
// server sends the folder's recent files at once and then every change; the client subscribes
// again every `recheckIntervalMs` (the snapshot again) and after every reconnect.

/** Statuses after which a job never changes. */
export const FINAL_STATUSES = Object.freeze(['COMPLETE', 'ERROR', 'CANCELED']);

const ORDER = { SUBMITTED: 0, PROGRESSING: 1, COMPLETE: 2, ERROR: 2, CANCELED: 2 };
const PHASES = { PROBING: 0, TRANSCODING: 1, UPLOADING: 2 };

/** True when `next` says something `previous` did not: a newer job, a later status, more progress, a later phase or a later report. */
export function isNewer(previous, next) {
  if (!previous) return true;
  if (next.job_id && previous.job_id && next.job_id !== previous.job_id) return true;
  if (FINAL_STATUSES.includes(previous.job_status)) return false;
  const order = (s) => ORDER[s.job_status] ?? 1;
  if (order(next) !== order(previous)) return order(next) > order(previous);
  if (next.progress_rate !== previous.progress_rate) return next.progress_rate > previous.progress_rate;
  const phase = (s) => PHASES[s.current_phase] ?? -1;
  if (phase(next) !== phase(previous)) return phase(next) > phase(previous);
  return (next.updated_at ?? -1) > (previous.updated_at ?? -1);
}

/**
 * Where a running job is now, between two statuses: `progress` (0–100, fractional) grows from
 * `progress_rate` at the pace `eta_ms` implies, counted from the job's `updated_at` (MediaConvert's
 * clock, epoch ms) to `now`; `eta_ms` counts down to 0. It never goes below the status's progress,
 * never reaches 100 before COMPLETE, and never past the current phase's end (the job's remaining
 * progress taken in proportion to the phase's, from `phase_progress`): it eases towards that
 * limit, so a bar keeps moving, ever slower, when the job runs late. Without an `eta_ms` (not
 * PROGRESSING, or not yet knowable) it is the status itself. A page that animates a bar with it
 * also keeps the highest value it showed, as a new status may start lower.
 */
export function estimate(status, now = Date.now()) {
  if (!status) return { progress: 0, eta_ms: undefined };
  const progress = status.job_status === 'COMPLETE' ? 100 : (status.progress_rate ?? 0);
  if (status.job_status === 'COMPLETE') return { progress, eta_ms: 0 };
  if (status.job_status !== 'PROGRESSING' || status.eta_ms == null || status.updated_at == null) {
    return { progress, eta_ms: undefined };
  }
  const elapsed = Math.max(0, now - status.updated_at);
  const room = Math.max(0, 100 - progress);
  const phase = status.phase_progress?.[status.current_phase];
  const limit = Math.min(phase != null && phase < 100 ? room * (100 - phase) / 100 : room, 99.9 - progress);
  const linear = status.eta_ms > 0 ? room * elapsed / status.eta_ms : room;
  // ≈ linear while far below the limit, then ever closer to it without reaching it
  const gained = limit > 0 ? limit * (1 - Math.exp(-linear / limit)) : 0;
  return { progress: progress + gained, eta_ms: Math.max(0, status.eta_ms - elapsed) };
}

export class ProgressClient {
  /**
   * @param {object} options
   * @param {string} options.websocketUrl  e.g. `wss://abc.execute-api.eu-west-1.amazonaws.com/prod`
   * @param {string} [options.restUrl='']  base of `/media/status` (same origin when empty)
   * @param {number} [options.pollIntervalMs=2000]  REST polling period while the socket is down
   * @param {number} [options.minBackoffMs=500]  first reconnect delay cap
   * @param {number} [options.maxBackoffMs=30000]  largest reconnect delay cap
   * @param {number} [options.pingIntervalMs=300000]  keeps the connection under API Gateway's 10-minute idle timeout
   * @param {number} [options.subscribeTimeoutMs=3000]  polls meanwhile when a subscription is not confirmed by then
   * @param {number} [options.recheckIntervalMs=30000]  while subscribed, asks the REST API at once and then this often, or
   *   before the file has a known state, subscribes again for its snapshot (a prefix
   *   watch subscribes again, for the folder's snapshot), so a lost push costs at most this long
   * @param {boolean} [options.batch=false]  subscribe with `"batch": true`: each push then arrives as one `statuses` message
   *   carrying the updates of all this client's watched files (fewer messages for a dashboard watching many files)
   * @param {string | (() => string | Promise<string>)} [options.accessToken]  with OIDC sign-in: the user's access token (or a
   *   function answering a fresh one, asked at every (re)connect), sent as `?access_token=`; the connection may then watch the
   *   user's own uploads (`UPLOAD_PREFIX{sub}/…`) without read tokens. The REST fallback still needs the read token.
   */
  constructor({ websocketUrl, restUrl = '', pollIntervalMs = 2000, minBackoffMs = 500, maxBackoffMs = 30000, pingIntervalMs = 300000, subscribeTimeoutMs = 3000, recheckIntervalMs = 30000, batch = false, accessToken }) {
    Object.assign(this, { websocketUrl, restUrl, pollIntervalMs, minBackoffMs, maxBackoffMs, pingIntervalMs, subscribeTimeoutMs, recheckIntervalMs, batch, accessToken });
    this.opening = false;
    this.watches = new Map();
    this.prefixes = new Map();
    this.socket = null;
    this.attempt = 0;
    this.reconnectTimer = null;
    this.pingTimer = null;
  }

  /**
   * Follows `inputFile` until its job is final.
   * @param {string} inputFile  the S3 key of the upload
   * @param {(status: object) => void} onStatus  called with every newer state: `{input_file, job_status, progress_rate, current_phase?, ...}`
   * @param {{onTransport?: (t: 'connecting'|'websocket'|'polling') => void, onError?: (message: string) => void, ignoreJobId?: string, token?: string}} [hooks]
   *   `ignoreJobId`: a job of this file known before an upload, so its state is not taken for the new job's;
   *   `token`: the read token for the file (from the upload API), sent with the subscribe and every REST call.
   *   A 403 (a missing, foreign or expired token) is reported through `onError` with the server's message and
   *   stops that watch's polling.
   * @returns {{stop: () => void, done: Promise<object>}}  `done` resolves with the final state
   */
  watch(inputFile, onStatus, hooks = {}) {
    let resolveDone;
    const done = new Promise((resolve) => { resolveDone = resolve; });
    const watch = { inputFile, onStatus, hooks, last: null, subscribed: false, pollTimer: null, recheckTimer: null, transport: null, resolveDone };
    this.watches.set(inputFile, watch);
    this.#setTransport(watch, 'connecting');
    // A socket that neither opens nor fails (a proxy holding it, say) must not stall progress.
    watch.fallbackTimer = setTimeout(() => watch.subscribed || this.#startPolling(watch), this.subscribeTimeoutMs);
    if (this.socket?.readyState === WebSocket.OPEN) this.#send(subscription(watch, this.batch));
    else if (!this.socket && !this.reconnectTimer && !this.opening) this.#connect();
    if (!this.socket && !this.opening) this.#startPolling(watch);
    return { stop: () => this.#end(watch), done };
  }

  /**
   * Follows every file under the folder `prefix` (ending in `/`, at any depth) until stopped: first
   * the folder's files in progress or finished in the last ten minutes, then every change. There
   * is no REST fallback for a folder: while the socket is down the watch waits (`onTransport`
   * says `connecting`) and the snapshot after the reconnect fills the gap.
   * @param {string} prefix  e.g. `uploads/u1/`
   * @param {(status: object) => void} onStatus  called with every newer state of each file, `input_file` naming the file
   * @param {{onTransport?: (t: 'connecting'|'websocket') => void, onError?: (message: string) => void, token?: string}} [hooks]
   *   `token`: a read token for the folder or one above it.
   * @returns {{stop: () => void}}
   */
  watchPrefix(prefix, onStatus, hooks = {}) {
    const watch = { prefix, onStatus, hooks, last: new Map(), subscribed: false, recheckTimer: null, transport: null };
    this.prefixes.set(prefix, watch);
    this.#setTransport(watch, 'connecting');
    if (this.socket?.readyState === WebSocket.OPEN) this.#send(subscription(watch, this.batch));
    else if (!this.socket && !this.reconnectTimer && !this.opening) this.#connect();
    return { stop: () => this.#endPrefix(watch) };
  }

  /** Stops every watch and closes the socket. */
  close() {
    for (const watch of [...this.watches.values()]) this.#end(watch);
    for (const watch of [...this.prefixes.values()]) this.#endPrefix(watch);
    this.#closeSocket();
  }

  /** Nothing watched: no socket is needed. */
  #idle() {
    return this.watches.size === 0 && this.prefixes.size === 0;
  }

  #connect() {
    this.reconnectTimer = null;
    if (this.#idle()) return;
    this.opening = true;
    this.#socketUrl().then(
      (url) => { this.opening = false; this.#open(url); },
      (e) => { this.opening = false; this.#lost(`no access token: ${e.message}`); },
    );
  }

  /** The WebSocket URL, with `?access_token=` when the client signs in. */
  async #socketUrl() {
    const token = typeof this.accessToken === 'function' ? await this.accessToken() : this.accessToken;
    if (!token) return this.websocketUrl;
    const url = new URL(this.websocketUrl, globalThis.location?.href);
    url.searchParams.set('access_token', token);
    return url.toString();
  }

  #open(url) {
    if (this.#idle() || this.socket) return;
    let socket;
    try {
      socket = new WebSocket(url);
    } catch (e) {
      this.#lost(`WebSocket cannot open: ${e.message}`);
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      for (const watch of [...this.watches.values(), ...this.prefixes.values()]) this.#send(subscription(watch, this.batch));
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.#send({ action: 'ping' }), this.pingIntervalMs);
    };
    socket.onmessage = (message) => this.#receive(message.data);
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.#lost('WebSocket closed');
    };
    socket.onerror = () => {}; // a close event follows
  }

  #lost(reason) {
    this.socket = null;
    clearInterval(this.pingTimer);
    for (const watch of this.watches.values()) {
      watch.subscribed = false;
      clearInterval(watch.recheckTimer);
      watch.hooks.onError?.(reason);
      this.#startPolling(watch);
    }
    for (const watch of this.prefixes.values()) {
      watch.subscribed = false;
      clearInterval(watch.recheckTimer);
      watch.recheckTimer = null;
      watch.hooks.onError?.(reason);
      this.#setTransport(watch, 'connecting');
    }
    if (this.#idle() || this.reconnectTimer) return;
    // Full jitter: a random delay up to an exponentially growing cap.
    const cap = Math.min(this.maxBackoffMs, this.minBackoffMs * 2 ** this.attempt);
    this.attempt += 1;
    this.reconnectTimer = setTimeout(() => this.#connect(), Math.random() * cap);
  }

  #receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    const watch = this.watches.get(message.input_file);
    const folder = message.prefix !== undefined ? this.prefixes.get(message.prefix) : undefined;
    if (message.type === 'subscribed' && folder) {
      this.attempt = 0;
      folder.subscribed = true;
      this.#setTransport(folder, 'websocket');
      // Each re-subscribe brings the folder's snapshot again: what a lost push or a race missed.
      folder.recheckTimer ??= setInterval(() => this.#send(subscription(folder, this.batch)), this.recheckIntervalMs);
    } else if (message.type === 'subscribed' && watch) {
      this.attempt = 0;
      watch.subscribed = true;
      this.#stopPolling(watch);
      this.#setTransport(watch, 'websocket');
      // A push can be lost on the way: ask once now (after every (re)connect) and now and then.
      // Before any state is known the file may have no job yet, and `subscribed` is followed by
      // the file's state if it has one: then the re-check subscribes again (the snapshot again)
      // instead of asking /media/status for a job that does not exist.
      clearInterval(watch.recheckTimer);
      if (watch.last) this.#fetchStatus(watch);
      watch.recheckTimer = setInterval(
        () => (watch.last ? this.#fetchStatus(watch) : this.#send(subscription(watch, this.batch))),
        this.recheckIntervalMs,
      );
    } else if (message.type === 'status') {
      const { type, ...status } = message;
      this.#route(status);
    } else if (message.type === 'statuses' && Array.isArray(message.updates)) {
      for (const status of message.updates) this.#route(status);
    } else if (message.type === 'error') {
      for (const w of [...this.watches.values(), ...this.prefixes.values()]) w.hooks.onError?.(message.message);
    }
  }

  /** A file's state to its watch and to every prefix watch above the file. */
  #route(status) {
    const file = status?.input_file;
    if (typeof file !== 'string') return;
    const watch = this.watches.get(file);
    if (watch) this.#deliver(watch, status);
    for (const folder of this.prefixes.values()) {
      if (!file.startsWith(folder.prefix) || !isNewer(folder.last.get(file), status)) continue;
      folder.last.set(file, status);
      folder.onStatus(status);
    }
  }

  #deliver(watch, status) {
    if (!this.watches.has(watch.inputFile) || !isNewer(watch.last, status)) return;
    if (watch.hooks.ignoreJobId && status.job_id === watch.hooks.ignoreJobId) return;
    watch.last = status;
    watch.onStatus(status);
    if (FINAL_STATUSES.includes(status.job_status)) {
      watch.resolveDone(status);
      this.#end(watch);
    }
  }

  #startPolling(watch) {
    if (watch.pollTimer || watch.forbidden || !this.watches.has(watch.inputFile)) return;
    this.#setTransport(watch, 'polling');
    const poll = async () => {
      await this.#fetchStatus(watch);
      if (watch.pollTimer) watch.pollTimer = setTimeout(poll, this.pollIntervalMs);
    };
    watch.pollTimer = setTimeout(poll, 0);
  }

  /** One `GET /media/status?input_file=`; a newer state is delivered as a push would be. */
  async #fetchStatus(watch) {
    try {
      const token = watch.hooks.token ? `&token=${encodeURIComponent(watch.hooks.token)}` : '';
      const url = `${this.restUrl}/media/status?input_file=${encodeURIComponent(watch.inputFile)}${token}`;
      const response = await fetch(url, { cache: 'no-store' });
      const body = await response.json();
      if (response.status === 403) {
        watch.forbidden = true;
        this.#stopPolling(watch);
        clearInterval(watch.recheckTimer);
        watch.hooks.onError?.(body.message ?? 'forbidden');
        return;
      }
      const { success, ...status } = body;
      if (success) this.#deliver(watch, { input_file: watch.inputFile, ...status });
    } catch (e) {
      watch.hooks.onError?.(`status request failed: ${e.message}`);
    }
  }

  #stopPolling(watch) {
    clearTimeout(watch.pollTimer);
    watch.pollTimer = null;
  }

  #end(watch) {
    if (!this.watches.delete(watch.inputFile)) return;
    clearTimeout(watch.fallbackTimer);
    clearInterval(watch.recheckTimer);
    this.#stopPolling(watch);
    if (watch.subscribed) this.#send({ action: 'unsubscribe', input_file: watch.inputFile });
    if (this.#idle()) this.#closeSocket();
  }

  #endPrefix(watch) {
    if (!this.prefixes.delete(watch.prefix)) return;
    clearInterval(watch.recheckTimer);
    if (watch.subscribed) this.#send({ action: 'unsubscribe', prefix: watch.prefix });
    if (this.#idle()) this.#closeSocket();
  }

  #closeSocket() {
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pingTimer);
    this.reconnectTimer = null;
    const socket = this.socket;
    this.socket = null;
    socket?.close();
  }

  #send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  #setTransport(watch, transport) {
    if (watch.transport === transport) return;
    watch.transport = transport;
    watch.hooks.onTransport?.(transport);
  }
}

/** The subscribe message of a watch (of a file or a prefix), with its token when it has one, batched when the client is. */
function subscription(watch, batch) {
  const message = watch.prefix !== undefined ? { action: 'subscribe', prefix: watch.prefix } : { action: 'subscribe', input_file: watch.inputFile };
  if (watch.hooks.token) message.token = watch.hooks.token;
  if (batch) message.batch = true;
  return message;
}

/**
 * Asks the upload API (`POST {restUrl}/media/uploads`) for an upload of `file`.
 * @param {string} restUrl  base of the REST API ('' for the same origin)
 * @param {File} file
 * @param {{fetchOptions?: RequestInit}} [options]  e.g. `{ headers: { Authorization: 'Bearer …' } }`
 * @returns {Promise<{success: true, input_file: string, token: string|null, token_expires_at: number|null, expires_at: number,
 *   upload: {method: 'POST', url: string, fields: Record<string, string>} | {method: 'PUT', url: string, headers: Record<string, string>}}>}
 *   rejects with the server's message (400 / 413 / 415 / 422 name what was wrong)
 */
export async function requestUpload(restUrl, file, { fetchOptions = {} } = {}) {
  const response = await fetch(`${restUrl}/media/uploads`, {
    ...fetchOptions,
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(fetchOptions.headers ?? {}) },
    body: JSON.stringify({ file_name: file.name, content_type: file.type || 'application/octet-stream', size: file.size }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.success) throw new Error(body.message ?? `upload request failed: HTTP ${response.status}`);
  return body;
}

/**
 * Sends `file` where the upload API said: a POST form (its `fields`, then the file) or a PUT
 * (with its `headers`). A plain URL string is a PUT (the local stack's `/s3/{bucket}/{key}`).
 * @param {string | {method: 'POST'|'PUT', url: string, fields?: Record<string, string>, headers?: Record<string, string>}} target
 * @param {Blob} file
 * @param {{onProgress?: (fraction: number) => void}} [options]
 * @returns {Promise<void>} rejects with the server's answer on a non-2xx status
 */
export function upload(target, file, { onProgress } = {}) {
  const { method = 'PUT', url, fields = {}, headers = {} } = typeof target === 'string' ? { url: target } : target;
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress?.(e.loaded / e.total);
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(new Error(`upload failed: HTTP ${xhr.status} ${xhr.responseText}`)));
    xhr.onerror = () => reject(new Error('upload failed: network error'));
    if (method === 'POST') {
      const form = new FormData();
      for (const [name, value] of Object.entries(fields)) form.append(name, value);
      form.append('file', file); // S3 takes the file last
      xhr.send(form);
    } else {
      if (file.type && !headers['Content-Type']) xhr.setRequestHeader('Content-Type', file.type);
      for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
      xhr.send(file);
    }
  });
}

/** An S3 key as a URL path: each segment percent-encoded, the slashes kept. */
export function keyPath(key) {
  return key.split('/').map(encodeURIComponent).join('/');
}
