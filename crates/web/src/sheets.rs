//! The sheet (a side panel on a desktop, a bottom sheet on a phone) and what it shows: track settings, instrument picker, step editor, publish, more, shortcuts.

use crate::app::derive;
use crate::app::instrument_name;
use crate::app::recordings_of;
use crate::app::ui;
use crate::app::Sheet;
use crate::app::Ui;
use crate::controls::Slider;
use crate::effects_panel::{from_unit, to_unit, EffectsSheet, TrackEffects};
use crate::grid::add_track;
use crate::header::ThemeToggle;
use crate::key::KeyControl;
use crate::live;
use crate::pattern_tools::PatternTools;
use crate::piano_roll::PianoRoll;
use keyboardia_core::effects::Fx;
use keyboardia_core::limits::STEP_COUNTS;
use keyboardia_core::model::Track;
use keyboardia_core::protocol::Edit;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// The sheet: beside the grid on a desktop, a bottom sheet on a phone. Focus moves into it when
/// it opens and back to what opened it when it closes.
#[component]
pub(crate) fn SheetView() -> impl IntoView {
    let ui = ui();
    let opener = StoredValue::new_local(None::<web_sys::HtmlElement>);
    Effect::new(move |was_open: Option<bool>| {
        let open = ui.sheet.with(|s| s.is_some());
        let doc = web_sys::window().and_then(|w| w.document());
        if open && was_open != Some(true) {
            opener.set_value(
                doc.as_ref()
                    .and_then(|d| d.active_element())
                    .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()),
            );
        }
        if open {
            request_animation_frame(|| focus_into_sheet(60));
        } else if was_open == Some(true) {
            if let Some(el) = opener.get_value() {
                if el.is_connected() {
                    let _ = el.focus();
                }
            }
        }
        open
    });
    // The scrim closes the sheet on a tap that starts on it (not on the end of the long press
    // that opened the sheet).
    let down_on_scrim = StoredValue::new(false);
    let close = move |_| {
        if down_on_scrim.get_value() {
            ui.sheet.set(None);
        }
        down_on_scrim.set_value(false);
    };
    move || {
        ui.sheet.get().map(|s| {
            let class = sheet_class(&s);
            let body = Suspend::new(async move { crate::lazy::view_or_notice(sheet_body(s).await) });
            view! {
                <div class="scrim" on:pointerdown=move |_| down_on_scrim.set_value(true) on:click=close></div>
                <aside class=format!("sheet {class}") role="dialog" aria-labelledby="sheet-title">
                    {body}
                </aside>
            }
        })
    }
}

/// Moves focus into the open sheet (unless it is already there): its first control of note. The
/// sheet's body may still be on its way (its wasm module is fetched when a sheet first opens), so
/// this looks again on each of the next `frames` animation frames until there is one.
fn focus_into_sheet(frames: u32) {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let inside = doc
        .active_element()
        .and_then(|a| a.closest(".sheet").ok().flatten())
        .is_some();
    if inside || doc.query_selector(".sheet").ok().flatten().is_none() {
        return;
    }
    for sel in [
        ".sheet .roll-area",
        ".sheet .pick[aria-pressed=true]",
        ".sheet .pick",
        ".sheet .sheet-body input, .sheet .sheet-body select, .sheet .sheet-body button",
    ] {
        if let Some(el) = doc
            .query_selector(sel)
            .ok()
            .flatten()
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        {
            let _ = el.focus();
            return;
        }
    }
    if frames > 0 {
        request_animation_frame(move || focus_into_sheet(frames - 1));
    }
}

