//! The transport bar: play, sound, recording, undo/redo, tempo, swing, connection and clock sync.

use crate::api;
use crate::app::playing;
use crate::app::start_audio;
use crate::app::toggle_play;
use crate::app::ui;
use crate::audio;
use crate::controls::RepeatButton;
use crate::key::KeyControl;
use crate::live;
use crate::live::Signals;
use crate::live::Status;
use keyboardia_core::limits::SWING_MAX;
use keyboardia_core::limits::TEMPO_MAX;
use keyboardia_core::limits::TEMPO_MIN;
use keyboardia_core::protocol::Edit;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::time::Duration;

#[component]
pub(crate) fn Transport() -> impl IntoView {
    let ui = ui();
    let sig = ui.sig;
    let ro = move || sig.read_only.get();
    // Recording: a one-bar count-in (the microphone's level shows from its start), then the
    // take with its elapsed time and level, then the upload.
    let rec = RwSignal::new(Rec::Idle);
    let level = RwSignal::new(0.0f64);
    let clock = RwSignal::new(0.0f64);
    let takes = RwSignal::new(0usize);
    let ticker = StoredValue::new(None::<IntervalHandle>);
    let stop_ticker = move || {
        if let Some(h) = ticker.get_value() {
            h.clear();
        }
        ticker.set_value(None);
    };
    let tick = move || {
        let now = live::perf_now();
        clock.set(now);
        level.set(crate::record::level());
        if let Rec::CountIn { until, .. } = rec.get_untracked() {
            if now >= until {
                match crate::record::begin() {
                    Ok(()) => rec.set(Rec::Recording { since: now }),
                    Err(e) => {
                        crate::record::cancel();
                        rec.set(Rec::Idle);
                        sig.message.set(Some(format!(
                            "The recording could not start: {}",
                            api::js_err(e)
                        )));
                    }
                }
            }
        }
    };
    let toggle_record = move |_| {
        let sid = ui.session_id.get_value();
        match rec.get_untracked() {
            Rec::Idle => spawn_local(async move {
                if let Err(e) = audio::start().await {
                    sig.message
                        .set(Some(format!("Audio could not start: {}", api::js_err(e))));
                    return;
                }
                ui.audio_on.set(true);
                if let Err(e) = crate::record::open().await {
                    sig.message.set(Some(format!(
                        "The microphone is not available: {}",
                        api::js_err(e)
                    )));
                    return;
                }
                let tempo = sig
                    .state
                    .with_untracked(|s| s.as_ref().map(|s| s.tempo))
                    .unwrap_or(120) as f64;
                let beat = 60_000.0 / tempo;
                let now = live::perf_now();
                // While the session plays, the take starts on a bar line (at least half a bar
                // away), so it lines up with the pattern; stopped, after one bar.
                let transport = sig
                    .state
                    .with_untracked(|s| s.as_ref().map(|s| s.transport));
                let until = match (transport, sig.offset.get_untracked()) {
                    (Some(tr), Some(o)) if tr.playing => {
                        let pos = tr.position_at(now + o);
                        let mut next = (pos / 16.0).ceil() * 16.0;
                        if next - pos < 8.0 {
                            next += 16.0;
                        }
                        now + (next - pos) * beat / 4.0
                    }
                    _ => now + COUNT_IN_BEATS * beat,
                };
                rec.set(Rec::CountIn { until, beat });
                clock.set(now);
                stop_ticker();
                ticker.set_value(set_interval_with_handle(tick, Duration::from_millis(50)).ok());
            }),
            Rec::CountIn { .. } => {
                stop_ticker();
                crate::record::cancel();
                rec.set(Rec::Idle);
            }
            Rec::Recording { .. } => {
                stop_ticker();
                rec.set(Rec::Idle);
                takes.update(|n| *n += 1);
                spawn_local(async move {
                    match crate::record::stop_and_upload(&sid, takes.get_untracked()).await {
                        Ok(name) => sig
                            .message
                            .set(Some(format!("{name} is a track now: everyone hears it"))),
                        Err(e) => sig
                            .message
                            .set(Some(format!("The recording failed: {}", api::js_err(e)))),
                    }
                })
            }
        }
    };
    on_cleanup(stop_ticker);
    let recording = move || rec.with(|r| !matches!(r, Rec::Idle));
    let rec_label = move || match rec.get() {
        Rec::Idle => "Record",
        Rec::CountIn { .. } => "Cancel recording",
        Rec::Recording { .. } => "Stop recording",
    };
    // What the button shows: short, so its width stays put.
    let rec_short = move || match rec.get() {
        Rec::Idle => "Record",
        Rec::CountIn { .. } => "Cancel",
        Rec::Recording { .. } => "Stop",
    };
    let rec_icon = move || match rec.get() {
        Rec::Idle => "●",
        Rec::CountIn { .. } => "✕",
        Rec::Recording { .. } => "■",
    };
    let rec_text = move || match rec.get() {
        Rec::Idle => String::new(),
        Rec::CountIn { until, beat } => {
            let left = ((until - clock.get()) / beat).ceil().max(1.0);
            format!("Recording in {left}…")
        }
        Rec::Recording { since } => {
            let secs = ((clock.get() - since) / 1000.0).max(0.0) as u64;
            format!("● Recording {}:{:02}", secs / 60, secs % 60)
        }
    };
    let level_pct = move || (level.get() * 100.0).round() as i64;
    let tempo = move || {
        sig.state
            .with(|s| s.as_ref().map(|s| s.tempo).unwrap_or(120))
    };
    let swing = move || sig.state.with(|s| s.as_ref().map(|s| s.swing).unwrap_or(0));
    // Tap tempo: the average of the last few intervals between taps (a pause of 2 s starts over).
    let taps = StoredValue::new(Vec::<f64>::new());
    let tap = move |_| {
        let t = live::perf_now();
        let mut v = taps.get_value();
        if v.last().is_some_and(|l| t - l > 2000.0) {
            v.clear();
        }
        v.push(t);
        if v.len() > 5 {
            v.remove(0);
        }
        if v.len() >= 2 {
            let avg = (v[v.len() - 1] - v[0]) / (v.len() - 1) as f64;
            let bpm = (60_000.0 / avg).round() as i64;
            live::edit(Edit::SetTempo {
                tempo: bpm.clamp(TEMPO_MIN as i64, TEMPO_MAX as i64),
            });
        }
        taps.set_value(v);
    };
    view! {
        <section class="transport" aria-label="Transport">
            <button class="play" aria-label=move || if playing(sig) { "Stop" } else { "Play" }
                on:click=move |_| toggle_play(ui)>
                {move || if playing(sig) { "■ Stop" } else { "▶ Play" }}
            </button>
            <SoundButton/>
            <Show when=move || !ro()>
                // On a phone only the icons show (the names stay as labels).
                <button class="record" class:on=recording aria-pressed=move || recording().to_string()
                    aria-label=rec_label on:click=toggle_record>
                    <span class="icon" aria-hidden="true">{rec_icon}</span>
                    <span class="label">{rec_short}</span>
                </button>
                <button class="lock-mode" aria-pressed=move || ui.lock_mode.get().to_string() aria-label="Step editor"
                    title="Step editor: tap a step to set its pitch, volume or tie (also Shift-click or a long press)"
                    on:click=move |_| ui.lock_mode.update(|m| *m = !*m)>
                    <span class="icon" aria-hidden="true">"✎"</span><span class="label">"Step editor"</span>
                </button>
            </Show>
            {move || if ro() {
                view! {
                    <span class="tempo as-text" data-testid="tempo">{tempo}" BPM"</span>
                    <span class="swing as-text">"Swing "{swing}"%"</span>
                    <KeyControl/>
                }.into_any()
            } else {
                view! {
                    <div class="history" role="group" aria-label="Undo and redo">
                        <button class="undo" aria-label="Undo (Ctrl+Z)" title="Undo your last change (Ctrl+Z)"
                            disabled=move || !sig.history.get().0 on:click=move |_| live::undo(false)>"↶"</button>
                        <button class="redo" aria-label="Redo (Ctrl+Shift+Z)" title="Redo (Ctrl+Shift+Z)"
                            disabled=move || !sig.history.get().1 on:click=move |_| live::undo(true)>"↷"</button>
                    </div>
                    <div class="tempo" role="group" aria-label="Tempo" data-testid="tempo">
                        <RepeatButton class="slower" label="Slower" text="−" on_step=Callback::new(move |_| nudge_tempo(sig, -1))/>
                        <input class="bpm" type="number" inputmode="numeric" aria-label="Tempo in BPM"
                            min=TEMPO_MIN.to_string() max=TEMPO_MAX.to_string()
                            prop:value=move || tempo().to_string()
                            on:change=move |e| {
                                if let Some(v) = crate::text::number(event_target_value(&e).trim()) {
                                    let t = (v.round() as i64).clamp(TEMPO_MIN as i64, TEMPO_MAX as i64);
                                    live::edit(Edit::SetTempo { tempo: t });
                                }
                            }/>
                        <span class="unit">"BPM"</span>
                        <RepeatButton class="faster" label="Faster" text="+" on_step=Callback::new(move |_| nudge_tempo(sig, 1))/>
                        <button class="tap" title="Tap four times in time to set the tempo" on:click=tap>"Tap"</button>
                    </div>
                    <label class="swing">"Swing "
                        <input type="range" min="0" max=SWING_MAX.to_string() aria-label="Swing"
                            prop:value=move || swing().to_string()
                            on:input=move |e| {
                                if let Ok(v) = event_target_value(&e).parse::<i64>() {
                                    live::edit(Edit::SetSwing { swing: v })
                                }
                            }/>
                        <output class="swing-value" data-testid="swing-value">{swing}"%"</output>
                    </label>
                    <span class="wide-only"><KeyControl/></span>
                }.into_any()
            }}
            <Show when=recording>
                <div class="rec-strip" role="status" data-testid="recording">
                    <span class="rec-text">{rec_text}</span>
                    <span class="meter" role="meter" aria-label="Microphone level" aria-valuemin="0" aria-valuemax="100"
                        aria-valuenow=move || level_pct().to_string()>
                        <span class="fill" style=move || format!("width:{}%", level_pct())></span>
                    </span>
                    <span class="dim">{move || if matches!(rec.get(), Rec::CountIn { .. }) { "Get ready: the take starts on a bar line" } else { "Press Stop recording when you are done" }}</span>
                </div>
            </Show>
            <div class="conn">
                <ConnectionStatus/>
                <SyncIndicator/>
            </div>
        </section>
    }
}

