// The demo page in headless Chromium: node demo.test.mjs BASE_URL SCREENSHOT_PATH
//
// 1. A video uploaded on the page reaches 100 % with its COMPLETE details, pushed over the WebSocket,
//    with no console error and no failing request on the way; an ERROR shows as failed, not 100 %.
// 2. With the WebSocket blocked, the same flow completes by REST polling.
// 3. With the socket open but its final status frame dropped, the page still ends COMPLETE
//    (the client re-checks /media/status while subscribed).
// 4. A client module with `batch: true` gets its pushes as `statuses` frames and follows two
//    uploads to COMPLETE.
// Every upload goes through the upload API (POST /media/uploads with "multipart", then its parts PUT
// to their presigned URLs and /media/uploads/complete), and the
// stack requires read tokens: the page watches with the granted one. An empty file is refused by
// the upload API and a file named to fail shows MediaConvert's error message; a job in flight
// shows its phase. The screenshot (the README's) is taken then, on that page.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useBrowser } from './chromium.mjs';

const [base, screenshot] = process.argv.slice(2);
assert.ok(base && screenshot, 'usage: node demo.test.mjs BASE_URL SCREENSHOT_PATH');

const chromium = useBrowser();

const video = (name, bytes = 250_000) => ({ name, mimeType: 'video/mp4', buffer: Buffer.alloc(bytes, 7) });

async function uploadOn(page, file) {
  await page.setInputFiles('#file', file);
  await page.click('#start');
  return page.locator('.job', { has: page.locator('.name', { hasText: file.name }) });
}


async function waitForStatus(card, status) {
  await card.page().waitForFunction(
    ([el, s]) => el.dataset.status === s, [await card.elementHandle(), status], { timeout: 30_000 });
}

async function sawProgress(card) {
  // Every value the bar showed, recorded by the page as it changed.
  return card.evaluate((el) => el.__seen ?? []);
}

async function recordBar(page) {
  await page.addInitScript(() => {
    new MutationObserver((mutations) => {
      for (const m of mutations) {
        if (m.attributeName === 'aria-valuenow') {
          const job = m.target.closest('.job');
          (job.__seen ??= []).push(Number(m.target.getAttribute('aria-valuenow')));
        }
      }
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ['aria-valuenow'] });
  });
}

test('an uploaded video reaches 100 % with its COMPLETE details, pushed over the WebSocket; errors show their message', async () => {
  const page = await chromium.get().newPage({ viewport: { width: 900, height: 900 } });
  const frames = [];
  page.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push(String(f.payload))));
  // The normal flow logs no error and makes no failing request (a favicon is served; the client
  // does not ask /media/status for a job that does not exist yet).
  const problems = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`page: ${e.message}`));
  page.on('response', (r) => r.status() >= 400 && problems.push(`${r.status()} ${r.url()}`));
  page.on('requestfailed', (r) => problems.push(`failed: ${r.url()}`));
  await recordBar(page);
  await page.goto(base);

  const card = await uploadOn(page, video('Big Buck Bunny.mp4'));
  await waitForStatus(card, 'COMPLETE');
  assert.deepEqual(problems, [], 'the normal flow made no failing request and logged no error');
  const icon = await page.request.get(new URL('/favicon.ico', base).href);
  assert.equal(icon.status(), 200);
  assert.match(icon.headers()['content-type'], /^image\//);
  assert.equal(await card.getAttribute('data-transport'), 'websocket');
  assert.equal(await card.locator('.bar').getAttribute('aria-valuenow'), '100');
  assert.equal(await card.locator('.percent').textContent(), '100 %');
  assert.match(await card.locator('.duration').textContent(), /^0:01 \(1000 ms\)$/);
  assert.equal(await card.locator('.resolution').textContent(), '1280 × 720');
  const link = card.locator('.playlists a');
  assert.equal(await link.textContent(), 'Big_Buck_Bunny.m3u8', 'the key is the upload API\'s, its name sanitised');
  const playlist = await page.request.get(await link.evaluate((a) => a.href));
  assert.equal(playlist.status(), 200);
  assert.match(await playlist.text(), /^#EXTM3U/);

  // The bar moved through the simulator's progress, never backwards, and phases were shown.
  const seen = await sawProgress(card);
  assert.ok(seen.length >= 3, `progress updates seen: ${seen}`);
  assert.deepEqual(seen, [...seen].sort((a, b) => a - b));
  const key = await card.getAttribute('data-input-file');
  assert.match(key, /^uploads\/[0-9a-f]{32}\/Big_Buck_Bunny\.mp4$/);
  const pushed = frames.map((f) => JSON.parse(f)).filter((m) => m.type === 'status' && m.input_file === key);
  assert.ok(pushed.some((m) => m.current_phase === 'TRANSCODING'), 'a TRANSCODING phase was pushed');
  assert.equal(pushed.at(-1).job_status, 'COMPLETE');

  // The upload API refuses an empty file, naming why; nothing is uploaded.
  const empty = await uploadOn(page, video('empty.mp4', 0));
  await waitForStatus(empty, 'ERROR');
  assert.match(await empty.locator('.error').textContent(), /size must be at least 1 byte/);
  assert.equal(await empty.locator('.details').isHidden(), true);

  const named = await uploadOn(page, video('will-fail.mov'));
  await waitForStatus(named, 'ERROR');
  assert.match(await named.locator('.error').textContent(), /Failed to open input file \[s3:\/\/uploads\/uploads\/[0-9a-f]{32}\/will-fail\.mov\].*\(error 1010\)/);
  // An error shows as an error, not as a full bar at 100 %.
  assert.equal(await named.locator('.percent').textContent(), 'failed');
  assert.equal(await named.locator('.bar').getAttribute('aria-valuetext'), 'failed');
  assert.notEqual(await named.locator('.bar').getAttribute('aria-valuenow'), '100');

  // A job in flight shows its phase.
  const running = await uploadOn(page, video('Sintel.mp4', 2_000_000));
  await page.waitForFunction((el) => el.dataset.status === 'PROGRESSING' && /transcoding/.test(el.querySelector('.phase').textContent)
    && Number(el.querySelector('.bar').getAttribute('aria-valuenow')) >= 45,
    await running.elementHandle(), { timeout: 30_000, polling: 20 });
  await page.addStyleTag({ content: '* { transition: none !important; }' }); // bars drawn at their values
  await page.screenshot({ path: screenshot, fullPage: true });
  await waitForStatus(running, 'COMPLETE');
  await page.close();
});

