// The client's logic with a fake WebSocket and a fake fetch (node's test runner, no browser):
// node --test clients/js/test/. The real thing runs in headless Chromium (local/tests/browser).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProgressClient, estimate, isNewer, keyPath, missedUpdate, tokenExpiry } from '../mcpush-client.js';
import { FakeWebSocket } from '../test-support/fake-websocket.mjs';

/**
 * A fetch that answers `/media/status` from `answers` (input file → [status code, body], or a
 * function of the request answering one) and `POST /media/tokens` from `answers.renew` (a function
 * of the request body); records each URL and each request.
 */
function fakeFetch(answers) {
  const urls = [];
  const requests = [];
  const fetch = async (url, init = {}) => {
    urls.push(url);
    requests.push({ url, ...init });
    const parsed = new URL(url, 'http://x');
    let answer;
    if (parsed.pathname === '/media/tokens') {
      answer = answers.renew?.(JSON.parse(init.body)) ?? [404, { success: false, message: 'No route matches.' }];
    } else {
      const file = parsed.searchParams.get('input_file');
      const entry = answers[file] ?? [422, { success: false, message: 'Not found item.' }];
      answer = typeof entry === 'function' ? entry(parsed, init) : entry;
    }
    const [status, body] = answer;
    return { status, ok: status >= 200 && status < 300, json: async () => body, headers: { get: () => null } };
  };
  return { fetch, urls, requests };
}

function setup(answers = {}) {
  FakeWebSocket.sockets = [];
  globalThis.WebSocket = FakeWebSocket;
  const { fetch, urls, requests } = fakeFetch(answers);
  globalThis.fetch = fetch;
  setup.requests = requests;
  return urls;
}

const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));
const status = (job_status, progress_rate, extra = {}) => ({ input_file: 'a.mp4', job_id: '1700000000000-aaaaaa', job_status, progress_rate, ...extra });

test('subscribes with the token (and batch), delivers newer states only, and ends on a final status', async () => {
  setup();
  const client = new ProgressClient({ websocketUrl: 'ws://x/ws', restUrl: 'http://x', batch: true, recheckIntervalMs: 60_000 });
  const seen = [];
  const watch = client.watch('a.mp4', (s) => seen.push(`${s.job_status} ${s.progress_rate}`), { token: 'T' });
  await tick(1); // the socket opens once the URL is known (an access token may be fetched first)
  const socket = FakeWebSocket.sockets[0];
  socket.open();
  assert.deepEqual(socket.sent, [{ action: 'subscribe', input_file: 'a.mp4', token: 'T', batch: true }]);
  socket.receive({ type: 'subscribed', input_file: 'a.mp4' });
  socket.receive({ type: 'status', ...status('PROGRESSING', 40) });
  socket.receive({ type: 'status', ...status('PROGRESSING', 30) }); // a late push: dropped
  socket.receive({ type: 'statuses', updates: [status('PROGRESSING', 70), { ...status('PROGRESSING', 5), input_file: 'other.mp4' }] });
  socket.receive({ type: 'status', ...status('COMPLETE', 100, { playlists: { '.m3u8': 'a.m3u8' } }) });
  const final = await watch.done;
  assert.deepEqual(seen, ['PROGRESSING 40', 'PROGRESSING 70', 'COMPLETE 100']);
  assert.equal(final.playlists['.m3u8'], 'a.m3u8');
  assert.deepEqual(socket.sent.at(-1), { action: 'unsubscribe', input_file: 'a.mp4' });
  assert.equal(socket.readyState, 3, 'the last watch closed the socket');
  client.close();
});

