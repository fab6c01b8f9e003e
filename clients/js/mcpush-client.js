// MediaConvert push notifier: a browser client. Plain ES module, no dependencies, no build step.
//
//   import { ProgressClient, requestUpload, upload } from './mcpush-client.js';
//   const client = new ProgressClient({ websocketUrl: 'wss://ws.example.com/prod', restUrl: 'https://api.example.com' });
//   const granted = await requestUpload('https://api.example.com', file);          // POST /media/uploads
//   const watch = client.watch(granted.input_file, (status) => render(status), { token: granted.token });
//   await upload(granted.upload, file, { onProgress: (f) => … });                  // straight to S3
//   const board = client.watchPrefix('uploads/u1/', (status) => row(status), { token: folderToken });  // a dashboard
//   const big = client.watchUpload(file, ({ progress, phase }) => bar(progress, phase));   // resumable upload + its job, one bar
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
// again (the snapshot again) after every reconnect and after `recheckIntervalMs` without a push.

/** Statuses after which a job never changes. */
export const FINAL_STATUSES = Object.freeze(['COMPLETE', 'ERROR', 'CANCELED']);

const ORDER = { SUBMITTED: 0, PROGRESSING: 1, COMPLETE: 2, ERROR: 2, CANCELED: 2 };
const PHASES = { PROBING: 0, TRANSCODING: 1, UPLOADING: 2 };

/**
 * True when `next` says something `previous` did not: a newer job, or, for the same job, a higher
 * `version` (each change of a job's state is one version more). States without versions (a server
 * before them) compare by status, progress, phase and report time.
 */
export function isNewer(previous, next) {
  if (!previous) return true;
  if (next.job_id && previous.job_id && next.job_id !== previous.job_id) return true;
  if (next.version > 0 && previous.version > 0) return next.version > previous.version;
  if (FINAL_STATUSES.includes(previous.job_status)) return false;
  const order = (s) => ORDER[s.job_status] ?? 1;
  if (order(next) !== order(previous)) return order(next) > order(previous);
  if (next.progress_rate !== previous.progress_rate) return next.progress_rate > previous.progress_rate;
  const phase = (s) => PHASES[s.current_phase] ?? -1;
  if (phase(next) !== phase(previous)) return phase(next) > phase(previous);
  return (next.updated_at ?? -1) > (previous.updated_at ?? -1);
}

/** True when `next` is more than one version past `previous` of the same job: an update was missed. */
export function missedUpdate(previous, next) {
  return Boolean(previous && next && previous.job_id === next.job_id && previous.version > 0 && next.version > previous.version + 1);
}

