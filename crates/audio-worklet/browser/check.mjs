// Renders the reference pattern through the real AudioWorklet path (processor.js + the wasm
// engine) in headless Chromium's OfflineAudioContext and compares it with the native render,
// sample for sample, bit for bit. With --bench, also measures render speed in the worklet.
//
// Usage: node check.mjs <reference-dir> <worklet.wasm> [--bench SECONDS]
// The reference dir comes from `render-reference` (pattern.json, left.f32, right.f32).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const [refDir, wasmPath, ...rest] = process.argv.slice(2);
if (!refDir || !wasmPath) {
  console.error('usage: node check.mjs <reference-dir> <worklet.wasm> [--bench SECONDS]');
  process.exit(2);
}
const benchAt = rest.indexOf('--bench');
const benchSeconds = benchAt >= 0 ? Number(rest[benchAt + 1] || 60) : 0;
const pattern = JSON.parse(fs.readFileSync(path.join(refDir, 'pattern.json'), 'utf8'));
const refLeft = new Float32Array(new Uint8Array(fs.readFileSync(path.join(refDir, 'left.f32'))).buffer);
// Sampled instruments the reference loaded (render-reference --library): their processor
// messages and the raw i16 PCM of each loaded zone, sent to the worklet before rendering.
const instrumentsPath = path.join(refDir, 'instruments.json');
const instruments = fs.existsSync(instrumentsPath) ? JSON.parse(fs.readFileSync(instrumentsPath, 'utf8')) : [];
const refRight = new Float32Array(new Uint8Array(fs.readFileSync(path.join(refDir, 'right.f32'))).buffer);

const page = `<!doctype html><meta charset="utf-8"><title>worklet check</title>
<script type="module">
async function request(node, msg, reply) {
  return new Promise((resolve) => {
    const on = (e) => { if (e.data.type === reply) { node.port.removeEventListener('message', on); resolve(e.data); } };
    node.port.addEventListener('message', on);
    node.port.start();
    node.port.postMessage(msg);
  });
}
window.renderInWorklet = async (frames, sampleRate, pattern, instruments) => {
  const ctx = new OfflineAudioContext(2, frames, sampleRate);
  await ctx.audioWorklet.addModule('/processor.js');
  const module = await WebAssembly.compileStreaming(fetch('/worklet.wasm'));
  const node = new AudioWorkletNode(ctx, 'keyboardia', {
    numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [2],
  });
  node.connect(ctx.destination);
  await request(node, { type: 'init', module }, 'ready');
  let id = 100;
  for (const inst of instruments) {
    await request(node, { ...inst.message, id: id++ }, 'applied');
    for (const [zone, file] of inst.zones) {
      const pcm = new Int16Array(await (await fetch('/pcm/' + file)).arrayBuffer());
      node.port.postMessage({ type: 'zone', slot: inst.message.slot, zone, pcm, id: id++ }, [pcm.buffer]);
    }
  }
  if (instruments.length) {
    const probe = await request(node, { type: 'probe', slots: instruments.map((i) => i.message.slot), tracks: 0 }, 'probe');
    window.loadedZones = probe.zones;
  }
  await request(node, { ...pattern, id: 1 }, 'applied');
  if (pattern.effects) await request(node, { ...pattern.effects, id: 3 }, 'applied');
  await request(node, { type: 'transport', playing: true, anchorFrame: 0, anchorStep: 0, tempo: pattern.tempo, id: 2 }, 'applied');
  const t0 = performance.now();
  const buf = await ctx.startRendering();
  const ms = performance.now() - t0;
  const b64 = (f) => {
    const u = new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
    let s = '';
    for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode.apply(null, u.subarray(i, i + 0x8000));
    return btoa(s);
  };
  return { left: b64(buf.getChannelData(0)), right: b64(buf.getChannelData(1)), ms };
};
window.pageReady = true;
</script>`;

