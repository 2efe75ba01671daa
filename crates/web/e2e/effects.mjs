// Effects (issue 15), end to end in real Chromium against the real server, with two players:
// one turns up the reverb in the effects panel; the other player's engine receives it (its
// worklet reports the settings it plays) and renders it (a reverb tail rings in its real audio
// output after playback stops, where before there was silence); the control glows in the other
// player's panel; a player who joins later plays the effects from the start; a track's filter
// set by one is seen by the other; undo puts the reverb back. Screenshots of the panel at
// desktop and phone sizes.
//
// Usage: node effects.mjs <keyboardia-binary> <web-dist-dir> [screenshot-dir]
//        node effects.mjs --base-url <url>
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  assert, DESKTOP, hostUnderTest, launchBrowser, openSession, parseArgs, PHONE, runner, sessionApi, sleep, startAudio,
} from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = parseArgs('node effects.mjs <keyboardia-binary> <web-dist-dir> [screenshot-dir] | --base-url <url>');
const shotDir = args.shotDir || path.resolve(here, '../../../target/screenshots');
const { server, base } = await hostUnderTest(args);

const browser = await launchBrowser();
const consoleErrors = [];
const open = (id, opts = DESKTOP) => openSession(browser, base, id, consoleErrors, opts);
const { doc, until: untilDoc } = sessionApi(base);
async function shot(p, name) {
  fs.mkdirSync(shotDir, { recursive: true });
  await p.screenshot({ path: path.join(shotDir, `effects-${name}.png`) });
}
let probeId = 1;
/** Asks the page's worklet: { voices, peak (largest output sample since the last probe), master
 *  (the 24 master effect settings its engine plays) }. */
async function probe(p) {
  const id = probeId++;
  await p.evaluate((id) => window.__kbProbe(id), id);
  await p.waitForFunction((id) => window.__kbProbeReply && window.__kbProbeReply.id === id, id, { timeout: 5000 });
  return p.evaluate(() => window.__kbProbeReply);
}
async function waitFor(p, pred, what, ms = 8000) {
  let last;
  for (const t0 = Date.now(); Date.now() - t0 < ms;) {
    last = await probe(p);
    if (pred(last)) return last;
    await sleep(150);
  }
  throw new Error(`${what}: last probe ${JSON.stringify(last && last.master)}`);
}
/** Plays the beat for a while, stops, and returns the loudest output sample heard between 1.5
 *  and 2.3 s after the stop: the tail (reverb) only, every note having ended. */
async function tailAfterStop(p) {
  await p.click('.play');
  await sleep(2000);
  await p.click('.play');
  await sleep(1500);
  await probe(p); // resets the peak
  await sleep(800);
  return (await probe(p)).peak;
}
const master = { reverbMix: 1, reverbDecay: 3 };

