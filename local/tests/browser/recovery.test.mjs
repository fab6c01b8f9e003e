// The client's recovery, token renewal, conditional polling and React hooks in headless Chromium,
// against two local stacks: node recovery.test.mjs TOKENS_URL OPEN_URL STUCK_TOKEN
//
// Both run their simulated MediaConvert at one second per step (a job takes about ten). The first
// has read tokens that live five seconds, and `STUCK_TOKEN` covers its `stuck/clip.mp4`, whose job
// the test stores through the Invoke API and which then never changes; the second has no tokens. Each page loads the client module
// the stack serves; Playwright's `routeWebSocket` stands between the page and the stack's
// WebSocket to cut, drop or close it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { useBrowser } from './chromium.mjs';

const [base, open, stuckToken] = process.argv.slice(2);
assert.ok(base && open && stuckToken, 'usage: node recovery.test.mjs TOKENS_URL OPEN_URL STUCK_TOKEN');
const chromium = useBrowser();
const until = async (what, check, timeout = 30_000, every = 25) => {
  const end = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, every));
  }
};

/** A page of a stack's origin (`at`) with a ProgressClient (`options`) as `window.client`. */
async function clientPage(context, options, at = base) {
  const page = await context.newPage();
  await page.goto(`${at}/`);
  await page.evaluate(async (options) => {
    const module = await import('/mcpush-client.js');
    window.mc = module;
    window.client = new module.ProgressClient({ websocketUrl: `ws://${location.host}/ws`, restUrl: '', ...options });
    window.seen = [];
    window.errors = [];
  }, options);
  return page;
}

/** Uploads a file from the page and watches its job with the granted token; answers the grant. */
async function uploadAndWatch(page, name) {
  return page.evaluate(async (name) => {
    const file = new File([new Uint8Array(200_000)], name, { type: 'video/mp4' });
    const granted = await mc.requestUpload('', file);
    window.watch = client.watch(granted.input_file, (s) => seen.push(s), { token: granted.token, onError: (m) => errors.push(m) });
    window.outcome = watch.done.then((s) => s.job_status, (e) => `failed: ${e.message}`);
    await mc.upload(granted.upload, file);
    return granted;
  }, name);
}

const latest = (page) => page.evaluate(() => seen.at(-1) ?? null);

async function serverState(at, file) {
  const response = await fetch(`${at}/media/status?input_file=${encodeURIComponent(file)}`);
  return response.json();
}

test('after a dead socket and offline → online, the page shows the current state within 1 s, not after the backoff', async () => {
  const context = await chromium.get().newContext();
  // the first connection goes dead (its frames never arrive, as after a network change); while
  // offline no connection opens
  let connections = 0;
  let offline = false;
  const page = await clientPage(context, { minBackoffMs: 30_000, maxBackoffMs: 30_000, pollIntervalMs: 60_000, recheckIntervalMs: 60_000, subscribeTimeoutMs: 60_000 }, open);
  const dead = { cut: false };
  await page.routeWebSocket(/\/ws$/, (ws) => {
    if (offline) return ws.close();
    const first = ++connections === 1;
    const server = ws.connectToServer();
    server.onMessage((message) => (first && dead.cut ? undefined : ws.send(message)));
  });
  const granted = await uploadAndWatch(page, 'Offline Clip.mp4');
  await until('a first state', async () => (await latest(page))?.job_status === 'PROGRESSING');

  // WHEN the socket goes dead, the network goes away and the job finishes meanwhile
  dead.cut = true;
  offline = true;
  await context.setOffline(true);
  await page.evaluate(() => dispatchEvent(new Event('offline')));
  await until('the job to finish', async () => (await serverState(open, granted.input_file)).job_status === 'COMPLETE', 30_000, 200);
  assert.notEqual((await latest(page)).job_status, 'COMPLETE', 'the page has not seen it yet');

  // THEN once the network is back, the page shows it within a second
  offline = false;
  await context.setOffline(false);
  const back = Date.now();
  await page.evaluate(() => dispatchEvent(new Event('online')));
  await until('COMPLETE on the page', async () => (await latest(page))?.job_status === 'COMPLETE', 1000, 10);
  assert.ok(Date.now() - back <= 1000, `shown ${Date.now() - back} ms after coming back`);
  assert.ok(connections >= 2, 'a new connection was opened');
  await context.close();
});

test('a watch that outlives its first token (5 s) renews it and follows the job to COMPLETE across a reconnect', async () => {
  const context = await chromium.get().newContext();
  const page = await clientPage(context, { minBackoffMs: 100, maxBackoffMs: 200, recheckIntervalMs: 60_000 });
  const sockets = [];
  const subscribes = [];
  await page.routeWebSocket(/\/ws$/, (ws) => {
    sockets.push(ws);
    const server = ws.connectToServer();
    ws.onMessage((message) => {
      const parsed = JSON.parse(message);
      if (parsed.action === 'subscribe') subscribes.push(parsed);
      server.send(message);
    });
  });
  const renewals = [];
  page.on('request', (request) => request.url().endsWith('/media/tokens') && renewals.push(request.postDataJSON()));
  const granted = await uploadAndWatch(page, 'Long Clip.mp4');
  assert.ok(granted.token_expires_at - Date.now() / 1000 <= 5.5, `a short-lived token: ${JSON.stringify(granted)}`);

  // WHEN the first token has expired and the connection drops: the client must subscribe again
  await new Promise((resolve) => setTimeout(resolve, 6000));
  assert.notEqual((await latest(page))?.job_status, 'COMPLETE', 'the job is still running after 6 s');
  sockets[0].close();

  // THEN it follows the job to COMPLETE with renewed tokens, on the new connection
  assert.equal(await page.evaluate(() => outcome), 'COMPLETE', await page.evaluate(() => JSON.stringify(errors)));
  assert.ok(renewals.length >= 1 && renewals[0].token === granted.token && renewals[0].input_file === granted.input_file, JSON.stringify(renewals));
  const after = subscribes.slice(1);
  assert.ok(after.length >= 1 && after.every((s) => s.token !== granted.token), JSON.stringify(subscribes));
  assert.ok(sockets.length >= 2, 'reconnected');
  assert.deepEqual(await page.evaluate(() => errors.filter((e) => /token/.test(e))), []);
  await context.close();
});

