// A front end using @mcpush/client, type-checked with `tsc --noEmit --strict` by the tests.
import {
  ProgressClient,
  UploadGoneError,
  estimate,
  requestUpload,
  upload,
  uploadResumable,
  type MultipartGrant,
  type OutputFile,
  type Status,
  type ServerMessage,
  type UploadPhase,
} from '@mcpush/client';

export async function uploadAndWatch(file: File, restUrl: string, websocketUrl: string, render: (line: string) => void): Promise<string> {
  const client = new ProgressClient({ websocketUrl, restUrl });
  const granted = await requestUpload(restUrl, file);
  const w = client.watch(
    granted.input_file,
    (s: Status) => render(`${s.job_status} ${s.progress_rate.toFixed(0)} %${s.current_phase ? ` (${s.current_phase})` : ''}`),
    { token: granted.token, onTransport: (t) => render(`via ${t}`), onError: (message) => render(message) },
  );
  await upload(granted.upload, file, { onProgress: (f) => render(`uploaded ${Math.round(f * 100)} %`) });
  const final = await w.done;
  w.stop();
  client.close();
  const status: string = final.job_status;
  return final.job_status === 'COMPLETE' ? `${status}: ${Object.values(final.playlists ?? {}).join(', ')}` : `${status}: ${final.error_message ?? ''}`;
}

/** A dashboard of every file under `folder`, newest state per file; stop it with the returned function. */
export function dashboard(client: ProgressClient, folder: string, token: string | null, render: (rows: Map<string, Status>) => void): () => void {
  const rows = new Map<string, Status>();
  const w = client.watchPrefix(folder, (s: Status) => { rows.set(s.input_file, s); render(rows); }, { token, onError: (m) => console.warn(m) });
  return () => w.stop();
}

/** A raw message from the WebSocket, narrowed by its `type`. */
export function describe(message: ServerMessage): string {
  switch (message.type) {
    case 'status':
      return `${message.input_file}: ${message.progress_rate} %`;
    case 'statuses':
      return message.updates.map((u) => u.input_file).join(', ');
    case 'error':
      return message.message;
    case 'subscribed':
      return 'prefix' in message ? `watching ${message.prefix}` : `watching ${message.input_file}`;
    default:
      return message.type;
  }
}

/** "about N min left" and a bar that moves between reports, from the latest status. */
export function timeLeft(status: Status, now: number): { percent: number; label: string } {
  const { progress, eta_ms } = estimate(status, now);
  const label = eta_ms === undefined ? '' : eta_ms < 60_000 ? `about ${Math.ceil(eta_ms / 1000)} s left` : `about ${Math.ceil(eta_ms / 60_000)} min left`;
  return { percent: progress, label };
}

/** The renditions of a finished job, with their links when the stack serves them. */
export function renditions(status: Status): string[] {
  const outputs: OutputFile[] = status.outputs ?? [];
  return outputs.map((o) => `${o.type ?? '?'} ${o.width_px ?? '-'}x${o.height_px ?? '-'} ${o.bitrate ?? '-'} bit/s ${o.url ?? o.path ?? ''}`);
}

/** A large file: a resumable upload (a reload resumes it), then one bar for upload and job together. */
export async function sendLarge(client: ProgressClient, restUrl: string, file: File, bar: (progress: number, phase: UploadPhase | 'ERROR' | 'CANCELED') => void): Promise<Status> {
  const grant: MultipartGrant = await requestUpload(restUrl, file, { multipart: true });
  try {
    const sent: { input_file: string; sent: number; resumed: number } = await uploadResumable(grant, file, { concurrency: 4, onProgress: (f) => bar(f / 2, 'UPLOADING_SOURCE') });
    console.log(`${sent.input_file}: ${sent.sent} parts sent, ${sent.resumed} resumed`);
  } catch (e) {
    if (e instanceof UploadGoneError) console.log('ask for a new grant');
    throw e;
  }
  return client.watchUpload(file, ({ progress, phase }) => bar(progress, phase)).done;
}
