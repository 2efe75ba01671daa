// Measuring when each browser page HEARS its audio, on the wall clock (Unix epoch ms) shared by
// every page, this Node process and the server; plus a delaying TCP proxy to put a slow, jittery
// network between the browser and the server.
//
//   recorderInitScript     page.addInitScript(recorderInitScript, { threshold, quietMs }?)
//                          then `await page.evaluate(() => window.__kbdMeasure.onsets())`
//   startProxy(opts)       a user-space TCP proxy with per-direction delay, jitter and outages
//   alignToTransport, compareByStep, summarize   pure analysis helpers
//
// How an onset frame becomes a wall-clock time (the heart of it):
//
//   1. The recorder AudioWorkletNode is fed exactly what the page connects to the destination,
//      in the same render quantum (there is no latency inside the graph), so `currentFrame + i`
//      in its process() is the context frame at which that sample reaches the destination.
//      frame -> context time: t = frame / sampleRate (seconds).
//   2. context time -> performance time at which it is HEARD. `ctx.getOutputTimestamp()` says
//      "the sample at contextTime is at the output device at performanceTime" (output latency
//      included). It is read every 10 ms; each reading gives an offset
//      off = performanceTime - contextTime * 1000 (ms), constant while the audio runs smoothly.
//      For a given t the offset is the interquartile mean (the mean of the middle half: robust
//      like a median, but not stuck on the 0.1 ms grid Chromium rounds performance times to)
//      of the 41 readings nearest to t in context time (~ +-0.2 s; Chromium updates the
//      timestamp once per 10 ms device callback: local, so a slow drift of the audio clock
//      against the system clock is followed without fitting a line).
//      heardPerf = t * 1000 + off.
//      Glitches: when the audio output stalls (a loaded machine: ~100 ms stalls happen here),
//      every frame not yet played is heard later and the offset jumps (by ~90 ms in headless
//      Chromium). The readings are cut into segments of constant offset (a lone reading off
//      its neighbours, typical right after a stall, is an outlier and ignored) and each
//      segment's own readings map the frames that belong to it. The jump happened somewhere
//      between the last reading before it and the first after (~20 ms of context time with
//      10 ms readings; hence 10 ms rather than 50): onsets in that bracket are given the
//      nearer side and `uncertainMs` = the size of the jump, instead of a silently wrong time.
//   3. performance time -> Unix ms: add perfToWall, measured in the page by catching Date.now()
//      ticking over to a new integer ms: at that instant Unix ms == the new Date.now() value
//      exactly, so (Date.now() - performance.now()) is the offset, to within one poll (< 1 us)
//      plus performance.now()'s coarsening (0.1 ms in Chromium, with random rounding). Twenty
//      ticks spread over ~200 ms, interquartile mean; refreshed when older than 5 s.

import net from 'node:net';
import { performance } from 'node:perf_hooks';

// ---------------------------------------------------------------------------------------------
// 1. The in-page recorder. Everything in this function runs in the page (it is serialized by
//    page.addInitScript), so it must not refer to anything outside itself.
// ---------------------------------------------------------------------------------------------

/**
 * Init script: taps every AudioContext's destination with a recorder AudioWorklet that detects
 * onsets, and exposes `window.__kbdMeasure` ({ onsets, clear, perfToWall, stats }).
 * Usage: `await page.addInitScript(recorderInitScript, { threshold: 0.02, quietMs: 30 })`
 * (the argument and each of its fields are optional; see `cfg` below).
 */
