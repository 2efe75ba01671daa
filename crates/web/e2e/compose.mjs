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
import {
  assert, DESKTOP, hostUnderTest, launchBrowser, openSession, parseArgs, PHONE, runner, sessionApi, sleep,
} from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = parseArgs('node compose.mjs <keyboardia-binary> <web-dist-dir> [screenshot-dir] | --base-url <url>');
const shotDir = args.shotDir || path.resolve(here, '../../../target/screenshots');
const { server, base } = await hostUnderTest(args);

const browser = await launchBrowser();
const consoleErrors = [];
const clipboard = (ctx) => ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
const open = (id, opts = DESKTOP) => openSession(browser, base, id, consoleErrors, opts, clipboard);
const { create: createSession, doc, until } = sessionApi(base);
async function shot(p, name) {
  fs.mkdirSync(shotDir, { recursive: true });
  await p.screenshot({ path: path.join(shotDir, `compose-${name}.png`) });
}
const cell = (track, step) => `[data-track="${track}"] .cell[data-step="${step}"]`;

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

const axeSource = path.join(here, 'node_modules/axe-core/axe.min.js');
async function axe(p) {
  await p.addScriptTag({ path: axeSource });
  const res = await p.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  return res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
}

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

await test('the pattern menu stays under its button when the page scrolls', async () => {
  await a.setViewportSize({ width: DESKTOP.viewport.width, height: 360 });
  try {
    await a.evaluate(() => window.scrollTo(0, 0));
    const track = await a.$$eval('.track[data-track]', (ts) => ts[ts.length - 1].dataset.track);
    await a.click(`[data-track="${track}"] .tools-open`);
    await a.waitForSelector('.tools-menu');
    const gap = () => a.evaluate((t) => {
      const b = document.querySelector(`[data-track="${t}"] .tools-open`).getBoundingClientRect();
      const m = document.querySelector('.tools-menu').getBoundingClientRect();
      return [m.top - b.bottom, m.left - b.left];
    }, track);
    const before = await gap();
    await a.evaluate(() => window.scrollBy(0, 150));
    await sleep(150);
    const scrolled = await a.evaluate(() => window.scrollY);
    const after = await gap();
    assert(scrolled > 20, `the page did not scroll (${scrolled})`);
    assert(Math.abs(after[0] - before[0]) < 1.5 && Math.abs(after[1] - before[1]) < 1.5,
      `the menu moved against its button: ${before} then ${after}`);
    return `scrolled ${scrolled} px; menu to button ${before[0].toFixed(1)} px before and ${after[0].toFixed(1)} px after`;
  } finally {
    await a.keyboard.press('Escape');
    await a.evaluate(() => window.scrollTo(0, 0));
    await a.setViewportSize(DESKTOP.viewport);
  }
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

await test('two fingers scroll the grid sideways on a phone, and paint nothing', async () => {
  const p = await open(id, PHONE);
  const rows = ['kick', 'snare'];
  const before = await Promise.all(rows.map((t) => rowState(p, t)));
  const doc0 = JSON.stringify((await doc(id)).tracks);
  const scroll0 = await p.$eval('.grid', (g) => g.scrollLeft);
  const cdp = await p.context().newCDPSession(p);
  const [x1, y1] = await center(p, cell('kick', 3));
  const [, y2] = await center(p, cell('snare', 3));
  const at = (dx) => [{ x: x1 - dx, y: y1, id: 1 }, { x: x1 - dx, y: y2, id: 2 }];
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: at(0) });
  for (let i = 1; i <= 10; i++) {
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: at(12 * i) });
    await sleep(20);
  }
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  await sleep(400);
  const scroll1 = await p.$eval('.grid', (g) => g.scrollLeft);
  assert(scroll1 - scroll0 > 80, `the grid scrolled ${scroll1 - scroll0} px for a 120 px two-finger swipe`);
  const after = await Promise.all(rows.map((t) => rowState(p, t)));
  assert(JSON.stringify(after) === JSON.stringify(before), 'no step changed on the page');
  assert(JSON.stringify((await doc(id)).tracks) === doc0, 'no step changed on the server');
  // A tap still toggles a step after it.
  await p.tap(cell('kick', 6));
  await until(id, (d) => trackOf(d, 'kick').steps.includes(6) !== before[0].split(' ')[6].startsWith('on'), 'a tap still toggles');
  await p.keyboard.press('Control+z');
  await p.close();
  return `scrolled ${scroll1 - scroll0} px`;
});

