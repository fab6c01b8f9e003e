// A tiny React page for the browser tests (bundled by esbuild in recovery.test.mjs): it uploads a
// file and follows its job with useJobStatus, under StrictMode.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { ProgressClient, requestUpload, upload } from '../../../clients/js/mcpush-client.js';
import { ProgressClientProvider, useJobStatus } from '../../../clients/js/react.js';

function Job({ file, token }) {
  const { status, estimate, connection, error } = useJobStatus(file, { token });
  return (
    <p id="job" data-status={status?.job_status ?? ''} data-connection={connection}>
      {status ? `${status.job_status} ${Math.floor(estimate.progress)} % v${status.version}` : connection}
      {error ? ` (${error})` : ''}
    </p>
  );
}

window.startReactPage = async () => {
  const client = new ProgressClient({ websocketUrl: `ws://${location.host}/ws`, restUrl: '' });
  const file = new File([new Uint8Array(200_000)], 'React Clip.mp4', { type: 'video/mp4' });
  const granted = await requestUpload('', file);
  createRoot(document.getElementById('root')).render(
    <StrictMode>
      <ProgressClientProvider client={client}>
        <Job file={granted.input_file} token={granted.token} />
      </ProgressClientProvider>
    </StrictMode>,
  );
  await upload(granted.upload, file);
  return granted.input_file;
};
