// Headless Chromium for the browser tests: Debian's binary ($CHROMIUM or /usr/bin/chromium),
// launched once per test file by `useBrowser()` and closed after its tests.
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Launches Chromium before the file's tests and closes it after; `get()` answers the browser. */
export function useBrowser() {
  let browser;
  before(async () => {
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: FLAGS });
  });
  after(async () => browser?.close());
  return { get: () => browser };
}
