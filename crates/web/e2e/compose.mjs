// Composing (issue 16), end to end in real Chromium against the real server, with two players:
// the key and scale (moving notes), every pattern tool, copy and paste between tracks, painting
// steps by dragging (one undo), the piano roll (notes, length, pitch, velocity, keyboard only)
// and the shortcuts panel. Screenshots at desktop (1280x800) and phone (390x844) sizes go to
// target/screenshots (or the directory given).
//
// Usage: node compose.mjs <keyboardia-binary> <web-dist-dir> [screenshot-dir]
//        node compose.mjs --base-url <url>
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assert, hostUnderTest, launchBrowser, parseArgs, runner } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = parseArgs('node compose.mjs <keyboardia-binary> <web-dist-dir> [screenshot-dir] | --base-url <url>');
const shotDir = args.shotDir || path.resolve(here, '../../../target/screenshots');
const { server, base } = await hostUnderTest(args);

const DESKTOP = { viewport: { width: 1280, height: 800 } };
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

const browser = await launchBrowser();
const consoleErrors = [];
async function page(opts = DESKTOP) {
  const ctx = await browser.newContext({ colorScheme: 'dark', ...opts });
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const p = await ctx.newPage();
  p.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${p.url()}: ${m.text()}`); });
  p.on('pageerror', (e) => consoleErrors.push(`${p.url()}: ${e}`));
  return p;
}
async function shot(p, name) {
  fs.mkdirSync(shotDir, { recursive: true });
  await p.screenshot({ path: path.join(shotDir, `compose-${name}.png`) });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cell = (track, step) => `[data-track="${track}"] .cell[data-step="${step}"]`;

async function createSession() {
  const r = await fetch(`${base}/api/sessions`, { method: 'POST' });
  return (await r.json()).id;
}
async function doc(id) { return (await fetch(`${base}/api/sessions/${id}`)).json(); }
async function until(id, f, what, ms = 5000) {
  let d;
  for (const t0 = Date.now(); Date.now() - t0 < ms;) {
    d = await doc(id);
    if (f(d)) return d;
    await sleep(100);
  }
  throw new Error(`${what}: ${JSON.stringify(d).slice(0, 600)}`);
}
async function open(id, opts = DESKTOP) {
  const p = await page(opts);
  await p.goto(`${base}/s/${id}`);
  await p.waitForSelector('[data-testid=status]:has-text("live")');
  return p;
}
/** A row as its page shows it: one entry per cell ("on+3", "off", ...). */
const rowState = (p, track) => p.$$eval(`[data-track="${track}"] .cell`, (cs) => cs.map((c) => `${c.classList.contains('on') ? 'on' : 'off'}${c.textContent.trim()}`).join(' '));
/** Waits until page `p` shows `track` as `want`. */
async function sees(p, track, want, what, ms = 5000) {
  let got;
  for (const t0 = Date.now(); Date.now() - t0 < ms;) {
    got = await rowState(p, track);
    if (got === want) return;
    await sleep(50);
  }
  throw new Error(`${what}: wanted ${want}, saw ${got}`);
}
/** Waits until `track` on page `p` differs from `before`; returns what it shows. */
async function changes(p, track, before, what, ms = 5000) {
  for (const t0 = Date.now(); Date.now() - t0 < ms;) {
    const got = await rowState(p, track);
    if (got !== before) return got;
    await sleep(50);
  }
  throw new Error(`${what}: ${track} did not change from ${before}`);
}
const trackOf = (d, id) => d.tracks.find((t) => t.id === id);

const { test, finish } = runner();

const id = await createSession();
const a = await open(id);
const b = await open(id);

await test('key: root and scale reach the other player; moving the notes is asked, one edit, one undo', async () => {
  await a.selectOption('.transport .key-root', '2');
  await until(id, (d) => d.key && d.key.root === 2, 'root D');
  await b.waitForFunction(() => document.querySelector('.transport .key-root').value === '2');
  // D natural minor: the bass's +3 (D♯) is not in it; Bb (-2) is.
  await a.selectOption('.transport .key-scale', 'natural-minor');
  await a.waitForSelector('.key-ask:has-text("move 1 note")');
  await shot(a, 'desktop-key-ask');
  await a.click('[data-testid=move-notes]');
  const d = await until(id, (d) => d.key.scale === 'natural-minor' && trackOf(d, 'bass').locks['6'].pitch === 2, 'key and moved note');
  assert(trackOf(d, 'bass').locks['10'].pitch === -2, 'the in-key note stays');
  await b.waitForFunction(() => document.querySelector('.transport .key-scale').value === 'natural-minor');
  await b.waitForSelector(`${cell('bass', 6)}:has-text("+2")`);
  // One undo puts back the key and the note together.
  await a.keyboard.press('Control+z');
  await until(id, (d) => d.key.scale === 'chromatic' && trackOf(d, 'bass').locks['6'].pitch === 3, 'undone together');
  await b.waitForSelector(`${cell('bass', 6)}:has-text("+3")`);
  // Keeping the notes: the key changes, the note does not.
  await a.selectOption('.transport .key-scale', 'natural-minor');
  await a.click('[data-testid=keep-notes]');
  await until(id, (d) => d.key.scale === 'natural-minor' && trackOf(d, 'bass').locks['6'].pitch === 3, 'kept note');
  // Key lock off (free) reaches B.
  await a.click('.transport .key-lock');
  await until(id, (d) => d.key.free === true, 'key lock off');
  await b.waitForSelector('.transport .key-lock[aria-pressed=false]');
  await a.click('.transport .key-lock');
  await until(id, (d) => !d.key.free, 'key lock on');
});

async function tool(p, track, name) {
  if (!(await p.locator(`[data-track="${track}"] .tools-menu`).isVisible())) {
    if (await p.locator('.tools-menu').count()) await p.keyboard.press('Escape');
    await p.click(`[data-track="${track}"] .tools-open`);
  }
  await p.click(`[data-track="${track}"] .tools-menu [data-tool="${name}"]`);
}

await test('pattern tools: each gives the other player the same result', async () => {
  const done = [];
  for (const [track, name] of [['kick', 'rotate-right'], ['kick', 'rotate-left'], ['bass', 'shift-up'], ['bass', 'shift-down'],
    ['kick', 'reverse'], ['snare', 'invert'], ['kick', 'mirror'], ['hat', 'euclid'], ['snare', 'randomize']]) {
    const before = await rowState(a, track);
    if (name === 'euclid') {
      await a.keyboard.press('Escape');
      await a.click(`[data-track="${track}"] .tools-open`);
      await a.fill('.tools-menu .euclid-hits', '3');
      await a.fill('.tools-menu .euclid-rotation', '1');
      await a.press('.tools-menu .euclid-rotation', 'Tab');
      await shot(a, 'desktop-pattern-tools');
    }
    await tool(a, track, name);
    const after = await changes(a, track, before, name);
    await sees(b, track, after, `${name} on B`);
    if (name === 'euclid') assert(after.split(' ').filter((c) => c.startsWith('on')).length === 3, `euclid 3 hits: ${after}`);
    done.push(name);
  }
  await a.keyboard.press('Escape');
  await a.waitForSelector('.tools-menu', { state: 'detached' });
  return done.join(', ');
});

await test('duplicate track, copy and paste between tracks (through the clipboard), and a clear error for other text', async () => {
  const n = (await doc(id)).tracks.length;
  const kick = await rowState(a, 'kick');
  await tool(a, 'kick', 'duplicate');
  const d = await until(id, (d) => d.tracks.length === n + 1, 'duplicated');
  const copyId = d.tracks[d.tracks.findIndex((t) => t.id === 'kick') + 1].id;
  await sees(b, copyId, kick, 'the copy on B');
  assert(trackOf(d, copyId).name === 'Kick copy', `the copy's name: ${trackOf(d, copyId).name}`);
  // Copy the bass, paste it on the snare.
  await tool(a, 'bass', 'copy');
  await a.waitForSelector('.tools-menu [role=status]:has-text("Copied")');
  const clip = await a.evaluate(() => navigator.clipboard.readText());
  assert(JSON.parse(clip).kind === 'keyboardia-pattern' && JSON.parse(clip).version === 1, `clipboard: ${clip}`);
  await a.keyboard.press('Escape');
  await tool(a, 'snare', 'paste');
  const bass = await rowState(a, 'bass');
  await sees(b, 'snare', bass, 'pasted on B');
  const d2 = await doc(id);
  assert(JSON.stringify(trackOf(d2, 'snare').steps) === JSON.stringify(trackOf(d2, 'bass').steps), 'same steps');
  // One undo takes the paste back.
  const before = await rowState(b, 'snare');
  await a.keyboard.press('Escape');
  await a.keyboard.press('Control+z');
  await changes(b, 'snare', before, 'paste undone');
  // Other text: a plain error, nothing sent.
  await a.evaluate(() => navigator.clipboard.writeText('just some words'));
  const snare = await rowState(a, 'snare');
  await tool(a, 'snare', 'paste');
  await a.waitForSelector('.tools-menu .tool-error:has-text("does not hold a Keyboardia pattern")');
  await sleep(300);
  assert(await rowState(b, 'snare') === snare, 'nothing pasted');
  await a.keyboard.press('Escape');
});