test('subscribed to a file with no job yet, it asks /media/status for nothing: it re-subscribes for the snapshot until a state is known', async () => {
  const urls = setup({ 'a.mp4': [200, { success: true, ...status('PROGRESSING', 60) }] });
  const client = new ProgressClient({ websocketUrl: 'ws://x/ws', restUrl: 'http://x', recheckIntervalMs: 10 });
  const seen = [];
  client.watch('a.mp4', (s) => seen.push(s.progress_rate), { token: 'T' });
  await tick(1);
  const socket = FakeWebSocket.sockets[0];
  socket.open();
  socket.receive({ type: 'subscribed', input_file: 'a.mp4' });
  await tick(35);
  assert.deepEqual(urls, [], 'no status request before the job is known');
  const subscribes = socket.sent.filter((m) => m.action === 'subscribe');
  assert.ok(subscribes.length >= 3, `subscribed again for the snapshot: ${subscribes.length}`);
  assert.deepEqual(subscribes.at(-1), { action: 'subscribe', input_file: 'a.mp4', token: 'T' });
  // Once the job is known, a re-check asks the REST API (a push may be lost on the way).
  socket.receive({ type: 'status', ...status('PROGRESSING', 40) });
  await tick(25);
  assert.ok(urls.length >= 1, 'the known job is re-checked over REST');
  assert.equal(urls[0], 'http://x/media/status?input_file=a.mp4&token=T');
  assert.deepEqual(seen.slice(0, 2), [40, 60]);
  client.close();
});

test('re-checks only after a silence: while pushes come more often than recheckIntervalMs it asks nothing', async () => {
  const urls = setup({ 'a.mp4': [200, { success: true, ...status('PROGRESSING', 60, { version: 9 }) }] });
  const client = new ProgressClient({ websocketUrl: 'ws://x/ws', restUrl: 'http://x', recheckIntervalMs: 60 });
  client.watch('a.mp4', () => {});
  await tick(1);
  const socket = FakeWebSocket.sockets[0];
  socket.open();
  socket.receive({ type: 'subscribed', input_file: 'a.mp4' });
  // a push every 10 ms for 120 ms: twice the re-check interval, and no re-check
  for (let version = 1; version <= 12; version += 1) {
    socket.receive({ type: 'status', ...status('PROGRESSING', version * 5, { version }) });
    await tick(10);
  }
  assert.deepEqual(urls, [], 'no re-check while pushes keep coming');
  // then silence: one re-check after 60 ms, and one more after each further 60 ms
  await tick(90);
  assert.equal(urls.length, 1, `one re-check after the first silence: ${urls.length}`);
  await tick(60);
  assert.equal(urls.length, 2, `one more after the next: ${urls.length}`);
  client.close();
});

test('while the socket is down it polls the REST API with the token, then reconnects and subscribes again', async () => {
  const urls = setup({ 'a.mp4': [200, { success: true, ...status('PROGRESSING', 50) }] });
  const client = new ProgressClient({ websocketUrl: 'ws://x/ws', restUrl: 'http://x', pollIntervalMs: 10, minBackoffMs: 1, maxBackoffMs: 5, recheckIntervalMs: 60_000 });
  const transports = [];
  const seen = [];
  client.watch('a.mp4', (s) => seen.push(s.progress_rate), { token: 'T', onTransport: (t) => transports.push(t) });
  await tick(1);
  FakeWebSocket.sockets[0].drop();
  await tick(40);
  assert.ok(urls.length >= 2, `polled ${urls.length} times`);
  assert.equal(urls[0], 'http://x/media/status?input_file=a.mp4&token=T');
  assert.deepEqual(seen, [50], 'the polled state is delivered once');
  const again = FakeWebSocket.sockets.at(-1);
  assert.notEqual(again, FakeWebSocket.sockets[0], 'a new socket was opened');
  again.open();
  again.receive({ type: 'subscribed', input_file: 'a.mp4' });
  assert.deepEqual(again.sent[0], { action: 'subscribe', input_file: 'a.mp4', token: 'T' });
  const polls = urls.length;
  await tick(40);
  assert.ok(urls.length <= polls + 1, 'subscribed again: polling stopped (one re-check at most)');
  assert.deepEqual(transports, ['connecting', 'polling', 'websocket']);
  client.close();
});