/// What a sheet shows. Its views (track settings, the picker, the piano roll, the effects panel,
/// publish, more, shortcuts, the step editor) are in their own wasm module, fetched the first
/// time a sheet opens, so a first visit downloads less (`crate::lazy`).
#[leptos::wasm_split::wasm_split(sheets, wasm_split_path = ::leptos::wasm_split, fallible)]
fn sheet_body(s: Sheet) -> Result<AnyView, crate::lazy::NotLoaded> {
    Ok(match s {
        Sheet::Track(id) => view! { <TrackSettings id=id/> }.into_any(),
        Sheet::Instrument(id) => view! { <InstrumentSheet id=id/> }.into_any(),
        Sheet::AddTrack => view! { <AddTrackSheet/> }.into_any(),
        Sheet::Lock(id, k) => view! { <LockEditor id=id step=k/> }.into_any(),
        Sheet::Publish => view! { <PublishSheet/> }.into_any(),
        Sheet::Help => view! { <HelpSheet/> }.into_any(),
        Sheet::More => view! { <MoreSheet/> }.into_any(),
        Sheet::Roll(id) => view! { <PianoRoll id=id/> }.into_any(),
        Sheet::Effects => view! { <EffectsSheet/> }.into_any(),
    })
}

/// The sheet's class, for its size and layout.
fn sheet_class(s: &Sheet) -> &'static str {
    match s {
        Sheet::Track(_) => "track-sheet",
        Sheet::Instrument(_) | Sheet::AddTrack => "picker-sheet",
        Sheet::Lock(..) => "lock-sheet",
        Sheet::Publish => "publish-sheet",
        Sheet::Help => "help-sheet",
        Sheet::More => "more-sheet",
        Sheet::Roll(_) => "roll-sheet",
        Sheet::Effects => "effects-sheet",
    }
}

#[component]
pub(crate) fn SheetHead(#[prop(into)] title: Signal<String>) -> impl IntoView {
    let ui = ui();
    view! {
        <header class="sheet-head">
            <h2 id="sheet-title">{move || title.get()}</h2>
            <button class="close" aria-label="Close" title="Close (Esc)" on:click=move |_| ui.sheet.set(None)>"✕"</button>
        </header>
    }
}

/// A track's memo for a sheet; the sheet closes if the track goes away.
pub(crate) fn sheet_track(ui: Ui, id: String) -> Memo<Option<Track>> {
    let sig = ui.sig;
    let track = Memo::new(move |_| {
        sig.state
            .with(|s| s.as_ref().and_then(|s| s.track(&id).cloned()))
    });
    Effect::new(move |_| {
        if track.with(|t| t.is_none()) {
            ui.sheet.set(None);
        }
    });
    track
}

