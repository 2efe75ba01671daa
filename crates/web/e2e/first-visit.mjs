// A first visit, as a new player makes it: open the URL a server printed, make a new session,
// see it live with its grid, start the audio, and hear the built-in kit load. Reports the bytes
// that crossed the network (as Chromium received them, compressed) for the app and for the
// session with its samples.
//
//   node first-visit.mjs <url>
import { launchBrowser, runner, assert } from './harness.mjs';

const url = process.argv[2];
if (!url) { console.error('usage: node first-visit.mjs <url>'); process.exit(2); }
const base = url.replace(/\/$/, '');
const { test, finish } = runner();
const browser = await launchBrowser();
const page = await browser.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));
page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
const transfers = [];
page.on('requestfinished', async (r) => {
  const s = await r.sizes().catch(() => null);
  const resp = await r.response().catch(() => null);
  if (s && resp) transfers.push({ url: r.url(), bytes: s.responseBodySize + s.responseHeadersSize, encoding: resp.headers()['content-encoding'] || '' });
});
const sum = (xs) => xs.reduce((a, t) => a + t.bytes, 0);

await test('the app loads compressed and cacheable', async () => {
  await page.goto(base + '/');
  await page.waitForSelector('text=New session');
  const assets = transfers.filter((t) => t.url.includes('/assets/'));
  assert(assets.length >= 2, `the page loaded its assets (${transfers.map((t) => t.url).join(', ')})`);
  const wasm = assets.find((t) => t.url.endsWith('.wasm'));
  assert(wasm && wasm.encoding, `the app's wasm came compressed (${JSON.stringify(wasm)})`);
  return `first page: ${(sum(transfers) / 1024).toFixed(0)} KB over the network in ${transfers.length} responses`;
});

await test('a new session goes live with its grid and plays the built-in kit', async () => {
  const before = transfers.length;
  await page.click('text=New session');
  await page.waitForURL(/\/s\//);
  await page.waitForSelector('[data-testid=status]:has-text("live")', { timeout: 15000 });
  assert(await page.locator('.cell').count() >= 16, 'the grid has cells');
  await page.click('.start-audio');
  await page.waitForFunction(() => !document.querySelector('.start-audio'), null, { timeout: 15000 });
  await page.waitForFunction(() => performance.getEntriesByType('resource').some((e) => e.name.includes('/api/samples/')), null, { timeout: 15000 }).catch(() => {});
  const kick = await page.evaluate(async () => (await fetch('/api/samples/drums/kick.wav')).status);
  assert(kick === 200, `the built-in kit is served (kick.wav: ${kick})`);
  // The sampled library is in the binary too: the piano's manifest and a zone's FLAC.
  const piano = await page.evaluate(async () => {
    const doc = await (await fetch('/api/instruments/sampled/piano')).json();
    const url = doc.manifest.zones[0].url;
    const r = await fetch(url);
    const head = new Uint8Array(await r.arrayBuffer()).slice(0, 4);
    return { zones: doc.manifest.zones.length, type: r.headers.get('content-type'), magic: String.fromCharCode(...head) };
  });
  assert(piano.zones >= 8 && piano.type === 'audio/flac' && piano.magic === 'fLaC', `the piano is served: ${JSON.stringify(piano)}`);
  assert(errors.length === 0, `no page errors: ${errors.join(' | ')}`);
  return `session with audio: ${(sum(transfers.slice(before)) / 1024).toFixed(0)} KB more`;
});

await browser.close();
finish();