test('a 403 renews the token once and carries on; a second refusal in a row ends the watch with the error', async () => {
  // GIVEN a server that refuses the old token and renews it once
  let renewals = 0;
  const urls = setup({
    'a.mp4': (url) => (url.searchParams.get('token') === 'new'
      ? [200, { success: true, ...status('PROGRESSING', 40, { version: 3 }) }]
      : [403, { success: false, message: '"token" has expired' }]),
    renew: (body) => (renewals++ === 0 && body.token === 'old' && body.input_file === 'a.mp4'
      ? [200, { success: true, token: 'new', token_expires_at: null }]
      : [403, { success: false, message: '"token" cannot be renewed further' }]),
  });
  const client = new ProgressClient({ websocketUrl: 'ws://x/ws', restUrl: 'http://x', pollIntervalMs: 5, minBackoffMs: 1000 });
  const errors = [];
  const seen = [];
  const watch = client.watch('a.mp4', (s) => seen.push(s.progress_rate), { token: 'old', onError: (m) => errors.push(m) });
  await tick(1);
  FakeWebSocket.sockets[0].drop();
  await tick(30);
  // THEN the watch renewed and reads on with the new token
  assert.deepEqual(seen, [40]);
  assert.equal(renewals, 1);
  assert.ok(urls.some((u) => u.includes('token=new')), urls.join('\n'));
  // WHEN the new token is refused too (a second refusal, after a renewal that fails)
  globalThis.fetch = async (url) => (url.includes('/media/tokens')
    ? { status: 403, ok: false, json: async () => ({ success: false, message: 'no' }) }
    : { status: 403, ok: false, json: async () => ({ success: false, message: '"token" does not cover this input_file' }), headers: { get: () => null } });
  await tick(30);
  // THEN it ends: onError has the server's message and done rejects with it
  await assert.rejects(watch.done, /does not cover this input_file/);
  assert.ok(errors.includes('"token" does not cover this input_file'), JSON.stringify(errors));
  client.close();
});

test('a token function is asked at the start and again before its token expires; the socket re-subscribes with it', async () => {
  setup();
  let asked = 0;
  const token = () => `${Math.floor(Date.now() / 1000) + 2}.${'ab'.repeat(32)}#${++asked}`;
  const client = new ProgressClient({ websocketUrl: 'ws://x/ws', restUrl: 'http://x', recheckIntervalMs: 60_000 });
  client.watch('a.mp4', () => {}, { token });
  await tick(5);
  const socket = FakeWebSocket.sockets[0];
  socket.open();
  socket.receive({ type: 'subscribed', input_file: 'a.mp4' });
  assert.equal(socket.sent[0].token.endsWith('#1'), true, JSON.stringify(socket.sent));
  // a token expiring in 1–2 s is renewed a second before it expires, on the same socket
  await tick(2100);
  assert.ok(asked >= 2, `asked ${asked} times`);
  const resubscribe = socket.sent.filter((m) => m.action === 'subscribe').at(-1);
  assert.ok(resubscribe.token.endsWith(`#${asked}`), JSON.stringify(socket.sent));
  assert.equal(FakeWebSocket.sockets.length, 1, 'no reconnect');
  assert.equal(tokenExpiry('1795557600.abc'), 1795557600);
  assert.equal(tokenExpiry('1795557600.1795550000.abc'), 1795557600);
  assert.equal(tokenExpiry(undefined), undefined);
  client.close();
});

test('a refused subscribe is renewed once over the same socket', async () => {
  setup({ renew: (body) => [200, { success: true, token: `${body.token}+`, token_expires_at: null }] });
  const client = new ProgressClient({ websocketUrl: 'ws://x/ws', restUrl: 'http://x', recheckIntervalMs: 60_000 });
  const errors = [];
  const board = client.watchPrefix('uploads/u1/', () => {}, { token: 'F', onError: (m) => errors.push(m) });
  await tick(1);
  const socket = FakeWebSocket.sockets[0];
  socket.open();
  socket.receive({ type: 'error', message: '"token" has expired', prefix: 'uploads/u1/' });
  await tick(5);
  assert.deepEqual(socket.sent.at(-1), { action: 'subscribe', prefix: 'uploads/u1/', token: 'F+' });
  socket.receive({ type: 'error', message: '"token" has expired', prefix: 'uploads/u1/' });
  await tick(5);
  assert.deepEqual(errors, ['"token" has expired'], 'the second refusal ends the watch');
  assert.deepEqual(socket.sent.filter((m) => m.action === 'subscribe').length, 2);
  board.stop();
  client.close();
});