#[component]
pub(crate) fn TrackSettings(id: String) -> impl IntoView {
    let ui = ui();
    let track = sheet_track(ui, id.clone());
    let name = move || track.with(|t| t.as_ref().map(|t| t.name.clone()).unwrap_or_default());
    let confirm = RwSignal::new(false);
    let (id_inst, id_count, id_name, id_del, id_tools, id_fx) = (
        id.clone(),
        id.clone(),
        id.clone(),
        id.clone(),
        id.clone(),
        id.clone(),
    );
    let num = move |f: fn(&Track) -> i64, d: i64| {
        Signal::derive(move || track.with(|t| t.as_ref().map(f).unwrap_or(d)))
    };
    let slider_set = move |f: fn(String, i64) -> Edit| {
        let id = id.clone();
        Callback::new(move |v: i64| live::edit(f(id.clone(), v)))
    };
    view! {
        <SheetHead title=Signal::derive(move || format!("{} · track settings", name()))/>
        <div class="sheet-body track-settings">
            <div class="field">
                <span>"Instrument"</span>
                <button class="inst-open" aria-label=move || format!("Instrument: {}. Change", track.with(|t| t.as_ref().map(|t| instrument_name(&t.instrument)).unwrap_or_default()))
                    on:click=move |_| ui.sheet.set(Some(Sheet::Instrument(id_inst.clone())))>
                    {move || track.with(|t| t.as_ref().map(|t| instrument_name(&t.instrument)).unwrap_or_default())}" ›"
                </button>
            </div>
            <label class="field">"Steps"
                <select aria-label="Step count" on:change=move |e| {
                    if let Ok(n) = event_target_value(&e).parse::<i64>() {
                        live::edit(Edit::SetTrackStepCount { track_id: id_count.clone(), step_count: n })
                    }
                }>
                    {move || {
                        let cur = track.with(|t| t.as_ref().map(|t| t.step_count).unwrap_or(16));
                        STEP_COUNTS.iter().map(|&n| view! { <option value=n.to_string() selected=n == cur>{n}</option> }).collect_view()
                    }}
                </select>
            </label>
            <label class="field">"Name"
                <input type="text" maxlength="32" aria-label="Track name" prop:value=name
                    on:change=move |e| live::edit(Edit::SetTrackName { track_id: id_name.clone(), name: event_target_value(&e) })/>
            </label>
            <Slider label="Volume" min=0 max=100
                value=num(|t| (t.volume * 100.0).round() as i64, 80)
                on_set=slider_set(|id, v| Edit::SetTrackVolume { track_id: id, volume: v as f64 / 100.0 })/>
            <Slider label="Pan" min=-100 max=100
                value=num(|t| (t.pan * 100.0).round() as i64, 0)
                on_set=slider_set(|id, v| Edit::SetTrackPan { track_id: id, pan: v as f64 / 100.0 })/>
            <Slider label="Transpose" min=-24 max=24
                value=num(|t| t.transpose as i64, 0)
                on_set=slider_set(|id, v| Edit::SetTrackTranspose { track_id: id, transpose: v })/>
            <Slider label="Swing" min=0 max=100
                value=num(|t| t.swing as i64, 0)
                on_set=slider_set(|id, v| Edit::SetTrackSwing { track_id: id, swing: v })/>
            <TrackEffects track_id=id_fx.clone()/>
            <section class="tools-section" aria-label="Pattern tools">
                <h3>"Pattern"</h3>
                <PatternTools track_id=id_tools.clone()/>
            </section>
            {move || if confirm.get() {
                let id = id_del.clone();
                view! {
                    <div class="confirm" role="alert">
                        <p>{format!("Delete “{}” for everyone in the session? Its steps go with it.", name())}</p>
                        <div class="row">
                            <button class="danger-solid" data-testid="confirm-delete" on:click=move |_| {
                                live::edit(Edit::DeleteTrack { track_id: id.clone() });
                                ui.sheet.set(None);
                            }>"Delete"</button>
                            <button on:click=move |_| confirm.set(false)>"Keep it"</button>
                        </div>
                    </div>
                }.into_any()
            } else {
                view! { <button class="danger delete" on:click=move |_| confirm.set(true)>"Delete track…"</button> }.into_any()
            }}
        </div>
    }
}

#[component]
pub(crate) fn InstrumentSheet(id: String) -> impl IntoView {
    let ui = ui();
    let track = sheet_track(ui, id.clone());
    let current = track.with_untracked(|t| t.as_ref().map(|t| t.instrument.clone()));
    let name = move || track.with(|t| t.as_ref().map(|t| t.name.clone()).unwrap_or_default());
    let pick = Callback::new(move |instrument: String| {
        live::edit(Edit::SetTrackInstrument {
            track_id: id.clone(),
            instrument,
        });
        ui.sheet.set(None);
    });
    view! {
        <SheetHead title=Signal::derive(move || format!("{} · instrument", name()))/>
        <div class="sheet-body"><Picker current=current on_pick=pick/></div>
    }
}

#[component]
pub(crate) fn AddTrackSheet() -> impl IntoView {
    let ui = ui();
    let pick = Callback::new(move |instrument: String| {
        add_track(ui.sig, instrument);
        ui.sheet.set(None);
    });
    view! {
        <SheetHead title="Add a track: choose its instrument".to_string()/>
        <div class="sheet-body"><Picker current=None on_pick=pick/></div>
    }
}