// The piano roll, on a session of its own (the starter's bass: steps 0, 3, 6 (+3), 10 (-2)).
const rid = await createSession();
const ra = await open(rid);
const rb = await open(rid);
/** The centre of step `k`, pitch `pitch` in the open roll (scrolled into view first). */
async function rollPoint(p, k, pitch) {
  await p.locator(`.roll-key[data-pitch="${pitch}"]`).scrollIntoViewIfNeeded();
  const key = await p.locator(`.roll-key[data-pitch="${pitch}"]`).boundingBox();
  const area = await p.locator('.roll-area').boundingBox();
  const n = Number(await p.$eval('.roll', (r) => getComputedStyle(r).getPropertyValue('--steps')));
  return [area.x + (k + 0.5) * (area.width / n), key.y + key.height / 2];
}
async function openRoll(p, track) {
  if (await p.locator('.tools-menu').count()) await p.keyboard.press('Escape');
  await p.click(`[data-track="${track}"] .tools-open`);
  await p.click(`[data-track="${track}"] .tools-menu [data-tool="piano-roll"]`);
  await p.waitForSelector('.roll-sheet .roll-area');
}
const lock = (d, k) => (trackOf(d, 'bass').locks || {})[String(k)] || {};
const on = (d, k) => trackOf(d, 'bass').steps.includes(k);
async function spyAuditions(p) {
  await p.evaluate(() => {
    window.auditions = [];
    const post = MessagePort.prototype.postMessage;
    MessagePort.prototype.postMessage = function (m, ...rest) {
      if (m && m.type === 'audition') window.auditions.push(m.pitch);
      return post.call(this, m, ...rest);
    };
  });
}

await test('piano roll: click places a note (heard by its player only), drag its end for length, drag it up for pitch, the lane for velocity; the other player sees each', async () => {
  for (const p of [ra, rb]) { await p.click('.sound', { force: true }); await p.waitForFunction(() => !document.querySelector('.start-audio')); await spyAuditions(p); }
  await openRoll(ra, 'bass');
  // Place: step 2, +5.
  const [x1, y1] = await rollPoint(ra, 1, 5);
  await ra.mouse.click(x1, y1);
  await until(rid, (d) => on(d, 1) && lock(d, 1).pitch === 5, 'note placed');
  await rb.waitForSelector(`${cell('bass', 1)}:has-text("+5")`);
  const heard = await ra.evaluate(() => window.auditions.slice());
  assert(heard.length >= 1 && heard[0] === 5, `A heard ${JSON.stringify(heard)}`);
  assert((await rb.evaluate(() => window.auditions.length)) === 0, 'B heard an audition');
  // Length: drag its end to step 4 (three steps).
  const end = await ra.locator('.roll-note[data-start="1"] .roll-end').boundingBox();
  const [x3] = await rollPoint(ra, 3, 5);
  await ra.mouse.move(end.x + end.width / 2, end.y + end.height / 2);
  await ra.mouse.down();
  await ra.mouse.move(x3, end.y + end.height / 2, { steps: 5 });
  await ra.mouse.up();
  await until(rid, (d) => on(d, 2) && on(d, 3) && lock(d, 2).tie && lock(d, 3).tie, 'lengthened (ties)');
  await rb.waitForSelector(`${cell('bass', 3)}.on`);
  // Pitch: drag the note up to +7; its tied steps follow.
  const [xm, ym] = await rollPoint(ra, 1, 5);
  const [, y7] = await rollPoint(ra, 1, 7);
  await ra.mouse.move(xm, ym);
  await ra.mouse.down();
  await ra.mouse.move(xm, y7, { steps: 5 });
  await ra.mouse.up();
  await until(rid, (d) => lock(d, 1).pitch === 7 && lock(d, 3).pitch === 7 && lock(d, 3).tie, 'moved to +7');
  await rb.waitForSelector(`${cell('bass', 1)}:has-text("+7")`);
  // Velocity: the lane at half height.
  const lane = await ra.locator('.roll-vel').boundingBox();
  await ra.mouse.click(x1, lane.y + lane.height / 2);
  const d = await until(rid, (d) => Math.abs((lock(d, 1).volume ?? 1) - 0.5) < 0.06, 'velocity about 50%');
  await ra.waitForSelector('[data-testid=roll-status]:has-text("velocity")');
  await shot(ra, 'desktop-piano-roll');
  return `lock ${JSON.stringify(lock(d, 1))}`;
});