/// Where a recording is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Rec {
    Idle,
    /// Counting in; the take starts at `until` (performance ms); `beat` is one beat's length.
    CountIn {
        until: f64,
        beat: f64,
    },
    Recording {
        since: f64,
    },
}

/// The count-in before a take: one bar.
pub(crate) const COUNT_IN_BEATS: f64 = 4.0;

/// Sound on/off: one slot of fixed size (nothing moves when sound starts). Off, it says so
/// plainly, louder while the session is playing unheard; any gesture anywhere turns it on.
#[component]
pub(crate) fn SoundButton() -> impl IntoView {
    let ui = ui();
    let on = move || ui.audio_on.get();
    let urgent = move || !on() && playing(ui.sig);
    // The master level (one analyser) and the tracks' levels (reported by the engine), read
    // about 15 times a second while sound is on.
    let level = RwSignal::new(0.0f64);
    let poll = set_interval_with_handle(
        move || {
            if ui.audio_on.get_untracked() {
                let l = audio::master_level();
                if (l - level.get_untracked()).abs() > 0.01 {
                    level.set(l);
                }
                let tracks = audio::take_track_levels();
                let changed = ui.levels.with_untracked(|old| {
                    old.len() != tracks.len()
                        || old.iter().zip(&tracks).any(|(a, b)| (a - b).abs() > 0.01)
                });
                if changed {
                    ui.levels.set(tracks);
                }
            }
        },
        Duration::from_millis(66),
    )
    .ok();
    on_cleanup(move || {
        if let Some(p) = poll {
            p.clear();
        }
    });
    let pct = move || (level.get() * 100.0).round() as i64;
    view! {
        <button class="sound" class:start-audio=move || !on() class:urgent=urgent data-testid="sound"
            aria-disabled=move || on().to_string()
            on:click=move |_| start_audio(ui)>
            {move || if on() {
                view! {
                    <span class="sound-main">"Sound on"</span>
                    <span class="meter master" role="meter" aria-label="Output level" aria-valuemin="0" aria-valuemax="100"
                        aria-valuenow=move || pct().to_string() data-testid="master-meter">
                        <span class="fill" style=move || format!("width:{}%", pct())></span>
                    </span>
                }.into_any()
            } else if urgent() {
                view! {
                    <span class="sound-main">"Playing, muted here"</span>
                    <span class="sound-sub">"Tap anywhere to hear it"</span>
                }.into_any()
            } else {
                view! {
                    <span class="sound-main">"Start audio"</span>
                    <span class="sound-sub">"or tap anywhere"</span>
                }.into_any()
            }}
        </button>
    }
}