test('with the WebSocket blocked, the upload completes by REST polling', async () => {
  const context = await chromium.get().newContext();
  let attempts = 0;
  // Every connection to /ws is refused before it reaches the server.
  await context.routeWebSocket(/\/ws$/, (ws) => {
    attempts += 1;
    ws.close({ code: 1011, reason: 'blocked by the test' });
  });
  const page = await context.newPage();
  await recordBar(page);
  const polls = [];
  page.on('request', (r) => r.url().includes('/media/status?input_file=') && polls.push(r.url()));
  await page.goto(base);

  const card = await uploadOn(page, video('Polled Clip.mp4'));
  await waitForStatus(card, 'COMPLETE');
  assert.equal(await card.getAttribute('data-transport'), 'polling');
  assert.equal(await card.locator('.bar').getAttribute('aria-valuenow'), '100');
  assert.equal(await card.locator('.resolution').textContent(), '1280 × 720');
  assert.equal(await card.locator('.playlists a').textContent(), 'Polled_Clip.m3u8');
  assert.ok(attempts >= 1, 'the page tried the WebSocket');
  assert.ok(polls.length >= 2, `REST polls: ${polls.length}`);
  const seen = await sawProgress(card);
  assert.deepEqual(seen, [...seen].sort((a, b) => a - b));
  await context.close();
});

test('with the final status frame dropped on the way, the page still shows COMPLETE by re-checking', async () => {
  const context = await chromium.get().newContext();
  const dropped = [];
  // The socket works, but every final status the server pushes is lost before the page sees it.
  await context.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    server.onMessage((message) => {
      const m = JSON.parse(String(message));
      if (m.type === 'status' && ['COMPLETE', 'ERROR', 'CANCELED'].includes(m.job_status)) {
        dropped.push(m.job_status);
        return;
      }
      ws.send(message);
    });
  });
  const page = await context.newPage();
  await page.goto(base);

  const card = await uploadOn(page, video('Dropped Final.mp4'));
  await waitForStatus(card, 'COMPLETE');
  assert.deepEqual(dropped, ['COMPLETE'], 'the final frame was pushed and dropped');
  assert.equal(await card.getAttribute('data-transport'), 'websocket');
  assert.equal(await card.locator('.bar').getAttribute('aria-valuenow'), '100');
  assert.equal(await card.locator('.playlists a').textContent(), 'Dropped_Final.m3u8');
  await context.close();
});

test('a client with batch: true gets every push as one statuses frame and follows two uploads to COMPLETE', async () => {
  const page = await chromium.get().newPage();
  const frames = [];
  page.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push(JSON.parse(String(f.payload)))));
  await page.goto(base);

  const outcome = await page.evaluate(async () => {
    const { ProgressClient, requestUpload, upload } = await import('/mcpush-client.js');
    const files = ['Batched One.mp4', 'Batched Two.mp4'].map((name) => new File([new Uint8Array(150_000)], name, { type: 'video/mp4' }));
    const grants = await Promise.all(files.map((file) => requestUpload('', file)));
    const client = new ProgressClient({ websocketUrl: `ws://${location.host}/ws`, batch: true, recheckIntervalMs: 600_000, subscribeTimeoutMs: 10_000 });
    const transports = [];
    const watches = grants.map((g) => client.watch(g.input_file, () => {}, { token: g.token, onTransport: (t) => transports.push(t) }));
    await new Promise((resolve) => {
      const wait = () => (transports.filter((t) => t === 'websocket').length === 2 ? resolve() : setTimeout(wait, 20));
      wait();
    });
    await Promise.all(grants.map((g, i) => upload(g.upload, files[i])));
    const finals = await Promise.all(watches.map((w) => w.done));
    client.close();
    return { finals: finals.map((f) => f.job_status), keys: grants.map((g) => g.input_file), transports };
  });

  assert.deepEqual(outcome.finals, ['COMPLETE', 'COMPLETE']);
  assert.ok(!outcome.transports.includes('polling'), JSON.stringify(outcome.transports));
  // On the wire: the two confirmations, then only statuses frames (no file had a job when it was
  // subscribed, so there was no snapshot), which carried both files through COMPLETE.
  assert.deepEqual(frames.filter((f) => f.type === 'subscribed').map((f) => f.input_file).sort(), [...outcome.keys].sort());
  assert.deepEqual(frames.filter((f) => f.type === 'status'), []);
  const updates = frames.filter((f) => f.type === 'statuses').flatMap((f) => f.updates);
  for (const key of outcome.keys) {
    assert.ok(updates.some((u) => u.input_file === key && u.job_status === 'COMPLETE'), `COMPLETE of ${key} in a statuses frame`);
  }
  await page.close();
});