await test('phone: the key in the More sheet, the pattern tools in the track sheet', async () => {
  const p = await open(id, PHONE);
  await p.click('.top .overflow');
  await p.waitForSelector('.sheet .key-scale');
  await shot(p, 'phone-more-key');
  await p.keyboard.press('Escape');
  await p.waitForSelector('.sheet', { state: 'detached' });
  await p.click('[data-track="kick"] [aria-label^="Track settings"]');
  await p.waitForSelector('.sheet [data-tool="rotate-right"]');
  const before = await rowState(b, 'kick');
  await p.locator('.sheet [data-tool="rotate-right"]').scrollIntoViewIfNeeded();
  await shot(p, 'phone-pattern-tools');
  await p.click('.sheet [data-tool="rotate-right"]');
  await changes(b, 'kick', before, 'rotate from the phone');
  await p.close();
});

const center = async (p, sel) => { const r = await p.locator(sel).boundingBox(); return [r.x + r.width / 2, r.y + r.height / 2]; };

await test('drag to paint: a press and a drag along a row paint the steps for the other player too; one undo reverts the paint', async () => {
  const start = 1;
  const first = await rowState(a, 'hat');
  const startOn = first.split(' ')[start].startsWith('on');
  const [x0, y0] = await center(a, cell('hat', start));
  await a.mouse.move(x0, y0);
  await a.mouse.down();
  for (const k of [2, 3, 4, 5]) {
    const [x, y] = await center(a, cell('hat', k));
    await a.mouse.move(x, y, { steps: 3 });
  }
  await a.waitForSelector(`${cell('hat', 5)}.painting`);
  await shot(a, 'desktop-painting');
  await a.mouse.up();
  const want = !startOn;
  const d = await until(id, (d) => [1, 2, 3, 4, 5].every((k) => trackOf(d, 'hat').steps.includes(k) === want), 'painted 1-5');
  const painted = await rowState(a, 'hat');
  await sees(b, 'hat', painted, 'the paint on B');
  assert(!(await a.locator('.cell.painting').count()), 'the paint outline goes away');
  // One undo takes the whole paint back.
  await a.keyboard.press('Control+z');
  await sees(b, 'hat', first, 'one undo reverts the whole paint');
  // A plain click still toggles one step.
  await a.click(cell('hat', 7));
  await changes(b, 'hat', first, 'a click toggles');
  await a.keyboard.press('Control+z');
  await sees(b, 'hat', first, 'click undone');
  return `${trackOf(d, 'hat').steps.length} hat steps on after the paint`;
});

await test('drag to paint with a finger (phone): a horizontal drag along a row paints', async () => {
  const p = await open(id, PHONE);
  const first = await rowState(p, 'kick');
  const cdp = await p.context().newCDPSession(p);
  const pts = [];
  for (const k of [0, 1, 2, 3]) pts.push(await center(p, cell('kick', k)));
  const startOn = first.split(' ')[0].startsWith('on');
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x: pts[0][0], y: pts[0][1] }] });
  for (const [x, y] of pts.slice(1)) {
    for (let i = 1; i <= 4; i++) {
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: [{ x: x - (4 - i) * 10, y }] });
      await sleep(20);
    }
  }
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  await until(id, (d) => [0, 1, 2, 3].every((k) => trackOf(d, 'kick').steps.includes(k) === !startOn), 'touch-painted 0-3');
  await sees(b, 'kick', await rowState(p, 'kick'), 'B sees the touch paint');
  await p.keyboard.press('Control+z');
  await sees(b, 'kick', first, 'touch paint undone');
  await p.close();
});

await test('no console errors', async () => {
  assert(consoleErrors.length === 0, consoleErrors.join('\n'));
});

await browser.close();
if (server) server.kill('SIGTERM');
finish();