/** A read token's expiry (epoch seconds), from its first field; `undefined` when it has none. */
export function tokenExpiry(token) {
  const match = typeof token === 'string' ? /^(\d{1,12})\./.exec(token) : null;
  return match ? Number(match[1]) : undefined;
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
   * @param {string} [options.restUrl='']  base of `/media/status` and `/media/tokens` (same origin when empty)
   * @param {number} [options.pollIntervalMs=2000]  REST polling period while the socket is down
   * @param {boolean} [options.longPoll=false]  while polling, hold each request on the server until the state changes
   *   (`?wait=20` with `If-None-Match`) and ask again at once: a change shows at once, and a quiet job costs three requests a minute
   * @param {number} [options.minBackoffMs=500]  first reconnect delay cap
   * @param {number} [options.maxBackoffMs=30000]  largest reconnect delay cap
   * @param {number} [options.stableAfterMs=10000]  a connection open this long resets the backoff
   * @param {number} [options.hiddenRecheckMs=30000]  a page hidden longer than this reconnects and re-checks when shown again
   * @param {number} [options.probeTimeoutMs=3000]  when the page comes back with its socket open, a ping unanswered this long
   *   means the socket died meanwhile: it is replaced
   * @param {number} [options.pingIntervalMs=300000]  keeps the connection under API Gateway's 10-minute idle timeout
   * @param {number} [options.subscribeTimeoutMs=3000]  polls meanwhile when a subscription is not confirmed by then
   * @param {number} [options.recheckIntervalMs=30000]  while subscribed, asks the REST API at once and after each silence this long, or
   *   before the file has a known state, subscribes again for its snapshot (a prefix
   *   watch subscribes again, for the folder's snapshot), so a lost push costs at most this long
   * @param {boolean} [options.batch=false]  subscribe with `"batch": true`: each push then arrives as one `statuses` message
   *   carrying the updates of all this client's watched files (fewer messages for a dashboard watching many files)
   * @param {string | (() => string | Promise<string>)} [options.accessToken]  with OIDC sign-in: the user's access token (or a
   *   function answering a fresh one, asked at every (re)connect), sent as `?access_token=`; the connection may then watch the
   *   user's own uploads (`UPLOAD_PREFIX{sub}/…`) without read tokens. The REST fallback still needs the read token.
   */
  constructor({ websocketUrl, restUrl = '', pollIntervalMs = 2000, longPoll = false, minBackoffMs = 500, maxBackoffMs = 30000, stableAfterMs = 10000, hiddenRecheckMs = 30000, probeTimeoutMs = 3000, pingIntervalMs = 300000, subscribeTimeoutMs = 3000, recheckIntervalMs = 30000, batch = false, accessToken }) {
    Object.assign(this, { websocketUrl, restUrl, pollIntervalMs, longPoll, minBackoffMs, maxBackoffMs, stableAfterMs, hiddenRecheckMs, probeTimeoutMs, pingIntervalMs, subscribeTimeoutMs, recheckIntervalMs, batch, accessToken });
    this.opening = false;
    this.watches = new Map();
    this.prefixes = new Map();
    this.socket = null;
    this.attempt = 0;
    this.reconnectTimer = null;
    this.stableTimer = null;
    this.pingTimer = null;
    this.listeners = null;
    this.hiddenAt = null;
  }

  /**
   * Follows `inputFile` until its job is final.
   * @param {string} inputFile  the S3 key of the upload
   * @param {(status: object) => void} onStatus  called with every newer state: `{input_file, job_status, progress_rate, version, current_phase?, ...}`
   * @param {{onTransport?: (t: 'connecting'|'websocket'|'polling') => void, onError?: (message: string) => void, ignoreJobId?: string,
   *   token?: string | (() => string | Promise<string>)}} [hooks]
   *   `ignoreJobId`: a job of this file known before an upload, so its state is not taken for the new job's;
   *   `token`: the read token for the file (from the upload API), sent with the subscribe and every REST call; or a function
   *   answering a fresh one. The client renews it before it expires (a string through `POST /media/tokens`, a function by
   *   calling it) and once after a refusal (a 403, a refused subscribe), re-subscribing on the same socket; a second refusal in
   *   a row ends the watch: `onError` gets the server's message and `done` rejects.
   * @returns {{stop: () => void, done: Promise<object>}}  `done` resolves with the final state
   */
  watch(inputFile, onStatus, hooks = {}) {
    let resolveDone, rejectDone;
    const done = new Promise((resolve, reject) => { resolveDone = resolve; rejectDone = reject; });
    done.catch(() => {}); // ending on a refusal is reported through onError too
    const watch = { inputFile, onStatus, hooks, last: null, subscribed: false, pollTimer: null, recheckTimer: null, transport: null, resolveDone, rejectDone };
    this.#adoptToken(watch);
    this.watches.set(inputFile, watch);
    this.#setTransport(watch, 'connecting');
    this.#listen();
    const begin = () => {
      if (!this.watches.has(inputFile)) return;
      // A socket that neither opens nor fails (a proxy holding it, say) must not stall progress.
      watch.fallbackTimer = setTimeout(() => watch.subscribed || this.#startPolling(watch), this.subscribeTimeoutMs);
      if (this.socket?.readyState === WebSocket.OPEN) this.#send(subscription(watch, this.batch));
      else if (!this.socket && !this.reconnectTimer && !this.opening) this.#connect();
      if (!this.socket && !this.opening) this.#startPolling(watch);
    };
    if (watch.tokenSource) this.#renew(watch).then(begin, (e) => this.#fail(watch, `no read token: ${e.message}`));
    else begin();
    return { stop: () => this.#end(watch), done };
  }

  /**
   * Follows every file under the folder `prefix` (ending in `/`, at any depth) until stopped: first
   * the folder's files in progress or finished in the last ten minutes, then every change. There
   * is no REST fallback for a folder: while the socket is down the watch waits (`onTransport`
   * says `connecting`) and the snapshot after the reconnect fills the gap.
   * @param {string} prefix  e.g. `uploads/u1/`
   * @param {(status: object) => void} onStatus  called with every newer state of each file, `input_file` naming the file
   * @param {{onTransport?: (t: 'connecting'|'websocket') => void, onError?: (message: string) => void,
   *   token?: string | (() => string | Promise<string>)}} [hooks]
   *   `token`: a read token for the folder or one above it (or a function answering one), renewed as a file watch's is.
   * @returns {{stop: () => void}}
   */
  watchPrefix(prefix, onStatus, hooks = {}) {
    const watch = { prefix, onStatus, hooks, last: new Map(), subscribed: false, recheckTimer: null, transport: null };
    this.#adoptToken(watch);
    this.prefixes.set(prefix, watch);
    this.#setTransport(watch, 'connecting');
    this.#listen();
    const begin = () => {
      if (!this.prefixes.has(prefix)) return;
      if (this.socket?.readyState === WebSocket.OPEN) this.#send(subscription(watch, this.batch));
      else if (!this.socket && !this.reconnectTimer && !this.opening) this.#connect();
    };
    if (watch.tokenSource) this.#renew(watch).then(begin, (e) => this.#fail(watch, `no read token: ${e.message}`));
    else begin();
    return { stop: () => this.#endPrefix(watch) };
  }

  /** Stops every watch and closes the socket. */
  /**
   * Uploads `file` as a resumable multipart upload (resuming one remembered for it) and follows its job: ONE
   * `progress` (0–1) and `phase` across UPLOADING_SOURCE → SUBMITTED → PROBING → TRANSCODING → UPLOADING → COMPLETE,
   * weighted by bytes and by the job's own progress, never going back.
   * @param {Blob & {name: string, lastModified?: number}} file
   * @param {(update: {progress: number, phase: string, status?: object, input_file?: string}) => void} onUpdate
   * @param {{uploadShare?: number, concurrency?: number, signal?: AbortSignal, fetchOptions?: RequestInit,
   *   storage?: Storage, onError?: (message: string) => void, onTransport?: (t: string) => void, onUploaded?: () => void}} [options]
   * @returns {{done: Promise<object>, stop: () => void}}  `done` resolves with the final state
   */
  watchUpload(file, onUpdate, { uploadShare = 0.5, concurrency, signal, fetchOptions, storage, onError, onTransport, onUploaded } = {}) {
    let shown = 0;
    let watch = null;
    let stopped = false;
    const update = (now, extra = {}) => {
      const next = combinedProgress(shown, now, uploadShare);
      shown = next.progress;
      onUpdate({ ...next, ...extra });
    };
    const done = (async () => {
      let grant = await requestUpload(this.restUrl, file, { multipart: true, fetchOptions, storage });
      // A resumed upload's first report says how much S3 already holds: no 0 shown before it.
      if (!grant.resumed) update({ uploaded: 0 }, { input_file: grant.input_file });
      try {
        await uploadResumable(grant, file, { concurrency, signal, fetchOptions, storage, onProgress: (f) => update({ uploaded: f }, { input_file: grant.input_file }) });
      } catch (e) {
        if (!(e instanceof UploadGoneError) || !grant.resumed) throw e;
        grant = await requestUpload(this.restUrl, file, { multipart: true, fetchOptions, storage });
        await uploadResumable(grant, file, { concurrency, signal, fetchOptions, storage, onProgress: (f) => update({ uploaded: f }, { input_file: grant.input_file }) });
      }
      if (stopped) throw new Error('stopped');
      onUploaded?.();
      watch = this.watch(grant.input_file, (status) => update({ status }, { status, input_file: grant.input_file }), { token: grant.token ?? undefined, onError, onTransport });
      return watch.done;
    })();
    return { done, stop: () => ((stopped = true), watch?.stop()) };
  }

  close() {
    for (const watch of [...this.watches.values()]) this.#end(watch);
    for (const watch of [...this.prefixes.values()]) this.#endPrefix(watch);
    this.#closeSocket();
  }

  /** Nothing watched: no socket is needed. */
  #idle() {
    return this.watches.size === 0 && this.prefixes.size === 0;
  }

  #all() {
    return [...this.watches.values(), ...this.prefixes.values()];
  }

  // --- the browser telling us the network or the page came back ---------------------------------

  /** Listens for `online`, `offline`, `visibilitychange` and `pageshow` while anything is watched. */
  #listen() {
    const target = globalThis;
    if (this.listeners || typeof target.addEventListener !== 'function') return;
    this.listeners = {
      online: () => this.#recover(true),
      offline: () => this.#offline(),
      pageshow: (event) => event.persisted && this.#recover(false),
      visibilitychange: () => {
        if (globalThis.document?.visibilityState === 'hidden') {
          this.hiddenAt = Date.now();
        } else if (this.hiddenAt !== null) {
          const hidden = Date.now() - this.hiddenAt;
          this.hiddenAt = null;
          if (hidden > this.hiddenRecheckMs) this.#recover(false);
        }
      },
    };
    for (const name of ['online', 'offline', 'pageshow']) target.addEventListener(name, this.listeners[name]);
    globalThis.document?.addEventListener?.('visibilitychange', this.listeners.visibilitychange);
  }

  #unlisten() {
    if (!this.listeners) return;
    for (const name of ['online', 'offline', 'pageshow']) globalThis.removeEventListener?.(name, this.listeners[name]);
    globalThis.document?.removeEventListener?.('visibilitychange', this.listeners.visibilitychange);
    this.listeners = null;
  }

  /** The network went away: a socket cannot survive it, so it is closed now rather than at a timeout. */
  #offline() {
    if (!this.socket) return;
    const socket = this.socket;
    this.#lost('offline');
    socket.close();
  }

  /**
   * The network or the page is back: connect now, not at the next backoff step, and ask for every
   * watched state at once. After `online` the socket is replaced (it may be bound to the old
   * network); after a long hidden spell or the back/forward cache an open socket re-subscribes.
   */
  #recover(networkChanged) {
    if (this.#idle()) return;
    this.attempt = 0;
    if (this.socket?.readyState === WebSocket.OPEN && !networkChanged) {
      // The socket looks open, but after a sleep it may be dead: re-subscribe (each answer brings
      // the state again) and ask for a pong; no pong within probeTimeoutMs replaces the socket.
      for (const watch of this.#all()) this.#send(subscription(watch, this.batch));
      this.#probe();
    } else {
      if (this.socket) {
        const socket = this.socket;
        this.#lost('network changed: reconnecting', { reconnect: false });
        socket.close();
      }
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
      if (!this.opening) this.#connect();
    }
    for (const watch of this.watches.values()) this.#fetchStatus(watch);
    // A renewal the outage made fail is tried again now, before the token runs out.
    for (const watch of this.#all()) {
      if (watch.renewPending) {
        clearTimeout(watch.renewTimer);
        this.#renewNow(watch);
      }
    }
  }

  /** Pings the open socket; without a pong (or any message) within `probeTimeoutMs` it is replaced. */
  #probe() {
    const socket = this.socket;
    clearTimeout(this.probeTimer);
    this.#send({ action: 'ping' });
    this.probeTimer = setTimeout(() => {
      if (this.socket !== socket) return;
      this.#lost('no answer from the WebSocket: reconnecting', { reconnect: false });
      socket.close();
      if (!this.opening) this.#connect();
    }, this.probeTimeoutMs);
  }

  // --- the socket ----------------------------------------------------------------------------

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
      for (const watch of this.#all()) this.#send(subscription(watch, this.batch));
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.#send({ action: 'ping' }), this.pingIntervalMs);
      clearTimeout(this.stableTimer);
      this.stableTimer = setTimeout(() => { this.attempt = 0; }, this.stableAfterMs);
    };
    socket.onmessage = (message) => {
      if (this.socket !== socket) return;
      clearTimeout(this.probeTimer); // any message proves the socket alive
      this.#receive(message.data);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.#lost('WebSocket closed');
    };
    socket.onerror = () => {}; // a close event follows
  }

  /** The socket is gone: poll meanwhile and reconnect after a backoff step (unless told not to). */
  #lost(reason, { reconnect = true } = {}) {
    this.socket = null;
    clearTimeout(this.probeTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.stableTimer);
    for (const watch of this.watches.values()) {
      watch.subscribed = false;
      clearTimeout(watch.recheckTimer);
      watch.recheckTimer = null;
      watch.hooks.onError?.(reason);
      this.#startPolling(watch);
    }
    for (const watch of this.prefixes.values()) {
      watch.subscribed = false;
      clearTimeout(watch.recheckTimer);
      watch.recheckTimer = null;
      watch.hooks.onError?.(reason);
      this.#setTransport(watch, 'connecting');
    }
    if (!reconnect || this.#idle() || this.reconnectTimer) return;
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
    const watch = message.input_file !== undefined ? this.watches.get(message.input_file) : undefined;
    const folder = message.prefix !== undefined ? this.prefixes.get(message.prefix) : undefined;
    if (message.type === 'subscribed' && folder) {
      folder.refused = false;
      folder.subscribed = true;
      this.#setTransport(folder, 'websocket');
      // A re-subscribe brings the folder's snapshot again: what a lost push or a race missed.
      this.#armRecheck(folder, () => this.#send(subscription(folder, this.batch)));
    } else if (message.type === 'subscribed' && watch) {
      watch.refused = false;
      watch.subscribed = true;
      this.#stopPolling(watch);
      this.#setTransport(watch, 'websocket');
      // A push can be lost on the way: ask once now (after every (re)connect) and after each
      // silence. Before any state is known the file may have no job yet, and `subscribed` is
      // followed by the file's state if it has one: then the re-check subscribes again (the
      // snapshot again) instead of asking /media/status for a job that does not exist.
      if (watch.last) this.#fetchStatus(watch);
      this.#armRecheck(watch, () => (watch.last ? this.#fetchStatus(watch) : this.#send(subscription(watch, this.batch))));
    } else if (message.type === 'status') {
      const { type, ...status } = message;
      this.#route(status);
    } else if (message.type === 'statuses' && Array.isArray(message.updates)) {
      for (const status of message.updates) this.#route(status);
    } else if (message.type === 'error' && (watch || folder) && /token/i.test(message.message ?? '')) {
      this.#refused(watch ?? folder, message.message);
    } else if (message.type === 'error') {
      const about = watch ?? folder;
      for (const w of about ? [about] : this.#all()) w.hooks.onError?.(message.message);
    }
  }

  /** A file's state to its watch and to every prefix watch above the file. */
  #route(status) {
    const file = status?.input_file;
    if (typeof file !== 'string') return;
    const watch = this.watches.get(file);
    if (watch) {
      this.#heard(watch);
      this.#deliver(watch, status);
    }
    for (const folder of this.prefixes.values()) {
      if (!file.startsWith(folder.prefix)) continue;
      this.#heard(folder);
      const previous = folder.last.get(file);
      if (!isNewer(previous, status)) continue;
      folder.last.set(file, status);
      folder.onStatus(status);
      // A version skipped: the folder missed a push of this file, so ask for its state now.
      if (missedUpdate(previous, status)) this.#fetchFolderFile(folder, file);
    }
  }

  /**
   * Re-checks `watch` with `recheck` once the socket has said nothing about it for
   * `recheckIntervalMs`, and again after each such silence: while pushes come more often, a
   * re-check would only repeat them (and cost a request each).
   */
  #armRecheck(watch, recheck) {
    clearTimeout(watch.recheckTimer);
    const fire = () => {
      watch.recheckTimer = setTimeout(fire, this.recheckIntervalMs);
      recheck();
    };
    watch.recheck = fire;
    watch.recheckTimer = setTimeout(fire, this.recheckIntervalMs);
  }

  /** A push about `watch` arrived: its silence starts again. */
  #heard(watch) {
    if (!watch.recheckTimer) return;
    clearTimeout(watch.recheckTimer);
    watch.recheckTimer = setTimeout(watch.recheck, this.recheckIntervalMs);
  }

  #deliver(watch, status) {
    if (!this.watches.has(watch.inputFile) || !isNewer(watch.last, status)) return;
    if (watch.hooks.ignoreJobId && status.job_id === watch.hooks.ignoreJobId) return;
    const missed = missedUpdate(watch.last, status);
    watch.last = status;
    watch.onStatus(status);
    if (FINAL_STATUSES.includes(status.job_status)) {
      watch.resolveDone(status);
      this.#end(watch);
    } else if (missed) {
      // A version skipped: a push was lost on the way. Whatever came after it, read the state now.
      this.#fetchStatus(watch);
    }
  }

  // --- REST: polling, re-checks, conditional and long polls ----------------------------------

  #startPolling(watch) {
    if (watch.pollTimer || watch.forbidden || !this.watches.has(watch.inputFile)) return;
    this.#setTransport(watch, 'polling');
    const poll = async () => {
      const answered = await this.#fetchStatus(watch, { wait: this.longPoll });
      // A long poll that was answered asks again at once: the server held it until something changed.
      const next = this.longPoll && answered ? 0 : this.pollIntervalMs;
      if (watch.pollTimer) watch.pollTimer = setTimeout(poll, next);
    };
    watch.pollTimer = setTimeout(poll, 0);
  }

  /**
   * One `GET /media/status?input_file=` with `If-None-Match` (a 304 means nothing changed); a newer
   * state is delivered as a push would be. With `wait`, the server holds the request until the state
   * changes (at most 20 s). Answers whether the server answered (200 or 304).
   */
  async #fetchStatus(watch, { wait = false } = {}) {
    if (!this.watches.has(watch.inputFile)) return false;
    const query = new URLSearchParams({ input_file: watch.inputFile });
    if (watch.token) query.set('token', watch.token);
    // The tag of the state held, pushed or read: the job's id and version, as the server tags it.
    const etag = watch.last?.job_id && watch.last.version > 0 ? `"${watch.last.job_id}.${watch.last.version}"` : null;
    if (wait && etag) query.set('wait', '20');
    try {
      const response = await fetch(`${this.restUrl}/media/status?${query}`, { cache: 'no-store', headers: etag ? { 'If-None-Match': etag } : {} });
      if (response.status === 304) {
        watch.refused = false;
        return true;
      }
      const body = await response.json();
      if (response.status === 403) {
        this.#refused(watch, body.message ?? 'forbidden');
        return false;
      }
      const { success, ...status } = body;
      if (!success) return false;
      watch.refused = false;
      this.#deliver(watch, { input_file: watch.inputFile, ...status });
      return true;
    } catch (e) {
      watch.hooks.onError?.(`status request failed: ${e.message}`);
      return false;
    }
  }

  /** A file under a watched folder, read with the folder's token, delivered to the folder. */
  async #fetchFolderFile(folder, file) {
    const query = new URLSearchParams({ input_file: file });
    if (folder.token) query.set('token', folder.token);
    try {
      const response = await fetch(`${this.restUrl}/media/status?${query}`, { cache: 'no-store' });
      const { success, ...status } = await response.json();
      if (success) this.#route({ input_file: file, ...status });
    } catch (e) {
      folder.hooks.onError?.(`status request failed: ${e.message}`);
    }
  }

  #stopPolling(watch) {
    clearTimeout(watch.pollTimer);
    watch.pollTimer = null;
  }

  // --- read tokens: renewed before they expire and once after a refusal ------------------------

  /** Takes the watch's `token` hook: a token string now, or a function to ask for one. */
  #adoptToken(watch) {
    const token = watch.hooks.token;
    watch.tokenSource = typeof token === 'function' ? token : null;
    watch.token = typeof token === 'string' ? token : null;
    watch.refused = false;
    if (watch.token) this.#scheduleRenewal(watch);
  }

  /** Renews the token a little before it expires (the last fifth of its life, at most a minute before). */
  #scheduleRenewal(watch) {
    clearTimeout(watch.renewTimer);
    const expires = tokenExpiry(watch.token);
    if (expires === undefined) return;
    const left = expires * 1000 - Date.now();
    const margin = Math.min(60_000, Math.max(1_000, left / 5));
    watch.renewTimer = setTimeout(() => this.#renewNow(watch), Math.max(0, left - margin));
  }

  /** Renews now and re-subscribes; a renewal that fails (offline, say) is tried again while the token lasts. */
  #renewNow(watch) {
    this.#renew(watch).then(
      () => { watch.renewPending = false; this.#resubscribe(watch); },
      (e) => {
        watch.renewPending = true;
        watch.hooks.onError?.(`token renewal failed: ${e.message}`);
        const left = (tokenExpiry(watch.token) ?? 0) * 1000 - Date.now();
        if (left > 0 && this.#watching(watch)) watch.renewTimer = setTimeout(() => this.#renewNow(watch), Math.min(5_000, left / 2));
      },
    );
  }

  /** A fresh token: from the `token` function, else from `POST /media/tokens` for the one held. */
  async #renew(watch) {
    let token;
    if (watch.tokenSource) {
      token = await watch.tokenSource();
    } else {
      const scope = watch.prefix !== undefined ? { prefix: watch.prefix } : { input_file: watch.inputFile };
      const response = await fetch(`${this.restUrl}/media/tokens`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ ...scope, token: watch.token }),
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok || !body.success) throw new Error(body.message ?? `HTTP ${response.status}`);
      token = body.token;
    }
    if (!this.#watching(watch)) return;
    watch.token = typeof token === 'string' && token ? token : null;
    if (watch.token) this.#scheduleRenewal(watch);
  }

  /** With a fresh token: subscribe again on the open socket (no reconnect), or re-check over REST. */
  #resubscribe(watch) {
    if (!this.#watching(watch)) return;
    if (this.socket?.readyState === WebSocket.OPEN) this.#send(subscription(watch, this.batch));
    if (watch.inputFile !== undefined && (watch.pollTimer || !watch.subscribed)) this.#fetchStatus(watch);
  }

  /** A refusal (403, or a refused subscribe): renew once and try again; a second refusal in a row ends the watch. */
  #refused(watch, message) {
    if (!this.#watching(watch)) return;
    if (watch.refused) {
      this.#fail(watch, message);
      return;
    }
    watch.refused = true;
    this.#renew(watch).then(() => this.#resubscribe(watch), () => this.#fail(watch, message));
  }

  /** Ends a watch on an error it cannot get past. */
  #fail(watch, message) {
    if (!this.#watching(watch)) return;
    watch.forbidden = true;
    watch.hooks.onError?.(message);
    if (watch.prefix !== undefined) {
      this.#endPrefix(watch);
    } else {
      watch.rejectDone(new Error(message));
      this.#end(watch);
    }
  }

  #watching(watch) {
    return watch.prefix !== undefined ? this.prefixes.get(watch.prefix) === watch : this.watches.get(watch.inputFile) === watch;
  }

  // --- ending ------------------------------------------------------------------------------------

  #end(watch) {
    if (this.watches.get(watch.inputFile) !== watch) return;
    this.watches.delete(watch.inputFile);
    watch.renewPending = false;
    clearTimeout(watch.fallbackTimer);
    clearTimeout(watch.renewTimer);
    clearTimeout(watch.recheckTimer);
    this.#stopPolling(watch);
    if (watch.subscribed) this.#send({ action: 'unsubscribe', input_file: watch.inputFile });
    if (this.#idle()) this.#closeSocket();
  }

  #endPrefix(watch) {
    if (this.prefixes.get(watch.prefix) !== watch) return;
    this.prefixes.delete(watch.prefix);
    clearTimeout(watch.renewTimer);
    clearTimeout(watch.recheckTimer);
    if (watch.subscribed) this.#send({ action: 'unsubscribe', prefix: watch.prefix });
    if (this.#idle()) this.#closeSocket();
  }

  #closeSocket() {
    clearTimeout(this.probeTimer);
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.stableTimer);
    clearInterval(this.pingTimer);
    this.reconnectTimer = null;
    this.attempt = 0;
    this.#unlisten();
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
  if (watch.token) message.token = watch.token;
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
export async function requestUpload(restUrl, file, { fetchOptions = {}, multipart = false, storage } = {}) {
  if (multipart) {
    const remembered = recall(storage, restUrl, file);
    if (remembered) return remembered;
  }
  const request = { file_name: file.name, content_type: file.type || 'application/octet-stream', size: file.size };
  if (multipart) request.multipart = true;
  const response = await fetch(`${restUrl}/media/uploads`, {
    ...fetchOptions,
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(fetchOptions.headers ?? {}) },
    body: JSON.stringify(request),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.success) throw new Error(body.message ?? `upload request failed: HTTP ${response.status}`);
  if (multipart) {
    Object.assign(body, { rest_url: restUrl, name: file.name, size: file.size, lastModified: file.lastModified ?? 0 });
    remember(storage, body);
  }
  return body;
}