/// The instrument picker: buttons grouped by category (arrow keys move between them).
#[component]
pub(crate) fn Picker(current: Option<String>, on_pick: Callback<String>) -> impl IntoView {
    let sig = ui().sig;
    // Every instrument of the catalogue (synthesized and sampled; a kit piece named with its
    // kit), grouped as in the row's picker.
    let mut sections: Vec<(&'static str, Vec<(String, String)>)> = crate::picker::CATEGORIES
        .iter()
        .map(|(c, label)| {
            let items = keyboardia_core::catalogue::all()
                .iter()
                .filter(|e| e.category == *c)
                .map(|e| {
                    let name = match e.kit {
                        Some(kit) => format!("{kit} {}", e.name),
                        None => e.name.to_string(),
                    };
                    (e.id.to_string(), name)
                })
                .collect();
            (*label, items)
        })
        .collect();
    sections.push(("Recordings", recordings_of(sig)));
    let keys = move |e: leptos::ev::KeyboardEvent| {
        let d = match e.key().as_str() {
            "ArrowDown" | "ArrowRight" => 1i32,
            "ArrowUp" | "ArrowLeft" => -1,
            _ => return,
        };
        let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
            return;
        };
        let Ok(all) = doc.query_selector_all(".picker .pick") else {
            return;
        };
        let active = doc.active_element();
        let n = all.length() as i32;
        let mut at = -1;
        for i in 0..n {
            if all
                .item(i as u32)
                .map(|x| x.dyn_into::<web_sys::Element>().ok())
                == Some(active.clone())
            {
                at = i;
            }
        }
        let next = (at + d).clamp(0, n - 1);
        if let Some(el) = all
            .item(next as u32)
            .and_then(|x| x.dyn_into::<web_sys::HtmlElement>().ok())
        {
            e.prevent_default();
            let _ = el.focus();
        }
    };
    view! {
        <div class="picker" on:keydown=keys>
            {sections.into_iter().filter(|(_, items)| !items.is_empty()).map(|(label, items)| {
                let current = current.clone();
                view! {
                    <section class="pick-group" aria-label=label>
                        <h3>{label}</h3>
                        <div class="picks">
                            {items.into_iter().map(|(id, name)| {
                                let chosen = current.as_deref() == Some(id.as_str());
                                let pick = id.clone();
                                view! {
                                    <button class="pick" data-instrument=id aria-pressed=chosen.to_string()
                                        on:click=move |_| on_pick.run(pick.clone())>{name}</button>
                                }
                            }).collect_view()}
                        </div>
                    </section>
                }
            }).collect_view()}
        </div>
    }
}

#[component]
pub(crate) fn PublishSheet() -> impl IntoView {
    let ui = ui();
    view! {
        <SheetHead title="Publish this session?".to_string()/>
        <div class="sheet-body">
            <p>"Publishing makes a read-only copy of the beat as it is now: anyone can listen to it and remix it, and it is listed on the front page."</p>
            <p>"This session stays as it is, editable by everyone who has its link. The copy shows you the way back here."</p>
            <div class="row">
                <button class="primary" data-testid="confirm-publish" on:click=move |_| derive(ui, "publish")>"Publish a copy"</button>
                <button on:click=move |_| ui.sheet.set(None)>"Cancel"</button>
            </div>
        </div>
    }
}

#[component]
pub(crate) fn MoreSheet() -> impl IntoView {
    let ui = ui();
    let id = ui.session_id.get_value();
    view! {
        <SheetHead title="More".to_string()/>
        <div class="sheet-body">
            <a class="button" href=format!("/api/sessions/{id}/export.wav") download="">"Download WAV"</a>
            <a class="button" href=format!("/api/sessions/{id}/export.mid") download="">"Download MIDI"</a>
            <KeyControl/>
            <ThemeToggle/>
            <button on:click=move |_| ui.sheet.set(Some(Sheet::Help))>"Shortcuts"</button>
        </div>
    }
}

