//! Pages: the landing page (new session, published gallery) and the session page (the grid).
//!
//! The session page: a header (name, who is here, share/remix/publish), a transport bar (at the
//! bottom on a phone), the grid (one horizontal scroller with a fixed track column that follows
//! the playhead), and one *sheet* for everything secondary (track settings, the instrument
//! picker, the step editor, publish, shortcuts): a panel beside the grid on a desktop, a bottom
//! sheet on a phone. Nothing secondary floats over the header or the transport.

use std::collections::HashMap;
use std::time::Duration;

use keyboardia_audio::CATALOG;
use keyboardia_core::limits::{STEP_COUNTS, SWING_MAX, TEMPO_MAX, TEMPO_MIN};
use keyboardia_core::model::{SessionState, Track};
use keyboardia_core::protocol::{Edit, NewTrack};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

use crate::live::{self, Signals, Status};
use crate::{api, audio};

#[component]
pub fn App() -> impl IntoView {
    let _ = light_theme();
    let path = api::location_path();
    match path.strip_prefix("/s/") {
        Some(id) if !id.is_empty() => {
            view! { <SessionPage id=id.trim_end_matches('/').to_string()/> }.into_any()
        }
        _ => view! { <Landing/> }.into_any(),
    }
}

#[component]
fn Landing() -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    let gallery = RwSignal::new(Vec::<serde_json::Value>::new());
    spawn_local(async move {
        if let Ok(v) = api::get("/api/sessions?limit=12").await {
            gallery.set(v["sessions"].as_array().cloned().unwrap_or_default());
        }
    });
    let new_session = move |_| {
        spawn_local(async move {
            match api::post("/api/sessions").await {
                Ok(v) => api::navigate(v["url"].as_str().unwrap_or("/")),
                Err(e) => error.set(Some(e)),
            }
        })
    };
    view! {
        <main class="landing">
            <h1 class="brand">"Keyboardia"</h1>
            <p class="promise">"Make a beat together. Share the link."</p>
            <button class="big" on:click=new_session>"New session"</button>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <section class="gallery" aria-label="Published sessions">
                <h2>"Published"</h2>
                <ul>
                    <For each=move || gallery.get() key=|s| s["id"].to_string() let:s>
                        <li>
                            <a href=format!("/s/{}", s["id"].as_str().unwrap_or(""))>
                                <span class="name">{s["name"].as_str().unwrap_or("Untitled").to_string()}</span>
                                <span class="meta">{format!("{} BPM · {} tracks", s["tempo"], s["trackCount"])}</span>
                            </a>
                        </li>
                    </For>
                </ul>
            </section>
            <p class="landing-foot"><ThemeToggle/></p>
        </main>
    }
}

fn instrument_name(id: &str) -> String {
    CATALOG
        .iter()
        .find(|e| e.id == id)
        .map(|e| e.name.to_string())
        .unwrap_or_else(|| id.rsplit('/').next().unwrap_or(id).to_string())
}

/// What the sheet shows (one at a time).
#[derive(Clone, Debug, PartialEq)]
enum Sheet {
    /// A track's settings.
    Track(String),
    /// The instrument picker for a track.
    Instrument(String),
    /// The instrument picker that adds a track.
    AddTrack,
    /// The step editor (parameter locks) of one step.
    Lock(String, u8),
    /// "Publish this session?"
    Publish,
    /// Keyboard shortcuts and help.
    Help,
    /// What the header has no room for on a phone: exports, theme, shortcuts.
    More,
}

/// The session page's state, shared by its parts (all `Copy`).
#[derive(Clone, Copy)]
struct Ui {
    sig: Signals,
    /// This player's own mix: track id -> (muted, soloed).
    personal: RwSignal<HashMap<String, (bool, bool)>>,
    /// Server time, for the playhead.
    now: RwSignal<f64>,
    sheet: RwSignal<Option<Sheet>>,
    audio_on: RwSignal<bool>,
    audio_starting: RwSignal<bool>,
    /// "Step editor" mode: a click on a cell opens its editor instead of toggling it.
    lock_mode: RwSignal<bool>,
    share_open: RwSignal<bool>,
    session_id: StoredValue<String>,
    /// Each track's output level (0 to 1, by track index), for the track meters.
    levels: RwSignal<Vec<f64>>,
}

fn ui() -> Ui {
    expect_context::<Ui>()
}

/// Starts the sound (once; from a user gesture).
fn start_audio(ui: Ui) {
    if ui.audio_on.get_untracked() || ui.audio_starting.get_untracked() {
        return;
    }
    ui.audio_starting.set(true);
    spawn_local(async move {
        let r = audio::start().await;
        ui.audio_starting.set(false);
        match r {
            Ok(()) => ui.audio_on.set(true),
            Err(e) => ui
                .sig
                .message
                .set(Some(format!("Audio could not start: {}", api::js_err(e)))),
        }
    })
}

fn toggle_play(ui: Ui) {
    let playing = ui
        .sig
        .state
        .get_untracked()
        .map(|s| s.transport.playing)
        .unwrap_or(false);
    start_audio(ui);
    live::edit(if playing {
        Edit::Stop {}
    } else {
        Edit::Play { from_step: None }
    });
}

fn toggle_sheet(ui: Ui, s: Sheet) {
    ui.sheet.update(|cur| {
        *cur = if cur.as_ref() == Some(&s) {
            None
        } else {
            Some(s)
        }
    });
}