// ---------------------------------------------------------------- resumable (multipart) uploads

const STORAGE_PREFIX = 'mcpush.upload:';

function storageOf(storage) {
  if (storage) return storage;
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // storage disabled (privacy settings)
  }
}

function storageKey(restUrl, file) {
  return `${STORAGE_PREFIX}${restUrl}|${file.name}|${file.size}|${file.lastModified ?? 0}`;
}

function remember(storage, grant) {
  const store = storageOf(storage);
  const key = storageKey(grant.rest_url, grant);
  const { input_file, upload_id, size, lastModified, name, token, token_expires_at, part_size, part_count, rest_url } = grant;
  try {
    store?.setItem(key, JSON.stringify({ input_file, upload_id, size, lastModified, name, token, token_expires_at, part_size, part_count, rest_url }));
  } catch {
    // a full or disabled storage only loses the ability to resume after a reload
  }
}

function recall(storage, restUrl, file) {
  try {
    const saved = storageOf(storage)?.getItem(storageKey(restUrl, file));
    const grant = saved ? JSON.parse(saved) : null;
    return grant && grant.size === file.size && grant.name === file.name ? { ...grant, success: true, resumed: true } : null;
  } catch {
    return null;
  }
}

function forget(storage, grant) {
  try {
    storageOf(storage)?.removeItem(storageKey(grant.rest_url, grant));
  } catch {
    // nothing to forget
  }
}

