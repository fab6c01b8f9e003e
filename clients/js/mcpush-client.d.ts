// Types of @mcpush/client (mcpush-client.js). The message and status types follow
// docs/asyncapi.yaml (`JobState`, the server messages); tests/tests/asyncapi.rs checks that the
// two name the same fields and statuses.

/** A MediaConvert job's status. */
export type JobStatus = 'SUBMITTED' | 'PROGRESSING' | 'COMPLETE' | 'ERROR' | 'CANCELED';

/** The phase of a PROGRESSING job; it never goes back. */
export type Phase = 'PROBING' | 'TRANSCODING' | 'UPLOADING';

/** A file's newest job, as pushed (`status`, `statuses`) and as `GET /media/status?input_file=` answers it. */
export interface Status {
  input_file: string;
  job_id: string;
  job_status: JobStatus;
  /** 0–100; never goes down for a job. */
  progress_rate: number;
  /** Grows by exactly one with every change of this state: a gap means a missed update. */
  version: number;
  /** While PROGRESSING. */
  current_phase?: Phase;
  /** While PROGRESSING: each phase's furthest percent (MediaConvert's `phaseProgress`). */
  phase_progress?: Partial<Record<Phase, number>>;
  /** Epoch ms when MediaConvert received the job; absent until known. */
  submitted_at?: number;
  /** Epoch ms when the job started; absent until known. */
  started_at?: number;
  /** Epoch ms of its final event; absent until known. */
  finished_at?: number;
  /** Epoch ms of the job's latest event (MediaConvert's clock). */
  updated_at?: number;
  /** From `submitted_at` to `started_at`. */
  queued_ms?: number;
  /** From `started_at` to `finished_at`, or to `updated_at` while it runs. */
  elapsed_ms?: number;
  /** While PROGRESSING: estimated ms from `updated_at` to COMPLETE; absent when unknowable. */
  eta_ms?: number;
  /** COMPLETE only. */
  duration_ms?: number;
  /** COMPLETE only (not for audio-only outputs). */
  width_px?: number;
  /** COMPLETE only (not for audio-only outputs). */
  height_px?: number;
  /** COMPLETE only: folder of the first playlist, relative to the output bucket. */
  output_path?: string;
  /** COMPLETE only: extension (`.m3u8`, `.mpd`, `.ism`) → file name. */
  playlists?: Record<string, string>;
  /** COMPLETE only: every output of every group, in the job's order. */
  outputs?: OutputFile[];
  /** Pushed messages only: `outputs` and `thumbnails` keep their first entries to fit 128 KB. */
  outputs_truncated?: boolean;
  /** COMPLETE only, when the job captured frames: the images' S3 URIs. */
  thumbnails?: string[];
  /** `thumbnails` under the stack's `OUTPUT_BASE_URL`, when it sets one. */
  thumbnail_urls?: string[];
  /** ERROR only. */
  error_code?: number;
  /** ERROR only. */
  error_message?: string;
}

/** One output of a finished job. */
export interface OutputFile {
  /** The output group's position in the job. */
  group: number;
  /** `HLS_GROUP`, `DASH_ISO_GROUP`, `CMAF_GROUP`, `MS_SMOOTH_GROUP` or `FILE_GROUP`. */
  type?: string;
  /** The file (S3 URI), when MediaConvert names it. */
  path?: string;
  /** `path` under the stack's `OUTPUT_BASE_URL`. */
  url?: string;
  width_px?: number;
  height_px?: number;
  duration_ms?: number;
  /** Average bits per second. */
  bitrate?: number;
  /** The group's manifest (S3 URI), for streaming groups. */
  playlist?: string;
}

/** A final status: the job never changes again. */
export type FinalStatus = Status & { job_status: 'COMPLETE' | 'ERROR' | 'CANCELED' };

/** Messages a client sends over the WebSocket. */
export type ClientMessage =
  | { action: 'subscribe'; input_file: string; token?: string | null; batch?: boolean | null }
  | { action: 'subscribe'; prefix: string; token?: string | null; batch?: boolean | null }
  | { action: 'unsubscribe'; input_file: string }
  | { action: 'unsubscribe'; prefix: string }
  | { action: 'ping' };

/** Messages the server sends over the WebSocket. */
export type ServerMessage =
  | { type: 'subscribed'; input_file: string }
  | { type: 'subscribed'; prefix: string }
  | { type: 'unsubscribed'; input_file: string }
  | { type: 'unsubscribed'; prefix: string }
  | { type: 'pong' }
  | { type: 'error'; message: string; input_file?: string; prefix?: string }
  | ({ type: 'status' } & Status)
  | { type: 'statuses'; updates: Status[] };