#[component]
fn SessionPage(id: String) -> impl IntoView {
    let sig = Signals {
        state: RwSignal::new(None),
        players: RwSignal::new(Vec::new()),
        me: RwSignal::new(None),
        status: RwSignal::new(Status::Connecting),
        pending: RwSignal::new(0),
        read_only: RwSignal::new(false),
        message: RwSignal::new(None),
        glows: RwSignal::new(Vec::new()),
        offset: RwSignal::new(None),
        sync: RwSignal::new(None),
        history: RwSignal::new((false, false)),
    };
    live::start(&id, sig);
    let ui = Ui {
        sig,
        personal: RwSignal::new(HashMap::new()),
        now: RwSignal::new(0.0),
        sheet: RwSignal::new(None),
        audio_on: RwSignal::from(audio::running()),
        audio_starting: RwSignal::new(false),
        lock_mode: RwSignal::new(false),
        share_open: RwSignal::new(false),
        session_id: StoredValue::new(id.clone()),
        levels: RwSignal::new(Vec::new()),
    };
    provide_context(ui);
    // The clock of the playhead (server time), refreshed about 30 times a second; the grid
    // follows the playhead (from the last tick's DOM), except while a step's editor is open:
    // the step being edited stays where it is.
    let now = ui.now;
    let tick = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || {
        let playing = sig
            .state
            .with_untracked(|s| s.as_ref().map(|s| s.transport.playing))
            .unwrap_or(false);
        let editing = ui
            .sheet
            .with_untracked(|s| matches!(s, Some(Sheet::Lock(..))));
        follow_playhead(playing && !editing);
        if let Some(o) = sig.offset.get_untracked() {
            now.set(live::perf_now() + o);
        }
    });
    if let Some(w) = web_sys::window() {
        let _ = w.set_interval_with_callback_and_timeout_and_arguments_0(
            tick.as_ref().unchecked_ref(),
            33,
        );
    }
    tick.forget();
    // Keep the engine in step with the session, the personal mix and the clock.
    // Bumped when a recording finishes loading, to send the pattern again.
    let loaded = RwSignal::new(0u32);
    Effect::new(move |_| {
        let s = sig.state.get();
        let p = ui.personal.get();
        let _ = loaded.get();
        if ui.audio_on.get() {
            if let Some(s) = s {
                audio::load_samples(&s, move || loaded.update(|n| *n += 1));
                audio::set_pattern(&s, &p);
            }
        }
    });
    // The transport follows the session, the clock estimate, and (four times a second) the
    // audio clock's drift against the system clock and any jump of the output.
    let retime = RwSignal::new(0u32);
    let retime_tick = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || {
        retime.update(|n| *n = n.wrapping_add(1));
    });
    if let Some(w) = web_sys::window() {
        let _ = w.set_interval_with_callback_and_timeout_and_arguments_0(
            retime_tick.as_ref().unchecked_ref(),
            250,
        );
    }
    retime_tick.forget();
    Effect::new(move |_| {
        let tr = sig.state.with(|s| s.as_ref().map(|s| s.transport));
        let o = sig.offset.get();
        let _ = retime.get();
        if ui.audio_on.get() {
            if let Some(tr) = tr {
                audio::set_transport(tr, o);
            }
        }
    });
    // Sound starts with the first gesture anywhere on the page (a tap, a click, a key): browsers
    // allow sound only after one, and a player should not have to find a button for it.
    let gesture_up = window_event_listener(leptos::ev::pointerup, move |_| start_audio(ui));
    let gesture_key = window_event_listener(leptos::ev::keydown, move |e| {
        if e.key() != "Escape" {
            start_audio(ui)
        }
    });
    let on_key = window_event_listener(leptos::ev::keydown, move |e| page_keys(ui, e));
    on_cleanup(move || {
        gesture_up.remove();
        gesture_key.remove();
        on_key.remove();
    });
    // What to show: a refusal (session full), the connection being made, or the session.
    let phase = Memo::new(move |_| {
        if sig.status.get() == Status::Refused {
            0
        } else if sig.state.with(|s| s.is_some()) {
            2
        } else {
            1
        }
    });
    move || match phase.get() {
        0 => view! { <Refused/> }.into_any(),
        1 => view! {
            <main class="connecting">
                <a class="brand" href="/">"Keyboardia"</a>
                <p>"Connecting to the session…"</p>
                <ConnectionStatus/>
            </main>
        }
        .into_any(),
        _ => view! { <SessionView/> }.into_any(),
    }
}

/// Keys for the whole page: Space plays and stops (unless typing or on a button), `?` opens the
/// shortcuts, Escape closes what is open.
fn page_keys(ui: Ui, e: web_sys::KeyboardEvent) {
    let tag = e
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .map(|el| el.tag_name())
        .unwrap_or_default();
    let typing = matches!(tag.as_str(), "INPUT" | "SELECT" | "TEXTAREA");
    if e.code() == "Space" && !typing && tag != "BUTTON" {
        e.prevent_default();
        toggle_play(ui);
    }
    if e.key() == "?" && !typing {
        e.prevent_default();
        toggle_sheet(ui, Sheet::Help);
    }
    // Ctrl/Cmd+Z undoes, with Shift (or Ctrl+Y) redoes: the player's own edits.
    let key = e.key().to_lowercase();
    let text_field = matches!(tag.as_str(), "INPUT" | "TEXTAREA");
    if (e.ctrl_key() || e.meta_key()) && !text_field && (key == "z" || key == "y") {
        e.prevent_default();
        live::undo(key == "y" || e.shift_key());
    }
    if e.key() == "Escape" {
        ui.share_open.set(false);
        ui.sheet.set(None);
    }
}

/// The 11th player, or a client too old: a plain page that says why, with nothing that looks
/// usable but the ways on.
#[component]
fn Refused() -> impl IntoView {
    let ui = ui();
    let text = move || {
        ui.sig
            .message
            .get()
            .unwrap_or_else(|| "The session refused the connection.".into())
    };
    view! {
        <main class="refused" data-testid="refused">
            <a class="brand" href="/">"Keyboardia"</a>
            <h1>"You can't join this session right now"</h1>
            <p role="alert">{text}</p>
            <div class="row">
                <button class="primary" on:click=move |_| {
                    if let Some(w) = web_sys::window() {
                        let _ = w.location().reload();
                    }
                }>"Try again"</button>
                <a class="button" href="/">"Start a new session"</a>
            </div>
        </main>
    }
}