test('a skipped version makes the client read the state at once; rechecks send If-None-Match and a 304 changes nothing', async () => {
  let current = { success: true, ...status('PROGRESSING', 60, { version: 6 }) };
  const urls = setup({ 'a.mp4': (url, init) => (init.headers?.['If-None-Match'] === '"1700000000000-aaaaaa.6"' ? [304, null] : [200, current]) });
  const client = new ProgressClient({ websocketUrl: 'ws://x/ws', restUrl: 'http://x', recheckIntervalMs: 60_000 });
  const seen = [];
  client.watch('a.mp4', (s) => seen.push(s.version), { token: 'T' });
  await tick(1);
  const socket = FakeWebSocket.sockets[0];
  socket.open();
  socket.receive({ type: 'subscribed', input_file: 'a.mp4' });
  socket.receive({ type: 'status', ...status('PROGRESSING', 10, { version: 2 }) });
  socket.receive({ type: 'status', ...status('PROGRESSING', 20, { version: 3 }) });
  assert.equal(urls.length, 0, 'no gap, no request');
  // WHEN version 5 is lost: 4 arrives, then 6
  socket.receive({ type: 'status', ...status('PROGRESSING', 40, { version: 4 }) });
  socket.receive({ type: 'status', ...status('PROGRESSING', 60, { version: 6 }) });
  await tick(5);
  // THEN the state is read at once, with the tag of the state held: unchanged, 304
  assert.equal(urls.length, 1);
  const [request] = setup.requests;
  assert.equal(request.headers['If-None-Match'], '"1700000000000-aaaaaa.6"');
  assert.deepEqual(seen, [2, 3, 4, 6]);
  // AND a state newer than the one pushed is delivered
  current = { success: true, ...status('PROGRESSING', 80, { version: 8 }) };
  socket.receive({ type: 'status', ...status('PROGRESSING', 70, { version: 7 }) });
  socket.receive({ type: 'status', ...status('PROGRESSING', 60, { version: 6 }) }); // late: dropped
  assert.equal(urls.length, 1);
  socket.receive({ type: 'status', ...status('PROGRESSING', 85, { version: 9 }) });
  await tick(5);
  assert.deepEqual(seen, [2, 3, 4, 6, 7, 9], 'the read state (8) is older than the one held by then');
  assert.ok(missedUpdate(status('PROGRESSING', 1, { version: 1 }), status('PROGRESSING', 2, { version: 3 })));
  assert.ok(!missedUpdate(status('PROGRESSING', 1, { version: 1 }), { ...status('PROGRESSING', 2, { version: 3 }), job_id: 'other' }));
  client.close();
});

test('long polling holds each request with If-None-Match and ?wait=20, and asks again as soon as it is answered', async () => {
  let answered = 0;
  const urls = setup({
    'a.mp4': (url) => {
      answered += 1;
      return url.searchParams.get('wait') ? [304, null] : [200, { success: true, ...status('PROGRESSING', 10, { version: 1 }) }];
    },
  });
  const client = new ProgressClient({ websocketUrl: 'ws://x/ws', restUrl: 'http://x', longPoll: true, pollIntervalMs: 60_000, minBackoffMs: 60_000 });
  client.watch('a.mp4', () => {});
  await tick(1);
  FakeWebSocket.sockets[0].drop();
  await tick(20);
  assert.ok(answered >= 3, `asked ${answered} times within 20 ms: each answer is followed at once`);
  assert.ok(!urls[0].includes('wait='), 'the first request has no tag to wait on');
  assert.ok(urls.slice(1).every((u) => u.includes('wait=20')), urls.join('\n'));
  assert.ok(setup.requests.slice(1).every((r) => r.headers['If-None-Match'] === '"1700000000000-aaaaaa.1"'));
  client.close();
});

