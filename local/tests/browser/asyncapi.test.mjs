// docs/asyncapi.yaml through the AsyncAPI parser (the AsyncAPI 3.0 schema and its rules):
// node asyncapi.test.mjs PATH
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { Parser } from '@asyncapi/parser';

const [path] = process.argv.slice(2);
assert.ok(path, 'usage: node asyncapi.test.mjs PATH');

test('docs/asyncapi.yaml is a valid AsyncAPI 3.0 document with every message of the protocol', async () => {
  const { document, diagnostics } = await new Parser().parse(await readFile(path, 'utf8'));
  const problems = diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`);
  assert.deepEqual(problems, [], 'no errors or warnings');
  assert.ok(document, 'the document parsed');
  assert.equal(document.version(), '3.0.0');
  const messages = document.messages().all().map((m) => m.name()).sort();
  assert.deepEqual(messages, ['error', 'ping', 'pong', 'status', 'statuses', 'subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);
});
