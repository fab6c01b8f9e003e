// A large upload survives a reload: node resume.test.mjs BASE_URL FILE_PATH
//
// The demo page uploads FILE (300 MB, 38 parts of 8 MiB) in parts; at about half way the page is
// reloaded, which aborts the parts in flight. The same file is chosen again on the fresh page: the
// client finds the remembered upload, asks S3 which parts it holds and sends only the others, then
// completes it and the job runs to COMPLETE. Each page's bar never goes back, and the reloaded
// page's bar starts where S3 stood, not at 0. The Rust side (browser.rs) counts the parts the
// simulated S3 received: each exactly once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { statSync } from 'node:fs';
import { useBrowser } from './chromium.mjs';

const [base, file] = process.argv.slice(2);
assert.ok(base && file, 'usage: node resume.test.mjs BASE_URL FILE_PATH');

const chromium = useBrowser();
const PART = 8 * 1024 * 1024;

/** The parts PUT to S3 that S3 acknowledged on this page, and the bar's values as it changed. */
async function instrument(page) {
  const acknowledged = [];
  page.on('requestfinished', async (request) => {
    const url = new URL(request.url());
    if (request.method() !== 'PUT' || !url.searchParams.has('partNumber')) return;
    if ((await request.response())?.status() === 200) acknowledged.push(Number(url.searchParams.get('partNumber')));
  });
  await page.addInitScript(() => {
    new MutationObserver((mutations) => {
      for (const m of mutations) {
        if (m.attributeName === 'aria-valuenow') (window.__seen ??= []).push(Number(m.target.getAttribute('aria-valuenow')));
      }
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ['aria-valuenow'] });
  });
  return acknowledged;
}

const seen = (page) => page.evaluate(() => window.__seen ?? []);
const ascending = (values) => values.every((v, i) => i === 0 || values[i - 1] <= v);

test('a 300 MB upload reloaded half way resumes with the missing parts only and its job completes', async () => {
  const size = statSync(file).size;
  const parts = Math.ceil(size / PART);
  const context = await chromium.get().newContext();
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page: ${e.message}`));
  const before = await instrument(page);
  await page.goto(base);

  // GIVEN an upload in parts, stopped by a reload at about half way (the bar's first half is the upload)
  await page.setInputFiles('#file', file);
  await page.click('#start');
  await page.waitForFunction(() => Number(document.querySelector('.job .bar')?.getAttribute('aria-valuenow')) >= 25,
    null, { timeout: 120_000, polling: 50 });
  const beforeBar = await seen(page);
  const acknowledgedBefore = [...before];
  await page.reload();
  assert.ok(ascending(beforeBar), `the bar went back before the reload: ${beforeBar}`);
  assert.ok(acknowledgedBefore.length >= parts / 4 && acknowledgedBefore.length < parts,
    `about half the parts were in when the page reloaded: ${acknowledgedBefore.length} of ${parts}`);
  const remembered = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('mcpush.upload:')));
  assert.equal(remembered.length, 1, 'the page remembers the unfinished upload');

  // WHEN the same file is chosen again on the reloaded page
  const after = [];
  page.on('requestfinished', async (request) => {
    const url = new URL(request.url());
    if (request.method() !== 'PUT' || !url.searchParams.has('partNumber')) return;
    if ((await request.response())?.status() === 200) after.push(Number(url.searchParams.get('partNumber')));
  });
  await page.setInputFiles('#file', file);
  await page.click('#start');
  const card = page.locator('.job');
  await page.waitForFunction(() => document.querySelector('.job')?.dataset.status === 'COMPLETE', null,
    { timeout: 180_000, polling: 100 });

  // THEN only the parts S3 lacked were sent, none of those acknowledged before, and the job completed
  assert.ok(after.length > 0 && after.length < parts, `parts sent after the reload: ${after.length} of ${parts}`);
  for (const n of after) assert.ok(!acknowledgedBefore.includes(n), `part ${n} was sent twice`);
  assert.ok(acknowledgedBefore.length + after.length <= parts);
  assert.equal(await card.locator('.bar').getAttribute('aria-valuenow'), '100');
  assert.equal(await card.locator('.status').textContent(), 'COMPLETE');
  // the reloaded page's bar began where S3 stood (at least the parts acknowledged before) and never went back
  const afterBar = await seen(page);
  assert.ok(ascending(afterBar), `the bar went back after the reload: ${afterBar}`);
  const held = (acknowledgedBefore.length * PART) / size;
  assert.ok(afterBar[0] >= Math.floor(50 * held) - 1, `the bar restarted at ${afterBar[0]}, below the ${50 * held} % S3 held`);
  assert.equal(afterBar.at(-1), 100);
  const left = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('mcpush.upload:')));
  assert.deepEqual(left, [], 'a completed upload is forgotten');
  assert.deepEqual(problems, []);
  console.log(JSON.stringify({ parts, before: acknowledgedBefore.length, after: after.length, input_file: await card.getAttribute('data-input-file') }));
  await context.close();
});
