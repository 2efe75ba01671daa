// The app on every screen (issue 17): end-to-end tests of layout, read-only, phone parity,
// discoverability and accessibility, in real Chromium against the real server, at desktop
// (1280x800) and phone (390x844) sizes. Screenshots of the desktop, phone and read-only states
// go to docs/screenshots (or the directory given) and are refreshed on every run.
//
// Usage: node ui.mjs <keyboardia-binary> <web-dist-dir> [screenshot-dir]
//        node ui.mjs --base-url <url>
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assert, hostUnderTest, launchBrowser, parseArgs, runner, sessionApi } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = parseArgs('node ui.mjs <keyboardia-binary> <web-dist-dir> [screenshot-dir] | --base-url <url>');
const shotDir = args.shotDir || path.resolve(here, '../../../docs/screenshots');
const { server, base } = await hostUnderTest(args);
const axeSource = path.join(here, 'node_modules/axe-core/axe.min.js');

const DESKTOP = { viewport: { width: 1280, height: 800 } };
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

// A fake microphone (a beep) that needs no permission prompt.
const browser = await launchBrowser(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']);
const consoleErrors = [];
const contexts = [];
async function page(opts = DESKTOP) {
  const ctx = await browser.newContext({ colorScheme: 'dark', ...opts });
  contexts.push(ctx);
  const p = await ctx.newPage();
  p.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${p.url()}: ${m.text()}`); });
  p.on('pageerror', (e) => consoleErrors.push(`${p.url()}: ${e}`));
  return p;
}
async function shot(p, name) {
  fs.mkdirSync(shotDir, { recursive: true });
  await p.screenshot({ path: path.join(shotDir, `${name}.png`) });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cell = (track, step) => `[data-track="${track}"] .cell[data-step="${step}"]`;
const settingsButton = (track) => `[data-track="${track}"] [aria-label^="Track settings"]`;

const { create: createSession, doc, until } = sessionApi(base);
async function open(id, opts = DESKTOP) {
  const p = await page(opts);
  await p.goto(`${base}/s/${id}`);
  await p.waitForSelector('[data-testid=status]:has-text("live")');
  return p;
}
/** Edits sent over a WebSocket of its own (a player without a page), from page `p`. */
async function wsEdits(p, id, edits) {
  if (!p.url().startsWith(base)) await p.goto(`${base}/healthz`);
  await p.evaluate(async ({ id, edits }) => {
    const ws = new WebSocket(`${location.origin.replace('http', 'ws')}/api/sessions/${id}/ws`);
    const mids = new Set(edits.map((_, i) => `setup-${i}`));
    await new Promise((res, rej) => {
      ws.onerror = rej;
      ws.onopen = () => ws.send(JSON.stringify({ type: 'HELLO', protocol: 1, playerId: `setup-${Math.random().toString(36).slice(2)}` }));
      ws.onmessage = (m) => {
        const msg = JSON.parse(m.data);
        if (msg.type === 'WELCOME') edits.forEach((e, i) => ws.send(JSON.stringify({ ...e, mid: `setup-${i}` })));
        if (msg.mid) mids.delete(msg.mid);
        if (msg.type === 'ERROR') rej(new Error(m.data));
        if (!mids.size) res();
      };
    });
    ws.close();
  }, { id, edits });
}
/** Whether two boxes overlap (by more than a pixel). */
const overlap = (a, b) => a.x + 1 < b.x + b.width && b.x + 1 < a.x + a.width && a.y + 1 < b.y + b.height && b.y + 1 < a.y + a.height;
/** WCAG contrast of an element's text against its own (opaque) background. */
async function contrast(p, sel) {
  return p.$eval(sel, (el) => {
    const rgb = (c) => c.match(/[\d.]+/g).slice(0, 3).map(Number);
    const lum = ([r, g, b]) => {
      const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    let bg = null;
    for (let e = el; e && !bg; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor;
      if (!/rgba\(.*, 0\)$/.test(c) && c !== 'transparent') bg = c;
    }
    const a = lum(rgb(getComputedStyle(el).color)); const b = lum(rgb(bg));
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  });
}
/** Switches the theme: in the header, or on a phone in the "More" sheet. */
async function toggleTheme(p) {
  if (await p.locator('.top .theme').isVisible()) return p.click('.top .theme');
  await p.click('.top .overflow');
  await p.click('.sheet .theme');
  await p.keyboard.press('Escape');
  await p.waitForSelector('.sheet', { state: 'detached' });
}
async function axe(p) {
  await p.addScriptTag({ path: axeSource });
  const res = await p.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  return res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
}

const { test, finish } = runner();

// 1. The track settings: beside the grid, named, over nothing.
await test('bug 1 (desktop): track settings open beside the grid, say which track, and cover neither the header, the transport nor the rows', async () => {
  const id = await createSession();
  const p = await open(id);
  await p.click(settingsButton('kick'));
  const dialog = p.getByRole('dialog', { name: /Kick/ });
  await dialog.waitFor({ timeout: 3000 });
  const d = await dialog.boundingBox();
  for (const sel of ['header.top', '.transport', '.grid']) {
    const b = await p.locator(sel).boundingBox();
    assert(!overlap(d, b), `the settings (${JSON.stringify(d)}) cover ${sel} (${JSON.stringify(b)})`);
  }
  // Play is not under anything: a click on it plays.
  const play = await p.locator('.play').boundingBox();
  const hit = await p.evaluate(([x, y]) => document.elementFromPoint(x, y).closest('.play') !== null, [play.x + play.width / 2, play.y + play.height / 2]);
  assert(hit, 'something covers Play');
  await p.click('.play');
  await p.waitForSelector('.play:has-text("Stop")');
  await p.click('.play');
  // Another row's settings name that row.
  await p.click(settingsButton('snare'));
  await p.getByRole('dialog', { name: /Snare/ }).waitFor({ timeout: 3000 });
  await shot(p, 'desktop-track-settings');
  await p.keyboard.press('Escape');
  await p.waitForSelector('.sheet', { state: 'detached' });
  await p.close();
});

// 2. "+ Add track": arrows move, they do not add.
await test('bug 2 (keyboard): arrow keys on "+ Add track" add nothing; Enter opens the picker and adds one track; the control resets', async () => {
  const id = await createSession();
  const p = await open(id);
  await p.focus('.add-track select, .add-track button');
  for (let i = 0; i < 3; i++) await p.keyboard.press('ArrowDown');
  await sleep(600);
  const d0 = await doc(id);
  assert(d0.tracks.length === 4, `arrow keys added tracks: ${d0.tracks.length}`);
  await p.keyboard.press('Enter');
  await p.waitForSelector('.sheet .pick');
  assert(await p.evaluate(() => document.activeElement.classList.contains('pick')), 'focus is in the picker');
  await p.keyboard.press('ArrowDown');
  await p.keyboard.press('ArrowDown');
  const chosen = await p.evaluate(() => document.activeElement.dataset.instrument);
  await p.keyboard.press('Enter');
  const d1 = await until(id, (d) => d.tracks.length === 5, 'one track added');
  assert(d1.tracks[4].instrument === chosen, `added ${d1.tracks[4].instrument}, chose ${chosen}`);
  await p.waitForSelector('.sheet', { state: 'detached' });
  assert((await p.textContent('.add-track')).trim() === '+ Add track', 'the control reads "+ Add track" again');
  await sleep(300);
  assert((await doc(id)).tracks.length === 5, 'exactly one track added');
  await p.close();
});

// 3. Published: read-only in look and behaviour; "Remix it" readable.
await test('bug 3: the published view shows no editing controls, and "Remix it" has at least 4.5:1 contrast in both themes', async () => {
  const id = await createSession();
  const pub = await (await fetch(`${base}/api/sessions/${id}/publish`, { method: 'POST' })).json();
  for (const [name, opts] of [['published-desktop', DESKTOP], ['published-phone', PHONE]]) {
    const p = await open(pub.id, opts);
    await p.waitForSelector('.banner');
    const editable = await p.evaluate(() => [...document.querySelectorAll('.grid button, .grid input, .grid select, .transport input, .transport select, input.session-name, .tempo button, [aria-label^="Track settings"], .more')]
      .filter((e) => !e.disabled && e.offsetParent !== null).map((e) => e.outerHTML.slice(0, 80)));
    assert(editable.length === 0, `controls that look usable: ${editable.join(' ; ')}`);
    assert(await p.locator('.cell').count() >= 16, 'the pattern is shown');
    assert(/\d+ BPM/.test(await p.textContent('[data-testid=tempo]')), 'the tempo is shown as text');
    const c = await contrast(p, '.banner button');
    assert(c >= 4.5, `"Remix it" contrast ${c.toFixed(2)}:1 (dark)`);
    await shot(p, name);
    await p.close();
  }
  // A browser that prefers light, and the light theme chosen in the app.
  const l = await open(pub.id, { ...DESKTOP, colorScheme: 'light' });
  await l.waitForSelector('.banner');
  const c1 = await contrast(l, '.banner button');
  assert(c1 >= 4.5, `"Remix it" contrast ${c1.toFixed(2)}:1 (browser prefers light)`);
  await l.click('.theme');
  await l.waitForSelector('html[data-theme=light]');
  const c2 = await contrast(l, '.banner button');
  assert(c2 >= 4.5, `"Remix it" contrast ${c2.toFixed(2)}:1 (light theme)`);
  await l.close();
  return `Remix it: ${c1.toFixed(1)}:1 dark, ${c2.toFixed(1)}:1 light`;
});

// 4. Long rows: one scroller, a fixed track column, aligned columns, following the playhead.
for (const [label, opts] of [['desktop', DESKTOP], ['phone', PHONE]]) {
  await test(`bug 4 (${label}): rows of 32 and 64 steps scroll as one grid with a fixed track column, stay aligned, and follow the playhead unless the player scrolls`, async () => {
    const id = await createSession();
    const p = await open(id, opts);
    await wsEdits(p, id, [
      { type: 'SET_TRACK_STEP_COUNT', trackId: 'hat', stepCount: 64 },
      { type: 'SET_TRACK_STEP_COUNT', trackId: 'bass', stepCount: 32 },
      { type: 'SET_TEMPO', tempo: 180 },
    ]);
    await p.waitForSelector(cell('hat', 63), { state: 'attached' });
    const layout = await p.evaluate(() => ({
      rowsScrolling: [...document.querySelectorAll('.cells')].filter((c) => c.scrollWidth > c.clientWidth + 1).length,
      gridScrolls: (() => { const g = document.querySelector('.grid'); return g && g.scrollWidth > g.clientWidth + 100; })(),
      pageWidth: document.documentElement.scrollWidth,
    }));
    assert(layout.rowsScrolling === 0, `${layout.rowsScrolling} rows scroll on their own`);
    assert(layout.gridScrolls, 'the grid does not scroll as one');
    assert(layout.pageWidth <= opts.viewport.width, `the page is ${layout.pageWidth}px wide`);
    const xs = async (track) => p.$$eval(`[data-track="${track}"] .cell`, (cs) => cs.slice(0, 16).map((c) => Math.round(c.getBoundingClientRect().x)));
    const [kx, hx] = [await xs('kick'), await xs('hat')];
    assert(kx.every((x, i) => Math.abs(x - hx[i]) <= 1), `columns differ: ${kx} vs ${hx}`);
    // Scrolled to the end: the last steps are in view, the track column stays.
    const head0 = await p.locator('[data-track="kick"] .track-head').boundingBox();
    await p.$eval('.grid', (g) => { g.scrollLeft = g.scrollWidth; });
    await sleep(100);
    const head1 = await p.locator('[data-track="kick"] .track-head').boundingBox();
    assert(Math.abs(head0.x - head1.x) < 1, `the track column moved from ${head0.x} to ${head1.x}`);
    const grid = await p.locator('.grid').boundingBox();
    const last = await p.locator(cell('hat', 63)).boundingBox();
    assert(last.x >= head1.x + head1.width - 1 && last.x + last.width <= grid.x + grid.width + 1, `the 64th step is out of view at ${last.x}`);
    // Every step of the 32-step row is inside the scrolled area (none cut off).
    const inside = await p.$eval('.grid', (g) => {
      const c = document.querySelector('[data-track="bass"] .cell[data-step="31"]').getBoundingClientRect();
      return c.right - g.getBoundingClientRect().left + g.scrollLeft <= g.scrollWidth + 1;
    });
    assert(inside, 'the 32nd step is cut off');
    const k5 = await p.locator(cell('kick', 5)).boundingBox();
    const h5 = await p.locator(cell('hat', 5)).boundingBox();
    assert(Math.abs(k5.x - h5.x) <= 1, 'scrolled rows stay aligned');
    await p.$eval('.grid', (g) => { g.scrollLeft = 0; });
    // Playing: the playhead of the 64-step row stays in view.
    await sleep(3200); // the player's own scroll above pauses following for 3 s
    await p.click('.play');
    await p.waitForSelector('[data-track="hat"] .cell.now');
    let seen = 0; let inView = 0; let far = 0;
    const playhead = () => p.evaluate(() => {
      const c = document.querySelector('[data-track="hat"] .cell.now');
      const g = document.querySelector('.grid').getBoundingClientRect();
      const h = document.querySelector('[data-track="hat"] .track-head').getBoundingClientRect();
      if (!c) return null;
      const b = c.getBoundingClientRect();
      return { step: Number(c.dataset.step), visible: b.x >= h.right - 1 && b.right <= g.right + 1 };
    });
    for (let i = 0; i < 24; i++) {
      await sleep(180);
      let r = await playhead();
      if (!r) continue;
      seen++;
      // Caught just as the playhead moved on, before the grid followed it (a frame or two
      // later on a loaded machine: CI once saw 3 of 24): look again once, a moment later.
      if (!r.visible) r = (await sleep(80), await playhead()) ?? r;
      if (r.visible) inView++;
      if (r.step >= 30) far++;
    }
    assert(far > 0, 'the playhead never reached the far steps');
    assert(inView >= seen - 2, `the playhead was in view ${inView} of ${seen} times`);
    // The player scrolls back to the start: the grid stays there (following pauses).
    await p.waitForFunction(() => Number(document.querySelector('[data-track="hat"] .cell.now')?.dataset.step) >= 36);
    const g = await p.locator('.grid').boundingBox();
    if (opts.hasTouch) {
      await p.$eval('.grid', (el) => { el.dispatchEvent(new TouchEvent('touchstart', { bubbles: true })); el.scrollLeft = 0; });
    } else {
      await p.mouse.move(g.x + g.width / 2, g.y + 20);
      await p.mouse.wheel(-20000, 0);
    }
    await sleep(150);
    const left0 = await p.$eval('.grid', (el) => el.scrollLeft);
    await sleep(1200);
    const left1 = await p.$eval('.grid', (el) => el.scrollLeft);
    assert(left0 < 5 && left1 < 5, `the grid moved while the player was scrolling: ${left0} -> ${left1}`);
    await shot(p, `${label}-long-rows`);
    await p.click('.play');
    await p.close();
  });
}

// 5. Phone: the bottom sheet opens track settings and the instrument picker.
await test('bug 5 (phone): track settings and the instrument picker open in a bottom sheet; volume, step count, instrument and delete (confirmed) work', async () => {
  const id = await createSession();
  const p = await open(id, PHONE);
  await p.tap(settingsButton('snare'));
  const sheet = p.getByRole('dialog', { name: /Snare/ });
  await sheet.waitFor({ timeout: 3000 });
  const b = await sheet.boundingBox();
  assert(Math.abs(b.y + b.height - 844) <= 2 && b.width >= 388, `not a bottom sheet: ${JSON.stringify(b)}`);
  await shot(p, 'phone-track-settings');
  const vol = p.locator('.sheet input[aria-label="Volume"]');
  await vol.fill('30');
  await vol.dispatchEvent('change');
  await p.selectOption('.sheet select[aria-label="Step count"]', '32');
  await until(id, (d) => { const s = d.tracks.find((t) => t.id === 'snare'); return Math.abs(s.volume - 0.3) < 1e-6 && s.stepCount === 32; }, 'volume and step count');
  await p.tap('.sheet .inst-open');
  await p.waitForSelector('.sheet .picker');
  const target = await p.$eval('.sheet .pick[aria-pressed=false]', (e) => e.dataset.instrument);
  await p.tap(`.sheet .pick[data-instrument="${target}"]`);
  await until(id, (d) => d.tracks.find((t) => t.id === 'snare').instrument === target, 'instrument changed');
  await p.tap(settingsButton('snare'));
  await p.tap('.sheet .delete');
  await p.waitForSelector('[data-testid=confirm-delete]');
  await sleep(300);
  assert((await doc(id)).tracks.some((t) => t.id === 'snare'), 'deleted before confirming');
  await p.tap('[data-testid=confirm-delete]');
  await until(id, (d) => !d.tracks.some((t) => t.id === 'snare'), 'track deleted');
  await p.waitForSelector('[data-track="snare"]', { state: 'detached' });
  await shot(p, 'phone-session');
  await p.close();
});

// 6. The late joiner.
for (const [label, opts] of [['desktop', DESKTOP], ['phone', PHONE]]) {
  await test(`bug 6 (${label}): a late joiner is told that sound is off, by the transport, and the first gesture anywhere starts it`, async () => {
    const id = await createSession();
    const starter = await page();
    await wsEdits(starter, id, [{ type: 'PLAY' }]);
    await starter.close();
    const c = await open(id, opts);
    const note = c.locator('.sound.urgent');
    await note.waitFor({ timeout: 5000 });
    const text = await note.textContent();
    assert(/muted|off/i.test(text) && /tap anywhere/i.test(text), `the notice says: ${text}`);
    const nb = await note.boundingBox();
    const tb = await c.locator('.transport').boundingBox();
    assert(nb.y >= tb.y - 1 && nb.y + nb.height <= tb.y + tb.height + 1, 'the notice is in the transport');
    assert(nb.y >= 0 && nb.y + nb.height <= opts.viewport.height, 'the notice is on screen');
    if (label === 'desktop') await shot(c, 'late-joiner');
    // A gesture on nothing in particular (the empty page below the grid / the header).
    if (opts.hasTouch) await c.touchscreen.tap(200, 30); else await c.mouse.click(640, 700);
    await c.waitForSelector('.sound:not(.start-audio)', { timeout: 5000 });
    assert(/sound on/i.test(await c.textContent('.sound')), 'the button says the sound is on');
    await c.close();
  });
}

// 7. The 11th player.
await test('bug 7: the 11th player gets a plain "session full" page with no grid and no controls', async () => {
  const id = await createSession();
  const holder = await page();
  await holder.goto(`${base}/`);
  await holder.evaluate(async (id) => {
    window.players = [];
    await Promise.all(Array.from({ length: 10 }, (_, i) => new Promise((res, rej) => {
      const ws = new WebSocket(`${location.origin.replace('http', 'ws')}/api/sessions/${id}/ws`);
      ws.onopen = () => ws.send(JSON.stringify({ type: 'HELLO', protocol: 1, playerId: `holder-${i}` }));
      ws.onmessage = (m) => { if (JSON.parse(m.data).type === 'WELCOME') res(); };
      ws.onclose = () => rej(new Error('closed'));
      window.players.push(ws);
    })));
  }, id);
  for (const [name, opts] of [['session-full', DESKTOP], ['session-full-phone', PHONE]]) {
    const p = await page(opts);
    await p.goto(`${base}/s/${id}`);
    // The wait covers a whole first load (fetching and compiling the app's wasm, connecting,
    // being refused), which took over 5 s once on CI's busy machine: the check is what the page
    // says, not how fast it loads.
    await p.waitForSelector('[data-testid=refused]', { timeout: 20000 });
    const text = await p.textContent('[data-testid=refused]');
    assert(/full/i.test(text) && /10 players/.test(text), `the page says: ${text}`);
    for (const sel of ['.cell', '.grid', '.play', '.tempo', '.add-track']) {
      assert(await p.locator(sel).count() === 0, `the full page shows ${sel}`);
    }
    await shot(p, name);
    await p.close();
  }
  await holder.evaluate(() => window.players.forEach((w) => w.close()));
  await holder.close();
});

// 8. Nothing moves when sound starts; avatars apart; yours marked.
for (const [label, opts] of [['desktop', DESKTOP], ['phone', PHONE]]) {
  await test(`bug 8 (${label}): starting sound moves nothing in the transport; avatars do not overlap; your own is marked`, async () => {
    const id = await createSession();
    const a = await open(id, opts);
    const others = [];
    for (let i = 0; i < 2; i++) others.push(await open(id));
    await a.waitForFunction(() => document.querySelectorAll('.avatar').length === 3);
    const boxes = async () => Promise.all(['.play', '.tempo', '.swing', '[data-testid=status]'].map((s) => a.locator(s).boundingBox()));
    const before = await boxes();
    await a.click('.start-audio');
    await a.waitForFunction(() => !document.querySelector('.start-audio'));
    const after = await boxes();
    before.forEach((b, i) => assert(Math.abs(b.x - after[i].x) < 1 && Math.abs(b.y - after[i].y) < 1, `transport item ${i} moved: ${JSON.stringify(b)} -> ${JSON.stringify(after[i])}`));
    const av = await a.$$eval('.avatar', (els) => els.map((e) => { const r = e.getBoundingClientRect(); return { x: r.x, y: r.y, width: r.width, height: r.height }; }));
    for (let i = 0; i < av.length; i++) for (let j = i + 1; j < av.length; j++) assert(!overlap(av[i], av[j]), `avatars ${i} and ${j} overlap`);
    const mine = a.locator('.avatar[aria-label$="(you)"]');
    assert(await mine.count() === 1, 'one avatar is marked as yours');
    const [meStyle, otherStyle] = await a.$$eval('.avatar', (els) => els.slice(0, 2).map((e) => getComputedStyle(e).boxShadow));
    assert(meStyle !== otherStyle && meStyle !== 'none', 'your avatar looks different');
    if (label === 'desktop') await shot(a, 'desktop');
    for (const o of others) await o.close();
    await a.close();
  });
}

// 9. Remix naming, publish confirmation and the way back, delete confirmation.
await test('bug 9: a remix is named as a copy; publish asks first and leads back to the editable session; deleting a track asks first', async () => {
  const id = await createSession();
  const p = await open(id);
  const name = p.locator('input.session-name');
  await name.fill('Night Drive');
  await name.dispatchEvent('change');
  await until(id, (d) => d.name === 'Night Drive', 'renamed');
  await p.click('.actions button:text-is("Remix")');
  await p.waitForURL((u) => !u.toString().includes(id));
  await p.waitForSelector('[data-testid=status]:has-text("live")');
  assert(await p.inputValue('input.session-name') === 'Remix of Night Drive', `remix named ${await p.inputValue('input.session-name')}`);
  await p.goto(`${base}/s/${id}`);
  await p.waitForSelector('[data-testid=status]:has-text("live")');
  await p.click('.publish');
  await p.getByRole('dialog', { name: /Publish/ }).waitFor({ timeout: 3000 });
  await sleep(300);
  assert(p.url().includes(id), 'published without asking');
  await p.click('.sheet button:has-text("Cancel")');
  await p.waitForSelector('.sheet', { state: 'detached' });
  await p.click('.publish');
  await p.click('[data-testid=confirm-publish]');
  await p.waitForURL((u) => !u.toString().includes(id));
  await p.waitForSelector('.banner');
  await p.click('[data-testid=back-to-source]');
  await p.waitForURL((u) => u.toString().includes(id));
  await p.waitForSelector('input.session-name:not([disabled])');
  // Deleting a track asks first (desktop; the phone is in bug 5).
  await p.click(settingsButton('hat'));
  await p.click('.sheet .delete');
  await sleep(300);
  assert((await doc(id)).tracks.some((t) => t.id === 'hat'), 'deleted before confirming');
  await p.click('.sheet button:has-text("Keep it")');
  await p.click('.sheet .delete');
  await p.click('[data-testid=confirm-delete]');
  await until(id, (d) => !d.tracks.some((t) => t.id === 'hat'), 'track deleted');
  await p.close();
});

// Tempo and swing.
await test('tempo: type a BPM, a burst of clicks ends at the clicked value, holding + repeats, tap tempo; swing shows a number', async () => {
  const id = await createSession();
  const p = await open(id);
  const bpm = p.locator('input.bpm');
  await bpm.fill('60');
  await bpm.press('Enter');
  await until(id, (d) => d.tempo === 60, 'typed tempo');
  // 119 clicks in a burst (more than the session's burst allowance of 100 messages).
  await p.evaluate(() => { const b = document.querySelector('[aria-label=Faster]'); for (let i = 0; i < 119; i++) b.click(); });
  const d = await until(id, (x) => x.tempo === 179, 'the burst ends at 179', 4000).catch(async (e) => { throw new Error(`${e.message} (shown: ${await bpm.inputValue()})`); });
  assert(await bpm.inputValue() === '179', `shown ${await bpm.inputValue()}`);
  assert(!(await p.locator('.message').count()), `an error was shown: ${await p.locator('.message').first().textContent().catch(() => '')}`);
  // Hold "−": it repeats, and the session ends at the value shown.
  const minus = await p.locator('[aria-label=Slower]').boundingBox();
  await p.mouse.move(minus.x + minus.width / 2, minus.y + minus.height / 2);
  await p.mouse.down();
  await sleep(1200);
  await p.mouse.up();
  const held = Number(await bpm.inputValue());
  assert(held <= 179 - 6, `holding − went from 179 to ${held}`);
  await until(id, (x) => x.tempo === held, `the session ends at the shown ${held}`);
  // Tap tempo: four taps 500 ms apart are 120 BPM.
  await p.evaluate(() => new Promise((res) => {
    const b = document.querySelector('button.tap');
    let n = 0;
    const t = setInterval(() => { b.click(); if (++n === 4) { clearInterval(t); res(); } }, 500);
  }));
  const tapped = await until(id, (x) => Math.abs(x.tempo - 120) <= 4, 'tap tempo near 120');
  // Swing as a number.
  const swing = p.locator('.transport input[aria-label=Swing]');
  await swing.fill('35');
  await swing.dispatchEvent('input');
  await p.waitForSelector('[data-testid=swing-value]:has-text("35%")');
  await until(id, (x) => x.swing === 35, 'swing 35');
  await p.close();
  return `burst -> ${d.tempo}, hold -> ${held}, tap -> ${tapped.tempo}`;
});

// Discoverability: the shortcuts panel and the step editor.
await test('the ? panel lists the shortcuts; the step editor opens from a visible button and by a long press on a phone', async () => {
  const id = await createSession();
  const p = await open(id);
  await p.keyboard.press('?');
  const help = p.getByRole('dialog', { name: /Shortcuts/ });
  await help.waitFor({ timeout: 3000 });
  const text = await help.textContent();
  for (const k of ['Space', 'Esc', '?', 'Shift', 'Long press', 'Tap']) assert(text.includes(k), `the shortcuts miss ${k}`);
  await shot(p, 'desktop-shortcuts');
  await p.keyboard.press('Escape');
  await p.waitForSelector('.sheet', { state: 'detached' });
  // The visible step-editor mode.
  await p.click('.lock-mode');
  const before = await p.getAttribute(cell('bass', 2), 'aria-pressed');
  await p.click(cell('bass', 2));
  await p.waitForSelector('.lock-editor');
  assert(await p.getAttribute(cell('bass', 2), 'aria-pressed') === before, 'the click toggled the step');
  await p.keyboard.press('Escape');
  await p.click('.lock-mode');
  await p.close();
  // A long press on a phone.
  const m = await open(id, PHONE);
  const box = await m.locator(cell('bass', 1)).boundingBox();
  const before2 = await m.getAttribute(cell('bass', 1), 'aria-pressed');
  const cdp = await m.context().newCDPSession(m);
  const pt = [{ x: box.x + box.width / 2, y: box.y + box.height / 2 }];
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: pt });
  await sleep(700);
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  await m.waitForSelector('.lock-editor', { timeout: 3000 });
  await sleep(300);
  assert(await m.getAttribute(cell('bass', 1), 'aria-pressed') === before2, 'the long press toggled the step');
  await shot(m, 'phone-step-editor');
  await m.close();
});

await test('recording: a one-bar count-in, then the elapsed time and the microphone level while recording', async () => {
  const id = await createSession();
  const p = await open(id);
  const t0 = Date.now();
  await p.click('.record');
  await p.waitForSelector('[data-testid=recording]:has-text("Recording in")', { timeout: 5000 });
  await p.waitForSelector('.record[aria-label="Stop recording"]', { timeout: 8000 });
  const countIn = Date.now() - t0;
  // 120 BPM: one bar is 2 s.
  assert(countIn >= 1800, `the take started after ${countIn} ms`);
  let peak = 0;
  for (let i = 0; i < 25; i++) {
    peak = Math.max(peak, Number(await p.getAttribute('[data-testid=recording] [role=meter]', 'aria-valuenow')));
    await sleep(80);
  }
  assert(peak > 0, 'the level meter never moved');
  // At least two seconds in (a loaded machine may be past 0:02 by the time it looks).
  await p.locator('[data-testid=recording]', { hasText: /Recording 0:0[2-9]/ }).waitFor({ timeout: 3000 });
  await shot(p, 'desktop-recording');
  await p.click('.record');
  await p.waitForSelector('.message:has-text("is a track now")', { timeout: 15000 });
  const d = await doc(id);
  assert(d.samples.length === 1 && d.samples[0].durationMs > 1500, `take: ${JSON.stringify(d.samples)}`);
  await p.close();
  return `count-in ${countIn} ms, peak level ${peak}%`;
});

await test('level meters: the master and each track show their level while playing; a track muted here shows none', async () => {
  const id = await createSession();
  for (const [label, opts] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const p = await open(id, opts);
    await p.click('[data-track="snare"] [aria-label="Mute (only for you)"]');
    await p.click('.play');
    const peaks = { master: 0, kick: 0, snare: 0 };
    for (let i = 0; i < 30; i++) {
      const v = await p.evaluate(() => ({
        master: Number(document.querySelector('[data-testid=master-meter]')?.getAttribute('aria-valuenow') || 0),
        kick: Number(document.querySelector('[data-track="kick"] .track-meter').getAttribute('aria-valuenow')),
        snare: Number(document.querySelector('[data-track="snare"] .track-meter').getAttribute('aria-valuenow')),
      }));
      for (const k of Object.keys(peaks)) peaks[k] = Math.max(peaks[k], v[k]);
      await sleep(70);
    }
    assert(peaks.master > 0 && peaks.kick > 0, `${label}: meters did not move: ${JSON.stringify(peaks)}`);
    assert(peaks.snare === 0, `${label}: the muted snare shows a level: ${peaks.snare}`);
    if (label === 'phone') await shot(p, 'phone-playing');
    await p.click('.play');
    await p.close();
  }
});

await test('dark theme by default; the light theme on request, kept across a reload', async () => {
  const id = await createSession();
  const p = await open(id, { ...DESKTOP, colorScheme: 'light' });
  assert(await p.getAttribute('html', 'data-theme') === 'dark', 'dark by default');
  const dark = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await p.click('.theme');
  await p.waitForSelector('html[data-theme=light]');
  await p.reload();
  await p.waitForSelector('[data-testid=status]:has-text("live")');
  assert(await p.getAttribute('html', 'data-theme') === 'light', 'the light theme is kept');
  const light = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert(dark !== light, `the background did not change (${dark})`);
  await shot(p, 'desktop-light');
  await p.close();
});

await test('accessibility: axe-core finds no serious or critical violations (landing, session, sheets, effects, phone, read-only, light)', async () => {
  const id = await createSession();
  const pub = await (await fetch(`${base}/api/sessions/${id}/publish`, { method: 'POST' })).json();
  const found = [];
  const check = async (what, p) => { for (const v of await axe(p)) found.push(`${what}: ${v}`); };
  const land = await page();
  await land.goto(`${base}/`);
  await land.waitForSelector('text=New session');
  await check('landing', land);
  await land.close();
  for (const [label, opts] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const p = await open(id, opts);
    await check(`${label} session`, p);
    await p.click(settingsButton('kick'));
    await p.waitForSelector('.sheet');
    await check(`${label} track settings`, p);
    await p.click('.sheet .inst-open');
    await p.waitForSelector('.sheet .picker');
    await check(`${label} instrument picker`, p);
    await p.keyboard.press('Escape');
    await toggleTheme(p);
    await p.waitForSelector('html[data-theme=light]');
    await check(`${label} light session`, p);
    await toggleTheme(p);
    await p.click('.fx-open');
    await p.waitForSelector('.sheet .effects');
    await check(`${label} effects panel`, p);
    await p.close();
    const r = await open(pub.id, opts);
    await check(`${label} read-only`, r);
    await r.close();
  }
  assert(found.length === 0, found.join('\n'));
});

await test('no console errors', async () => {
  assert(consoleErrors.length === 0, consoleErrors.join('\n'));
});

await browser.close();
if (server) server.kill('SIGTERM');
finish();