/// Where a published copy came from, remembered by the browser that published it (the editable
/// session's link is a key to edit it: it is never shown to the copy's other visitors).
fn source_key(id: &str) -> String {
    format!("keyboardia-published-from:{id}")
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}

/// Remix and publish both create a session from this one and open it.
fn derive(ui: Ui, action: &'static str) {
    let id = ui.session_id.get_value();
    spawn_local(async move {
        match api::post(&format!("/api/sessions/{id}/{action}")).await {
            Ok(v) => {
                let url = v["url"].as_str().unwrap_or("/").to_string();
                if action == "publish" {
                    if let (Some(s), Some(new_id)) = (local_storage(), v["id"].as_str()) {
                        let _ = s.set_item(&source_key(new_id), &id);
                    }
                }
                api::navigate(&url)
            }
            Err(e) => ui.sig.message.set(Some(e)),
        }
    })
}

#[component]
fn SessionView() -> impl IntoView {
    let ui = ui();
    let sig = ui.sig;
    let ro = move || sig.read_only.get();
    view! {
        <div class="session" class:ro=ro>
            <Header/>
            <Show when=ro>
                <Banner/>
            </Show>
            <Transport/>
            {move || sig.message.get().map(|m| view! {
                <p class="message" role="status" on:click=move |_| sig.message.set(None)>{m}</p>
            })}
            <div class="workspace">
                <Grid/>
                <SheetView/>
            </div>
        </div>
    }
}

#[component]
fn Header() -> impl IntoView {
    let ui = ui();
    let sig = ui.sig;
    let id = ui.session_id.get_value();
    let page_url = web_sys::window()
        .and_then(|w| w.location().href().ok())
        .map(|u| u.split('?').next().unwrap_or("").to_string())
        .unwrap_or_default();
    let link = page_url.clone();
    let copy_link = move |_| {
        api::copy_to_clipboard(&link);
        sig.message.set(Some(
            "Link copied: send it to whoever you want to jam with".into(),
        ));
    };
    let name = move || {
        sig.state
            .with(|s| s.as_ref().map(|s| s.name.clone()).unwrap_or_default())
    };
    let export_href = format!("/api/sessions/{id}/export.wav");
    let midi_href = format!("/api/sessions/{id}/export.mid");
    let qr_src = format!("/api/sessions/{id}/qr.svg");
    view! {
        <header class="top">
            <a class="brand" href="/">"Keyboardia"</a>
            {move || if sig.read_only.get() {
                view! { <h1 class="session-name as-text">{name}</h1> }.into_any()
            } else {
                view! {
                    <input class="session-name" aria-label="Session name" prop:value=name
                        on:change=move |e| live::edit(Edit::SetSessionName { name: event_target_value(&e) })/>
                }.into_any()
            }}
            <Avatars/>
            <nav class="actions" aria-label="Session">
                <button aria-expanded=move || ui.share_open.get().to_string()
                    on:click=move |_| ui.share_open.update(|o| *o = !*o)>"Share"</button>
                <button class="remix" on:click=move |_| derive(ui, "remix")>"Remix"</button>
                <Show when=move || !sig.read_only.get()>
                    <button class="publish" aria-haspopup="dialog"
                        on:click=move |_| toggle_sheet(ui, Sheet::Publish)>"Publish…"</button>
                </Show>
                // On a phone these four live in the "More" sheet.
                <span class="wide-only">
                    <a class="button" href=export_href download="">"WAV"</a>
                    <a class="button" href=midi_href download="">"MIDI"</a>
                    <ThemeToggle/>
                    <button class="help" aria-label="Keyboard shortcuts and help" title="Shortcuts (?)"
                        aria-haspopup="dialog" on:click=move |_| toggle_sheet(ui, Sheet::Help)>"?"</button>
                </span>
                <button class="overflow" aria-label="More: export, theme, shortcuts" aria-haspopup="dialog"
                    on:click=move |_| toggle_sheet(ui, Sheet::More)>"⋯"</button>
            </nav>
        </header>
        <Show when=move || ui.share_open.get()>
            <div class="share" role="dialog" aria-label="Share this session">
                <img src=qr_src.clone() width="200" height="200" alt="QR code of this session's link"/>
                <div class="share-link">
                    <input readonly aria-label="Session link" prop:value=page_url.clone()/>
                    <button on:click=copy_link.clone()>"Copy link"</button>
                </div>
                <p class="dim">"Anyone with the link joins instantly. Esc closes this."</p>
            </div>
        </Show>
    }
}

/// Whether the light theme is on (dark by default), for every theme toggle on the page.
#[derive(Clone, Copy)]
struct LightTheme(RwSignal<bool>);

fn light_theme() -> LightTheme {
    use_context::<LightTheme>().unwrap_or_else(|| {
        let on = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
            .and_then(|r| r.get_attribute("data-theme"))
            .as_deref()
            == Some("light");
        let t = LightTheme(RwSignal::new(on));
        provide_context(t);
        t
    })
}

/// The light or dark theme (dark by default), kept in this browser.
#[component]
fn ThemeToggle() -> impl IntoView {
    let light = light_theme().0;
    let toggle = move |_| {
        let l = !light.get_untracked();
        light.set(l);
        let theme = if l { "light" } else { "dark" };
        if let Some(r) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
        {
            let _ = r.set_attribute("data-theme", theme);
        }
        if let Some(s) = local_storage() {
            let _ = s.set_item("keyboardia-theme", theme);
        }
    };
    view! {
        <button class="theme" aria-pressed=move || light.get().to_string() on:click=toggle
            title="Switch between the dark and the light theme">
            {move || if light.get() { "Dark theme" } else { "Light theme" }}
        </button>
    }
}