/** How a watch currently learns about its job. */
export type Transport = 'connecting' | 'websocket' | 'polling';

/** Statuses after which a job never changes. */
export declare const FINAL_STATUSES: readonly ['COMPLETE', 'ERROR', 'CANCELED'];

/**
 * Where a running job is now, between two statuses: progress interpolated at the pace `eta_ms`
 * implies from `updated_at` to `now` (epoch ms), never below the status's, never 100 before
 * COMPLETE, never past the current phase's end; `eta_ms` counted down. Without an estimate, the
 * status itself.
 */
export declare function estimate(status: Status | null | undefined, now?: number): { progress: number; eta_ms?: number };

/** True when `next` says something `previous` did not: a newer job, or a higher `version` of the same job. */
export declare function isNewer(previous: Status | null | undefined, next: Status): boolean;

/** True when `next` is more than one version past `previous` of the same job: an update was missed. */
export declare function missedUpdate(previous: Status | null | undefined, next: Status | null | undefined): boolean;

/** A read token's expiry (epoch seconds), read from the token; `undefined` when it has none. */
export declare function tokenExpiry(token: string | null | undefined): number | undefined;

/** A read token, or a function answering a fresh one (asked at the start and before each expiry). */
export type TokenSource = string | null | (() => string | Promise<string>);

export interface ProgressClientOptions {
  /** e.g. `wss://abc.execute-api.eu-west-1.amazonaws.com/prod` */
  websocketUrl: string;
  /** Base of `/media/status` (same origin when empty). */
  restUrl?: string;
  /** REST polling period while the socket is down (default 2000). */
  pollIntervalMs?: number;
  /** While polling, let the server hold each request until the state changes (`?wait=20` with `If-None-Match`), and ask again at once (default false). */
  longPoll?: boolean;
  /** A connection open this long resets the reconnect backoff (default 10000). */
  stableAfterMs?: number;
  /** A page hidden longer than this reconnects and re-checks when shown again (default 30000). */
  hiddenRecheckMs?: number;
  /** When the page comes back with its socket open, a ping unanswered this long replaces the socket (default 3000). */
  probeTimeoutMs?: number;
  /** First reconnect delay cap (default 500). */
  minBackoffMs?: number;
  /** Largest reconnect delay cap (default 30000). */
  maxBackoffMs?: number;
  /** Keeps the connection under API Gateway's 10-minute idle timeout (default 300000). */
  pingIntervalMs?: number;
  /** Polls meanwhile when a subscription is not confirmed by then (default 3000). */
  subscribeTimeoutMs?: number;
  /** While subscribed, asks the REST API at once and after each silence this long (no push about the file; while pushes come more often it asks nothing); before a file has a known state (it may have no job yet), and for a prefix watch, it subscribes again for the snapshot instead (default 30000). */
  recheckIntervalMs?: number;
  /** Subscribe with `"batch": true`: each push arrives as one `statuses` message. */
  batch?: boolean;
  /** With OIDC sign-in: the user's access token, or a function answering a fresh one at every (re)connect. */
  accessToken?: string | (() => string | Promise<string>);
}

export interface WatchHooks {
  onTransport?: (transport: Transport) => void;
  /** A refusal (e.g. a missing or foreign token), with the server's message. */
  onError?: (message: string) => void;
  /** A job of this file known before the upload, so its state is not taken for the new job's. */
  ignoreJobId?: string;
  /**
   * The read token for the file (from the upload API), or a function answering a fresh one. It is
   * renewed before it expires (a string through `POST /media/tokens`) and once after a refusal; a
   * second refusal in a row ends the watch (`onError`, and `done` rejects).
   */
  token?: TokenSource;
}

export interface Watch {
  /** Stops watching. */
  stop(): void;
  /** Resolves with the final state (COMPLETE, ERROR or CANCELED); rejects when a refusal ended the watch. */
  done: Promise<FinalStatus>;
}

export interface PrefixWatchHooks {
  /** `connecting` while the socket is down (a folder has no REST fallback), `websocket` once subscribed. */
  onTransport?: (transport: Transport) => void;
  /** A refusal (e.g. a missing or foreign token), with the server's message. */
  onError?: (message: string) => void;
  /** A read token for the folder or a folder above it, or a function answering one; renewed as a file watch's is. */
  token?: TokenSource;
}

export interface PrefixWatch {
  /** Stops watching the folder. */
  stop(): void;
}

