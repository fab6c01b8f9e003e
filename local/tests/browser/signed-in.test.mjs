// The browser client signed in with OIDC, in headless Chromium: node signed-in.test.mjs BASE_URL JWT
//
// Against a local stack with OIDC_ISSUER / OIDC_AUDIENCE and read tokens on, the page's client
// asks for an upload with `Authorization: Bearer JWT`, opens its WebSocket with `?access_token=`
// (from an `accessToken` function) and watches the upload without a read token: the job's states
// arrive over the WebSocket through COMPLETE. Without the bearer token the upload API refuses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useBrowser } from './chromium.mjs';

const [base, jwt] = process.argv.slice(2);
assert.ok(base && jwt, 'usage: node signed-in.test.mjs BASE_URL JWT');

const chromium = useBrowser();

test('a signed-in page uploads to its home folder and watches it over the WebSocket without a read token', async () => {
  const page = await chromium.get().newPage();
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(base);

  const outcome = await page.evaluate(async (jwt) => {
    const { ProgressClient, requestUpload, upload } = await import('/mcpush-client.js');
    const file = new File([new Uint8Array(200_000)], 'signed in.mp4', { type: 'video/mp4' });
    let refused = null;
    try {
      await requestUpload('', file);
    } catch (e) {
      refused = e.message;
    }
    const granted = await requestUpload('', file, { fetchOptions: { headers: { Authorization: `Bearer ${jwt}` } } });
    const transports = [];
    const statuses = [];
    const client = new ProgressClient({
      websocketUrl: `ws://${location.host}/ws`,
      accessToken: async () => jwt,
      recheckIntervalMs: 600_000,
      subscribeTimeoutMs: 10_000,
    });
    const watch = client.watch(granted.input_file, (s) => statuses.push(s.job_status), { onTransport: (t) => transports.push(t) });
    await new Promise((resolve) => {
      const wait = () => (transports.includes('websocket') ? resolve() : setTimeout(wait, 20));
      wait();
    });
    await upload(granted.upload, file);
    const final = await watch.done;
    client.close();
    return { refused, key: granted.input_file, final: final.job_status, transports, statuses };
  }, jwt);

  assert.equal(outcome.refused, 'Unauthorized', "HTTP API's 401 message reaches the caller");
  assert.match(outcome.key, /^uploads\/alice\/[0-9a-f]{32}\/signed_in\.mp4$/);
  assert.equal(outcome.final, 'COMPLETE');
  assert.ok(outcome.transports.includes('websocket'), JSON.stringify(outcome.transports));
  assert.ok(!outcome.transports.includes('polling'), `never fell back to polling: ${JSON.stringify(outcome.transports)}`);
  assert.ok(outcome.statuses.includes('PROGRESSING'), JSON.stringify(outcome.statuses));
  assert.equal(sockets.length, 1);
  assert.equal(new URL(sockets[0]).searchParams.get('access_token'), jwt);
  await page.close();
});

test('a signed-in dashboard watches its whole home folder with watchPrefix and batch: true', async () => {
  const page = await chromium.get().newPage();
  const frames = [];
  page.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push(JSON.parse(String(f.payload)))));
  await page.goto(base);

  const outcome = await page.evaluate(async (jwt) => {
    const { ProgressClient, requestUpload, upload } = await import('/mcpush-client.js');
    const auth = { fetchOptions: { headers: { Authorization: `Bearer ${jwt}` } } };
    const files = ['Board One.mp4', 'Board Two.mp4'].map((name) => new File([new Uint8Array(120_000)], name, { type: 'video/mp4' }));
    const grants = await Promise.all(files.map((file) => requestUpload('', file, auth)));
    const client = new ProgressClient({ websocketUrl: `ws://${location.host}/ws`, accessToken: jwt, batch: true, recheckIntervalMs: 600_000 });
    const rows = new Map();
    const transports = [];
    let finish;
    const finished = new Promise((resolve) => { finish = resolve; });
    // No read token: the signed-in user's home folder is theirs to watch.
    const board = client.watchPrefix('uploads/alice/', (s) => {
      rows.set(s.input_file, s.job_status);
      if (grants.every((g) => rows.get(g.input_file) === 'COMPLETE')) finish();
    }, { onTransport: (t) => transports.push(t) });
    await new Promise((resolve) => {
      const wait = () => (transports.includes('websocket') ? resolve() : setTimeout(wait, 20));
      wait();
    });
    await Promise.all(grants.map((g, i) => upload(g.upload, files[i])));
    await finished;
    board.stop();
    client.close();
    return { keys: grants.map((g) => g.input_file), rows: Object.fromEntries(rows), transports };
  }, jwt);

  for (const key of outcome.keys) assert.equal(outcome.rows[key], 'COMPLETE', JSON.stringify(outcome.rows));
  assert.deepEqual(outcome.transports, ['connecting', 'websocket']);
  // On the wire: the confirmation names the folder; the files' states came in statuses frames only,
  // and the stop unsubscribed (confirmed) by prefix
  assert.deepEqual(frames[0], { type: 'subscribed', prefix: 'uploads/alice/' });
  assert.deepEqual(frames.filter((f) => f.type === 'status'), []);
  const updates = frames.filter((f) => f.type === 'statuses').flatMap((f) => f.updates);
  assert.ok(updates.every((u) => u.input_file.startsWith('uploads/alice/')), JSON.stringify(updates));
  await page.close();
});
