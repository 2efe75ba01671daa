// End-to-end tests of sampled instruments in the browser: the picker (search, keyboard,
// audition, credits), and two players hearing an instrument one of them picked, against the
// real server and Chromium. The other page's engine must get the piano's samples loaded and
// play them (asked from the worklet itself through `window.__kbProbe`) without reloading.
// Also measures what a new player downloads to hear a session with a sampled kit, piano, bass
// and pad, and the time to its first sampled sound.
//
// Needs the prepared sample library (target/sample-library, or $KEYBOARDIA_LIBRARY); the
// harness puts it into the server's sample store.
//
// Usage: node sampled.mjs <keyboardia-binary> <web-dist-dir> [screenshot-dir]
//        node sampled.mjs --base-url <url>   (a host that already serves the library)
import fs from 'node:fs';
import path from 'node:path';
import { assert, hostUnderTest, launchBrowser, parseArgs, runner, sampleLibrary } from './harness.mjs';

const args = parseArgs('node sampled.mjs <keyboardia-binary> <web-dist-dir> [screenshot-dir] | --base-url <url>');
if (!args.given && !sampleLibrary()) {
  console.log('no prepared sample library (target/sample-library): run the sample pipeline first');
  process.exit(1);
}
const { server, base } = await hostUnderTest(args);
const browser = await launchBrowser();
const consoleErrors = [];
async function page() {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'dark' });
  const p = await ctx.newPage();
  p.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${p.url()}: ${m.text()}`); });
  p.on('pageerror', (e) => consoleErrors.push(`${p.url()}: ${e}`));
  return p;
}
async function shot(p, name) {
  if (args.shotDir) { fs.mkdirSync(args.shotDir, { recursive: true }); await p.screenshot({ path: path.join(args.shotDir, `${name}.png`) }); }
}
async function startAudio(p) {
  // The first gesture anywhere (or an audition) may have started it already.
  if (await p.locator('.start-audio').count()) await p.click('.start-audio');
  await p.waitForFunction(() => !document.querySelector('.start-audio'));
}
/** Asks the page's worklet: { zones (per slot), voices (per track), peak, instruments }. */
let probeId = 1;
async function probe(p) {
  const id = probeId++;
  await p.evaluate((id) => window.__kbProbe(id), id);
  await p.waitForFunction((id) => window.__kbProbeReply && window.__kbProbeReply.id === id, id, { timeout: 5000 });
  return p.evaluate(() => ({ ...window.__kbProbeReply, instruments: window.__kbInstruments, bytes: window.__kbSampleBytes }));
}
/** Waits until `pred(probe)` holds; returns that probe. */
async function until(p, pred, what, ms = 15000) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < ms) {
    last = await probe(p);
    if (pred(last)) return last;
    await p.waitForTimeout(50);
  }
  throw new Error(`${what}: never (last probe ${JSON.stringify(last)})`);
}
const slotOf = (pr, id) => (pr.instruments || []).find((x) => x[0] === id);
const picker = (track) => `[data-track="${track}"] .picker`;
/** Picks `query`'s first match for `track` with the keyboard: open, type, Enter. */
async function pick(p, track, query) {
  await p.click(`${picker(track)} .picker-button`);
  await p.keyboard.type(query);
  await p.keyboard.press('Enter');
}
async function instrumentOf(p, track) {
  return (await p.textContent(`${picker(track)} .picker-button`)).trim();
}

const { test, finish } = runner();
let url, a, b, c;
// The worklet's WebAssembly memory of an engine with no sampled instrument loaded (bytes).
let freshMemory;

await test('the picker: grouped by category, search by typing, arrows and Enter choose, Esc closes', async () => {
  a = await page();
  await a.goto(base + '/');
  await a.click('text=New session');
  await a.waitForURL(/\/s\//);
  url = a.url();
  await a.waitForSelector('[data-testid=status]:has-text("live")');
  await a.click(`${picker('snare')} .picker-button`);
  const panel = `${picker('snare')} .picker-panel`;
  await a.waitForSelector(`${panel} input:focus`);
  const groups = await a.$$eval(`${panel} .picker-group`, (g) => g.map((x) => x.textContent));
  for (const g of ['Drums', 'Bass', 'Keys', 'Strings', 'Pads']) assert(groups.includes(g), `group ${g} missing: ${groups}`);
  const all = await a.locator(`${panel} .picker-item`).count();
  assert(all > 60, `only ${all} instruments listed`);
  await a.keyboard.type('bass');
  const names = await a.$$eval(`${panel} .picker-item .picker-name`, (x) => x.map((e) => e.textContent));
  assert(names.length >= 4 && names.length < all, `typing "bass" left ${names.length} of ${all}`);
  assert(names.includes('Finger Bass') && !names.includes('Grand Piano'), `not filtered: ${names}`);
  await a.keyboard.press('ArrowDown');
  await a.keyboard.press('ArrowDown');
  await a.keyboard.press('ArrowUp');
  const chosen = names[1];
  await a.keyboard.press('Enter');
  await a.waitForFunction(([sel, n]) => document.querySelector(sel)?.textContent.includes(n),
    [`${picker('snare')} .picker-button`, chosen], { timeout: 5000 });
  assert(await a.isHidden(panel), 'the panel stays open after choosing');
  // Esc closes without changing anything.
  await a.click(`${picker('hat')} .picker-button`);
  await a.keyboard.type('piano');
  await a.keyboard.press('Escape');
  assert(await a.isHidden(`${picker('hat')} .picker-panel`), 'Esc did not close');
  assert((await instrumentOf(a, 'hat')).includes('Closed Hat'), `hat changed: ${await instrumentOf(a, 'hat')}`);
  // Nothing matches: says so.
  await a.click(`${picker('hat')} .picker-button`);
  await a.keyboard.type('zzzz');
  await a.waitForSelector(`${picker('hat')} .picker-panel :text("No instrument matches")`);
  await a.keyboard.press('Escape');
  return `"bass" lists ${names.length} of ${all}; chose ${chosen}`;
});

await test('audition: a click plays a sampled instrument for this player only, the session unchanged', async () => {
  b = await page();
  await b.goto(url);
  await b.waitForSelector('[data-testid=status]:has-text("live")');
  await startAudio(a);
  await startAudio(b);
  freshMemory = (await probe(a)).memory;
  const before = await instrumentOf(b, 'bass');
  await a.click(`${picker('bass')} .picker-button`);
  await a.keyboard.type('electric piano');
  await a.click(`${picker('bass')} .picker-item[data-id="sampled/epiano"] .audition`);
  // The bass track's bus plays it (index 3), with the transport stopped.
  const pr = await until(a, (p) => slotOf(p, 'sampled/epiano') && p.voices[3] > 0 && p.peak > 0.01,
    'the audition sounding in this page');
  await a.keyboard.press('Escape');
  await b.waitForTimeout(300);
  const pb = await probe(b);
  assert(!slotOf(pb, 'sampled/epiano'), 'the other page loaded the auditioned instrument');
  assert(await instrumentOf(b, 'bass') === before && (await instrumentOf(a, 'bass')) === before,
    'the audition changed the session');
  return `peak ${pr.peak.toFixed(3)}`;
});

await test('two players: one picks the piano, the other page loads its samples and plays it, no reload', async () => {
  await b.evaluate(() => { window.__notReloaded = true; });
  // The other page hears only the kick track (its own solo: personal).
  await b.click('[data-track="kick"] button[aria-label="Solo (only for you)"]');
  await a.click('.play');
  await b.waitForSelector('.play:has-text("Stop")');
  await pick(a, 'kick', 'grand piano');
  await b.waitForFunction(() => document.querySelector('[data-track="kick"] .picker-button')?.textContent.includes('Grand Piano'),
    null, { timeout: 5000 });
  const pr = await until(b, (p) => {
    const s = slotOf(p, 'sampled/piano');
    return s && p.zones[s[1]] > 0 && p.voices[0] > 0 && p.peak > 0.02;
  }, 'the piano loaded and sounding on the other page');
  assert(await b.evaluate(() => window.__notReloaded === true), 'the other page reloaded');
  const s = slotOf(pr, 'sampled/piano');
  await shot(b, 'sampled-piano');
  // Peaks come and go with the steps: over a second, loud notes and quiet gaps.
  let hi = 0;
  for (let i = 0; i < 8; i++) { hi = Math.max(hi, (await probe(b)).peak); await b.waitForTimeout(120); }
  assert(hi > 0.05, `piano peak ${hi}`);
  await b.click('[data-track="kick"] button[aria-label="Solo (only for you)"]');
  return `slot ${s[1]}, ${pr.zones[s[1]]} zones loaded of ${s[3]} files when first heard, peak ${hi.toFixed(3)}`;
});

await test('a new player of a session with a sampled kit, piano, bass and pad: bytes and time to first sound', async () => {
  // The session: TR-808 kick, snare and closed hat, finger bass, piano (on the kick track
  // already) and a pad on a new track.
  await pick(a, 'snare', 'TR-808 snare');
  await pick(a, 'hat', 'TR-808 closed');
  await pick(a, 'bass', 'finger bass');
  // "+ Add track" opens the picker sheet: the synth pad, then the row's picker makes it sampled.
  await a.click('.add-track button, .add-track');
  await a.click('.sheet .pick[data-instrument="synth/pad"]');
  await a.waitForSelector('.sheet', { state: 'detached' });
  const padTrack = await a.$$eval('.track', (t) => t[t.length - 1].dataset.track);
  await a.click(`[data-track="${padTrack}"] .cell[data-step="0"]`);
  await a.click(`[data-track="${padTrack}"] .cell[data-step="8"]`);
  await pick(a, padTrack, 'warm pad');
  await a.waitForFunction((t) => document.querySelector(`[data-track="${t}"] .picker-button`)?.textContent.includes('Warm'), padTrack);
  for (const [t, n] of [['snare', '808'], ['hat', '808'], ['bass', 'Finger']]) {
    assert((await instrumentOf(a, t)).includes(n), `${t} is ${await instrumentOf(a, t)}`);
  }
  c = await page();
  await c.goto(url);
  await c.waitForSelector('[data-testid=status]:has-text("live")');
  await c.waitForSelector('.play:has-text("Stop")');
  const t0 = await c.evaluate(() => performance.now());
  await startAudio(c);
  const wantIds = ['kit-808/snare', 'kit-808/hat-closed', 'sampled/piano', 'sampled/bass-finger', 'sampled/pad-warm'];
  // Ready: every note the session plays has its zone in the engine (the app records the bytes
  // and the time at that moment); then the engine must really sound.
  await c.waitForFunction(() => Array.isArray(window.__kbReady) || (window.__kbProbe(0), false), null, { timeout: 30000, polling: 100 });
  await until(c, (p) => wantIds.every((id) => { const s = slotOf(p, id); return s && p.zones[s[1]] > 0; }) && p.peak > 0.01,
    'every sampled instrument playable and sounding', 30000);
  const [bytesReady, tReady] = await c.evaluate(() => window.__kbReady);
  // Only what the session plays is fetched (a note that needs another zone fetches it when it
  // is placed or auditioned): once every needed file is in, a whole loop of the pattern (2 s at
  // 120 BPM) must not fetch anything more.
  const all = await until(c, (p) => wantIds.every((id) => { const s = slotOf(p, id); return s && s[2] === s[3]; }),
    'every file the session needs loaded', 60000);
  const tAll = await c.evaluate(() => performance.now());
  await c.waitForTimeout(2500);
  const after = await probe(c);
  const mb = (x) => (x / 1e6).toFixed(2);
  const note = `every note playable ${(tReady - t0).toFixed(0)} ms after starting audio, ${mb(bytesReady)} MB downloaded; ` +
    `every file the session needs after ${(tAll - t0).toFixed(0)} ms (upper bound), ${mb(all.bytes)} MB in all, ` +
    `${mb(after.bytes)} MB after a further loop; the worklet's wasm memory ${mb(after.memory)} MB ` +
    `(an engine with no sampled instrument: ${mb(freshMemory)} MB); ` +
    `[id, slot, files loaded, files needed] ${JSON.stringify(after.instruments)}`;
  assert(bytesReady <= 4e6, `needed ${mb(bytesReady)} MB before every note could sound: ${note}`);
  assert(after.bytes === all.bytes, `playing on fetched more: ${note}`);
  assert(after.bytes < 4e6, `a new player downloaded ${mb(after.bytes)} MB to hear the session (bar: under 4 MB): ${note}`);
  return note;
});