export declare class ProgressClient {
  constructor(options: ProgressClientOptions);
  /** Follows `inputFile` until its job is final; `onStatus` gets every newer state. */
  watch(inputFile: string, onStatus: (status: Status) => void, hooks?: WatchHooks): Watch;
  /**
   * Follows every file under the folder `prefix` (ending in `/`) until stopped: its files in progress or finished in the last
   * ten minutes at once, then every newer state of each file (`status.input_file` names it).
   */
  watchPrefix(prefix: string, onStatus: (status: Status) => void, hooks?: PrefixWatchHooks): PrefixWatch;
  /** Uploads `file` resumably and follows its job with one progress value and phase, never going back. */
  watchUpload(
    file: File,
    onUpdate: (update: { progress: number; phase: UploadPhase | 'ERROR' | 'CANCELED'; status?: Status; input_file?: string }) => void,
    options?: {
      uploadShare?: number;
      concurrency?: number;
      signal?: AbortSignal;
      fetchOptions?: RequestInit;
      storage?: UploadStorage;
      onError?: (message: string) => void;
      onTransport?: (transport: 'connecting' | 'websocket' | 'polling') => void;
      /** The file is in S3 (the upload completed); the job is watched next. */
      onUploaded?: () => void;
    },
  ): { done: Promise<Status>; stop: () => void };
  /** Stops every watch and closes the socket. */
  close(): void;
}

/** Where and how to send the file, as the upload API grants it. */
export type UploadTarget =
  | { method: 'POST'; url: string; fields: Record<string, string> }
  | { method: 'PUT'; url: string; headers: Record<string, string> };

/** `POST /media/uploads`'s answer. */
export interface UploadGrant {
  success: true;
  /** The key the file will have: watch it with this name. */
  input_file: string;
  /** Covers the key; null when tokens are off. */
  token: string | null;
  token_expires_at: number | null;
  /** Epoch seconds after which S3 refuses the upload. */
  expires_at: number;
  upload: UploadTarget;
}

/** `POST /media/uploads`'s answer with `"multipart": true`: an S3 multipart upload of the key. */
export interface MultipartGrant {
  success: true;
  input_file: string;
  upload_id: string;
  /** Bytes per part, all but the last (8–512 MiB). */
  part_size: number;
  part_count: number;
  expires_at: number;
  token: string | null;
  token_expires_at: number | null;
  /** Added by the client: where the upload API is, and the file it is for. */
  rest_url: string;
  name: string;
  size: number;
  lastModified: number;
  /** True when the grant was remembered (a resumed upload) rather than asked for now. */
  resumed?: boolean;
}

/** Where unfinished uploads are remembered (default `localStorage`). */
export type UploadStorage = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;

/**
 * Asks the upload API (`POST {restUrl}/media/uploads`) for an upload of `file`; rejects with the server's message.
 * With `multipart: true`, a resumable upload: one remembered for this file (same name, size, lastModified, API) is
 * answered without asking the server.
 */
export declare function requestUpload(restUrl: string, file: File, options?: { fetchOptions?: RequestInit; multipart?: false }): Promise<UploadGrant>;
export declare function requestUpload(restUrl: string, file: File, options: { fetchOptions?: RequestInit; multipart: true; storage?: UploadStorage }): Promise<MultipartGrant>;

/** The remembered upload is gone (completed, aborted or expired): ask for a new grant. */
export declare class UploadGoneError extends Error {}

/**
 * Sends `file` in parts (`concurrency` at a time, each retried with backoff), only those S3 does not hold yet, then
 * completes the upload; resumes after a reload or a crash through the remembered grant.
 */
export declare function uploadResumable(
  grant: MultipartGrant,
  file: Blob,
  options?: {
    onProgress?: (fraction: number, bytes: { loaded: number; total: number }) => void;
    signal?: AbortSignal;
    concurrency?: number;
    fetchOptions?: RequestInit;
    storage?: UploadStorage;
    maxAttempts?: number;
  },
): Promise<{ input_file: string; sent: number; resumed: number }>;

export type UploadPhase = 'UPLOADING_SOURCE' | 'SUBMITTED' | 'PROBING' | 'TRANSCODING' | 'UPLOADING' | 'COMPLETE';
export declare const UPLOAD_PHASES: readonly UploadPhase[];

/** One value (0–1) from the first byte uploaded to COMPLETE; never below `previous`. */
export declare function combinedProgress(
  previous: number,
  now: { uploaded?: number; status?: Status },
  uploadShare?: number,
): { progress: number; phase: UploadPhase | 'ERROR' | 'CANCELED' };

/** Sends `file` where the upload API said (a plain URL string is a PUT); rejects on a non-2xx answer. */
export declare function upload(target: string | UploadTarget, file: Blob, options?: { onProgress?: (fraction: number) => void }): Promise<void>;

/** An S3 key as a URL path: each segment percent-encoded, the slashes kept. */
export declare function keyPath(key: string): string;
