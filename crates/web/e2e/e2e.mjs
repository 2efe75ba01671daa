// End-to-end tests of the web app: the real server binary, real Chromium (Debian's), real
// WebSockets and AudioWorklets. Prints one line per test and "N passed, M failed".
//
// Usage: node e2e.mjs <keyboardia-binary> <web-dist-dir> [screenshot-dir]
//        node e2e.mjs --base-url <url>   (a host that is already running, e.g. the Cloudflare
//        host in workerd; the test that stops and restarts the server uses the shell commands in
//        KEYBOARDIA_KILL_CMD and KEYBOARDIA_START_CMD, and is skipped, saying so, without them)
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { assert, hostUnderTest, launchBrowser, parseArgs, runner, startServer } from './harness.mjs';

const args = parseArgs('node e2e.mjs <keyboardia-binary> <web-dist-dir> [screenshot-dir] | --base-url <url>');
const { given, bin, webDir, shotDir } = args;
let { server, base, dataDir } = await hostUnderTest(args);
// Stopping and starting the server: our own child, or a running host through shell commands.
const external = given && process.env.KEYBOARDIA_KILL_CMD && process.env.KEYBOARDIA_START_CMD;
async function stopServer() {
  if (external) { execSync(process.env.KEYBOARDIA_KILL_CMD, { shell: '/bin/bash', stdio: 'inherit' }); return; }
  const stopped = new Promise((res) => server.on('exit', res));
  server.kill('SIGTERM');
  await stopped;
}
async function restartServer() {
  if (!external) { ({ proc: server } = await startServer({ bin, webDir, dataDir, addr: base.replace('http://', '') })); return; }
  execSync(process.env.KEYBOARDIA_START_CMD, { shell: '/bin/bash', stdio: 'inherit' });
  for (let i = 0; i < 300; i++) {
    try { if ((await fetch(`${base}/healthz`)).ok) return; } catch { /* not up yet */ }
    await new Promise((res) => setTimeout(res, 300));
  }
  throw new Error('the host did not come back');
}