await test('an edit that needs another zone fetches it on the other page, and the note sounds from it', async () => {
  const before = await probe(c);
  const piano = slotOf(before, 'sampled/piano');
  // The piano (on the kick track) an octave and a fifth up: notes no loaded zone covers.
  await a.click('[data-track="kick"] .more');
  const input = a.locator('.sheet input[aria-label="Transpose"]');
  await input.fill('19');
  await input.dispatchEvent('change');
  await a.keyboard.press('Escape');
  const pr = await until(c, (p) => { const s = slotOf(p, 'sampled/piano'); return s && s[3] > piano[3] && s[2] === s[3]; },
    'the transposed notes\' zones fetched', 30000);
  const s = slotOf(pr, 'sampled/piano');
  assert(pr.bytes > before.bytes, `nothing fetched: ${before.bytes} then ${pr.bytes}`);
  assert(pr.zones[s[1]] > before.zones[piano[1]], `no zone added in the engine: ${before.zones[piano[1]]} then ${pr.zones[s[1]]}`);
  return `piano files ${piano[2]}/${piano[3]} then ${s[2]}/${s[3]}, +${((pr.bytes - before.bytes) / 1e3).toFixed(0)} kB`;
});

await test('memory: a new player of a session with 8 sampled instruments (the worklet\'s WebAssembly memory)', async () => {
  // Three more tracks, each a sampled instrument playing steps 0 and 8.
  for (const query of ['electric piano', 'strings', 'choir']) {
    await a.click('.add-track button, .add-track');
    await a.click('.sheet .pick[data-instrument="synth/pad"]');
    await a.waitForSelector('.sheet', { state: 'detached' });
    const t = await a.$$eval('.track', (x) => x[x.length - 1].dataset.track);
    await a.click(`[data-track="${t}"] .cell[data-step="0"]`);
    await a.click(`[data-track="${t}"] .cell[data-step="8"]`);
    await pick(a, t, query);
  }
  const ids = ['kit-808/snare', 'kit-808/hat-closed', 'sampled/piano', 'sampled/bass-finger', 'sampled/pad-warm',
    'sampled/epiano', 'sampled/strings', 'sampled/choir'];
  const d = await page();
  await d.goto(url);
  await d.waitForSelector('[data-testid=status]:has-text("live")');
  await startAudio(d);
  const pr = await until(d, (p) => ids.every((id) => { const s = slotOf(p, id); return s && s[3] > 0 && s[2] === s[3] && p.zones[s[1]] > 0; }),
    'all 8 instruments\' needed zones loaded', 60000);
  await d.close();
  const mb = (x) => (x / 1e6).toFixed(2);
  assert(pr.memory >= freshMemory, `memory ${pr.memory} < ${freshMemory}`);
  return `the worklet's wasm memory ${mb(pr.memory)} MB, ${mb(pr.memory - freshMemory)} MB over a fresh engine's ` +
    `${mb(freshMemory)} MB; ${mb(pr.bytes)} MB of samples downloaded; ${JSON.stringify(pr.instruments)}`;
});