export function recorderInitScript(options) {
  if (window.__kbdMeasure) return; // installed twice (e.g. two init scripts): keep the first
  const cfg = {
    threshold: 0.02, // |x| (channels summed) above this starts an onset ...
    quietMs: 30, //     ... after at least this long with |x| at or below it
    peakMs: 15, //      the peak |x| is taken over this long from the onset
    postEveryQuanta: 16, // batch messages to the main thread (~46 ms at 44.1 kHz)
    stallMs: 30, //     pauses between process() calls this long are noted (diagnostics)
    readingEveryMs: 10, // getOutputTimestamp() poll period
    maxReadings: 100000, // 16 minutes of readings at 10 ms
    wallEveryMs: 10000, // perfToWall is measured again this often (the two clocks drift apart)
    fitReadings: 41, //    readings used for the local ctx -> perf fit
    stepMs: 0.4, //     an offset change bigger than this, confirmed by the next reading, is a jump
    ...(options || {}),
  };
  const PROCESSOR = 'kbd-measure-recorder';

  // The recorder processor (runs in the AudioWorkletGlobalScope; built into a Blob module).
  function recorderModule(cfg, name) {
    if (globalThis.__kbdRecorderRegistered) return; // one scope can be shared by modules
    globalThis.__kbdRecorderRegistered = true;
    class Recorder extends AudioWorkletProcessor {
      constructor() {
        super();
        this.quietFrames = Math.max(1, Math.round((cfg.quietMs / 1000) * sampleRate));
        this.peakFrames = Math.max(1, Math.round((cfg.peakMs / 1000) * sampleRate));
        // Frames in a row at or below threshold. Starts at 0: sound already playing when the
        // recorder is attached is not taken for an onset (it needs quietMs of silence first).
        this.quietRun = 0;
        this.pending = null; // the onset whose peak window is still open: { frame, peak, left }
        this.done = []; // finished onsets not yet posted
        this.stalls = []; // long pauses between process() calls: { frame (first after), ms }
        this.lastWall = -1;
        this.frames = 0;
        this.firstFrame = -1;
        this.lastFrame = -1;
        this.quanta = 0;
      }
      process(inputs) {
        const input = inputs[0] || [];
        const n = input.length ? input[0].length : 128; // no channels: silence (128 frames)
        const start = currentFrame; // frame of this quantum's first sample
        const wall = Date.now(); // audio stalls show up as long pauses here
        if (this.lastWall >= 0 && wall - this.lastWall >= cfg.stallMs) {
          this.stalls.push({ frame: start, ms: wall - this.lastWall });
        }
        this.lastWall = wall;
        if (this.firstFrame < 0) this.firstFrame = start;
        this.lastFrame = start + n - 1;
        this.frames += n;
        const th = cfg.threshold;
        for (let i = 0; i < n; i++) {
          let x = 0;
          for (let c = 0; c < input.length; c++) x += input[c][i]; // sum to mono
          const a = x < 0 ? -x : x;
          if (this.pending) {
            if (a > this.pending.peak) this.pending.peak = a;
            if (--this.pending.left <= 0) { this.done.push(this.pending); this.pending = null; }
          }
          if (a > th) {
            if (this.quietRun >= this.quietFrames) {
              if (this.pending) this.done.push(this.pending); // only if quietMs < peakMs
              this.pending = { frame: start + i, peak: a, left: this.peakFrames - 1 };
              if (this.pending.left <= 0) { this.done.push(this.pending); this.pending = null; }
            }
            this.quietRun = 0;
          } else {
            this.quietRun++;
          }
        }
        if (++this.quanta % cfg.postEveryQuanta === 0) {
          this.port.postMessage({
            onsets: this.done.map((o) => ({ frame: o.frame, peak: o.peak })), stalls: this.stalls,
            frames: this.frames, firstFrame: this.firstFrame, lastFrame: this.lastFrame,
          });
          this.done = [];
          this.stalls = [];
        }
        return true; // keep processing while connected
      }
    }
    registerProcessor(name, Recorder);
  }
  const moduleUrl = URL.createObjectURL(new Blob(
    [`(${recorderModule})(${JSON.stringify(cfg)}, ${JSON.stringify(PROCESSOR)});`],
    { type: 'application/javascript' }));

  const origConnect = AudioNode.prototype.connect;
  const origDisconnect = AudioNode.prototype.disconnect;
  const states = []; // one per recorded context, index == ctxIndex
  const byCtx = new WeakMap();

  // The recorder of a context, created on the first connection to its destination.
  function recorderFor(ctx) {
    let st = byCtx.get(ctx);
    if (st) return st;
    st = {
      ctx, index: states.length, sampleRate: ctx.sampleRate,
      node: null, failed: null, pending: new Set(), // nodes to tap once the module has loaded
      onsets: [], stalls: [], frames: 0, firstFrame: -1, lastFrame: -1,
      readings: [], // { ctx: s, perf: ms, off: perf - ctx * 1000 }, context time ascending
      cutFrame: -Infinity, // clear(): onsets before this frame are forgotten
      timeline: null, timelineKey: '', // cached segmentation of the readings
    };
    byCtx.set(ctx, st);
    states.push(st);
    if (!ctx.audioWorklet) { // only in secure contexts: https, or http://127.0.0.1 / localhost
      st.failed = 'no AudioWorklet (not a secure context?)';
      return st;
    }
    ctx.audioWorklet.addModule(moduleUrl).then(() => {
      const node = new AudioWorkletNode(ctx, PROCESSOR, {
        numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
      });
      node.port.onmessage = (e) => {
        const m = e.data;
        st.frames = m.frames; st.firstFrame = m.firstFrame; st.lastFrame = m.lastFrame;
        for (const o of m.onsets) if (o.frame >= st.cutFrame) st.onsets.push(o);
        for (const g of m.stalls) st.stalls.push(g);
        if (st.stalls.length > 1000) st.stalls.splice(0, st.stalls.length - 1000);
      };
      // Keep it pulled by the graph (an AudioWorkletNode whose output goes nowhere is not
      // processed), but silently. The original connect: these are not to be tapped.
      const mute = new GainNode(ctx, { gain: 0 });
      origConnect.call(node, mute);
      origConnect.call(mute, ctx.destination);
      st.node = node;
      for (const [src, output] of st.pending) tap(st, src, output);
      st.pending.clear();
    }).catch((e) => { st.failed = String(e); });
    // getOutputTimestamp() readings, for the context time -> performance time mapping.
    const timer = setInterval(() => {
      if (ctx.state === 'closed') { clearInterval(timer); return; }
      const r = ctx.getOutputTimestamp();
      if (!r.performanceTime) return; // nothing rendered yet
      const last = st.readings[st.readings.length - 1];
      if (last && r.contextTime <= last.ctx) return; // not advancing (suspended) or stale
      st.readings.push({ ctx: r.contextTime, perf: r.performanceTime,
        off: r.performanceTime - r.contextTime * 1000 });
      if (st.readings.length > cfg.maxReadings) st.readings.splice(0, st.readings.length - cfg.maxReadings);
    }, cfg.readingEveryMs);
    return st;
  }
  const key = (output) => (output === undefined ? 0 : output);
  function tap(st, src, output) {
    try { origConnect.call(src, st.node, key(output), 0); } catch { /* e.g. node of a closed ctx */ }
  }

  // connect(): unchanged, and a connection to a destination is duplicated to the recorder.
  AudioNode.prototype.connect = function connect(destination, output, input) {
    const ret = origConnect.apply(this, arguments);
    try {
      if (destination instanceof AudioDestinationNode &&
          typeof AudioContext !== 'undefined' && destination.context instanceof AudioContext) {
        const st = recorderFor(destination.context);
        if (st.node) tap(st, this, output);
        else st.pending.add([this, output]);
      }
    } catch { /* never disturb the page */ }
    return ret;
  };
  // disconnect(destination[, output]): also from the recorder, so it hears what is heard.
  AudioNode.prototype.disconnect = function disconnect(destination, output) {
    const ret = origDisconnect.apply(this, arguments);
    try {
      if (destination instanceof AudioDestinationNode) {
        const st = byCtx.get(destination.context);
        if (st && st.node) {
          if (arguments.length >= 2) origDisconnect.call(this, st.node, output);
          else origDisconnect.call(this, st.node);
        } else if (st) {
          for (const p of st.pending) if (p[0] === this) st.pending.delete(p);
        }
      }
    } catch { /* was not connected to the recorder */ }
    return ret;
  };

  // --- context time -> performance time ------------------------------------------------------
  const median = (v) => {
    const s = [...v].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  // Interquartile mean: sort, drop the lowest and highest quarter, average the rest.
  function iqm(values) {
    const v = [...values].sort((a, b) => a - b);
    const lo = Math.floor(v.length / 4);
    const mid = v.slice(lo, v.length - lo);
    return mid.reduce((s, x) => s + x, 0) / mid.length;
  }

  // Cuts the readings into segments of constant offset, between jumps (audio glitches):
  //   segs[k] = { list: its readings, jump (k > 0): { after, before, jumpMs } }
  // where the jump of jumpMs happened between context times `after` (the last reading of
  // segs[k-1]) and `before` (the first reading of segs[k]).
  function timeline(st) {
    const R = st.readings;
    const key = `${R.length}:${R[0]?.ctx}`;
    if (st.timeline && st.timelineKey === key) return st.timeline;
    const segs = [];
    let cur = null, outliers = 0;
    for (let i = 0; i < R.length; i++) {
      const r = R[i];
      if (cur) {
        const level = median(cur.list.slice(-9).map((x) => x.off));
        if (Math.abs(r.off - level) <= cfg.stepMs) { cur.list.push(r); continue; }
        // Off the level: a new level if the next reading agrees, else a lone outlier (the
        // first reading after a stall often is). The newest reading waits for confirmation.
        const next = R[i + 1];
        if (!next || Math.abs(next.off - r.off) > cfg.stepMs) { outliers++; continue; }
      }
      cur = { list: [r], jump: null };
      segs.push(cur);
    }
    // The jumps; a "jump" smaller than stepMs between the segments' typical levels was a
    // short excursion (two odd readings in a row): the segments are joined again.
    for (let s = 1; s < segs.length; s++) {
      const a = segs[s - 1].list, b = segs[s].list;
      const jumpMs = median(b.slice(0, 9).map((x) => x.off)) - median(a.slice(-9).map((x) => x.off));
      if (Math.abs(jumpMs) <= cfg.stepMs) {
        segs[s - 1].list = a.concat(b);
        segs.splice(s--, 1);
        continue;
      }
      segs[s].jump = { after: a[a.length - 1].ctx, before: b[0].ctx, jumpMs };
    }
    st.timeline = { segs, outliers };
    st.timelineKey = key;
    return st.timeline;
  }

  // Performance time (ms) at which context time t (s) is heard: { perf, uncertainMs }.
  function ctxToPerf(st, t) {
    const { segs } = timeline(st);
    if (!segs.length) return { perf: NaN, uncertainMs: NaN };
    // The segment t belongs to: the last one whose jump is before t. Between the readings
    // around a jump, the nearer side, flagged uncertain by the size of the jump.
    let s = 0, uncertainMs = 0;
    for (let k = 1; k < segs.length; k++) {
      const j = segs[k].jump;
      if (t >= (j.after + j.before) / 2) s = k;
      if (t > j.after && t < j.before) uncertainMs = Math.max(uncertainMs, Math.abs(j.jumpMs));
    }
    const list = segs[s].list;
    // The fitReadings readings of that segment nearest to t (binary search, then widen).
    let lo = 0, hi = list.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (list[m].ctx < t) lo = m + 1; else hi = m; }
    let a = lo, b = lo; // window [a, b)
    while (b - a < cfg.fitReadings && (a > 0 || b < list.length)) {
      if (a === 0) b++;
      else if (b === list.length) a--;
      else if (t - list[a - 1].ctx <= list[b].ctx - t) a--;
      else b++;
    }
    return { perf: t * 1000 + iqm(list.slice(a, b).map((x) => x.off)), uncertainMs };
  }
  // Context time (s) heard at performance time p (ms): the inverse, for controls.
  function perfToCtx(st, p) {
    let t = (p - st.readings[st.readings.length - 1].off) / 1000;
    for (let i = 0; i < 3; i++) t = (p - (ctxToPerf(st, t).perf - t * 1000)) / 1000;
    return t;
  }

  // --- performance time -> Unix ms -----------------------------------------------------------
  let wall = null; // { offset, at: performance.now() when measured, n, spreadMs }
  const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
  async function measurePerfToWall(ticks = 20) {
    const samples = [];
    for (let k = 0; k < 3 * ticks && samples.length < ticks; k++) {
      // Busy-wait (at most ~1 ms) for Date.now() to tick to a new integer; read
      // performance.now() right then. The tick happened between the previous poll and this
      // one, so the new value is exact Unix ms at performance time p, give or take the gap
      // between the two polls: a sample is kept only if that gap is within performance.now()'s
      // own 0.1 ms step (not if the thread was descheduled in between).
      const d0 = Date.now();
      let d, p, before = performance.now();
      const give = before + 5;
      for (;;) {
        d = Date.now();
        p = performance.now();
        if (d !== d0 || p > give) break;
        before = p;
      }
      if (d !== d0 && p - before <= 0.15) samples.push(d - p);
      await sleep(5 + Math.random() * 10); // let the page breathe; spread over ~200 ms
    }
    const sorted = [...samples].sort((a, b) => a - b);
    return { offset: iqm(samples), at: performance.now(), n: samples.length,
      spreadMs: sorted.length ? sorted[sorted.length - 1] - sorted[0] : NaN };
  }
  // Every measurement, oldest first: Date.now() (the system's wall clock, which NTP may slew)
  // and performance.now() (monotonic) drift apart over minutes, so an onset is converted with
  // the offset interpolated at its own performance time, not with one measured at the end.
  const walls = [];
  async function perfToWall(maxAgeMs = 5000) {
    if (!wall || performance.now() - wall.at > maxAgeMs) {
      wall = await measurePerfToWall();
      walls.push(wall);
      if (walls.length > 2000) walls.shift();
    }
    return wall.offset;
  }
  (async () => {
    for (;;) {
      await sleep(cfg.wallEveryMs);
      if (states.length) await perfToWall(cfg.wallEveryMs / 2);
    }
  })();
  // The perfToWall offset at performance time p: linear between the measurements around it.
  function wallOffsetAt(p) {
    if (!walls.length) return NaN;
    if (p <= walls[0].at) return walls[0].offset;
    for (let i = 1; i < walls.length; i++) {
      const a = walls[i - 1], b = walls[i];
      if (p <= b.at) return a.offset + ((b.offset - a.offset) * (p - a.at)) / (b.at - a.at);
    }
    return walls[walls.length - 1].offset;
  }

  // --- the API --------------------------------------------------------------------------------
  window.__kbdMeasure = {
    config: cfg,
    /**
     * All onsets so far, as heard, by wallMs:
     * [{ wallMs, frame, peak, ctxIndex, ctxTime, uncertainMs }]. uncertainMs is 0 except next to
     * an audio glitch, where the onset may be off by up to that much.
     */
    async onsets() {
      await perfToWall(1000);
      const out = [];
      for (const st of states) {
        for (const o of st.onsets) {
          const t = o.frame / st.sampleRate; // context time, s
          const { perf, uncertainMs } = ctxToPerf(st, t);
          out.push({ wallMs: perf + wallOffsetAt(perf), frame: o.frame, peak: o.peak, ctxIndex: st.index,
            ctxTime: t, uncertainMs });
        }
      }
      return out.sort((a, b) => a.wallMs - b.wallMs);
    },
    /** Forgets the onsets heard so far (also ones rendered but not yet reported). */
    clear() {
      for (const st of states) {
        // The frame at the output now: contextTime of the latest output timestamp, advanced
        // by the time since it was taken.
        const r = st.ctx.getOutputTimestamp();
        const t = r.performanceTime ? r.contextTime + (performance.now() - r.performanceTime) / 1000
          : st.ctx.currentTime;
        st.cutFrame = Math.floor(t * st.sampleRate);
        st.onsets = st.onsets.filter((o) => o.frame >= st.cutFrame);
      }
    },
    /** Offset to add to performance.now() values to get Unix ms (measured, cached 5 s). */
    perfToWall,
    /** Diagnostics, one entry per recorded context. */
    stats() {
      return states.map((st) => {
        const { segs, outliers } = timeline(st);
        // Residual: how far the (non-outlier) readings of the last ~20 s sit from the mapping
        // the onsets use (the 0.1 ms grid of performance times included).
        let sq = 0, worst = 0, n = 0;
        for (const seg of segs) {
          for (const x of seg.list.slice(-2000)) {
            const e = x.perf - ctxToPerf(st, x.ctx).perf;
            if (!Number.isFinite(e)) continue;
            sq += e * e; worst = Math.max(worst, Math.abs(e)); n++;
          }
        }
        // Drift of the audio clock against performance time: least-squares slope of the
        // offsets over context time in the longest segment, in ppm (ms per s * 1000).
        let drift = NaN;
        const r = segs.reduce((m, s) => (s.list.length > m.length ? s.list : m), []);
        if (r.length >= 2) {
          const mx = r.reduce((s, x) => s + x.ctx, 0) / r.length;
          const my = r.reduce((s, x) => s + x.off, 0) / r.length;
          let sxy = 0, sxx = 0;
          for (const x of r) { sxy += (x.ctx - mx) * (x.off - my); sxx += (x.ctx - mx) ** 2; }
          drift = sxx > 0 ? (sxy / sxx) * 1000 : NaN;
        }
        return {
          ctxIndex: st.index, sampleRate: st.sampleRate, state: st.ctx.state,
          recorder: st.node ? 'running' : st.failed ? `failed: ${st.failed}` : 'loading',
          frames: st.frames, firstFrame: st.firstFrame, lastFrame: st.lastFrame,
          onsets: st.onsets.length, readings: st.readings.length, outliers,
          fitResidualMs: n ? Math.sqrt(sq / n) : NaN, fitWorstMs: worst, driftPpm: drift,
          // Audio output glitches: between context times after and before, jumpMs later from
          // there on; wallMs: when (Unix ms, heard time of `after`; null before perfToWall ran).
          jumps: segs.slice(1).map((s) => ({ ...s.jump,
            wallMs: wall ? ctxToPerf(st, s.jump.after).perf + wall.offset : null })),
          stalls: st.stalls.slice(-50), // long pauses of the render thread (diagnostics)
          baseLatency: st.ctx.baseLatency, outputLatency: st.ctx.outputLatency,
          perfToWall: wall && { offset: wall.offset, n: wall.n, spreadMs: wall.spreadMs,
            ageMs: performance.now() - wall.at, measurements: walls.length,
            driftMs: walls.length ? walls[walls.length - 1].offset - walls[0].offset : 0 },
        };
      });
    },
    /** For controls and debugging: the context time heard at a Unix ms, by the same mapping. */
    async wallToCtxTime(ctxIndex, wallMs) {
      return perfToCtx(states[ctxIndex], wallMs - (await perfToWall()));
    },
    /** For debugging: the raw readings and render stalls of a context. */
    raw(ctxIndex = 0) {
      const st = states[ctxIndex];
      return st && { readings: st.readings, stalls: st.stalls, sampleRate: st.sampleRate };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// 2. The delaying TCP proxy.
// ---------------------------------------------------------------------------------------------

/**
 * A TCP proxy on 127.0.0.1 that delays each direction: every chunk read is released at
 * max(now + base + uniform(-jitter, +jitter), previous release of the same queue), so bytes
 * keep their order. `up` is client -> server, `down` server -> client.
 *
 * Timing: a setTimeout wakes up ~1.5 ms before the release time, then setImmediate polls until
 * it is reached (Node's setTimeout alone fires up to ~2 ms early or late: it works in whole ms of
 * loop time). Never early; the lateness is recorded (see stats()).
 *
 * @returns Promise<{ port, url, setLink({upMs, downMs, jitterMs}), outage(ms) -> Promise,
 *                    stats() -> { released, lateMs: summary }, close() -> Promise }>
 */
export async function startProxy({ target, upMs = 0, downMs = 0, jitterMs = 0, listen = 0 } = {}) {
  const [thost, tport] = splitHostPort(target);
  const link = { upMs, downMs, jitterMs };
  let outageUntil = 0; // performance.now() ms; nothing is delivered before it
  const queues = new Set(); // all live queues, to reschedule on an outage
  const sockets = new Set();
  const lateness = []; // ms, bounded
  let released = 0;

  // One direction of one connection: chunks read from `from`, written to `to` when due.
  class DelayQueue {
    constructor(from, to, baseKey) {
      this.from = from; this.to = to; this.baseKey = baseKey;
      this.items = []; // { at, chunk }, release times non-decreasing
      this.bytes = 0;
      this.lastRelease = 0;
      this.timer = null; // { kind: 'timeout' | 'immediate', handle }
      this.ended = false; // the source ended or closed: end `to` once drained
      this.finished = false; // `to` was ended, or can no longer be written
      queues.add(this);
    }
    push(chunk) {
      if (this.finished) return;
      const now = performance.now();
      const j = link.jitterMs ? (Math.random() * 2 - 1) * link.jitterMs : 0;
      const at = Math.max(now + link[this.baseKey] + j, this.lastRelease);
      this.lastRelease = at;
      this.items.push({ at, chunk });
      this.bytes += chunk.length;
      // Backpressure: stop reading while a lot is in flight.
      if (this.bytes + this.to.writableLength > 4 << 20) this.from.pause();
      this.schedule();
    }
    end() { this.ended = true; this.schedule(); }
    due(item) { return Math.max(item.at, outageUntil); }
    cancel() {
      if (!this.timer) return;
      if (this.timer.kind === 'timeout') clearTimeout(this.timer.handle);
      else clearImmediate(this.timer.handle);
      this.timer = null;
    }
    // (Re)arms the wake-up for the head of the queue.
    schedule() {
      this.cancel();
      if (this.finished) return;
      if (!this.items.length) { if (this.ended) this.finish(); return; }
      const wait = this.due(this.items[0]) - performance.now();
      const wake = () => { this.timer = null; this.schedule(); };
      if (wait > 1.5) this.timer = { kind: 'timeout', handle: setTimeout(wake, wait - 1.5) };
      else if (wait > 0) this.timer = { kind: 'immediate', handle: setImmediate(wake) };
      else this.release();
    }
    release() {
      const now = performance.now();
      while (this.items.length && this.due(this.items[0]) <= now) {
        const it = this.items.shift();
        this.bytes -= it.chunk.length;
        if (lateness.length >= 20000) lateness.splice(0, 10000);
        lateness.push(now - this.due(it));
        released++;
        if (!this.to.destroyed && !this.to.writableEnded) this.to.write(it.chunk);
      }
      if (this.from.isPaused() && this.bytes + this.to.writableLength <= 1 << 20) this.from.resume();
      this.schedule();
    }
    finish() { // drained after the source ended: pass the end on
      this.finished = true;
      queues.delete(this);
      if (!this.to.destroyed && !this.to.writableEnded) this.to.end();
    }
    drop() { // the destination is gone: forget what is queued
      this.cancel();
      this.items = []; this.bytes = 0; this.finished = true;
      queues.delete(this);
    }
  }

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ host: thost, port: tport, allowHalfOpen: true });
    client.setNoDelay(true); upstream.setNoDelay(true);
    sockets.add(client); sockets.add(upstream);
    const up = new DelayQueue(client, upstream, 'upMs');
    const down = new DelayQueue(upstream, client, 'downMs');
    const wire = (src, q, other, otherQ) => {
      src.on('data', (c) => q.push(c));
      src.on('end', () => q.end()); // half-close: passed on after the queue drains
      src.on('error', () => {}); // 'close' follows; an unreachable target closes the client
      src.on('close', () => {
        sockets.delete(src);
        q.end(); // what was read still goes out, then `other` is ended ...
        otherQ.drop(); // ... but nothing more can be written to src
        // ... and if `other` never closes its side, it is cut off a while after that.
        const reap = () => {
          if (other.destroyed) return;
          if (q.finished) setTimeout(() => other.destroy(), 5000).unref();
          else setTimeout(reap, 100).unref();
        };
        reap();
      });
    };
    wire(client, up, upstream, down);
    wire(upstream, down, client, up);
  });
  await new Promise((res, rej) => { server.once('error', rej); server.listen(listen, '127.0.0.1', res); });
  const port = server.address().port;

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    /** Changes the delays of chunks read from now on (queued ones keep their release time). */
    setLink({ upMs: u = link.upMs, downMs: d = link.downMs, jitterMs: j = link.jitterMs } = {}) {
      Object.assign(link, { upMs: u, downMs: d, jitterMs: j });
    },
    /** Nothing is delivered for `ms` on any connection; queued chunks follow afterwards. */
    outage(ms) {
      outageUntil = Math.max(outageUntil, performance.now() + ms);
      for (const q of queues) q.schedule();
      return new Promise((res) => setTimeout(res, Math.max(0, outageUntil - performance.now())));
    },
    /** Timer lateness of releases (ms after the due time) and the number of chunks released. */
    stats() { return { released, lateMs: summarize(lateness) }; },
    close() {
      for (const q of queues) q.drop();
      for (const s of sockets) s.destroy();
      return new Promise((res) => server.close(() => res()));
    },
  };
}