// A fake microphone (a beep) that needs no permission prompt.
const browser = await launchBrowser(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']);
const consoleErrors = [];
async function page(opts = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 760 }, colorScheme: 'dark', ...opts });
  const p = await ctx.newPage();
  const name = `page${consoleErrors.length}`;
  p.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${p.url()}: ${m.text()}`); });
  p.on('pageerror', (e) => consoleErrors.push(`${p.url()}: ${e}`));
  return p;
}
async function shot(p, name) {
  if (shotDir) { fs.mkdirSync(shotDir, { recursive: true }); await p.screenshot({ path: path.join(shotDir, `${name}.png`) }); }
}
const cell = (track, step) => `[data-track="${track}"] .cell[data-step="${step}"]`;
async function newSession(p) {
  await p.goto(base + '/');
  await p.click('text=New session');
  await p.waitForURL(/\/s\//);
  await p.waitForSelector('[data-testid=status]:has-text("live")');
  return p.url();
}
async function startAudio(p) {
  // The first gesture anywhere may have started it already, or be starting it (the button
  // then turns to "Sound on" under the click: forced, a click on it is harmless either way).
  if (await p.locator('.start-audio').count()) await p.click('.sound', { force: true });
  await p.waitForFunction(() => !document.querySelector('.start-audio'));
}
const { test, finish } = runner();


let url, a, b;
await test('landing page and a new session with a starter beat', async () => {
  a = await page();
  await a.goto(base + '/');
  await shot(a, 'landing');
  url = await newSession(a);
  const on = await a.locator('.cell.on').count();
  assert(on >= 8, `starter beat has ${on} cells on`);
});

await test('two players see each other\'s edits', async () => {
  b = await page();
  await b.goto(url);
  await b.waitForSelector('[data-testid=status]:has-text("live")');
  await a.click(cell('kick', 2));
  await b.waitForSelector(cell('kick', 2) + '.on', { timeout: 5000 });
  await b.click(cell('snare', 3));
  await a.waitForSelector(cell('snare', 3) + '.on', { timeout: 5000 });
  // The cell B changed glows on A's screen in a player's colour; A's own edit does not glow for A.
  const style = await a.getAttribute(cell('snare', 3), 'style');
  assert(/--glow:#[0-9a-f]{6}/i.test(style), `no glow on the changed cell: ${style}`);
  const own = await a.getAttribute(cell('kick', 2), 'style');
  assert(!/--glow/.test(own), `own edit glows: ${own}`);
  assert(await a.locator('.avatar').count() === 2, 'two avatars');
});

// How closely the players hear the same step is measured on their audio output by sync.mjs;
// here: play in one page plays in the other, and the playheads agree.
await test('undo and redo: own edits only, for everyone; someone else\'s later change is left alone', async () => {
  const isOn = (p, t, s) => p.locator(cell(t, s)).evaluate((el) => el.classList.contains('on'));
  // A's own edit, undone and redone with the keyboard; B sees each.
  assert(!(await isOn(a, 'kick', 5)), 'kick 5 starts off');
  await a.click(cell('kick', 5));
  await b.waitForSelector(cell('kick', 5) + '.on', { timeout: 5000 });
  await a.waitForFunction(() => !document.querySelector('.undo').disabled);
  await a.keyboard.press('Control+z');
  await b.waitForSelector(cell('kick', 5) + ':not(.on)', { timeout: 5000 });
  await a.waitForSelector(cell('kick', 5) + ':not(.on)', { timeout: 5000 });
  await a.keyboard.press('Control+Shift+z');
  await b.waitForSelector(cell('kick', 5) + '.on', { timeout: 5000 });
  // B's earlier edit (snare 3) is not A's to undo: the button undoes A's kick 5 again.
  await a.waitForFunction(() => !document.querySelector('.undo').disabled);
  await a.click('.undo');
  await b.waitForSelector(cell('kick', 5) + ':not(.on)', { timeout: 5000 });
  assert(await isOn(a, 'snare', 3), "B's snare step is untouched");
  // A sets hat 1 off; B then turns it on again; A's undo leaves B's change alone and says so.
  assert(await isOn(a, 'hat', 0), 'hat 0 starts on');
  await a.click(cell('hat', 0));
  await b.waitForSelector(cell('hat', 0) + ':not(.on)', { timeout: 5000 });
  await b.click(cell('hat', 0));
  await a.waitForSelector(cell('hat', 0) + '.on', { timeout: 5000 });
  await a.keyboard.press('Control+z');
  await a.waitForSelector('.message:has-text("another player changed")', { timeout: 5000 });
  await a.waitForTimeout(300);
  assert(await isOn(a, 'hat', 0) && await isOn(b, 'hat', 0), "B's hat step stays on for both");
  await a.click('.message');
});

await test('play in one starts the other; the sync indicator shows a synced clock', async () => {
  await startAudio(a);
  await startAudio(b);
  // Each indicator says "syncing clock" until its estimate is ready (under a second on one
  // machine, at most the 3 s burst).
  for (const p of [a, b]) await p.waitForSelector('[data-testid=sync]:has-text("RTT")', { timeout: 10000 });
  await a.click('.play');
  await b.waitForSelector('.play:has-text("Stop")');
  await a.waitForTimeout(400);
  // On a loaded machine one slow round trip can widen the estimate for a moment ("syncing
  // clock" again); it must be back within a few seconds.
  await b.waitForSelector('[data-testid=sync]:has-text("RTT")', { timeout: 5000 }).catch(() => {});
  const sync = await b.textContent('[data-testid=sync]');
  assert(/sync ±\d+\.\d ms · \d+ ms RTT/.test(sync), `sync indicator: ${sync}`);
  await shot(a, 'session-playing');
  return sync;
});

await test('a late joiner sees the playhead on the right step', async () => {
  const c = await page();
  await c.goto(url);
  await c.waitForSelector('[data-testid=status]:has-text("live")');
  await startAudio(c);
  await c.waitForSelector('[data-track="hat"] .cell.now');
  // The playhead shows the same step. Read on two pages at nearly the same moment: allow two
  // steps (250 ms) of reading skew, around the loop's wrap too.
  const now = async (p) => p.getAttribute('[data-track="hat"] .cell.now', 'data-step');
  const [sa, sc] = await Promise.all([now(a), now(c)]);
  const raw = Math.abs(Number(sa) - Number(sc));
  const d = Math.min(raw, 16 - raw);
  assert(d <= 2, `playheads at ${sa} and ${sc}`);
  await c.close();
});

await test('track settings (name, pan, transpose, swing) reach the session', async () => {
  await a.click('[data-track="hat"] .more');
  const set = async (label, v) => {
    const input = a.locator(`.sheet input[aria-label="${label}"]`);
    await input.fill(String(v));
    await input.dispatchEvent('change');
  };
  await set('Pan', -40);
  await set('Transpose', 5);
  await set('Swing', 30);
  const name = a.locator('.sheet input[aria-label="Track name"]');
  await name.fill('Hats!');
  await name.dispatchEvent('change');
  const id = url.split('/s/')[1];
  let hat;
  for (let i = 0; i < 50; i++) {
    const doc = await (await fetch(`${base}/api/sessions/${id}`)).json();
    hat = doc.tracks.find((t) => t.id === 'hat');
    if (hat.name === 'Hats!' && hat.transpose === 5) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert(Math.abs(hat.pan + 0.4) < 1e-6 && hat.transpose === 5 && hat.swing === 30 && hat.name === 'Hats!', JSON.stringify(hat));
  await b.waitForSelector('[data-track="hat"] .track-name:has-text("Hats!")');
  await a.keyboard.press('Escape');
});

await test('shift-click opens the parameter-lock editor; a pitch lock reaches the other player', async () => {
  await a.click(cell('bass', 0), { modifiers: ['Shift'] });
  await a.waitForSelector('.lock-editor');
  const pitch = a.locator('.lock-editor input[aria-label="Pitch lock in semitones"]');
  await pitch.fill('7');
  await pitch.dispatchEvent('change');
  await b.waitForSelector(cell('bass', 0) + ':has-text("+7")', { timeout: 5000 });
  await shot(a, 'lock-editor');
  await a.keyboard.press('Escape');
  await a.waitForSelector('.lock-editor', { state: 'detached' });
});

await test('record from the microphone: the take becomes a track for everyone', async () => {
  await a.click('.record');
  await a.waitForSelector('.record[aria-label="Stop recording"]');
  await a.waitForTimeout(1500);
  await a.click('.record');
  await a.waitForSelector('.message:has-text("is a track now")', { timeout: 15000 });
  const id = url.split('/s/')[1];
  // The new track and its first step are edits of their own: wait until the session has both.
  let doc, rec;
  for (let i = 0; i < 50; i++) {
    doc = await (await fetch(`${base}/api/sessions/${id}`)).json();
    rec = doc.samples && doc.samples.length === 1
      && doc.tracks.find((t) => t.instrument === `recording/${doc.samples[0].id}`);
    if (rec && rec.steps.includes(0)) break;
    await a.waitForTimeout(100);
  }
  assert(doc.samples && doc.samples.length === 1, `samples: ${JSON.stringify(doc.samples)}`);
  assert(rec && rec.steps.includes(0), `a track plays the recording: ${JSON.stringify(doc.tracks.map((t) => [t.id, t.instrument, t.steps]))}`);
  assert(doc.samples[0].durationMs > 500, `take length ${doc.samples[0].durationMs} ms`);
  await b.waitForSelector(`[data-track="${rec.id}"]`);
  // The other player's picker names the take (the session's recording, not "unknown").
  await b.waitForFunction(([t, n]) => document.querySelector(`[data-track="${t}"] .picker-button`)?.textContent.includes(n),
    [rec.id, doc.samples[0].name], { timeout: 5000 });
});

await test('publish gives a read-only page with a remix button', async () => {
  await a.click('.play'); // stop
  await a.click('.publish');
  await a.click('[data-testid=confirm-publish]');
  await a.waitForURL((u) => u.toString() !== url);
  await a.waitForSelector('.banner');
  assert(await a.locator('.cell').first().isDisabled(), 'cells are read-only');
  await shot(a, 'published');
  await a.click('.banner button');
  await a.waitForSelector('.cell:not([disabled])');
  assert(!(await a.locator('.banner').count()), 'the remix is editable');
});

await test('keyboard only: new session, toggle a cell, move with arrows, share, play and stop', async () => {
  const k = await page();
  await k.goto(base + '/');
  await k.waitForSelector('text=New session');
  await k.keyboard.press('Tab');
  await k.keyboard.press('Enter');
  await k.waitForURL(/\/s\//);
  await k.waitForSelector('[data-testid=status]:has-text("live")');
  const first = k.locator(cell('kick', 1));
  await first.focus();
  const before = await first.getAttribute('aria-pressed');
  await k.keyboard.press('Space');
  await k.waitForFunction(([sel, b]) => document.querySelector(sel).getAttribute('aria-pressed') !== b, [cell('kick', 1), before]);
  // Arrow keys move through the grid: right along the track, down to the next track.
  await k.keyboard.press('ArrowRight');
  assert(await k.evaluate(() => document.activeElement.dataset.step) === '2', 'ArrowRight');
  await k.keyboard.press('ArrowDown');
  const here = await k.evaluate(() => [document.activeElement.closest('.track').dataset.track, document.activeElement.dataset.step]);
  assert(here[0] === 'snare' && here[1] === '2', `ArrowDown went to ${here}`);
  // Share opens a panel with a QR code; Esc closes it.
  await k.click('text=Share');
  await k.waitForSelector('.share img[alt*="QR"]');
  // The image loads on its own schedule: wait for it (a broken image never gets a width).
  const loaded = await k.waitForFunction(() => {
    const img = document.querySelector('.share img');
    return img.complete && img.naturalWidth > 0;
  }, null, { timeout: 5000 }).then(() => true, () => false);
  assert(loaded, 'the QR code loaded');
  await k.keyboard.press('Escape');
  await k.waitForSelector('.share', { state: 'detached' });
  await k.evaluate(() => document.activeElement.blur());
  await k.keyboard.press('Space');
  await k.waitForSelector('.play:has-text("Stop")');
  await k.keyboard.press('Space');
  await k.waitForSelector('.play:has-text("Play")');
  await k.close();
});

await test('phone viewport (375x667): usable by touch, no sideways page scroll', async () => {
  const m = await page({ viewport: { width: 375, height: 667 }, isMobile: true, hasTouch: true });
  await m.goto(url);
  await m.waitForSelector('[data-testid=status]:has-text("live")');
  const wide = await m.evaluate(() => document.documentElement.scrollWidth);
  assert(wide <= 375, `page is ${wide}px wide`);
  const target = m.locator(cell('bass', 1));
  const box = await target.boundingBox();
  assert(box && box.width >= 44 && box.height >= 44, `touch target ${box && box.width}x${box && box.height}`);
  await target.tap();
  await m.waitForSelector(cell('bass', 1) + '.on');
  await shot(m, 'phone');
  await m.close();
});

await test('a reloaded tab keeps its player and its next edit still lands', async () => {
  const r = await page();
  await r.goto(url);
  await r.waitForSelector('[data-testid=status]:has-text("live")');
  await r.click(cell('kick', 9));
  await b.waitForSelector(cell('kick', 9) + '.on', { timeout: 5000 });
  await r.reload();
  await r.waitForSelector('[data-testid=status]:has-text("live")');
  await r.click(cell('kick', 10));
  await b.waitForSelector(cell('kick', 10) + '.on', { timeout: 5000 });
  assert(await b.locator(cell('kick', 9) + '.on').count() === 1, 'the first edit is still there');
  await r.close();
});

await test('edits made while the server is away are kept and sent when it is back', async () => {
  const r = await page();
  await r.goto(url);
  await r.waitForSelector('[data-testid=status]:has-text("live")');
  await stopServer();
  await r.waitForSelector('[data-testid=status]:has-text("reconnecting")');
  await r.click(cell('kick', 13));
  await r.click(cell('kick', 15));
  await r.waitForSelector('[data-testid=status]:has-text("2 unsent")');
  assert(await r.locator(cell('kick', 15) + '.on').count() === 1, 'the edit shows at once');
  await restartServer();
  await r.waitForSelector('[data-testid=status]:has-text("live")', { timeout: 30000 });
  const id = url.split('/s/')[1];
  let steps = [];
  for (let i = 0; i < 50; i++) {
    const doc = await (await fetch(`${base}/api/sessions/${id}`)).json();
    steps = doc.tracks.find((t) => t.id === 'kick').steps;
    if (steps.includes(13) && steps.includes(15)) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert(steps.includes(13) && steps.includes(15), `server has ${steps}`);
  await r.close();
}, server || external ? null : 'needs KEYBOARDIA_KILL_CMD and KEYBOARDIA_START_CMD to stop and start the host');

// Reconnecting pages log the failed WebSocket attempts while the server was down; those are the
// expected errors of the test above, not faults.
// A part of the app in its own wasm module (crates/web/src/lazy.rs) fetched while the server is
// down fails the same way, and the split modules' loader logs it ("TypeError: Failed to fetch").
const expected = /WebSocket connection to .* failed|ERR_CONNECTION_REFUSED|TypeError: Failed to fetch\n\s+at .*\/assets\/split-[0-9a-f]+\/load\.js/;
await test('no console errors', async () => {
  const real = consoleErrors.filter((e) => !expected.test(e));
  assert(real.length === 0, real.join('\n'));
});

await browser.close();
if (server) server.kill('SIGTERM');
finish();