const files = {
  '/': ['text/html', page],
  '/processor.js': ['text/javascript', fs.readFileSync(path.join(here, '../js/processor.js'))],
  '/worklet.wasm': ['application/wasm', fs.readFileSync(wasmPath)],
};
const server = http.createServer((req, res) => {
  const f = files[req.url];
  if (req.url === '/favicon.ico') { res.writeHead(204); res.end(); return; }
  const pcm = req.url.match(/^\/pcm\/(slot\d+-zone\d+\.i16)$/);
  if (pcm) { res.writeHead(200, { 'content-type': 'application/octet-stream' }); res.end(fs.readFileSync(path.join(refDir, pcm[1]))); return; }
  if (!f) { res.writeHead(404); res.end(); return; }
  res.writeHead(200, { 'content-type': f[0] });
  res.end(f[1]);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required'],
});
let failed = 0;
const errors = [];
try {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  p.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  p.on('pageerror', (e) => errors.push(String(e)));
  await p.goto(url);
  await p.waitForFunction(() => window.pageReady === true);
  const sr = 48000;
  const got = await p.evaluate(([frames, sr, pattern, instruments]) => window.renderInWorklet(frames, sr, pattern, instruments),
    [refLeft.length, sr, pattern, instruments]);
  if (instruments.length) {
    const zones = await p.evaluate(() => window.loadedZones);
    const want = instruments.map((i) => i.zones.length);
    console.log(`sampled instruments in the worklet: ${instruments.map((i) => i.message.slot).join(', ')}, zones loaded ${JSON.stringify(zones)}`);
    if (JSON.stringify(zones) !== JSON.stringify(want)) { failed++; console.log(`MISMATCH: zones loaded ${JSON.stringify(zones)}, expected ${JSON.stringify(want)}`); }
  } else {
    console.log('no sampled instruments in the reference (render-reference without --library)');
  }
  const decode = (b) => new Float32Array(new Uint8Array(Buffer.from(b, 'base64')).buffer);
  const left = decode(got.left);
  const right = decode(got.right);
  const u32 = (f) => new Uint32Array(f.buffer, f.byteOffset, f.length);
  let mismatches = 0;
  let first = -1;
  for (const [a, b] of [[left, refLeft], [right, refRight]]) {
    const ua = u32(a), ub = u32(b);
    if (ua.length !== ub.length) { mismatches += Math.abs(ua.length - ub.length); continue; }
    for (let i = 0; i < ua.length; i++) {
      if (ua[i] !== ub[i]) { mismatches++; if (first < 0) first = i; }
    }
  }
  let peak = 0;
  for (const x of refLeft) peak = Math.max(peak, Math.abs(x));
  console.log(`worklet render: ${left.length} frames x 2 channels, reference peak ${peak.toFixed(3)}`);
  if (mismatches === 0 && peak > 0.05) {
    console.log('bit-identical to the native render');
  } else {
    failed++;
    console.log(`MISMATCH: ${mismatches} samples differ (first at frame ${first}: worklet ${left[first]} vs native ${refLeft[first]})`);
  }
  if (errors.length) { failed++; console.log('console errors:', errors); }
  if (benchSeconds > 0) {
    // Render speed in the worklet: the best of three runs of a longer render.
    let best = Infinity;
    for (let run = 0; run < 3; run++) {
      const r = await p.evaluate(([frames, sr, pattern, instruments]) => window.renderInWorklet(frames, sr, pattern, instruments).then((x) => x.ms),
        [benchSeconds * sr, sr, pattern, instruments]);
      best = Math.min(best, r);
    }
    console.log(`worklet render speed: ${benchSeconds} s of audio in ${best.toFixed(0)} ms = ${(benchSeconds * 1000 / best).toFixed(1)}x real time`);
  }
} finally {
  await browser.close();
  server.close();
}
console.log(`${failed === 0 ? 1 : 0} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
