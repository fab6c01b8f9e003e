// The demo page: asks the upload API for a resumable upload, sends the file's parts to the
// (simulated) S3 bucket under that grant and follows its job with the client module and the
// granted token, one bar from the first byte to the last rendition, exactly as a front end on AWS
// does. Reloading the page and choosing the same file again resumes an unfinished upload.
import { ProgressClient, estimate, keyPath } from './mcpush-client.js';

const config = await (await fetch('config.json')).json();
const websocketUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
const client = new ProgressClient({ websocketUrl, restUrl: '', pollIntervalMs: 1000, recheckIntervalMs: config.recheckIntervalMs });

const form = document.querySelector('#upload');
const input = document.querySelector('#file');
input.addEventListener('change', () => {
  document.querySelector('#file-name').textContent = input.files[0]?.name ?? 'Choose a video…';
});

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const file = input.files[0];
  if (file) await start(file);
});

function formatDuration(ms) {
  const seconds = Math.round(ms / 1000);
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** "about 3 min left", "about 40 s left", or nothing when unknown. */
function timeLeft(ms) {
  if (ms == null) return '';
  return ms < 60_000 ? `about ${Math.max(1, Math.ceil(ms / 1000))} s left` : `about ${Math.ceil(ms / 60_000)} min left`;
}

function bitrate(bps) {
  return bps == null ? '' : bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mbit/s` : `${Math.round(bps / 1e3)} kbit/s`;
}

function card(name) {
  const node = document.querySelector('#job').content.firstElementChild.cloneNode(true);
  node.querySelector('.name').textContent = name;
  document.querySelector('#jobs').prepend(node);
  const $ = (selector) => node.querySelector(selector);
  let shown = 0;
  return {
    node,
    // The bar never goes back: a new status may start below where the estimate had moved it.
    progress(percent) {
      shown = Math.max(shown, percent);
      $('.fill').style.width = `${shown}%`;
      $('.bar').setAttribute('aria-valuenow', String(Math.floor(shown)));
      $('.percent').textContent = `${Math.floor(shown)} %`;
    },
    eta(text) { $('.eta').textContent = text ? `· ${text}` : ''; },
    status(text) {
      node.dataset.status = text;
      $('.status').textContent = text;
    },
    failed(text) {
      // A failed job's progress means nothing: the bar keeps where it stopped, marked as failed.
      $('.bar').setAttribute('aria-valuetext', text);
      $('.percent').textContent = text;
    },
    phase(text) { $('.phase').textContent = text ? `· ${text.toLowerCase()}` : ''; },
    transport(t) {
      node.dataset.transport = t;
      $('.transport').dataset.transport = t;
      $('.transport').textContent = { websocket: 'pushed over WebSocket', polling: 'REST polling', connecting: 'connecting…' }[t] ?? t;
    },
    complete(status) {
      $('.duration').textContent = status.duration_ms != null ? `${formatDuration(status.duration_ms)} (${status.duration_ms} ms)` : '—';
      $('.resolution').textContent = status.width_px ? `${status.width_px} × ${status.height_px}` : '—';
      const links = $('.playlists');
      links.replaceChildren();
      for (const [extension, file] of Object.entries(status.playlists ?? {})) {
        const a = document.createElement('a');
        a.href = `${config.outputsUrl}${keyPath(status.output_path + file)}`;
        a.textContent = `${file}`;
        a.title = extension;
        links.append(a);
      }
      if (!links.childElementCount) links.textContent = '—';
      const renditions = $('.renditions');
      renditions.replaceChildren();
      for (const output of status.outputs ?? []) {
        const item = document.createElement('li');
        const size = output.width_px ? `${output.width_px} × ${output.height_px}` : 'audio';
        const label = `${output.type ?? ''} ${size} ${bitrate(output.bitrate)}`.trim();
        const file = (output.path ?? '').split('/').pop();
        if (output.url && file) {
          const a = document.createElement('a');
          a.href = output.url;
          a.textContent = file;
          item.append(`${label} · `, a);
        } else {
          item.textContent = file ? `${label} · ${file}` : label;
        }
        renditions.append(item);
      }
      if (status.outputs_truncated) renditions.append(Object.assign(document.createElement('li'), { textContent: '…' }));
      const thumbnails = $('.thumbnails');
      thumbnails.replaceChildren();
      for (const url of status.thumbnail_urls ?? []) {
        thumbnails.append(Object.assign(document.createElement('img'), { src: url, alt: `frame of ${name}` }));
      }
      if (!thumbnails.childElementCount) thumbnails.textContent = '—';
      const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;
      $('.timing').textContent = [
        status.queued_ms != null ? `queued ${seconds(status.queued_ms)}` : '',
        status.elapsed_ms != null ? `ran ${seconds(status.elapsed_ms)}` : '',
      ].filter(Boolean).join(', ') || '—';
      $('.details').hidden = false;
    },
    error(text) {
      $('.error').textContent = text;
      $('.error').hidden = false;
    },
  };
}

async function start(file) {
  const view = card(file.name);
  view.transport('connecting');
  // One bar: the upload fills its first half (by bytes), the job the second (by its progress);
  // between two reports it moves on at the pace the job's estimate implies.
  const jobShare = (progress) => 50 + progress / 2;
  let latest = null;
  const animate = setInterval(() => {
    if (latest?.job_status !== 'PROGRESSING') return;
    const now = estimate(latest, Date.now());
    view.progress(jobShare(now.progress));
    view.eta(timeLeft(now.eta_ms));
  }, 250);
  const uploading = client.watchUpload(file, ({ progress, phase, status, input_file }) => {
    if (input_file && !view.node.dataset.inputFile) view.node.dataset.inputFile = input_file;
    if (!status) {
      view.progress(progress * 100);
      view.phase(`uploading ${Math.round(progress * 200)} %`);
      return;
    }
    latest = status;
    const ended = ['ERROR', 'CANCELED'].includes(status.job_status);
    if (status.job_status !== 'PROGRESSING') view.eta('');
    if (['COMPLETE', 'ERROR', 'CANCELED'].includes(status.job_status)) clearInterval(animate);
    if (ended) view.failed(status.job_status === 'ERROR' ? 'failed' : 'canceled');
    else view.progress(progress * 100);
    view.status(status.job_status);
    view.phase(status.job_status === 'PROGRESSING' ? status.current_phase : '');
    if (status.job_status === 'COMPLETE') view.complete(status);
    if (status.job_status === 'ERROR') view.error(`${status.error_message ?? 'The job failed.'}${status.error_code ? ` (error ${status.error_code})` : ''}`);
  }, { onTransport: (t) => view.transport(t), onUploaded: () => view.node.dataset.status || view.status('SUBMITTED') });
  try {
    await uploading.done;
  } catch (e) {
    clearInterval(animate);
    if (!view.node.dataset.inputFile) view.transport('refused');
    view.status('ERROR');
    view.failed(view.node.dataset.inputFile ? 'upload failed' : 'refused');
    view.error(e.message);
  }
}