/// Every keyboard shortcut and gesture, by where it works (opened with `?`).
pub(crate) const SHORTCUTS: &[(&str, &[(&str, &str)])] = &[
    (
        "Playing",
        &[
            ("Space", "Play or stop"),
            ("Ctrl/⌘ + Z", "Undo your last change (never someone else's)"),
            ("Ctrl/⌘ + Shift + Z", "Redo (also Ctrl + Y)"),
            ("Hold − or +", "Change the tempo quickly"),
            ("Tap", "Tap four times in time to set the tempo"),
        ],
    ),
    (
        "The grid",
        &[
            ("← → ↑ ↓", "Move between steps"),
            ("Enter", "Turn the focused step on or off"),
            ("Press and drag", "Paint: every step you pass along the row gets the first one's new state (one undo)"),
            (
                "Drag over the step numbers",
                "Loop those steps for everyone (a click loops that bar); on the ruler ← → move the loop, Shift + ← → resize it, Delete clears it",
            ),
            ("Shift + Enter", "Open the step editor of the focused step"),
            ("Shift + click", "Open the step editor (pitch, volume, tie)"),
            ("Long press", "Open the step editor on a touch screen"),
            ("✎ Step editor", "While on, a click or tap opens a step's editor"),
            ("⇄", "A track's pattern tools: rotate, shift, reverse, invert, mirror, euclid, randomize, copy, paste, duplicate, piano roll"),
        ],
    ),
    (
        "Piano roll",
        &[
            ("← → ↑ ↓", "Move the cursor (steps, pitches)"),
            ("Enter or Space", "Place a note at the cursor (on a step with notes: add it to the chord, up to 4)"),
            ("Shift + ← →", "Make the note shorter or longer"),
            ("Shift + ↑ ↓", "Move the note up or down the scale"),
            ("− or +", "Make the note softer or louder"),
            ("Delete", "Remove the note (also Backspace)"),
            ("Click, drag", "Place a note; drag across steps to paint, a note's end to lengthen it, a note up or down to change its pitch"),
        ],
    ),
    (
        "Effects",
        &[
            ("E", "Show or hide the effects"),
            ("← → ↑ ↓ on the XY pad", "Move both of its effects (Shift: finer)"),
        ],
    ),
    (
        "Panels",
        &[
            ("Esc", "Close this panel, a menu, the step editor or the share panel"),
            ("E", "Show or hide the effects"),
            ("← → ↑ ↓ on the XY pad", "Move both of its effects (Shift: finer)"),
            ("?", "Show or hide these shortcuts"),
        ],
    ),
];

#[component]
pub(crate) fn HelpSheet() -> impl IntoView {
    view! {
        <SheetHead title="Shortcuts".to_string()/>
        <div class="sheet-body" data-testid="shortcuts">
            {SHORTCUTS.iter().map(|(section, keys)| view! {
                <section class="shortcut-group" aria-label=*section>
                    <h3>{*section}</h3>
                    <dl class="shortcuts">
                        {keys.iter().map(|(k, what)| view! { <dt><kbd>{*k}</kbd></dt><dd>{*what}</dd> }).collect_view()}
                    </dl>
                </section>
            }).collect_view()}
            <p class="dim">"Mute (M) and solo (S) change only what you hear. Everything else is shared with everyone in the session."</p>
        </div>
    }
}