/// The published session's banner: read-only, a Remix button, and for the player who published
/// it, the way back to their editable session.
#[component]
fn Banner() -> impl IntoView {
    let ui = ui();
    let back = local_storage().and_then(|s| {
        s.get_item(&source_key(&ui.session_id.get_value()))
            .ok()
            .flatten()
    });
    view! {
        <div class="banner" role="status">
            <span>"Published copy: read-only. Remix it to make your own editable copy."</span>
            <button class="primary" on:click=move |_| derive(ui, "remix")>"Remix it"</button>
            {back.map(|src| view! {
                <a class="button" data-testid="back-to-source" href=format!("/s/{src}")>"← Back to your editable session"</a>
            })}
        </div>
    }
}

#[component]
fn Transport() -> impl IntoView {
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
                                if let Ok(v) = event_target_value(&e).trim().parse::<f64>() {
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
enum Rec {
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
const COUNT_IN_BEATS: f64 = 4.0;

/// Sound on/off: one slot of fixed size (nothing moves when sound starts). Off, it says so
/// plainly, louder while the session is playing unheard; any gesture anywhere turns it on.
#[component]
fn SoundButton() -> impl IntoView {
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

/// A button that repeats while held (after a short delay), like a keyboard key.
#[component]
fn RepeatButton(
    class: &'static str,
    label: &'static str,
    text: &'static str,
    on_step: Callback<()>,
) -> impl IntoView {
    let timer = StoredValue::new(None::<TimeoutHandle>);
    let repeat = StoredValue::new(None::<IntervalHandle>);
    let stop = move || {
        if let Some(t) = timer.get_value() {
            t.clear();
        }
        if let Some(r) = repeat.get_value() {
            r.clear();
        }
        timer.set_value(None);
        repeat.set_value(None);
    };
    let down = move |e: leptos::ev::PointerEvent| {
        if e.button() != 0 {
            return;
        }
        stop();
        on_step.run(());
        let h = set_timeout_with_handle(
            move || {
                let r =
                    set_interval_with_handle(move || on_step.run(()), Duration::from_millis(70));
                repeat.set_value(r.ok());
            },
            Duration::from_millis(400),
        );
        timer.set_value(h.ok());
    };
    on_cleanup(stop);
    view! {
        <button class=class aria-label=label
            on:pointerdown=down
            on:pointerup=move |_| stop()
            on:pointerleave=move |_| stop()
            on:pointercancel=move |_| stop()
            // A long hold on a touch screen is a repeat, not a context menu.
            on:contextmenu=move |e: leptos::ev::MouseEvent| e.prevent_default()
            // Keyboard activation (a click with no pointer behind it).
            on:click=move |e: leptos::ev::MouseEvent| if e.detail() == 0 { on_step.run(()) }>
            {text}
        </button>
    }
}

/// Arrow keys move focus through the grid: left and right along a track, up and down across
/// tracks (to the same step, or the last one a shorter track has).
fn grid_keys(e: leptos::ev::KeyboardEvent) {
    let (dx, dy) = match e.key().as_str() {
        "ArrowLeft" => (-1i64, 0i64),
        "ArrowRight" => (1, 0),
        "ArrowUp" => (0, -1),
        "ArrowDown" => (0, 1),
        _ => return,
    };
    let Some(cell) = e
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
    else {
        return;
    };
    if !cell.class_list().contains("cell") {
        return;
    }
    let step: i64 = cell
        .get_attribute("data-step")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let Ok(Some(row)) = cell.closest(".track") else {
        return;
    };
    let target_row = match dy {
        -1 => row.previous_element_sibling(),
        1 => row.next_element_sibling(),
        _ => Some(row),
    };
    let Some(target_row) = target_row.filter(|r| r.class_list().contains("track")) else {
        return;
    };
    let cells = target_row.query_selector_all(".cell").ok();
    let n = cells.as_ref().map(|c| c.length() as i64).unwrap_or(0);
    if n == 0 {
        return;
    }
    let next = (step + dx).clamp(0, n - 1);
    if let Some(el) = cells
        .and_then(|c| c.item(next as u32))
        .and_then(|n| n.dyn_into::<web_sys::HtmlElement>().ok())
    {
        e.prevent_default();
        let _ = el.focus();
    }
}

fn playing(sig: Signals) -> bool {
    sig.state
        .with(|s| s.as_ref().map(|s| s.transport.playing))
        .unwrap_or(false)
}

fn nudge_tempo(sig: Signals, d: i64) {
    if let Some(t) = sig.state.with_untracked(|s| s.as_ref().map(|s| s.tempo)) {
        let t = (t as i64 + d).clamp(TEMPO_MIN as i64, TEMPO_MAX as i64);
        live::edit(Edit::SetTempo { tempo: t });
    }
}

#[component]
fn Avatars() -> impl IntoView {
    let sig = ui().sig;
    view! {
        <ul class="avatars" aria-label="Who is here">
            {move || {
                let me = sig.me.get().map(|m| m.id);
                let mut players = sig.players.get();
                // This player first, marked.
                players.sort_by_key(|p| Some(&p.id) != me.as_ref());
                let more = players.len().saturating_sub(5);
                let shown: Vec<_> = players
                    .into_iter()
                    .take(5)
                    .map(|p| {
                        let initials: String =
                            p.name.split_whitespace().filter_map(|w| w.chars().next()).collect();
                        let mine = Some(&p.id) == me.as_ref();
                        let label = if mine { format!("{} (you)", p.name) } else { p.name.clone() };
                        view! {
                            <li class="avatar" class:me=mine style=format!("--player:{};color:{}", p.color, ink_on(&p.color))
                                title=label.clone() aria-label=label>{initials}</li>
                        }
                    })
                    .collect();
                view! {
                    {shown}
                    {(more > 0).then(|| view! { <li class="avatar more" aria-label=format!("{more} more")>{format!("+{more}")}</li> })}
                }
            }}
        </ul>
    }
}

/// Dark or light text, whichever reads better on a `#rrggbb` background.
fn ink_on(bg: &str) -> &'static str {
    let hex = bg.trim_start_matches('#');
    let c = |i: usize| {
        let v =
            u8::from_str_radix(hex.get(i..i + 2).unwrap_or("80"), 16).unwrap_or(128) as f64 / 255.0;
        if v <= 0.03928 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * c(0) + 0.7152 * c(2) + 0.0722 * c(4);
    // Contrast with #111 (luminance ~0.0056) against contrast with white.
    if (l + 0.05) / 0.0556 >= 1.05 / (l + 0.05) {
        "#111"
    } else {
        "#fff"
    }
}

/// How well this player's clock is synced: the round trip to the session and how far the
/// clock estimate may be off, so a player on a poor link knows why they may be late.
#[component]
fn SyncIndicator() -> impl IntoView {
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
fn ConnectionStatus() -> impl IntoView {
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

/// The session's recordings as (instrument id, name), for the instrument picker.
fn recordings_of(sig: Signals) -> Vec<(String, String)> {
    sig.state
        .get_untracked()
        .map(|s| {
            s.samples
                .iter()
                .map(|x| (x.instrument(), x.name.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The current step of a track at server time `now` (None when stopped): the global step,
/// wrapped into the loop region if there is one (the engine's rule), modulo the track's length.
fn current_step(s: &SessionState, t: &Track, now: f64) -> Option<usize> {
    let tr = s.transport;
    if !tr.playing || now < tr.anchor_time - 1.0 {
        return None;
    }
    let pos = tr.position_at(now).floor() as i64;
    let pos = s.loop_region.map_or(pos, |r| r.wrap(pos));
    Some(pos.rem_euclid(t.step_count.max(1) as i64) as usize)
}

thread_local! {
    /// Following the playhead: until when the player's own scrolling pauses it (performance
    /// ms), and where we last scrolled the grid to.
    static FOLLOW: std::cell::Cell<(f64, i32)> = const { std::cell::Cell::new((0.0, -1)) };
}

/// How long a player's own scrolling (or touching the grid) pauses following the playhead.
const FOLLOW_PAUSE_MS: f64 = 3000.0;

fn pause_following() {
    FOLLOW.with(|f| {
        let (_, at) = f.get();
        f.set((live::perf_now() + FOLLOW_PAUSE_MS, at));
    });
}

/// Keeps the furthest playhead in view: when it reaches the last visible column the grid pages
/// to it (and back to the start when the longest track wraps). Not while the player scrolls.
fn follow_playhead(playing: bool) {
    if !playing {
        return;
    }
    let (until, _) = FOLLOW.with(|f| f.get());
    if live::perf_now() < until {
        return;
    }
    let Some(grid) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector(".grid").ok().flatten())
        .and_then(|g| g.dyn_into::<web_sys::HtmlElement>().ok())
    else {
        return;
    };
    if grid.scroll_width() <= grid.client_width() {
        return;
    }
    let Ok(now_cells) = grid.query_selector_all(".cell.now") else {
        return;
    };
    let g = grid.get_bounding_client_rect();
    let scroll = grid.scroll_left() as f64;
    let mut furthest: Option<(f64, f64)> = None;
    for i in 0..now_cells.length() {
        if let Some(el) = now_cells
            .item(i)
            .and_then(|n| n.dyn_into::<web_sys::Element>().ok())
        {
            let r = el.get_bounding_client_rect();
            let left = r.left() - g.left() + scroll;
            if furthest.is_none_or(|(l, _)| left > l) {
                furthest = Some((left, left + r.width()));
            }
        }
    }
    let Some((left, right)) = furthest else {
        return;
    };
    let head = grid
        .query_selector(".track-head")
        .ok()
        .flatten()
        .map(|h| h.get_bounding_client_rect().width())
        .unwrap_or(0.0);
    let visible = (scroll + head, scroll + grid.client_width() as f64);
    // Page when the playhead is in the last visible column, so the next step is in view too.
    let next_right = right + (right - left) + 6.0;
    if left < visible.0 - 1.0 || next_right > visible.1 + 1.0 {
        let target = (left - head - 8.0).max(0.0);
        grid.set_scroll_left(target as i32);
        let at = grid.scroll_left();
        FOLLOW.with(|f| f.set((0.0, at)));
    }
}

#[component]
fn Grid() -> impl IntoView {
    let ui = ui();
    let sig = ui.sig;
    let track_ids = move || {
        sig.state.with(|s| {
            s.as_ref()
                .map(|s| s.tracks.iter().map(|t| t.id.clone()).collect::<Vec<_>>())
                .unwrap_or_default()
        })
    };
    // A scroll we did not make is the player's: following pauses.
    let on_scroll = move |e: leptos::ev::Event| {
        if let Some(g) = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        {
            let (_, at) = FOLLOW.with(|f| f.get());
            if (g.scroll_left() - at).abs() > 2 {
                pause_following();
            }
        }
    };
    view! {
        <div class="grid" role="group" aria-label="Pattern" class:lock-mode=move || ui.lock_mode.get()
            // Read-only, its cells cannot take focus: the scroller itself can (keyboard scrolling).
            tabindex=move || sig.read_only.get().then_some("0")
            on:keydown=grid_keys on:scroll=on_scroll
            on:wheel=move |_| pause_following() on:touchstart=move |_| pause_following()>
            <div class="rows">
                <For each=track_ids key=|id| id.clone() let:track_id>
                    <TrackRow track_id=track_id/>
                </For>
            </div>
            <Show when=move || !sig.read_only.get()>
                <div class="add-track">
                    <button class="add" aria-haspopup="dialog"
                        aria-expanded=move || (ui.sheet.get() == Some(Sheet::AddTrack)).to_string()
                        on:click=move |_| toggle_sheet(ui, Sheet::AddTrack)>"+ Add track"</button>
                </div>
            </Show>
        </div>
    }
}

fn add_track(sig: Signals, instrument: String) {
    if sig.state.with_untracked(|s| s.is_none()) {
        return;
    }
    let id = format!("t{:x}", (js_sys::Math::random() * 1e9) as u64);
    live::edit(Edit::AddTrack {
        track: NewTrack {
            id,
            name: instrument_name(&instrument),
            instrument,
            step_count: None,
        },
    });
}

/// The instrument picker: buttons grouped by category (arrow keys move between them).
#[component]
fn Picker(current: Option<String>, on_pick: Callback<String>) -> impl IntoView {
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
fn TrackRow(track_id: String) -> impl IntoView {
    let ui = ui();
    let sig = ui.sig;
    let personal = ui.personal;
    let now = ui.now;
    let id = track_id.clone();
    let track = Memo::new(move |_| {
        sig.state
            .with(|s| s.as_ref().and_then(|s| s.track(&id).cloned()))
    });
    let id = track_id.clone();
    let index = Memo::new(move |_| {
        sig.state
            .with(|s| {
                s.as_ref()
                    .and_then(|s| s.tracks.iter().position(|t| t.id == id))
            })
            .unwrap_or(0)
    });
    let color = move || TRACK_COLORS[index.get() % TRACK_COLORS.len()];
    let id = track_id.clone();
    let mine = Memo::new(move |_| personal.get().get(&id).copied().unwrap_or((false, false)));
    let id = track_id.clone();
    let toggle_personal = move |which: usize| {
        let id = id.clone();
        personal.update(move |m| {
            let e = m.entry(id).or_insert((false, false));
            if which == 0 {
                e.0 = !e.0
            } else {
                e.1 = !e.1
            }
        });
    };
    let tp = toggle_personal.clone();
    let id = track_id.clone();
    let playhead = Memo::new(move |_| {
        let n = now.get();
        sig.state.with(|s| {
            s.as_ref()
                .and_then(|s| s.track(&id).and_then(|t| current_step(s, t, n)))
        })
    });
    // A long press (touch or pen) opens the step editor; the click that may follow is eaten.
    let press = StoredValue::new(None::<TimeoutHandle>);
    let eat_click = StoredValue::new(false);
    let cancel_press = move || {
        if let Some(h) = press.get_value() {
            h.clear();
        }
        press.set_value(None);
    };
    let tid = track_id.clone();
    let cells = move || {
        let Some(t) = track.get() else {
            return Vec::new();
        };
        let tid = tid.clone();
        (0..t.step_count as usize).map(move |k| {
            let on = t.steps.get(k);
            let lock = t.locks.get(&(k as u8)).copied();
            let tid3 = tid.clone();
            let pitch = lock.and_then(|l| l.pitch).map(|p| if p > 0 { format!("+{p}") } else { p.to_string() });
            // The accessible name starts with what the cell shows (its pitch lock, if any).
            let label = format!(
                "{}{} step {}, {}",
                pitch.as_ref().map(|p| format!("{p}: ")).unwrap_or_default(),
                t.name,
                k + 1,
                if on { "on" } else { "off" }
            );
            let glow = move || {
                let n = crate::live::perf_now();
                sig.glows.get().iter().rev().find(|g| g.track == tid3 && g.step as usize == k && g.until > n)
                    .map(|g| format!("--glow:{}", g.color))
            };
            let open = {
                let tid = tid.clone();
                move || ui.sheet.set(Some(Sheet::Lock(tid.clone(), k as u8)))
            };
            let (o1, o2, o3, o4) = (open.clone(), open.clone(), open.clone(), open);
            let tid_click = tid.clone();
            view! {
                <button class="cell" class:on=on class:beat=k % 4 == 0 class:now=move || playhead.get() == Some(k)
                    class:locked=lock.is_some() aria-pressed=on.to_string() aria-label=label
                    style=move || format!("--track:{};{}", color(), glow().unwrap_or_default())
                    data-step=k.to_string()
                    prop:disabled=move || sig.read_only.get()
                    on:pointerdown=move |e: leptos::ev::PointerEvent| {
                        eat_click.set_value(false);
                        cancel_press();
                        if e.pointer_type() != "mouse" {
                            let o = o1.clone();
                            let h = set_timeout_with_handle(move || {
                                eat_click.set_value(true);
                                o();
                            }, Duration::from_millis(450));
                            press.set_value(h.ok());
                        }
                    }
                    on:pointerup=move |_| cancel_press()
                    on:pointerleave=move |_| cancel_press()
                    on:pointercancel=move |_| cancel_press()
                    on:click=move |e: leptos::ev::MouseEvent| {
                        if eat_click.get_value() {
                            eat_click.set_value(false);
                            return;
                        }
                        if e.shift_key() || ui.lock_mode.get_untracked() {
                            o2();
                        } else {
                            live::edit(Edit::SetStep { track_id: tid_click.clone(), step: k as i64, active: !on })
                        }
                    }
                    on:keydown=move |e: leptos::ev::KeyboardEvent| {
                        if e.key() == "Enter" && e.shift_key() {
                            e.prevent_default();
                            o3();
                        }
                    }
                    on:contextmenu=move |e: leptos::ev::MouseEvent| {
                        // A long press on a phone may arrive as a context menu.
                        e.prevent_default();
                        if !sig.read_only.get_untracked() {
                            o4();
                        }
                    }>
                    {pitch}
                </button>
            }
        }).collect::<Vec<_>>()
    };
    let name = move || track.with(|t| t.as_ref().map(|t| t.name.clone()).unwrap_or_default());
    let inst = move || {
        track.with(|t| {
            t.as_ref()
                .map(|t| instrument_name(&t.instrument))
                .unwrap_or_default()
        })
    };
    let initial = move || {
        name()
            .chars()
            .next()
            .map(|c| c.to_uppercase().to_string())
            .unwrap_or_default()
    };
    let level_pct = move || {
        let i = index.get();
        (ui.levels.with(|l| l.get(i).copied().unwrap_or(0.0)) * 100.0).round() as i64
    };
    let id_more = track_id.clone();
    let id_inst = track_id.clone();
    let selected = {
        let id = track_id.clone();
        move || match ui.sheet.get() {
            Some(Sheet::Track(t)) | Some(Sheet::Instrument(t)) | Some(Sheet::Lock(t, _)) => t == id,
            _ => false,
        }
    };
    let settings_open = {
        let id = track_id.clone();
        move || (ui.sheet.get() == Some(Sheet::Track(id.clone()))).to_string()
    };
    // The row's picker is rebuilt only when the instrument or the recordings change (not on
    // every step edit: an open picker stays open).
    let picker_input =
        Memo::new(move |_| track.get().map(|t| (t.instrument, recordings_of(ui.sig))));
    view! {
        <div class="track" role="group" aria-label=name data-track=track_id.clone() class:selected=selected>
            <div class="track-head">
                <span class="chip" aria-hidden="true" style=move || format!("background:{}", color())>{initial}</span>
                <span class="track-meter" role="meter" aria-valuemin="0" aria-valuemax="100"
                    aria-label=move || format!("{} level", name()) aria-valuenow=move || level_pct().to_string()>
                    <span class="fill" style=move || format!("height:{}%;background:{}", level_pct(), color())></span>
                </span>
                <span class="track-name">{name}</span>
                {move || if sig.read_only.get() {
                    view! { <span class="inst as-text">{inst}</span> }.into_any()
                } else {
                    let id = id_inst.clone();
                    let id2 = id_more.clone();
                    let tp = tp.clone();
                    let toggle_personal = toggle_personal.clone();
                    let settings_open = settings_open.clone();
                    view! {
                        {move || picker_input.get().map(|(instrument, recordings)| {
                            let id = id.clone();
                            view! { <crate::picker::Picker value=instrument recordings=recordings track=index
                                on_choose=Callback::new(move |instrument| live::edit(Edit::SetTrackInstrument { track_id: id.clone(), instrument }))/> }
                        })}
                        <button class="toggle" aria-label="Mute (only for you)" aria-pressed=move || mine.get().0.to_string()
                            class:active=move || mine.get().0 on:click=move |_| toggle_personal(0)>"M"</button>
                        <button class="toggle" aria-label="Solo (only for you)" aria-pressed=move || mine.get().1.to_string()
                            class:active=move || mine.get().1 on:click=move |_| tp(1)>"S"</button>
                        <button class="more" aria-haspopup="dialog" aria-expanded=settings_open
                            aria-label=move || format!("Track settings: {}", name())
                            on:click=move |_| toggle_sheet(ui, Sheet::Track(id2.clone()))>"⋯"</button>
                    }.into_any()
                }}
            </div>
            <div class="cells">{cells}</div>
        </div>
    }
}

/// The sheet: beside the grid on a desktop, a bottom sheet on a phone. Focus moves into it when
/// it opens and back to what opened it when it closes.
#[component]
fn SheetView() -> impl IntoView {
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
            request_animation_frame(|| {
                let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
                    return;
                };
                let inside = doc
                    .active_element()
                    .and_then(|a| a.closest(".sheet").ok().flatten())
                    .is_some();
                if inside {
                    return;
                }
                for sel in [
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
            });
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
            let (class, body) = match s {
                Sheet::Track(id) => ("track-sheet", view! { <TrackSettings id=id/> }.into_any()),
                Sheet::Instrument(id) => {
                    ("picker-sheet", view! { <InstrumentSheet id=id/> }.into_any())
                }
                Sheet::AddTrack => ("picker-sheet", view! { <AddTrackSheet/> }.into_any()),
                Sheet::Lock(id, k) => ("lock-sheet", view! { <LockEditor id=id step=k/> }.into_any()),
                Sheet::Publish => ("publish-sheet", view! { <PublishSheet/> }.into_any()),
                Sheet::Help => ("help-sheet", view! { <HelpSheet/> }.into_any()),
                Sheet::More => ("more-sheet", view! { <MoreSheet/> }.into_any()),
            };
            view! {
                <div class="scrim" on:pointerdown=move |_| down_on_scrim.set_value(true) on:click=close></div>
                <aside class=format!("sheet {class}") role="dialog" aria-labelledby="sheet-title">
                    {body}
                </aside>
            }
        })
    }
}

#[component]
fn SheetHead(#[prop(into)] title: Signal<String>) -> impl IntoView {
    let ui = ui();
    view! {
        <header class="sheet-head">
            <h2 id="sheet-title">{move || title.get()}</h2>
            <button class="close" aria-label="Close" title="Close (Esc)" on:click=move |_| ui.sheet.set(None)>"✕"</button>
        </header>
    }
}

/// A track's memo for a sheet; the sheet closes if the track goes away.
fn sheet_track(ui: Ui, id: String) -> Memo<Option<Track>> {
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
fn TrackSettings(id: String) -> impl IntoView {
    let ui = ui();
    let track = sheet_track(ui, id.clone());
    let name = move || track.with(|t| t.as_ref().map(|t| t.name.clone()).unwrap_or_default());
    let confirm = RwSignal::new(false);
    let (id_inst, id_count, id_name, id_del) = (id.clone(), id.clone(), id.clone(), id.clone());
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
fn InstrumentSheet(id: String) -> impl IntoView {
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
fn AddTrackSheet() -> impl IntoView {
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

#[component]
fn PublishSheet() -> impl IntoView {
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
fn MoreSheet() -> impl IntoView {
    let ui = ui();
    let id = ui.session_id.get_value();
    view! {
        <SheetHead title="More".to_string()/>
        <div class="sheet-body">
            <a class="button" href=format!("/api/sessions/{id}/export.wav") download="">"Download WAV"</a>
            <a class="button" href=format!("/api/sessions/{id}/export.mid") download="">"Download MIDI"</a>
            <ThemeToggle/>
            <button on:click=move |_| ui.sheet.set(Some(Sheet::Help))>"Shortcuts"</button>
        </div>
    }
}

#[component]
fn HelpSheet() -> impl IntoView {
    let keys: &[(&str, &str)] = &[
        ("Space", "Play or stop"),
        ("Ctrl/⌘ + Z", "Undo your last change (never someone else's)"),
        ("Ctrl/⌘ + Shift + Z", "Redo (also Ctrl + Y)"),
        ("← → ↑ ↓", "Move between steps"),
        ("Enter", "Turn the focused step on or off"),
        ("Shift + Enter", "Open the step editor of the focused step"),
        ("Shift + click", "Open the step editor (pitch, volume, tie)"),
        ("Long press", "Open the step editor on a touch screen"),
        (
            "✎ Step editor",
            "While on, a click or tap opens a step's editor",
        ),
        ("Hold − or +", "Change the tempo quickly"),
        ("Tap", "Tap four times in time to set the tempo"),
        (
            "Esc",
            "Close this panel, the step editor or the share panel",
        ),
        ("?", "Show or hide these shortcuts"),
    ];
    view! {
        <SheetHead title="Shortcuts".to_string()/>
        <div class="sheet-body">
            <dl class="shortcuts">
                {keys.iter().map(|(k, what)| view! { <dt><kbd>{*k}</kbd></dt><dd>{*what}</dd> }).collect_view()}
            </dl>
            <p class="dim">"Mute (M) and solo (S) change only what you hear. Everything else is shared with everyone in the session."</p>
        </div>
    }
}

/// A labelled range input showing its value; `on_set` gets the new value when it is released.
#[component]
fn Slider(
    label: &'static str,
    min: i64,
    max: i64,
    value: Signal<i64>,
    on_set: Callback<i64>,
) -> impl IntoView {
    view! {
        <label class="slider field">{label}
            <input type="range" min=min.to_string() max=max.to_string() aria-label=label
                prop:value=move || value.get().to_string()
                on:change=move |e| {
                    if let Ok(v) = event_target_value(&e).parse::<i64>() {
                        on_set.run(v)
                    }
                }/>
            <output>{move || value.get()}</output>
        </label>
    }
}

/// The parameter-lock editor for one step: pitch, volume and tie.
#[component]
fn LockEditor(id: String, step: u8) -> impl IntoView {
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
    let send = move |pitch: Option<i64>, volume: Option<f64>, tie: bool| {
        // The step's chord (set in the piano roll) stays as it is.
        let chord = lock
            .get_untracked()
            .map(|x| x.1.chord.iter().map(i64::from).collect())
            .unwrap_or_default();
        let l = keyboardia_core::protocol::LockRequest {
            pitch,
            volume,
            tie,
            chord,
        };
        let empty = l.pitch.is_none() && l.volume.is_none() && !l.tie && l.chord.is_empty();
        live::edit(Edit::SetParameterLock {
            track_id: id.clone(),
            step: step as i64,
            lock: (!empty).then_some(l),
        });
    };
    let current = move || lock.get_untracked().map(|x| x.1).unwrap_or_default();
    let (s1, s2, s3, s4) = (send.clone(), send.clone(), send.clone(), send);
    view! {
        <SheetHead title=Signal::derive(move || lock.get().map(|(n, _)| format!("{n}, step {}", step + 1)).unwrap_or_default())/>
        <div class="sheet-body lock-editor">
            <label class="field">"Pitch"
                <input type="range" min="-24" max="24" aria-label="Pitch lock in semitones"
                    prop:value=move || lock.get().and_then(|x| x.1.pitch).unwrap_or(0).to_string()
                    on:change=move |e| {
                        let c = current();
                        let p = event_target_value(&e).parse::<i64>().ok().filter(|p| *p != 0);
                        s1(p, c.volume.map(f64::from), c.tie);
                    }/>
                <output>{move || lock.get().and_then(|x| x.1.pitch).map(|p| format!("{p:+}")).unwrap_or_else(|| "0".into())}</output>
            </label>
            <label class="field">"Volume"
                <input type="range" min="0" max="100" aria-label="Volume lock"
                    prop:value=move || lock.get().and_then(|x| x.1.volume).map(|v| (v * 100.0).round() as i64).unwrap_or(100).to_string()
                    on:change=move |e| {
                        let c = current();
                        let v = event_target_value(&e).parse::<f64>().ok().map(|v| v / 100.0).filter(|v| *v < 1.0);
                        s2(c.pitch.map(i64::from), v, c.tie);
                    }/>
                <output>{move || lock.get().and_then(|x| x.1.volume).map(|v| (v * 100.0).round() as i64).unwrap_or(100)}</output>
            </label>
            <label class="check">
                <input type="checkbox" aria-label="Tie to the previous step"
                    prop:checked=move || lock.get().map(|x| x.1.tie).unwrap_or(false)
                    on:change=move |_| {
                        let c = current();
                        s3(c.pitch.map(i64::from), c.volume.map(f64::from), !c.tie);
                    }/>
                " Tie to the previous step"
            </label>
            <div class="row">
                <button on:click=move |_| s4(None, None, false)>"Clear"</button>
                <button class="primary" on:click=move |_| ui.sheet.set(None)>"Done"</button>
            </div>
        </div>
    }
}

/// Track colours: distinct for colour-blind players too, always paired with the track's initial
/// and name.
const TRACK_COLORS: &[&str] = &[
    "#f4a261", "#2ec4b6", "#e76f51", "#8ecae6", "#ffb703", "#e58ad8", "#90be6d", "#8fa2ff",
];