/** The remembered upload of `file` to `restUrl` is gone (completed, aborted, or expired): ask for a new grant. */
export class UploadGoneError extends Error {}

async function uploadCall(grant, path, extra, fetchOptions) {
  const body = { input_file: grant.input_file, upload_id: grant.upload_id, ...extra };
  if (grant.token) body.token = grant.token;
  const response = await fetch(`${grant.rest_url ?? ''}${path}`, {
    ...fetchOptions,
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(fetchOptions?.headers ?? {}) },
    body: JSON.stringify(body),
  });
  if (response.status === 403) throw new UploadGoneError(`the upload of ${grant.input_file} is gone or not yours`);
  const answer = response.status === 204 ? {} : await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.message ?? `${path} failed: HTTP ${response.status}`);
  return answer;
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason ?? new Error('aborted'))), { once: true });
  });
}

/** PUTs one part: XMLHttpRequest in a browser (upload progress), fetch elsewhere. Answers its ETag. */
function putPart(url, blob, { onLoaded, signal }) {
  if (typeof XMLHttpRequest === 'undefined') {
    return fetch(url, { method: 'PUT', body: blob, signal }).then(async (response) => {
      if (!response.ok) throw Object.assign(new Error(`part upload failed: HTTP ${response.status}`), { status: response.status });
      onLoaded(blob.size);
      return response.headers.get('ETag');
    });
  }
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    xhr.upload.onprogress = (e) => onLoaded(e.loaded);
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300
      ? resolve(xhr.getResponseHeader('ETag'))
      : reject(Object.assign(new Error(`part upload failed: HTTP ${xhr.status}`), { status: xhr.status })));
    xhr.onerror = () => reject(new Error('part upload failed: network error'));
    xhr.onabort = () => reject(signal?.reason ?? new Error('aborted'));
    signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(blob);
  });
}

