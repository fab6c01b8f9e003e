// Time remaining on the demo page, in headless Chromium: node eta.test.mjs BASE_URL
//
// The stack's simulated MediaConvert runs at one second per 10 s of MediaConvert's time and its
// jobs report every 30 s (STATUS_UPDATE_INTERVAL=SECONDS_30): a pushed update every three
// seconds at most. Between them the page's bar moves on by the client's `estimate`, at least once
// a second, never backwards, and the line says about how long is left. On COMPLETE the page
// shows the job's renditions and its frame capture (a real JPEG under OUTPUT_BASE_URL).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useBrowser } from './chromium.mjs';

const [base] = process.argv.slice(2);
assert.ok(base, 'usage: node eta.test.mjs BASE_URL');
const chromium = useBrowser();

test('while PROGRESSING the bar moves at least once a second and the time left shows; COMPLETE shows renditions and a thumbnail', async () => {
  const page = await chromium.get().newPage({ viewport: { width: 900, height: 900 } });
  const frames = [];
  page.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push([Date.now(), JSON.parse(String(f.payload))])));
  // Every width the bar takes, with when (the fill's inline style, as the page sets it).
  await page.addInitScript(() => {
    window.__widths = [];
    new MutationObserver((mutations) => {
      for (const m of mutations) {
        if (m.target.classList?.contains('fill')) window.__widths.push([Date.now(), parseFloat(m.target.style.width)]);
      }
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ['style'] });
  });
  await page.goto(base);
  await page.setInputFiles('#file', { name: 'Tears of Steel.mp4', mimeType: 'video/mp4', buffer: Buffer.alloc(400_000, 7) });
  await page.click('#start');
  const card = page.locator('.job');

  // WHEN the job runs: an estimate shows once transcoding has reported
  await page.waitForFunction((el) => /about \d+ (s|min) left/.test(el.querySelector('.eta').textContent),
    await card.elementHandle(), { timeout: 30_000, polling: 50 });
  const etaShownAt = Date.now();
  await page.waitForFunction((el) => el.dataset.status === 'COMPLETE', await card.elementHandle(), { timeout: 60_000 });

  // THEN from the first estimate until the job left transcoding, the bar moved at least once a second
  const pushed = frames.filter(([, m]) => m.type === 'status');
  const transcoding = pushed.filter(([, m]) => m.current_phase === 'TRANSCODING');
  assert.ok(transcoding.some(([, m]) => m.eta_ms > 0), `an eta_ms was pushed while transcoding: ${JSON.stringify(pushed.map(([, m]) => m))}`);
  const leftTranscoding = pushed.find(([, m]) => m.current_phase === 'UPLOADING' || m.job_status === 'COMPLETE')[0];
  const widths = await page.evaluate(() => window.__widths);
  const moves = widths.filter(([t]) => t >= etaShownAt && t <= leftTranscoding);
  assert.ok(leftTranscoding - etaShownAt >= 2000, `the window is long enough to tell: ${leftTranscoding - etaShownAt} ms`);
  let last = etaShownAt;
  for (const [t] of moves) {
    assert.ok(t - last <= 1100, `the bar stood still for ${t - last} ms`);
    last = t;
  }
  assert.ok(leftTranscoding - last <= 1100, `the bar stood still for ${leftTranscoding - last} ms before leaving transcoding`);
  // the pushed updates alone are further apart than that
  const gaps = transcoding.map(([t]) => t).concat([leftTranscoding]).slice(1).map((t, i) => t - transcoding[i][0]);
  assert.ok(Math.max(...gaps, 0) >= 2000 || transcoding.length <= 1, `reports ${gaps} ms apart`);
  // AND it never went back
  const values = widths.map(([, w]) => w);
  assert.deepEqual(values, [...values].sort((a, b) => a - b), 'the bar never went back');

  // AND the finished job shows its renditions and its frame capture, served under OUTPUT_BASE_URL
  const complete = pushed.at(-1)[1];
  assert.equal(complete.job_status, 'COMPLETE');
  assert.ok(complete.started_at && complete.queued_ms >= 0 && complete.elapsed_ms > 0, JSON.stringify(complete));
  assert.equal(complete.outputs.length, 2, JSON.stringify(complete.outputs));
  assert.match(await card.locator('.renditions li').first().textContent(), /HLS_GROUP 1280 × 720 2\.0 Mbit\/s · .*_720p\.m3u8/);
  const image = card.locator('.thumbnails img');
  await image.waitFor();
  const src = await image.getAttribute('src');
  assert.match(src, /_thumb\.0000000\.jpg$/);
  assert.equal(await image.evaluate((img) => img.complete && img.naturalWidth), 320, 'the thumbnail is a real 320 px image');
  const jpeg = await page.request.get(src);
  assert.equal(jpeg.status(), 200);
  assert.equal(jpeg.headers()['content-type'], 'image/jpeg');
  assert.deepEqual([...(await jpeg.body()).subarray(0, 3)], [0xff, 0xd8, 0xff], 'a JPEG');
  assert.match(await card.locator('.timing').textContent(), /queued \d+\.\d s, ran \d+\.\d s/);
  await page.close();
});