await test('piano roll: a drag across steps paints notes, one undo removes them all; a click on a note removes it', async () => {
  const before = await rowState(rb, 'bass');
  const [x0, y0] = await rollPoint(ra, 12, -3);
  await ra.mouse.move(x0, y0);
  await ra.mouse.down();
  for (const k of [13, 14]) { const [x] = await rollPoint(ra, k, -3); await ra.mouse.move(x, y0, { steps: 4 }); }
  await ra.mouse.up();
  await until(rid, (d) => [12, 13, 14].every((k) => on(d, k) && lock(d, k).pitch === -3 && !lock(d, k).tie), 'painted 12-14');
  await changes(rb, 'bass', before, 'B sees the painted notes');
  await ra.keyboard.press('Control+z');
  await until(rid, (d) => ![12, 13, 14].some((k) => on(d, k)), 'one undo');
  await sees(rb, 'bass', before, 'B sees the paint undone');
  // A click on a note removes it (the one at 6).
  const [x6, y6] = await rollPoint(ra, 6, 3);
  await ra.mouse.click(x6, y6);
  await until(rid, (d) => !on(d, 6), 'note removed');
});

await test('piano roll with the keyboard alone: move, place, lengthen, raise, soften, delete', async () => {
  await ra.keyboard.press('Escape');
  await ra.waitForSelector('.sheet', { state: 'detached' });
  await ra.focus('[data-track="bass"] .tools-open');
  await ra.keyboard.press('Enter');
  await ra.focus('[data-track="bass"] .tools-menu [data-tool="piano-roll"]');
  await ra.keyboard.press('Enter');
  await ra.waitForSelector('.roll-area:focus');
  // The cursor starts on the first note (step 1, its pitch 0).
  await ra.waitForSelector('[data-testid=roll-status]:has-text("Step 1,")');
  for (let i = 0; i < 4; i++) await ra.keyboard.press('ArrowRight');
  for (let i = 0; i < 2; i++) await ra.keyboard.press('ArrowUp');
  await ra.keyboard.press('Enter');
  await until(rid, (d) => on(d, 4) && lock(d, 4).pitch === 2, 'placed at step 5, +2');
  await ra.keyboard.press('Shift+ArrowRight');
  await until(rid, (d) => on(d, 5) && lock(d, 5).tie, 'two steps long');
  await ra.keyboard.press('Shift+ArrowUp');
  await until(rid, (d) => lock(d, 4).pitch === 3 && lock(d, 5).pitch === 3, 'raised to +3');
  await ra.keyboard.press('-');
  const d = await until(rid, (d) => Math.abs((lock(d, 4).volume ?? 1) - 0.9) < 0.01, 'softer');
  await rb.waitForSelector(`${cell('bass', 4)}:has-text("+3")`);
  const status = await ra.textContent('[data-testid=roll-status]');
  assert(/2 steps, velocity 90%/.test(status), `status: ${status}`);
  await ra.keyboard.press('Delete');
  await until(rid, (d) => !on(d, 4) && !on(d, 5), 'deleted');
  // Space placed a note too (and did not start playback).
  await ra.keyboard.press(' ');
  await until(rid, (d) => on(d, 5), 'space places');
  assert(!(await ra.locator('.play:has-text("Stop")').count()), 'space in the roll does not play');
  return `${status}; lock was ${JSON.stringify(lock(d, 4))}`;
});