/**
 * Uploads `file` as the multipart upload `grant` describes (from `requestUpload(restUrl, file, {multipart: true})`),
 * `concurrency` parts at a time, each retried with backoff. It asks S3 which parts it already holds and sends only the
 * others, so after a reload or a crash, `requestUpload` with the same file (it remembers `{input_file, upload_id, size,
 * lastModified, name}` in `localStorage`) and this resume where the upload stopped.
 * @param {object} grant  a multipart grant (`upload_id`, `part_size`, `part_count`, `rest_url`, …)
 * @param {Blob & {name?: string, lastModified?: number}} file
 * @param {{onProgress?: (fraction: number, bytes: {loaded: number, total: number}) => void, signal?: AbortSignal,
 *   concurrency?: number, fetchOptions?: RequestInit, storage?: Storage, maxAttempts?: number}} [options]
 * @returns {Promise<{input_file: string, sent: number, resumed: number}>} the file's key, parts sent now, parts S3 held
 *   already; rejects with `UploadGoneError` when the upload no longer exists (ask for a new grant)
 */
export async function uploadResumable(grant, file, { onProgress, signal, concurrency = 4, fetchOptions = {}, storage, maxAttempts = 6 } = {}) {
  const { part_size: partSize, part_count: partCount } = grant;
  const sizeOf = (n) => Math.min(partSize, file.size - (n - 1) * partSize);
  let held;
  try {
    held = await uploadCall(grant, '/media/uploads/parts', { part_numbers: [] }, fetchOptions);
  } catch (e) {
    if (e instanceof UploadGoneError) forget(storage, grant);
    throw e;
  }
  const etags = new Map();
  for (const part of held.uploaded ?? []) {
    if (part.part_number <= partCount && part.size === sizeOf(part.part_number)) etags.set(part.part_number, part.etag);
  }
  const resumed = etags.size;
  const inFlight = new Map();
  let done = [...etags.keys()].reduce((sum, n) => sum + sizeOf(n), 0);
  const report = () => {
    const loaded = done + [...inFlight.values()].reduce((a, b) => a + b, 0);
    onProgress?.(file.size ? loaded / file.size : 1, { loaded, total: file.size });
  };
  report();
  const missing = [];
  for (let n = 1; n <= partCount; n += 1) if (!etags.has(n)) missing.push(n);
  const urls = new Map();
  const urlFor = async (n, fresh = false) => {
    if (fresh || !urls.has(n)) {
      const batch = [n, ...missing.filter((m) => m > n && !urls.has(m) && !etags.has(m))].slice(0, 100);
      const answer = await uploadCall(grant, '/media/uploads/parts', { part_numbers: batch }, fetchOptions);
      for (const part of answer.parts ?? []) urls.set(part.part_number, part.url);
    }
    return urls.get(n);
  };
  let next = 0;
  const worker = async () => {
    while (next < missing.length) {
      const n = missing[next++];
      const blob = file.slice((n - 1) * partSize, (n - 1) * partSize + sizeOf(n));
      for (let attempt = 1; ; attempt += 1) {
        signal?.throwIfAborted();
        try {
          const url = await urlFor(n, attempt > 1);
          const etag = await putPart(url, blob, { signal, onLoaded: (loaded) => (inFlight.set(n, loaded), report()) });
          if (!etag) throw new Error('the part was stored but its ETag cannot be read (the bucket CORS must expose ETag)');
          etags.set(n, etag);
          inFlight.delete(n);
          done += blob.size;
          report();
          break;
        } catch (e) {
          inFlight.delete(n);
          report();
          if (signal?.aborted || e instanceof UploadGoneError || attempt >= maxAttempts) throw e;
          await sleep(Math.random() * Math.min(30000, 500 * 2 ** attempt), signal);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, missing.length)) }, worker));
  const parts = [...etags.entries()].sort((a, b) => a[0] - b[0]).map(([part_number, etag]) => ({ part_number, etag }));
  await uploadCall(grant, '/media/uploads/complete', { parts }, fetchOptions);
  forget(storage, grant);
  return { input_file: grant.input_file, sent: missing.length, resumed };
}