test('online reconnects and re-checks at once, offline closes the socket, and a long-hidden page re-subscribes, replacing a socket that does not answer', async () => {
  const events = new EventTarget();
  globalThis.addEventListener = events.addEventListener.bind(events);
  globalThis.removeEventListener = events.removeEventListener.bind(events);
  const page = new EventTarget();
  globalThis.document = { visibilityState: 'visible', addEventListener: page.addEventListener.bind(page), removeEventListener: page.removeEventListener.bind(page) };
  try {
    const urls = setup({ 'a.mp4': [200, { success: true, ...status('PROGRESSING', 10, { version: 1 }) }] });
    const client = new ProgressClient({ websocketUrl: 'ws://x/ws', restUrl: 'http://x', pollIntervalMs: 60_000, minBackoffMs: 60_000, maxBackoffMs: 60_000, hiddenRecheckMs: 10, probeTimeoutMs: 20, recheckIntervalMs: 60_000 });
    client.watch('a.mp4', () => {});
    await tick(1);
    const first = FakeWebSocket.sockets[0];
    first.open();
    first.receive({ type: 'subscribed', input_file: 'a.mp4' });
    // WHEN the network goes: the socket is closed at once, not at a timeout
    events.dispatchEvent(new Event('offline'));
    assert.equal(first.readyState, 3);
    await tick(5);
    const before = FakeWebSocket.sockets.length;
    // WHEN it comes back: a new socket at once (the backoff would have waited up to a minute) and a re-check
    const checks = urls.length;
    events.dispatchEvent(new Event('online'));
    await tick(5);
    assert.equal(FakeWebSocket.sockets.length, before + 1, 'reconnected at once');
    assert.ok(urls.length > checks, 're-checked at once');
    const second = FakeWebSocket.sockets.at(-1);
    second.open();
    second.receive({ type: 'subscribed', input_file: 'a.mp4' });
    // WHEN the page was hidden longer than hiddenRecheckMs and is shown again: the open socket re-subscribes
    globalThis.document.visibilityState = 'hidden';
    page.dispatchEvent(new Event('visibilitychange'));
    await tick(20);
    globalThis.document.visibilityState = 'visible';
    const subscribes = second.sent.filter((m) => m.action === 'subscribe').length;
    page.dispatchEvent(new Event('visibilitychange'));
    assert.equal(second.sent.filter((m) => m.action === 'subscribe').length, subscribes + 1);
    assert.deepEqual(second.sent.at(-1), { action: 'ping' }, 'and probes the socket');
    second.receive({ type: 'subscribed', input_file: 'a.mp4' });
    // AND from the back/forward cache too; this time nothing answers: the dead socket is replaced
    events.dispatchEvent(Object.assign(new Event('pageshow'), { persisted: true }));
    assert.equal(second.sent.filter((m) => m.action === 'subscribe').length, subscribes + 2);
    const sockets = FakeWebSocket.sockets.length;
    await tick(40);
    assert.equal(second.readyState, 3, 'the silent socket was closed');
    assert.equal(FakeWebSocket.sockets.length, sockets + 1, 'and a new one opened at once');
    client.close();
  } finally {
    delete globalThis.addEventListener;
    delete globalThis.removeEventListener;
    delete globalThis.document;
  }
});

test('isNewer orders states, a new job always wins, and keyPath keeps the slashes', () => {
  assert.ok(isNewer(null, status('SUBMITTED', 0)));
  assert.ok(isNewer(status('PROGRESSING', 10), status('PROGRESSING', 11)));
  assert.ok(!isNewer(status('PROGRESSING', 11), status('PROGRESSING', 10)));
  assert.ok(!isNewer(status('COMPLETE', 100), status('PROGRESSING', 100)));
  assert.ok(isNewer(status('PROGRESSING', 10, { current_phase: 'PROBING' }), status('PROGRESSING', 10, { current_phase: 'TRANSCODING' })));
  assert.ok(isNewer(status('COMPLETE', 100), { ...status('SUBMITTED', 0), job_id: '1700000000001-bbbbbb' }));
  // the same job: its version decides, whatever else the state says
  assert.ok(isNewer(status('PROGRESSING', 50, { version: 3 }), status('PROGRESSING', 50, { version: 4 })));
  assert.ok(!isNewer(status('PROGRESSING', 50, { version: 4 }), status('PROGRESSING', 60, { version: 3 })));
  assert.equal(keyPath('uploads/my clip#1.mp4'), 'uploads/my%20clip%231.mp4');
});