function splitHostPort(target) {
  const s = String(target).replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '');
  const i = s.lastIndexOf(':');
  if (i < 0) throw new Error(`target must be host:port, got ${target}`);
  return [s.slice(0, i).replace(/^\[|\]$/g, ''), Number(s.slice(i + 1))];
}

// ---------------------------------------------------------------------------------------------
// 3. Analysis helpers (pure).
// ---------------------------------------------------------------------------------------------

/**
 * Places heard onsets on the transport's step grid.
 * transport: { anchorTime (Unix ms), anchorStep, tempo (BPM) } - a 16th-note step grid.
 * Returns { aligned: [{ n, errMs, wallMs, peak, accent, uncertainMs }], accentMismatches: [same] } where
 * errMs is how late (+) or early (-) the onset is against step n, accent = peak >= accentRatio
 * * (the loudest peak), and accentMismatches are accented onsets whose n mod 16 is not one of
 * accentSteps16 (the page is whole steps off even if errMs looks small).
 */
export function alignToTransport(onsets, transport, { accentSteps16 = [0], accentRatio = 0.6 } = {}) {
  const stepMs = 60000 / (transport.tempo * 4);
  const maxPeak = onsets.reduce((m, o) => Math.max(m, o.peak ?? 0), 0);
  const aligned = onsets.map((o) => {
    const pos = transport.anchorStep + (o.wallMs - transport.anchorTime) / stepMs;
    const n = Math.round(pos);
    return { n, errMs: (pos - n) * stepMs, wallMs: o.wallMs, peak: o.peak,
      accent: maxPeak > 0 && o.peak >= accentRatio * maxPeak, uncertainMs: o.uncertainMs ?? 0 };
  });
  const accents = new Set(accentSteps16.map((s) => ((s % 16) + 16) % 16));
  const accentMismatches = aligned.filter((a) => a.accent && !accents.has(((a.n % 16) + 16) % 16));
  return { aligned, accentMismatches };
}