/** The phases `watchUpload` reports, in order. */
export const UPLOAD_PHASES = Object.freeze(['UPLOADING_SOURCE', 'SUBMITTED', 'PROBING', 'TRANSCODING', 'UPLOADING', 'COMPLETE']);

/**
 * One progress value from the first byte uploaded to the last rendition written: `[0, uploadShare]` while the source
 * uploads (by bytes), then the job's own progress over the rest. Never goes back.
 * @param {number} previous  the value shown so far
 * @param {{uploaded?: number, status?: object}} now  the upload's fraction, or the job's latest state
 * @param {number} [uploadShare=0.5]
 * @returns {{progress: number, phase: string}}
 */
export function combinedProgress(previous, { uploaded, status }, uploadShare = 0.5) {
  let progress;
  let phase;
  if (!status) {
    progress = uploadShare * Math.min(1, Math.max(0, uploaded ?? 0));
    phase = 'UPLOADING_SOURCE';
  } else if (status.job_status === 'COMPLETE') {
    progress = 1;
    phase = 'COMPLETE';
  } else if (FINAL_STATUSES.includes(status.job_status)) {
    return { progress: previous, phase: status.job_status };
  } else {
    const job = status.job_status === 'SUBMITTED' ? 0 : (estimate(status)?.progress ?? status.progress_rate ?? 0) / 100;
    progress = uploadShare + (1 - uploadShare) * Math.min(1, job);
    phase = status.job_status === 'SUBMITTED' ? 'SUBMITTED' : (status.current_phase ?? 'PROBING');
  }
  return { progress: Math.max(previous, progress), phase };
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
