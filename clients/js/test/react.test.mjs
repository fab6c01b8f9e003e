// The React hooks (@mcpush/client/react) with React Testing Library in jsdom, over the real
// ProgressClient and a fake WebSocket: node --test clients/js/test/.
import 'global-jsdom/register';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StrictMode, createElement as h } from 'react';
import { renderToString } from 'react-dom/server';
import { act, cleanup, render, screen } from '@testing-library/react';
import { ProgressClient } from '../mcpush-client.js';
import { ProgressClientProvider, useFolder, useJobStatus } from '../react.js';
import { FakeWebSocket } from '../test-support/fake-websocket.mjs';

globalThis.IS_REACT_ACT_ENVIRONMENT = true;

function setup() {
  FakeWebSocket.sockets = [];
  globalThis.WebSocket = FakeWebSocket;
  globalThis.fetch = async () => ({ status: 304, ok: false, json: async () => null, headers: { get: () => null } });
  return new ProgressClient({ websocketUrl: 'ws://x/ws', restUrl: 'http://x', recheckIntervalMs: 60_000 });
}

const tick = (ms = 5) => act(() => new Promise((resolve) => setTimeout(resolve, ms)));
const state = (input_file, job_status, progress_rate, version) => ({ input_file, job_id: '1700000000000-aaaaaa', job_status, progress_rate, version });

function Job({ file, label }) {
  const { status, estimate, connection } = useJobStatus(file, { token: 'T' });
  return h('p', { 'data-testid': label }, status ? `${status.job_status} ${status.progress_rate} ${estimate.progress} ${connection}` : `none ${connection}`);
}

test('components watching one file share one subscription, even under StrictMode, and see every newer state', async () => {
  const client = setup();
  const started = [];
  const watch = client.watch.bind(client);
  client.watch = (...args) => (started.push(args[0]), watch(...args));
  const view = render(h(StrictMode, null, h(ProgressClientProvider, { client }, h(Job, { file: 'a.mp4', label: 'one' }), h(Job, { file: 'a.mp4', label: 'two' }))));
  await tick();
  assert.equal(FakeWebSocket.sockets.length, 1);
  const socket = FakeWebSocket.sockets[0];
  await act(() => socket.open());
  assert.deepEqual(started, ['a.mp4'], 'one watch for both components through StrictMode\'s double mount');
  assert.deepEqual(socket.sent, [{ action: 'subscribe', input_file: 'a.mp4', token: 'T' }], 'one subscription for both components');
  assert.equal(screen.getByTestId('one').textContent, 'none connecting');
  await act(() => {
    socket.receive({ type: 'subscribed', input_file: 'a.mp4' });
    socket.receive({ type: 'status', ...state('a.mp4', 'PROGRESSING', 40, 2) });
  });
  assert.equal(screen.getByTestId('one').textContent, 'PROGRESSING 40 40 websocket');
  assert.equal(screen.getByTestId('two').textContent, 'PROGRESSING 40 40 websocket');
  await act(() => socket.receive({ type: 'status', ...state('a.mp4', 'COMPLETE', 100, 3) }));
  assert.equal(screen.getByTestId('one').textContent, 'COMPLETE 100 100 done');
  view.unmount();
  await tick();
  assert.equal(socket.sent.filter((m) => m.action === 'subscribe').length, 1);
  cleanup();
  client.close();
});

test('the last component to leave stops the watch; a falsy file watches nothing', async () => {
  const client = setup();
  const view = render(h(ProgressClientProvider, { client }, h(Job, { file: 'b.mp4', label: 'b' }), h(Job, { file: null, label: 'nothing' })));
  await tick();
  const socket = FakeWebSocket.sockets[0];
  await act(() => socket.open());
  await act(() => socket.receive({ type: 'subscribed', input_file: 'b.mp4' }));
  assert.equal(screen.getByTestId('nothing').textContent, 'none idle');
  view.unmount();
  await tick();
  assert.deepEqual(socket.sent.at(-1), { action: 'unsubscribe', input_file: 'b.mp4' });
  assert.equal(socket.readyState, 3, 'nothing watched: the socket is closed');
  cleanup();
});

test('useFolder collects each file under the folder', async () => {
  const client = setup();
  function Board() {
    const { statuses, status } = useFolder('uploads/u1/', { client, token: 'F' });
    return h('ul', null, Object.values(statuses).map((s) => h('li', { key: s.input_file }, `${s.input_file} ${s.progress_rate}`)), h('p', null, status?.input_file ?? '-'));
  }
  render(h(Board));
  await tick();
  const socket = FakeWebSocket.sockets[0];
  await act(() => socket.open());
  assert.deepEqual(socket.sent, [{ action: 'subscribe', prefix: 'uploads/u1/', token: 'F' }]);
  await act(() => socket.receive({ type: 'statuses', updates: [state('uploads/u1/a.mp4', 'PROGRESSING', 10, 1), state('uploads/u1/b.mp4', 'COMPLETE', 100, 4)] }));
  assert.deepEqual(screen.getAllByRole('listitem').map((li) => li.textContent), ['uploads/u1/a.mp4 10', 'uploads/u1/b.mp4 100']);
  assert.equal(screen.getByRole('paragraph').textContent, 'uploads/u1/b.mp4');
  cleanup();
  client.close();
});

test('server rendering shows the empty state and opens no socket', () => {
  const client = setup();
  const html = renderToString(h(ProgressClientProvider, { client }, h(Job, { file: 'a.mp4', label: 'ssr' })));
  assert.match(html, /none connecting/);
  assert.equal(FakeWebSocket.sockets.length, 0);
});

test('a hook without a client says how to give it one', () => {
  setup();
  const original = console.error;
  console.error = () => {};
  try {
    assert.throws(() => render(h(Job, { file: 'a.mp4', label: 'x' })), /ProgressClientProvider/);
  } finally {
    console.error = original;
    cleanup();
  }
});