#[component]
pub(crate) fn LockEditor(id: String, step: u8) -> impl IntoView {
    let ui = ui();
    let track = sheet_track(ui, id.clone());
    let lock = Memo::new(move |_| {
        track.with(|t| {
            t.as_ref().map(|t| {
                (
                    t.name.clone(),
                    t.locks.get(&step).copied().unwrap_or_default(),
                )
            })
        })
    });
    let send = move |pitch: Option<i64>, volume: Option<f64>, tie: bool, cutoff: Option<f64>| {
        // The step's chord (set in the piano roll) stays as it is.
        let chord = lock
            .get_untracked()
            .map(|x| x.1.chord.iter().map(i64::from).collect())
            .unwrap_or_default();
        let l = keyboardia_core::protocol::LockRequest {
            pitch,
            volume,
            tie,
            cutoff,
            chord,
        };
        let empty = l.pitch.is_none()
            && l.volume.is_none()
            && !l.tie
            && l.cutoff.is_none()
            && l.chord.is_empty();
        live::edit(Edit::SetParameterLock {
            track_id: id.clone(),
            step: step as i64,
            lock: (!empty).then_some(l),
        });
    };
    let current = move || lock.get_untracked().map(|x| x.1).unwrap_or_default();
    let cut = move |c: &keyboardia_core::model::Lock| c.cutoff.map(f64::from);
    let (s1, s2, s3, s4, s5, s6) = (
        send.clone(),
        send.clone(),
        send.clone(),
        send.clone(),
        send.clone(),
        send,
    );
    // The cutoff this step plays with: its lock, or the track's own.
    let track_cutoff = move || {
        track.with(|t| {
            t.as_ref()
                .map(|t| t.fx.get(Fx::FilterCutoff))
                .unwrap_or(Fx::FilterCutoff.default_value())
        })
    };
    let filter_on = move || track.with(|t| t.as_ref().is_some_and(|t| t.fx.filter_on()));
    view! {
        <SheetHead title=Signal::derive(move || lock.get().map(|(n, _)| format!("{n}, step {}", step + 1)).unwrap_or_default())/>
        <div class="sheet-body lock-editor">
            <label class="field">"Pitch"
                <input type="range" min="-24" max="24" aria-label="Pitch lock in semitones"
                    prop:value=move || lock.get().and_then(|x| x.1.pitch).unwrap_or(0).to_string()
                    on:change=move |e| {
                        let c = current();
                        let p = event_target_value(&e).parse::<i64>().ok().filter(|p| *p != 0);
                        s1(p, c.volume.map(f64::from), c.tie, cut(&c));
                    }/>
                <output>{move || lock.get().and_then(|x| x.1.pitch).map(|p| format!("{p:+}")).unwrap_or_else(|| "0".into())}</output>
            </label>
            <label class="field">"Volume"
                <input type="range" min="0" max="100" aria-label="Volume lock"
                    prop:value=move || lock.get().and_then(|x| x.1.volume).map(|v| (v * 100.0).round() as i64).unwrap_or(100).to_string()
                    on:change=move |e| {
                        let c = current();
                        let v = crate::text::number(&event_target_value(&e)).map(|v| v / 100.0).filter(|v| *v < 1.0);
                        s2(c.pitch.map(i64::from), v, c.tie, cut(&c));
                    }/>
                <output>{move || lock.get().and_then(|x| x.1.volume).map(|v| (v * 100.0).round() as i64).unwrap_or(100)}</output>
            </label>
            <label class="check">
                <input type="checkbox" aria-label="Tie to the previous step"
                    prop:checked=move || lock.get().map(|x| x.1.tie).unwrap_or(false)
                    on:change=move |_| {
                        let c = current();
                        s3(c.pitch.map(i64::from), c.volume.map(f64::from), !c.tie, cut(&c));
                    }/>
                " Tie to the previous step"
            </label>
            <label class="field">"Cutoff"
                <input type="range" min="0" max="1000" aria-label="Filter cutoff lock"
                    aria-valuetext=move || {
                        let c = lock.get().and_then(|x| x.1.cutoff);
                        c.map(|c| Fx::FilterCutoff.display(c)).unwrap_or_else(|| "the track's".into())
                    }
                    prop:value=move || {
                        let c = lock.get().and_then(|x| x.1.cutoff).unwrap_or_else(track_cutoff);
                        (to_unit(Fx::FilterCutoff, c) * 1000.0).round().to_string()
                    }
                    on:change=move |e| {
                        let c = current();
                        if let Some(u) = crate::text::number(&event_target_value(&e)) {
                            let hz = from_unit(Fx::FilterCutoff, u / 1000.0);
                            s5(c.pitch.map(i64::from), c.volume.map(f64::from), c.tie, Some(hz));
                        }
                    }/>
                <output>{move || match lock.get().and_then(|x| x.1.cutoff) {
                    Some(c) => Fx::FilterCutoff.display(c),
                    None => "track".into(),
                }}</output>
            </label>
            <Show when=move || !filter_on()>
                <p class="hint">"The track's filter is off: turn it on in the track's settings to hear cutoff locks."</p>
            </Show>
            <Show when=move || lock.get().is_some_and(|x| x.1.cutoff.is_some())>
                <button on:click={
                    let s6 = s6.clone();
                    move |_| {
                        let c = current();
                        s6(c.pitch.map(i64::from), c.volume.map(f64::from), c.tie, None)
                    }
                }>"Use the track's cutoff"</button>
            </Show>
            <div class="row">
                <button on:click=move |_| s4(None, None, false, None)>"Clear"</button>
                <button class="primary" on:click=move |_| ui.sheet.set(None)>"Done"</button>
            </div>
        </div>
    }
}