pub(crate) fn nudge_tempo(sig: Signals, d: i64) {
    if let Some(t) = sig.state.with_untracked(|s| s.as_ref().map(|s| s.tempo)) {
        let t = (t as i64 + d).clamp(TEMPO_MIN as i64, TEMPO_MAX as i64);
        live::edit(Edit::SetTempo { tempo: t });
    }
}

/// How well this player's clock is synced: the round trip to the session and how far the
/// clock estimate may be off, so a player on a poor link knows why they may be late.
#[component]
pub(crate) fn SyncIndicator() -> impl IntoView {
    let sig = ui().sig;
    let text = move || match sig.sync.get() {
        None => "clock: …".to_string(),
        Some(s) if !s.ready => format!("syncing clock ({} samples)", s.samples),
        Some(s) => format!("sync ±{:.1} ms · {:.0} ms RTT", s.uncertainty, s.rtt),
    };
    let class = move || match sig.sync.get() {
        Some(s) if s.ready && s.uncertainty <= 2.0 => "sync good",
        Some(s) if s.ready => "sync fair",
        _ => "sync wait",
    };
    view! {
        <span class=class data-testid="sync"
            title="Round trip to the session, and how far this player's clock estimate may be off: everyone hears each step at the same moment to within that">
            {text}
        </span>
    }
}

#[component]
pub(crate) fn ConnectionStatus() -> impl IntoView {
    let sig = ui().sig;
    let text = move || match (sig.status.get(), sig.pending.get()) {
        (Status::Live, _) => "live".to_string(),
        (Status::Connecting, _) => "connecting…".to_string(),
        (Status::Reconnecting, 0) => "reconnecting…".to_string(),
        (Status::Reconnecting, n) => format!("reconnecting, {n} unsent"),
        (Status::Refused, _) => "not connected".to_string(),
    };
    let class = move || match sig.status.get() {
        Status::Live => "status live",
        Status::Refused => "status off",
        _ => "status wait",
    };
    view! { <span class=class role="status" aria-live="polite" data-testid="status">{text}</span> }
}
