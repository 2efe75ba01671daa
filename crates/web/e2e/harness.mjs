// What the browser test suites share: the command line, the server they test (our own child
// process, or a host that is already running), Debian's Chromium, and a tiny test runner that
// prints one line per test and "N passed, M failed".
//
// Command line of every suite:
//   node SUITE.mjs <keyboardia-binary> <web-dist-dir> [screenshot-dir] [--flags]
//   node SUITE.mjs --base-url <url> [--flags]   (a host that is already running)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

/** { given (base URL or null), bin, webDir, shotDir, flags: { name: value } } */
export function parseArgs(usage) {
  const argv = process.argv.slice(2);
  const flags = {};
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) { positional.push(a); continue; }
    const hasValue = i + 1 < argv.length && !argv[i + 1].startsWith('--');
    flags[a.slice(2)] = hasValue ? argv[++i] : 'true';
  }
  const given = flags['base-url'] || null;
  const [bin, webDir, shotDir] = positional;
  if (!given && (!bin || !webDir)) {
    console.error(`usage: ${usage}`);
    process.exit(2);
  }
  return { given, bin, webDir, shotDir, flags };
}

/** The prepared sample library (`target/sample-library`, or $KEYBOARDIA_LIBRARY), or null. */
export function sampleLibrary() {
  const here = path.dirname(new URL(import.meta.url).pathname);
  const dir = process.env.KEYBOARDIA_LIBRARY || path.resolve(here, '../../../target/sample-library');
  return fs.existsSync(path.join(dir, 'sampled/piano/manifest.json')) ? dir : null;
}

/** Starts our server on `addr` (default: a free port); resolves to { proc, url }. */
export async function startServer({ bin, webDir, dataDir, addr = '127.0.0.1:0' }) {
  // The server installs the instrument library into its sample store itself.
  const lib = sampleLibrary();
  const args = ['--addr', addr, '--data-dir', dataDir, '--web-dir', webDir, ...(lib ? ['--library', lib] : [])];
  const proc = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: 'warn' },
  });
  const url = await new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: proc.stdout });
    rl.on('line', (l) => { const m = l.match(/open (http:\/\/\S+?)\/?$/); if (m) resolve(m[1]); });
    proc.on('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  return { proc, url };
}

/** The host under test: `{ server (our child or null), base, dataDir }`. */
export async function hostUnderTest({ given, bin, webDir }) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kbd-e2e-'));
  if (given) return { server: null, base: given.replace(/\/$/, ''), dataDir };
  const { proc, url } = await startServer({ bin, webDir, dataDir });
  return { server: proc, base: url, dataDir };
}

/** Debian's Chromium, headless, sound allowed without a gesture. */
export function launchBrowser(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required', ...extraArgs],
  });
}

/** A test runner: `test(name, f, skipReason?)`, `assert`, `finish()` (prints the totals and
 *  exits non-zero on any failure). */
export function runner() {
  const results = [];
  const skipped = [];
  async function test(name, f, skip) {
    if (skip) {
      skipped.push(name);
      console.log(`skip ${name} (${skip})`);
      return;
    }
    try {
      const note = await f();
      results.push([name, true]);
      console.log(`ok   ${name}${note ? ` (${note})` : ''}`);
    } catch (e) {
      results.push([name, false]);
      console.log(`FAIL ${name}: ${e.message}`);
    }
  }
  function finish() {
    const failed = results.filter((r) => !r[1]).length;
    console.log(`${results.length - failed} passed, ${failed} failed, ${skipped.length} skipped`);
    process.exit(failed ? 1 : 0);
  }
  return { test, finish };
}

export function assert(c, msg) { if (!c) throw new Error(msg); }

/** The two sizes every suite looks at the app in. */
export const DESKTOP = { viewport: { width: 1280, height: 800 } };
export const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The session API of the host at `base`: create a session, read its document, and poll the
 *  document until `f(doc)` holds (returning it) or fail saying `what` with the last one. */
export function sessionApi(base) {
  const create = async () => (await (await fetch(`${base}/api/sessions`, { method: 'POST' })).json()).id;
  const doc = async (id) => (await fetch(`${base}/api/sessions/${id}`)).json();
  async function until(id, f, what, ms = 5000) {
    let d;
    for (const t0 = Date.now(); Date.now() - t0 < ms;) {
      d = await doc(id);
      if (f(d)) return d;
      await sleep(100);
    }
    throw new Error(`${what}: ${JSON.stringify(d).slice(0, 600)}`);
  }
  return { create, doc, until };
}

/** Opens session `id` of `base` in a page of its own context (`options`: the context's, e.g.
 *  DESKTOP; `setup(ctx)` may grant permissions) and waits until it is live. Console and page
 *  errors are pushed onto `errors`. */
export async function openSession(browser, base, id, errors, options = DESKTOP, setup = async () => {}) {
  const ctx = await browser.newContext({ colorScheme: 'dark', ...options });
  await setup(ctx);
  const p = await ctx.newPage();
  p.on('console', (m) => { if (m.type() === 'error') errors.push(`${p.url()}: ${m.text()}`); });
  p.on('pageerror', (e) => errors.push(`${p.url()}: ${e}`));
  await p.goto(`${base}/s/${id}`);
  await p.waitForSelector('[data-testid=status]:has-text("live")');
  return p;
}

/** Starts the page's sound (the first gesture anywhere may have started it already). */
export async function startAudio(p) {
  if (await p.locator('.start-audio').count()) await p.click('.start-audio', { force: true });
  await p.waitForFunction(() => !document.querySelector('.start-audio'));
}
