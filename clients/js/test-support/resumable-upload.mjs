// Drives `uploadResumable` in Node against a running stack (local/tests/js_upload.rs runs it):
//   node resumable-upload.mjs BASE FILE STORAGE.json stop-after-parts N   → uploads, aborts once N parts are in
//   node resumable-upload.mjs BASE FILE STORAGE.json finish                → resumes (or starts) and completes
// `localStorage` is a JSON file here, so the second process finds what the first remembered, as a
// reloaded page finds it. Prints one JSON line: what happened.
import { readFileSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { requestUpload, uploadResumable } from '../mcpush-client.js';

const [base, path, storagePath, mode, count] = process.argv.slice(2);
const load = () => (existsSync(storagePath) ? JSON.parse(readFileSync(storagePath, 'utf8')) : {});
const storage = {
  getItem: (k) => load()[k] ?? null,
  setItem: (k, v) => writeFileSync(storagePath, JSON.stringify({ ...load(), [k]: v })),
  removeItem: (k) => {
    const all = load();
    delete all[k];
    writeFileSync(storagePath, JSON.stringify(all));
  },
};
const file = new File([readFileSync(path)], basename(path), { type: 'video/mp4', lastModified: statSync(path).mtimeMs });
const fetchOptions = { headers: { Origin: 'http://localhost:3000' } };
const grant = await requestUpload(base, file, { multipart: true, storage, fetchOptions });
const progress = [];
const controller = new AbortController();
const stopAfter = mode === 'stop-after-parts' ? Number(count) * grant.part_size : Infinity;
try {
  const done = await uploadResumable(grant, file, {
    storage,
    fetchOptions,
    concurrency: 1,
    signal: controller.signal,
    onProgress: (fraction, { loaded }) => {
      progress.push(fraction);
      if (loaded >= stopAfter) controller.abort(new Error('stopped on purpose'));
    },
  });
  console.log(JSON.stringify({ outcome: 'complete', resumed_grant: Boolean(grant.resumed), ...done, progress, remembered: Object.keys(load()).length }));
} catch (e) {
  console.log(JSON.stringify({ outcome: 'stopped', error: String(e.message ?? e), input_file: grant.input_file, progress, remembered: Object.keys(load()).length }));
}
