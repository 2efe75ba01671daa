// Keyboardia's AudioWorklet processor: runs the Rust sound engine (keyboardia-audio-worklet).
//
// The main thread compiles the wasm module and sends it first:
//   node.port.postMessage({ type: 'init', module })  -> replies { type: 'ready' }
// then control messages, applied between render quanta (block boundaries):
//   { type: 'pattern', swing, loop: [start, end] or null, tracks: [{ instrument, stepCount, volume,
//       pan, transpose, swing, muted, soloed, steps: [w0, w1, w2, w3],
//       locks: [[step, pitch, volume, tie, chord?], ...] (chord, when present: the step's other
//       notes, e.g. [4, 7]), fx: [sendReverb, sendDelay, filterMode, cutoff, resonance, drive],
//       cutoffs: [[step, hz], ...] }] }
//   { type: 'effects', values: [24 numbers, MasterFx::to_array's order], settle }   (the master
//       chain; with settle every setting jumps there: a fresh engine about to play)
//   { type: 'transport', playing, anchorFrame, anchorStep, tempo }
//   { type: 'anchor', anchorFrame, atOnce }   (the same transport, its anchor corrected: slewed,
//       or at once when the output itself jumped)
//   { type: 'sample', slot, rate, pcm: Float32Array }
//   { type: 'instrument', slot, baseNote, gain, envelope: [attack, hold, decay, sustain, release],
//       oneShot, choke, zones: [{ keyLo, keyHi, velLo, velHi, root, fineTune, sampleRate,
//       loopStart, loopEnd, gain }] }   (a sampled instrument into slot 0..63, zones silent
//       until their PCM arrives; tracks play it as instrument 512 + slot)
//   { type: 'zone', slot, zone, pcm: Int16Array }   (one zone's PCM; send the buffer transferred)
//   { type: 'unload', slot }
//   { type: 'audition', track, instrument, pitch, gate }   (one note now, outside the pattern)
//   { type: 'probe', slots: [slot, ...], tracks: n }   -> replies { type: 'probe', zones: [zones
//       loaded per slot, -1 if empty], voices: [voices per track], peak, master } (peak: the
//       largest output sample since the last probe; master: the 24 master effect settings the
//       engine plays; memory: bytes of the engine's WebAssembly memory)
// Every message may carry `id`; the processor answers { type: 'applied', id } once done.
// About every 21 ms (8 render quanta) while anything sounds, it reports each track's peak since
// the last report (linear, after the track's gain): { type: 'levels', peaks: Float32Array(16) }.
class KeyboardiaProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.kb = null;
    this.h = 0;
    this.quanta = 0;
    this.quiet = true;
    this.peak = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(m) {
    if (m.type === 'init') {
      const instance = new WebAssembly.Instance(m.module, {});
      this.kb = instance.exports;
      this.h = this.kb.kb_new(sampleRate);
      this.port.postMessage({ type: 'ready' });
      return;
    }
    if (!this.kb) return;
    const kb = this.kb;
    const h = this.h;
    if (m.type === 'pattern') {
      kb.kb_set_swing(h, m.swing | 0);
      m.tracks.forEach((t, i) => {
        kb.kb_set_track(h, i, t.instrument, t.stepCount, t.volume, t.pan, t.transpose, t.swing,
          t.muted ? 1 : 0, t.soloed ? 1 : 0);
        kb.kb_set_steps(h, i, t.steps[0] >>> 0, t.steps[1] >>> 0, t.steps[2] >>> 0, t.steps[3] >>> 0);
        for (let s = 0; s < 128; s++) kb.kb_set_lock(h, i, s, 127, -1, 0);
        for (const [step, pitch, volume, tie, chord] of t.locks) {
          kb.kb_set_lock(h, i, step, pitch, volume, tie);
          if (chord) kb.kb_set_chord(h, i, step, chord[0] ?? 127, chord[1] ?? 127, chord[2] ?? 127);
        }
        if (t.fx) kb.kb_set_track_fx(h, i, t.fx[0], t.fx[1], t.fx[2] | 0, t.fx[3], t.fx[4], t.fx[5]);
        kb.kb_clear_cutoffs(h, i);
        for (const [step, hz] of t.cutoffs || []) kb.kb_set_lock_cutoff(h, i, step, hz);
      });
      kb.kb_set_track_count(h, m.tracks.length);
      kb.kb_set_loop(h, m.loop ? m.loop[0] : 0, m.loop ? m.loop[1] : 0);
    } else if (m.type === 'effects') {
      m.values.forEach((v, i) => kb.kb_set_master_value(h, i, v));
      kb.kb_apply_master(h, m.settle ? 1 : 0);
    } else if (m.type === 'transport') {
      kb.kb_set_transport(h, m.playing ? 1 : 0, m.anchorFrame, m.anchorStep, m.tempo);
    } else if (m.type === 'anchor') {
      kb.kb_adjust_anchor(h, m.anchorFrame, m.atOnce ? 1 : 0);
    } else if (m.type === 'sample') {
      const ptr = kb.kb_sample_buffer(h, m.pcm.length);
      new Float32Array(kb.memory.buffer, ptr, m.pcm.length).set(m.pcm);
      kb.kb_commit_sample(h, m.slot, m.rate);
    } else if (m.type === 'instrument') {
      const e = m.envelope;
      kb.kb_instrument_begin(h, m.slot, m.baseNote, m.gain, e[0], e[1], e[2], e[3], e[4],
        m.oneShot ? 1 : 0, m.choke >>> 0);
      for (const z of m.zones) {
        kb.kb_instrument_zone(h, z.keyLo, z.keyHi, z.velLo, z.velHi, z.root, z.fineTune,
          z.sampleRate, z.loopStart, z.loopEnd, z.gain);
      }
      kb.kb_instrument_commit(h);
    } else if (m.type === 'zone') {
      const ptr = kb.kb_zone_buffer(h, m.pcm.length);
      new Int16Array(kb.memory.buffer, ptr, m.pcm.length).set(m.pcm);
      kb.kb_zone_commit(h, m.slot, m.zone);
    } else if (m.type === 'audition') {
      kb.kb_audition(h, m.track | 0, m.instrument | 0, m.pitch | 0, m.gate | 0);
    } else if (m.type === 'unload') {
      kb.kb_instrument_unload(h, m.slot);
    } else if (m.type === 'probe') {
      const zones = (m.slots || []).map((s) => kb.kb_instrument_zones_loaded(h, s));
      const voices = [];
      for (let i = 0; i < (m.tracks | 0); i++) voices.push(kb.kb_voices_on(h, i));
      const master = [];
      for (let i = 0; i < 24; i++) master.push(kb.kb_master_value(h, i));
      this.port.postMessage({ type: 'probe', id: m.id, zones, voices, peak: this.peak, master, memory: kb.memory.buffer.byteLength });
      this.peak = 0;
      return;
    }
    if (m.id !== undefined) this.port.postMessage({ type: 'applied', id: m.id });
  }

  process(_inputs, outputs) {
    const out = outputs[0];
    if (!this.kb || !out || out.length < 2) return true;
    const n = out[0].length;
    // The engine counts the context's frames (the global currentFrame), so anchor frames that
    // the main thread computes from context time mean exactly these frames.
    const expected = this.kb.kb_frame(this.h);
    if (expected !== currentFrame) {
      this.kb.kb_set_frame(this.h, currentFrame);
      // After the first block, a jump means render quanta were dropped: say so (diagnostics).
      if (this.started) this.port.postMessage({ type: 'frameJump', from: expected, to: currentFrame });
    }
    this.started = true;
    this.kb.kb_render(this.h, n);
    // Views are made per block: wasm memory may have grown since the last one.
    const mem = this.kb.memory.buffer;
    out[0].set(new Float32Array(mem, this.kb.kb_left(this.h), n));
    out[1].set(new Float32Array(mem, this.kb.kb_right(this.h), n));
    let peak = this.peak;
    for (let i = 0; i < n; i++) {
      const a = Math.abs(out[0][i]);
      const b = Math.abs(out[1][i]);
      if (a > peak) peak = a;
      if (b > peak) peak = b;
    }
    this.peak = peak;
    if (++this.quanta % 8 === 0) this.reportLevels();
    return true;
  }

  reportLevels() {
    const peaks = new Float32Array(16);
    let any = false;
    for (let i = 0; i < 16; i++) { peaks[i] = this.kb.kb_take_peak(this.h, i); any = any || peaks[i] > 0; }
    // Silence is reported once, not every time.
    if (any || !this.quiet) this.port.postMessage({ type: 'levels', peaks });
    this.quiet = !any;
  }
}

registerProcessor('keyboardia', KeyboardiaProcessor);