test('a prefix watch gets every file under the folder, newer states only, re-subscribes for the snapshot, and unsubscribes by prefix', async () => {
  setup();
  const client = new ProgressClient({ websocketUrl: 'ws://x/ws', restUrl: 'http://x', recheckIntervalMs: 20, minBackoffMs: 1, maxBackoffMs: 2 });
  const seen = [];
  const transports = [];
  const board = client.watchPrefix('uploads/u1/', (s) => seen.push(`${s.input_file} ${s.job_status} ${s.progress_rate}`), { token: 'F', onTransport: (t) => transports.push(t) });
  await tick(1);
  const socket = FakeWebSocket.sockets[0];
  socket.open();
  assert.deepEqual(socket.sent, [{ action: 'subscribe', prefix: 'uploads/u1/', token: 'F' }]);
  socket.receive({ type: 'subscribed', prefix: 'uploads/u1/' });
  const file = (input_file, job_status, progress_rate) => ({ ...status(job_status, progress_rate), input_file });
  socket.receive({ type: 'statuses', updates: [file('uploads/u1/a.mp4', 'COMPLETE', 100), file('uploads/u1/deep/b.mp4', 'PROGRESSING', 10)] });
  socket.receive({ type: 'status', ...file('uploads/u1/deep/b.mp4', 'PROGRESSING', 5) }); // late: dropped
  socket.receive({ type: 'status', ...file('uploads/u2/c.mp4', 'PROGRESSING', 50) }); // not under the folder
  socket.receive({ type: 'status', ...file('uploads/u1/deep/b.mp4', 'COMPLETE', 100) });
  socket.receive({ type: 'status', ...file('uploads/u1/a.mp4', 'COMPLETE', 100) }); // the snapshot again: nothing new
  assert.deepEqual(seen, ['uploads/u1/a.mp4 COMPLETE 100', 'uploads/u1/deep/b.mp4 PROGRESSING 10', 'uploads/u1/deep/b.mp4 COMPLETE 100']);
  await tick(50);
  const resubscribes = socket.sent.filter((m) => m.action === 'subscribe').length;
  assert.ok(resubscribes >= 2, `re-subscribed ${resubscribes - 1} times for the snapshot`);
  // a dropped socket: the watch waits (no REST for a folder), then subscribes on the new socket
  socket.drop();
  await tick(10);
  const again = FakeWebSocket.sockets.at(-1);
  assert.notEqual(again, socket);
  again.open();
  assert.deepEqual(again.sent[0], { action: 'subscribe', prefix: 'uploads/u1/', token: 'F' });
  again.receive({ type: 'subscribed', prefix: 'uploads/u1/' });
  assert.deepEqual(transports, ['connecting', 'websocket', 'connecting', 'websocket']);
  board.stop();
  assert.deepEqual(again.sent.at(-1), { action: 'unsubscribe', prefix: 'uploads/u1/' });
  assert.equal(again.readyState, 3, 'nothing watched: the socket closed');
  client.close();
});