await test('piano roll on a phone: opens from the track sheet, a tap places a note', async () => {
  const p = await open(rid, PHONE);
  await p.click('[data-track="bass"] [aria-label^="Track settings"]');
  await p.click('.sheet [data-tool="piano-roll"]');
  await p.waitForSelector('.roll-sheet .roll-area');
  const [x, y] = await rollPoint(p, 8, 0);
  await p.touchscreen.tap(x, y);
  await until(rid, (d) => on(d, 8), 'tapped note');
  await shot(p, 'phone-piano-roll');
  await p.close();
});

await test('piano roll chords: several notes on one step, the other player gets the chord; a click takes one note out', async () => {
  const p = await open(rid);
  await openRoll(p, 'bass');
  for (const pitch of [0, 4, 7]) {
    const [x, y] = await rollPoint(p, 12, pitch);
    await p.mouse.click(x, y);
    await sleep(150);
  }
  let d = await until(rid, (d) => on(d, 12) && JSON.stringify(lock(d, 12).chord) === '[4,7]' && !lock(d, 12).pitch, 'a C major chord on step 13');
  await rb.waitForSelector(`${cell('bass', 12)}.on`);
  await p.waitForSelector('[data-testid=roll-status]:has-text("chord")');
  assert((await p.locator('.roll-note[data-start="12"]').count()) === 3, 'three notes shown');
  // While playing, the roll shows the playhead.
  await p.click('.play');
  await p.waitForSelector('.roll-now', { timeout: 5000 });
  await shot(p, 'desktop-piano-roll-chord');
  await p.click('.play');
  await p.waitForSelector('.roll-now', { state: 'detached', timeout: 5000 });
  // A click on the E takes it out of the chord.
  const e = await p.locator('.roll-note[data-start="12"][data-pitch="4"]').boundingBox();
  await p.mouse.click(e.x + 4, e.y + e.height / 2);
  d = await until(rid, (d) => JSON.stringify(lock(d, 12).chord) === '[7]', 'the E removed');
  await p.close();
  return JSON.stringify(lock(d, 12));
});

await test('loop region: a drag over the step ruler loops those steps for both players; the grid shows it; ✕ clears it; the keyboard sets and moves it', async () => {
  if (await ra.locator('.sheet').count()) {
    await ra.keyboard.press('Escape');
    await ra.waitForSelector('.sheet', { state: 'detached' });
  }
  const [x0, y0] = await center(ra, '[data-testid=ruler] .tick[data-step="4"]');
  const [x1] = await center(ra, '[data-testid=ruler] .tick[data-step="7"]');
  await ra.mouse.move(x0, y0);
  await ra.mouse.down();
  await ra.mouse.move(x1, y0, { steps: 6 });
  await ra.mouse.up();
  await until(rid, (d) => d.loop && d.loop.start === 4 && d.loop.end === 8, 'loop 4..8');
  await rb.waitForSelector('[data-testid=loop-text]:has-text("steps 5–8")');
  assert((await rb.locator('[data-testid=ruler] .tick.in-loop').count()) === 4, 'four steps marked on B');
  assert(await rb.locator(`${cell('kick', 0)}.out-loop`).count() === 1 && await rb.locator(`${cell('kick', 5)}.out-loop`).count() === 0, 'steps outside dimmed on B');
  await shot(rb, 'desktop-loop-region');
  await ra.click('.loop-clear');
  await until(rid, (d) => !d.loop, 'cleared');
  await rb.waitForSelector('[data-testid=ruler] .tick.in-loop', { state: 'detached' });
  // The keyboard: Enter loops the first bar, an arrow moves it, Delete clears it.
  await ra.focus('[data-testid=ruler] .ruler');
  await ra.keyboard.press('Enter');
  await until(rid, (d) => d.loop && d.loop.start === 0 && d.loop.end === 16, 'first bar');
  await ra.keyboard.press('Shift+ArrowLeft');
  await until(rid, (d) => d.loop && d.loop.end === 15, 'shorter');
  await ra.keyboard.press('ArrowRight');
  await until(rid, (d) => d.loop && d.loop.start === 1 && d.loop.end === 16, 'moved');
  await ra.keyboard.press('Delete');
  await until(rid, (d) => !d.loop, 'cleared by Delete');
  // On a phone: the ruler is there too, and a tap loops its bar.
  const q = await open(rid, PHONE);
  const [tx, ty] = await center(q, '[data-testid=ruler] .tick[data-step="2"]');
  await q.touchscreen.tap(tx, ty);
  await until(rid, (d) => d.loop && d.loop.start === 0 && d.loop.end === 16, 'tap loops the bar');
  await shot(q, 'phone-loop-region');
  await q.close();
  await ra.click('.loop-clear');
  await until(rid, (d) => !d.loop, 'cleared at the end');
});