/**
 * Pairs the onsets of two pages that fall on the same step n: [{ n, diffMs: wallMsA - wallMsB,
 * wallMs (= wallMsA), wallMsA, wallMsB, uncertainMs (the larger of the two) }], by n. Takes
 * alignToTransport() results or their `aligned` arrays. If a page has several onsets on one
 * step, the one nearest the step (smallest |errMs|) is used.
 */
export function compareByStep(alignedA, alignedB) {
  const best = (list) => {
    const m = new Map();
    for (const a of Array.isArray(list) ? list : list.aligned) {
      const cur = m.get(a.n);
      if (!cur || Math.abs(a.errMs) < Math.abs(cur.errMs)) m.set(a.n, a);
    }
    return m;
  };
  const a = best(alignedA), b = best(alignedB);
  const out = [];
  for (const [n, x] of a) {
    const y = b.get(n);
    if (y) {
      out.push({ n, diffMs: x.wallMs - y.wallMs, wallMs: x.wallMs, wallMsA: x.wallMs, wallMsB: y.wallMs,
        uncertainMs: Math.max(x.uncertainMs ?? 0, y.uncertainMs ?? 0) });
    }
  }
  return out.sort((p, q) => p.n - q.n);
}

/**
 * { count, median, p95, worst, mean }: median and mean of the signed values; p95 and worst
 * (maximum) of their absolute values. NaN when empty.
 */
export function summarize(values) {
  const v = values.filter((x) => Number.isFinite(x));
  if (!v.length) return { count: 0, median: NaN, p95: NaN, worst: NaN, mean: NaN };
  const s = [...v].sort((a, b) => a - b);
  const abs = v.map(Math.abs).sort((a, b) => a - b);
  const q = (arr, p) => { // linear interpolation between closest ranks
    const i = (arr.length - 1) * p, lo = Math.floor(i), hi = Math.ceil(i);
    return arr[lo] + (arr[hi] - arr[lo]) * (i - lo);
  };
  return { count: v.length, median: q(s, 0.5), p95: q(abs, 0.95), worst: abs[abs.length - 1],
    mean: v.reduce((a, b) => a + b, 0) / v.length };
}