const { test, finish } = runner();
try {
  const id = (await (await fetch(`${base}/api/sessions`, { method: 'POST' })).json()).id;
  const a = await open(id);
  const b = await open(id);
  await startAudio(a);
  await startAudio(b);
  let dryTail = 0;

  await test('without effects, playback stops into silence (the control for the reverb test)', async () => {
    const p0 = await probe(b);
    assert(p0.master[master.reverbMix] === 0, `reverb mix ${p0.master[master.reverbMix]}`);
    dryTail = await tailAfterStop(b);
    assert(dryTail < 0.002, `tail peak ${dryTail}`);
    return `tail peak ${dryTail.toExponential(2)}`;
  });

  await test('one player turns up the reverb; the other\'s engine receives it and its output rings on', async () => {
    await b.keyboard.press('e'); // b watches the panel (for the glow)
    await b.waitForSelector('.effects');
    await a.click('.fx-open');
    await a.waitForSelector('.effects');
    await a.locator('.fx-control[data-param="reverb.decay"] input').fill('800');
    await a.locator('.fx-control[data-param="reverb.mix"] input').fill('1000');
    const d = await untilDoc(id, (d) => d.effects && d.effects['reverb.mix'] === 1, 'the reverb mix persisted');
    const decay = d.effects['reverb.decay'];
    assert(decay > 3 && decay < 20, `decay ${decay}`);
    // The other page's glow in the first player's colour.
    await b.waitForSelector('.fx-control[data-param="reverb.mix"][style*="--glow"]', { timeout: 3000 });
    const got = await waitFor(b, (x) => x.master[master.reverbMix] === 1 && Math.abs(x.master[master.reverbDecay] - decay) < 1e-3,
      'the other engine plays the new reverb');
    const wet = await tailAfterStop(b);
    assert(wet > 0.01 && wet > dryTail * 10, `tail peak ${wet} (without reverb ${dryTail})`);
    return `other engine: mix ${got.master[master.reverbMix]}, decay ${got.master[master.reverbDecay].toFixed(2)} s; tail peak ${wet.toFixed(3)} vs ${dryTail.toExponential(2)} dry`;
  });

  await test('a player who joins later plays the session\'s effects from the start', async () => {
    const c = await open(id);
    await startAudio(c);
    const got = await waitFor(c, (x) => x.master[master.reverbMix] === 1, 'the late joiner\'s engine has the reverb');
    await c.context().close();
    return `late joiner: reverb mix ${got.master[master.reverbMix]}`;
  });

  await test('a track\'s filter and sends, set by one player, reach the other', async () => {
    await a.locator('[data-track="bass"] button.more').click();
    await a.waitForSelector('.track-settings');
    await a.locator('.track-settings .fx-control[data-param="filter.mode"] select').selectOption('1');
    await a.locator('.track-settings .fx-control[data-param="filter.cutoff"] input').fill('400');
    const d = await untilDoc(id, (d) => {
      const t = d.tracks.find((t) => t.id === 'bass');
      return t.fx && t.fx['filter.mode'] === 1 && t.fx['filter.cutoff'] < 2000;
    }, 'the bass filter persisted');
    const cutoff = d.tracks.find((t) => t.id === 'bass').fx['filter.cutoff'];
    return `bass low-pass at ${cutoff} Hz`;
  });

  await test('undo puts the reverb back for everyone', async () => {
    await a.keyboard.press('Escape');
    await a.locator('body').click({ position: { x: 5, y: 5 } });
    // The last three edits were the bass filter (2) and the reverb mix: undo all three.
    for (let i = 0; i < 3; i++) {
      await a.keyboard.press('Control+z');
      await sleep(300);
    }
    await untilDoc(id, (d) => !(d.effects && d.effects['reverb.mix']), 'the reverb mix undone');
    await waitFor(b, (x) => x.master[master.reverbMix] === 0, 'the other engine has no reverb again');
  });

  await test('a dragged knob reaches the other player as a bounded stream of edits ending on the final value', async () => {
    // Counted on the wire: the frames the other page's WebSocket receives.
    const frames = [];
    const onWs = (ws) => ws.on('framereceived', (f) => {
      const text = typeof f.payload === 'string' ? f.payload : '';
      if (text.includes('"SET_EFFECT"') && text.includes('reverb.size')) frames.push([Date.now(), JSON.parse(text)]);
    });
    // b's socket exists already: reload b so the listener sees its new one.
    b.on('websocket', onWs);
    await b.reload();
    await b.waitForSelector('[data-testid=status]:has-text("live")');
    await startAudio(b);
    if (!(await a.locator('.effects').count())) await a.click('.fx-open');
    const knob = a.locator('.fx-control[data-param="reverb.size"] input');
    const t0 = Date.now();
    for (let v = 0; v <= 1000; v += 20) {
      await knob.evaluate((el, v) => { el.value = String(v); el.dispatchEvent(new Event('input', { bubbles: true })); }, v);
      await sleep(10);
    }
    const dragMs = Date.now() - t0;
    const d = await untilDoc(id, (d) => d.effects && d.effects['reverb.size'] === 1, 'the final value persisted');
    await sleep(500);
    const last = frames.at(-1);
    assert(last && last[1].value === 1, `last frame ${JSON.stringify(last && last[1])}`);
    // At most one edit per 120 ms per knob (plus the final one), far fewer than the 51 moves.
    const bound = Math.ceil(dragMs / 120) + 2;
    assert(frames.length >= 2 && frames.length <= bound, `${frames.length} edits for 51 moves in ${dragMs} ms (bound ${bound})`);
    b.off('websocket', onWs);
    return `51 moves in ${dragMs} ms reached the other player as ${frames.length} edits, the last ${d.effects['reverb.size']}`;
  });

  await test('the effects panel: desktop and phone screenshots, keyboard on the XY pad', async () => {
    if (!(await a.locator('.effects').count())) await a.click('.fx-open');
    await a.waitForSelector('.effects');
    await shot(a, 'desktop');
    const pad = a.locator('.xy-pad');
    await pad.focus();
    const before = await doc(id);
    await a.keyboard.press('ArrowUp');
    await a.keyboard.press('ArrowRight');
    await untilDoc(id, (d) => JSON.stringify(d.effects || {}) !== JSON.stringify(before.effects || {}),
      'the XY pad moved its two parameters');
    const phone = await open(id, PHONE);
    await phone.locator('.overflow').click().catch(() => {});
    await phone.keyboard.press('Escape');
    await phone.locator('.fx-open').click();
    await phone.waitForSelector('.effects');
    await shot(phone, 'phone');
    await phone.context().close();
  });

  await test('no console errors', async () => {
    assert(consoleErrors.length === 0, consoleErrors.join('\n'));
  });
} finally {
  await browser.close();
  if (server) server.kill();
}
finish();