await test('? opens the shortcuts panel, complete with the grid, painting, pattern tools and the piano roll; ? again closes it', async () => {
  const p = await open(rid);
  await p.click('.grid', { position: { x: 5, y: 5 } }).catch(() => {});
  await p.keyboard.press('?');
  const panel = p.locator('[data-testid=shortcuts]');
  await panel.waitFor({ timeout: 3000 });
  const text = await panel.textContent();
  for (const want of ['Space', 'Ctrl/⌘ + Z', 'Press and drag', '⇄', 'Piano roll', 'Shift + ← →', 'Shift + ↑ ↓', 'Enter or Space', 'Delete', '− or +', 'Esc', '?']) {
    assert(text.includes(want), `the panel lacks ${want}`);
  }
  const groups = await p.$$eval('.shortcut-group h3', (hs) => hs.map((h) => h.textContent));
  await shot(p, 'desktop-shortcuts');
  await p.keyboard.press('?');
  await p.waitForSelector('[data-testid=shortcuts]', { state: 'detached' });
  // On a phone: from the More sheet.
  const q = await open(rid, PHONE);
  await q.click('.top .overflow');
  await q.click('.sheet button:has-text("Shortcuts")');
  await q.waitForSelector('[data-testid=shortcuts]');
  await shot(q, 'phone-shortcuts');
  await p.close();
  await q.close();
  return groups.join(', ');
});

await test('accessibility: axe-core finds no serious or critical violations in the key control, the pattern tools, the piano roll and the shortcuts', async () => {
  const found = [];
  const p = await open(rid);
  await p.selectOption('.transport .key-scale', 'major');
  await p.waitForSelector('.key-ask');
  found.push(...(await axe(p)).map((v) => `key: ${v}`));
  await p.click('[data-testid=keep-notes]');
  await p.click('[data-track="bass"] .tools-open');
  found.push(...(await axe(p)).map((v) => `tools: ${v}`));
  await p.click('[data-track="bass"] .tools-menu [data-tool="piano-roll"]');
  await p.waitForSelector('.roll-area');
  found.push(...(await axe(p)).map((v) => `roll: ${v}`));
  await p.keyboard.press('Escape');
  await p.keyboard.press('?');
  await p.waitForSelector('[data-testid=shortcuts]');
  found.push(...(await axe(p)).map((v) => `shortcuts: ${v}`));
  const q = await open(rid, PHONE);
  await q.click('[data-track="bass"] [aria-label^="Track settings"]');
  await q.waitForSelector('.sheet [data-tool="piano-roll"]');
  found.push(...(await axe(q)).map((v) => `phone track sheet: ${v}`));
  await p.close();
  await q.close();
  assert(found.length === 0, found.join('\n'));
});

await test('no console errors', async () => {
  assert(consoleErrors.length === 0, consoleErrors.join('\n'));
});

await browser.close();
if (server) server.kill('SIGTERM');
finish();
