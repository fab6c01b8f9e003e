// Types of @mcpush/client/react (react.js).
import type { ReactNode, ReactElement } from 'react';
import type { ProgressClient, Status, TokenSource, Transport } from './mcpush-client.js';

/** How a hook's state arrives: a transport, `done` once the job is final, `closed` after a refusal ended it, `idle` when nothing is watched. */
export type Connection = Transport | 'done' | 'closed' | 'idle';

export interface HookOptions {
  /** The read token (or a function answering a fresh one); renewed by the client. */
  token?: TokenSource;
  /** The client to use; defaults to the nearest `ProgressClientProvider`'s. */
  client?: ProgressClient;
}

export interface JobStatusState {
  /** The newest state, or null until one is known. */
  status: Status | null;
  /** The client's `estimate(status)` at this render. */
  estimate: { progress: number; eta_ms?: number } | undefined;
  connection: Connection;
  /** The latest error message, or null. */
  error: string | null;
}

export interface FolderState extends JobStatusState {
  /** Each file's newest state, by input file. */
  statuses: Readonly<Record<string, Status>>;
}

/** Gives the hooks below it a client. */
export declare function ProgressClientProvider(props: { client: ProgressClient; children?: ReactNode }): ReactElement;

/** The client of the nearest `ProgressClientProvider`, or null. */
export declare function useProgressClient(): ProgressClient | null;

/** Follows one input file (nothing when falsy); one shared watch per file per client. */
export declare function useJobStatus(inputFile: string | null | undefined, options?: HookOptions): JobStatusState;

/** Follows every file under a folder (ending in `/`); one shared watch per folder per client. */
export declare function useFolder(prefix: string | null | undefined, options?: HookOptions): FolderState;