test('estimate moves a running job on between reports, never back, never to 100 before COMPLETE', () => {
  // 40 % at t=1000, 60 s left at that pace; transcoding half done
  const running = { job_status: 'PROGRESSING', progress_rate: 40, updated_at: 1000, eta_ms: 60_000,
    current_phase: 'TRANSCODING', phase_progress: { PROBING: 100, TRANSCODING: 50 } };
  assert.deepEqual(estimate(running, 1000), { progress: 40, eta_ms: 60_000 });
  const soon = estimate(running, 2000);
  assert.ok(soon.progress > 40.9 && soon.progress < 41, `at first at the estimate's pace (${soon.progress})`);
  const later = estimate(running, 16_000);
  assert.equal(later.eta_ms, 45_000);
  assert.ok(later.progress > 50 && later.progress < 55, `a quarter of the time: up to a quarter of the rest (${later.progress})`);
  // never past the phase's end (the rest of the job in proportion to the phase's rest: 70 %),
  // but still moving when the job runs late
  const late = [100_000, 200_000, 400_000].map((t) => estimate(running, t).progress);
  assert.ok(late.every((p) => p < 70) && late[0] < late[1] && late[1] < late[2], `${late}`);
  assert.equal(estimate(running, 1_000_000).eta_ms, 0);
  // never 100 before COMPLETE, whatever the clock says
  const uploading = { ...running, progress_rate: 98, current_phase: 'UPLOADING', phase_progress: { UPLOADING: 0 } };
  const end = estimate(uploading, 10_000_000).progress;
  assert.ok(end > 99 && end < 100, `${end}`);
  // never below the status, even with a clock behind MediaConvert's
  assert.equal(estimate(running, 0).progress, 40);
  // growing with time
  const values = [0, 5000, 10_000, 20_000, 40_000, 80_000].map((t) => estimate(running, 1000 + t).progress);
  assert.deepEqual(values, [...values].sort((a, b) => a - b));
  // no estimate: the status itself
  assert.deepEqual(estimate({ job_status: 'PROGRESSING', progress_rate: 12 }, 5), { progress: 12, eta_ms: undefined });
  assert.deepEqual(estimate({ job_status: 'COMPLETE', progress_rate: 100 }, 5), { progress: 100, eta_ms: 0 });
  assert.deepEqual(estimate({ job_status: 'ERROR', progress_rate: 100 }, 5), { progress: 100, eta_ms: undefined });
  assert.deepEqual(estimate(null), { progress: 0, eta_ms: undefined });
});

test('a later report at the same progress is news (its time and estimate changed)', () => {
  const a = { job_id: 'j', job_status: 'PROGRESSING', progress_rate: 30, current_phase: 'TRANSCODING', updated_at: 1 };
  assert.equal(isNewer(a, { ...a, updated_at: 2, eta_ms: 5 }), true);
  assert.equal(isNewer({ ...a, updated_at: 2 }, a), false);
});

test('one progress from the first byte uploaded to COMPLETE never goes back', async () => {
  const { combinedProgress, UPLOAD_PHASES } = await import('../mcpush-client.js');
  let shown = 0;
  const seen = [];
  const step = (now) => {
    const next = combinedProgress(shown, now, 0.5);
    shown = next.progress;
    seen.push([next.phase, Math.round(next.progress * 1000) / 1000]);
  };
  step({ uploaded: 0.2 });
  step({ uploaded: 0.1 }); // a retried part's bytes taken back
  step({ uploaded: 1 });
  step({ status: { job_status: 'SUBMITTED', progress_rate: 0 } });
  step({ status: { job_status: 'PROGRESSING', progress_rate: 10, current_phase: 'PROBING' } });
  step({ status: { job_status: 'PROGRESSING', progress_rate: 60, current_phase: 'TRANSCODING' } });
  step({ status: { job_status: 'PROGRESSING', progress_rate: 50, current_phase: 'TRANSCODING' } });
  step({ status: { job_status: 'PROGRESSING', progress_rate: 95, current_phase: 'UPLOADING' } });
  step({ status: { job_status: 'COMPLETE', progress_rate: 100 } });
  assert.deepEqual(seen, [
    ['UPLOADING_SOURCE', 0.1], ['UPLOADING_SOURCE', 0.1], ['UPLOADING_SOURCE', 0.5], ['SUBMITTED', 0.5],
    ['PROBING', 0.55], ['TRANSCODING', 0.8], ['TRANSCODING', 0.8], ['UPLOADING', 0.975], ['COMPLETE', 1],
  ]);
  assert.deepEqual([...new Set(seen.map(([p]) => p))], UPLOAD_PHASES);
});