await test('credits: each sampled instrument\'s licence and credit, from the picker', async () => {
  await a.click(`${picker('snare')} .picker-button`);
  await a.click(`${picker('snare')} .picker-foot button:has-text("Credits")`);
  const text = await a.textContent('.credits');
  assert(/MuseScore_General/.test(text) && /MIT/.test(text) && /Grand Piano/.test(text), `credits: ${text.slice(0, 300)}`);
  await a.click('.credits button:has-text("Close")');
  // Focus left the panel with the dialog: its button closes it.
  await a.click(`${picker('snare')} .picker-button`);
  assert(await a.isHidden(`${picker('snare')} .picker-panel`), 'the picker stays open');
});

await test('auditioning more instruments than the engine has slots (64) evicts ones no track plays, never the session\'s', async () => {
  const inUse = ['sampled/piano', 'kit-808/snare', 'kit-808/hat-closed', 'sampled/bass-finger', 'sampled/pad-warm'];
  if (await a.isHidden(`${picker('snare')} .picker-panel`)) await a.click(`${picker('snare')} .picker-button`);
  await a.waitForSelector(`${picker('snare')} .picker-item`);
  const kitPieces = await a.$$eval(`${picker('snare')} .picker-item`, (x) => x.map((e) => e.dataset.id).filter((id) => id.startsWith('kit-')));
  assert(kitPieces.length >= 60, `${kitPieces.length} kit pieces`);
  for (const id of kitPieces) {
    await a.click(`${picker('snare')} .picker-item[data-id="${id}"] .audition`);
    await a.waitForTimeout(20);
  }
  await a.keyboard.press('Escape');
  const last = kitPieces[kitPieces.length - 1];
  const pr = await until(a, (p) => { const s = slotOf(p, last); return s && p.zones[s[1]] > 0; }, `the last auditioned (${last}) loaded`, 30000);
  assert(pr.instruments.length <= 64, `${pr.instruments.length} slots`);
  for (const id of inUse) {
    const s = slotOf(pr, id);
    assert(s && pr.zones[s[1]] > 0, `${id} was evicted: ${JSON.stringify(pr.instruments)}`);
  }
  return `${kitPieces.length} auditions, ${pr.instruments.length} instruments loaded`;
});