test('while nothing changes, a polling client is answered 304 without a body', async () => {
  // GIVEN a job that stays PROGRESSING (stored through the Invoke API; no simulator behind it)
  const event = { version: '0', id: '7c5c0e2e-0000-4000-8000-000000000304', 'detail-type': 'MediaConvert Job State Change', source: 'aws.mediaconvert',
    account: '111122223333', time: '2026-12-06T10:00:00Z', region: 'us-east-1', resources: [],
    detail: { timestamp: Date.now(), jobId: `${Date.now()}-stuck1`, status: 'STATUS_UPDATE', userMetadata: { input_file: 'stuck/clip.mp4' },
      jobProgress: { jobPercentComplete: 42, currentPhase: 'TRANSCODING' } } };
  const invoked = await fetch(`${base}/2015-03-31/functions/progress-ingest/invocations`, { method: 'POST', body: JSON.stringify(event) });
  assert.equal(invoked.status, 200);
  const context = await chromium.get().newContext();
  const page = await clientPage(context, { pollIntervalMs: 150, minBackoffMs: 60_000, maxBackoffMs: 60_000 });
  await page.routeWebSocket(/\/ws$/, (ws) => ws.close()); // no socket: the client polls
  const answers = [];
  page.on('response', async (response) => {
    if (response.url().includes('/media/status')) answers.push([response.status(), (await response.body().catch(() => Buffer.alloc(0))).length]);
  });
  // WHEN it watches the file for two seconds
  await page.evaluate((token) => { window.watch = client.watch('stuck/clip.mp4', (s) => seen.push(s), { token }); }, stuckToken);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  // THEN it read the state once and every later poll was a 304 with no body
  assert.equal((await latest(page)).progress_rate, 42);
  assert.ok(answers.length >= 6, `${answers.length} polls`);
  assert.equal(answers[0][0], 200);
  const later = answers.slice(1);
  assert.deepEqual(later.filter(([status, bytes]) => status !== 304 || bytes !== 0), [], JSON.stringify(answers));
  await context.close();
});

test('a client that misses a pushed update sees the gap in versions and reads the current state at once', async () => {
  const context = await chromium.get().newContext();
  const page = await clientPage(context, { recheckIntervalMs: 60_000, subscribeTimeoutMs: 60_000 }, open);
  const forwarded = [];
  let dropped = null;
  await page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    server.onMessage((message) => {
      const parsed = JSON.parse(message);
      // the first new version after the first state is lost on the way
      const versions = forwarded.filter((m) => m.type === 'status').map((m) => m.version);
      if (parsed.type === 'status' && !dropped && versions.length > 0 && parsed.version > Math.max(...versions)) {
        dropped = parsed;
        return;
      }
      forwarded.push({ ...parsed, at: Date.now() });
      ws.send(message);
    });
  });
  const reads = [];
  page.on('request', (request) => request.url().includes('/media/status') && reads.push(Date.now()));
  await uploadAndWatch(page, 'Gap Clip.mp4');
  assert.equal(await page.evaluate(() => outcome), 'COMPLETE');
  // THEN the frame after the lost one skipped a version, and the client read the state right then
  assert.ok(dropped, 'a status was dropped');
  const statuses = forwarded.filter((m) => m.type === 'status');
  const next = statuses.find((m) => m.version > dropped.version);
  assert.ok(next && next.version > statuses[0].version + 1, JSON.stringify(forwarded));
  assert.ok(reads.some((t) => t >= next.at && t - next.at < 500), `reads at ${reads.map((t) => t - next.at)} ms from the gap`);
  assert.equal((await latest(page)).job_status, 'COMPLETE');
  await context.close();
});

test('a React page follows its upload with useJobStatus, one subscription under StrictMode', async () => {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const bundle = await build({
    entryPoints: [`${here}react-page.jsx`], bundle: true, write: false, format: 'esm', jsx: 'automatic', logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"development"' },
    // one React: the page's, also for the client package's hooks
    nodePaths: [`${here}node_modules`],
    alias: { react: `${here}node_modules/react`, 'react-dom': `${here}node_modules/react-dom` },
  });
  const context = await chromium.get().newContext();
  const page = await context.newPage();
  const subscribes = [];
  page.on('websocket', (ws) => ws.on('framesent', (f) => {
    const message = JSON.parse(String(f.payload));
    if (message.action === 'subscribe') subscribes.push(message);
  }));
  // the page is the stack's own (its origin and address space), its content the bundle
  await page.goto(`${open}/`);
  await page.setContent('<!doctype html><title>React</title><div id="root"></div>');
  await page.addScriptTag({ type: 'module', content: bundle.outputFiles[0].text });
  await page.waitForFunction(() => typeof window.startReactPage === 'function');
  const file = await page.evaluate(() => startReactPage());
  await page.waitForFunction(() => document.querySelector('#job')?.dataset.status === 'COMPLETE', null, { timeout: 60_000 });
  assert.match(await page.textContent('#job'), /^COMPLETE 100 % v\d+$/);
  assert.equal(subscribes.filter((s) => s.input_file === file).length, 1, JSON.stringify({ file, subscribes }));
  await context.close();
});
