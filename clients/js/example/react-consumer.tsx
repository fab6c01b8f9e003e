// A React front end using @mcpush/client/react, type-checked with `tsc --noEmit --strict` by the tests.
import { ProgressClient, type Status } from '@mcpush/client';
import { ProgressClientProvider, useFolder, useJobStatus, type Connection } from '@mcpush/client/react';

const client = new ProgressClient({ websocketUrl: 'wss://ws.example.com/prod', restUrl: 'https://api.example.com', longPoll: true });

/** One upload's progress bar; the token is renewed by the client before it expires. */
export function JobProgress({ inputFile, token }: { inputFile: string | null; token: string | (() => Promise<string>) }) {
  const { status, estimate, connection, error } = useJobStatus(inputFile, { token });
  const via: Connection = connection;
  if (error) return <p role="alert">{error}</p>;
  if (!status) return <p>waiting for the job ({via})</p>;
  const percent: number = estimate?.progress ?? status.progress_rate;
  return (
    <div>
      <progress max={100} value={percent} />
      <span>{status.job_status} v{status.version}{estimate?.eta_ms !== undefined ? ` · ${Math.ceil(estimate.eta_ms / 1000)} s left` : ''}</span>
    </div>
  );
}

/** Every upload of a user, with an explicit client instead of the provider's. */
export function Uploads({ folder, token }: { folder: string; token: string }) {
  const { statuses } = useFolder(folder, { token, client });
  const rows: Status[] = Object.values(statuses);
  return <ul>{rows.map((s) => <li key={s.input_file}>{s.input_file}: {s.job_status}</li>)}</ul>;
}

export function App() {
  return (
    <ProgressClientProvider client={client}>
      <JobProgress inputFile="uploads/u1/clip.mp4" token={async () => 'fresh-token'} />
      <Uploads folder="uploads/u1/" token="folder-token" />
    </ProgressClientProvider>
  );
}