await test('a track whose instrument this build does not know shows "unknown instrument"; the rest plays', async () => {
  // Such a track comes from a session stored by another build. Today's server may reject the
  // id (it checks the catalogue): then there is nothing for the app to show, and we say so.
  const res = await fetch(`${base}/api/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"unknown"}' });
  const { id } = await res.json();
  const p = await page();
  await p.goto(`${base}/api/sessions/${id}`);
  const reply = await p.evaluate(async (id) => {
    const ws = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/api/sessions/${id}/ws`);
    await new Promise((ok, err) => { ws.onopen = ok; ws.onerror = err; });
    const got = new Promise((ok) => { ws.onmessage = (e) => { const m = JSON.parse(e.data); if (m.mid === 'u1') ok(m); }; });
    ws.send(JSON.stringify({ type: 'HELLO', protocol: 1, playerId: 'unknown-setup' }));
    ws.send(JSON.stringify({ type: 'SET_TRACK_INSTRUMENT', trackId: 'snare', instrument: 'synth/theremin-9000', mid: 'u1' }));
    const m = await got;
    ws.close();
    return m;
  }, id);
  const doc = await (await fetch(`${base}/api/sessions/${id}`)).json();
  if (doc.tracks.find((t) => t.id === 'snare').instrument !== 'synth/theremin-9000') {
    await p.close();
    return `the server rejects unknown ids (${JSON.stringify(reply).slice(0, 120)}): nothing to show`;
  }
  await p.goto(`${base}/s/${id}`);
  await p.waitForSelector('[data-track="snare"] .picker-button .unknown:has-text("unknown instrument")');
  await startAudio(p);
  await p.click('.play');
  const pr = await until(p, (x) => x.voices[0] > 0 && x.peak > 0.01, 'the other tracks playing');
  await p.close();
  return `peak ${pr.peak.toFixed(3)} with the unknown track silent`;
});

await test('no console errors', async () => {
  assert(consoleErrors.length === 0, consoleErrors.join('\n'));
});

await browser.close();
if (server) server.kill('SIGTERM');
finish();
