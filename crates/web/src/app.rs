//! Pages: the landing page (new session, published gallery) and the session page (the grid).

use std::collections::HashMap;

use keyboardia_audio::instrument::Group;
use keyboardia_audio::CATALOG;
use keyboardia_core::limits::{STEP_COUNTS, TEMPO_MAX, TEMPO_MIN};
use keyboardia_core::model::{SessionState, Track};
use keyboardia_core::protocol::{Edit, NewTrack};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::live::{self, Signals, Status};
use crate::{api, audio};

#[component]
pub fn App() -> impl IntoView {
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
    let personal = RwSignal::new(HashMap::<String, (bool, bool)>::new());
    let share_open = RwSignal::new(false);
    let lock_target = RwSignal::new(None::<(String, u8)>);
    let audio_on = RwSignal::from(audio::running());
    // The clock of the playhead: server time, refreshed every animation-ish tick.
    let now = RwSignal::new(0.0f64);
    let tick = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || {
        if let Some(o) = sig.offset.get_untracked() {
            now.set(live::perf_now() + o);
        }
    });
    if let Some(w) = web_sys::window() {
        use wasm_bindgen::JsCast;
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
        let p = personal.get();
        let _ = loaded.get();
        if audio_on.get() {
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
        use wasm_bindgen::JsCast;
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
        if audio_on.get() {
            if let Some(tr) = tr {
                audio::set_transport(tr, o);
            }
        }
    });
    let start_audio = move || {
        spawn_local(async move {
            match audio::start().await {
                Ok(()) => audio_on.set(true),
                Err(e) => sig
                    .message
                    .set(Some(format!("Audio could not start: {}", api::js_err(e)))),
            }
        })
    };
    let recording = RwSignal::new(false);
    let takes = RwSignal::new(0usize);
    let rec_session = id.clone();
    let toggle_record = move |_| {
        let sid = rec_session.clone();
        spawn_local(async move {
            if !recording.get_untracked() {
                if let Err(e) = audio::start().await {
                    sig.message
                        .set(Some(format!("Audio could not start: {}", api::js_err(e))));
                    return;
                }
                audio_on.set(true);
                match crate::record::start().await {
                    Ok(()) => recording.set(true),
                    Err(e) => sig.message.set(Some(format!(
                        "The microphone is not available: {}",
                        api::js_err(e)
                    ))),
                }
            } else {
                recording.set(false);
                takes.update(|n| *n += 1);
                match crate::record::stop_and_upload(&sid, takes.get_untracked()).await {
                    Ok(name) => sig
                        .message
                        .set(Some(format!("{name} is a track now: everyone hears it"))),
                    Err(e) => sig
                        .message
                        .set(Some(format!("The recording failed: {}", api::js_err(e)))),
                }
            }
        })
    };
    let toggle_play = move || {
        let playing = sig
            .state
            .get_untracked()
            .map(|s| s.transport.playing)
            .unwrap_or(false);
        if !audio::is_running() {
            start_audio();
        }
        live::edit(if playing {
            Edit::Stop {}
        } else {
            Edit::Play { from_step: None }
        });
    };
    // Space plays and stops (unless typing in a field).
    let on_key = window_event_listener(leptos::ev::keydown, move |e| {
        let tag = e
            .target()
            .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
            .map(|el| el.tag_name())
            .unwrap_or_default();
        if e.code() == "Space"
            && !matches!(tag.as_str(), "INPUT" | "SELECT" | "TEXTAREA" | "BUTTON")
        {
            e.prevent_default();
            toggle_play();
        }
        // Ctrl/Cmd+Z undoes, with Shift (or Ctrl+Y) redoes: the player's own edits.
        let typing = matches!(tag.as_str(), "INPUT" | "TEXTAREA");
        let key = e.key().to_lowercase();
        if (e.ctrl_key() || e.meta_key()) && !typing && (key == "z" || key == "y") {
            e.prevent_default();
            live::undo(key == "y" || e.shift_key());
        }
        if e.key() == "Escape" {
            share_open.set(false);
            lock_target.set(None);
            close_open_menus();
        }
    });
    on_cleanup(move || on_key.remove());
    let session_id = id.clone();
    let page_url = web_sys::window()
        .and_then(|w| w.location().href().ok())
        .unwrap_or_default();
    let link = page_url.clone();
    let copy_link = move |_| {
        api::copy_to_clipboard(&link);
        sig.message.set(Some(
            "Link copied: send it to whoever you want to jam with".into(),
        ));
    };
    // Remix and publish both create a session from this one and open it.
    let derive = |action: &'static str| {
        let id = session_id.clone();
        move |_| {
            let id = id.clone();
            spawn_local(async move {
                match api::post(&format!("/api/sessions/{id}/{action}")).await {
                    Ok(v) => api::navigate(v["url"].as_str().unwrap_or("/")),
                    Err(e) => sig.message.set(Some(e)),
                }
            })
        }
    };
    let remix = derive("remix");
    let publish = derive("publish");
    let export_href = format!("/api/sessions/{session_id}/export.wav");
    let midi_href = format!("/api/sessions/{session_id}/export.mid");
    let qr_src = format!("/api/sessions/{session_id}/qr.svg");
    view! {
        <div class="session">
            <header class="top">
                <a class="brand" href="/">"Keyboardia"</a>
                <input class="session-name" aria-label="Session name"
                    prop:value=move || sig.state.get().map(|s| s.name).unwrap_or_default()
                    prop:disabled=move || sig.read_only.get()
                    on:change=move |e| live::edit(Edit::SetSessionName { name: event_target_value(&e) })/>
                <Avatars sig=sig/>
                <nav class="actions">
                    <button aria-expanded=move || share_open.get().to_string()
                        on:click=move |_| share_open.update(|o| *o = !*o)>"Share"</button>
                    <button on:click=remix.clone()>"Remix"</button>
                    <button on:click=publish prop:hidden=move || sig.read_only.get()>"Publish"</button>
                    <a class="button" href=export_href download="">"WAV"</a>
                    <a class="button" href=midi_href download="">"MIDI"</a>
                </nav>
            </header>
            <Show when=move || share_open.get()>
                <div class="share" role="dialog" aria-label="Share this session">
                    <img src=qr_src.clone() width="200" height="200" alt="QR code of this session's link"/>
                    <div class="share-link">
                        <input readonly aria-label="Session link" prop:value=page_url.clone()/>
                        <button on:click=copy_link.clone()>"Copy link"</button>
                    </div>
                    <p class="dim">"Anyone with the link joins instantly. Esc closes this."</p>
                </div>
            </Show>
            <Show when=move || sig.read_only.get()>
                <div class="banner" role="status">"This is a published session: it is read-only. "
                    <button on:click=remix.clone()>"Remix it"</button></div>
            </Show>
            <section class="transport" aria-label="Transport">
                <button class="play" aria-label=move || if playing(sig) { "Stop" } else { "Play" }
                    on:click=move |_| toggle_play()>
                    {move || if playing(sig) { "■ Stop" } else { "▶ Play" }}
                </button>
                <Show when=move || !audio_on.get()>
                    <button class="start-audio" on:click=move |_| start_audio()>"Start audio"</button>
                </Show>
                <Show when=move || !sig.read_only.get()>
                    <button class="record" class:on=move || recording.get() aria-pressed=move || recording.get().to_string()
                        on:click=toggle_record.clone()>
                        {move || if recording.get() { "■ Stop recording" } else { "● Record" }}
                    </button>
                </Show>
                <Show when=move || !sig.read_only.get()>
                    <div class="history" role="group" aria-label="Undo and redo">
                        <button class="undo" aria-label="Undo (Ctrl+Z)" title="Undo your last change (Ctrl+Z)"
                            disabled=move || !sig.history.get().0 on:click=move |_| live::undo(false)>"↶"</button>
                        <button class="redo" aria-label="Redo (Ctrl+Shift+Z)" title="Redo (Ctrl+Shift+Z)"
                            disabled=move || !sig.history.get().1 on:click=move |_| live::undo(true)>"↷"</button>
                    </div>
                </Show>
                <div class="tempo" role="group" aria-label="Tempo">
                    <button aria-label="Slower" on:click=move |_| nudge_tempo(sig, -1)>"−"</button>
                    <span class="bpm">{move || sig.state.get().map(|s| s.tempo).unwrap_or(120)}" BPM"</span>
                    <button aria-label="Faster" on:click=move |_| nudge_tempo(sig, 1)>"+"</button>
                </div>
                <label class="swing">"Swing "
                    <input type="range" min="0" max="100"
                        prop:value=move || sig.state.get().map(|s| s.swing).unwrap_or(0).to_string()
                        on:change=move |e| {
                            if let Ok(v) = event_target_value(&e).parse::<i64>() {
                                live::edit(Edit::SetSwing { swing: v })
                            }
                        }/>
                </label>
                <ConnectionStatus sig=sig/>
                <SyncIndicator sig=sig/>
            </section>
            {move || sig.message.get().map(|m| view! {
                <p class="message" role="status" on:click=move |_| sig.message.set(None)>{m}</p>
            })}
            <Grid sig=sig personal=personal now=now lock_target=lock_target/>
            <LockEditor sig=sig target=lock_target/>
        </div>
    }
}

/// Closes any open track menu (<details>).
fn close_open_menus() {
    if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
        if let Ok(list) = doc.query_selector_all("details[open]") {
            for i in 0..list.length() {
                if let Some(el) = list
                    .item(i)
                    .and_then(|n| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(n).ok())
                {
                    let _ = el.remove_attribute("open");
                }
            }
        }
    }
}

/// Arrow keys move focus through the grid: left and right along a track, up and down across
/// tracks (to the same step, or the last one a shorter track has).
fn grid_keys(e: leptos::ev::KeyboardEvent) {
    use wasm_bindgen::JsCast;
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
        .get()
        .map(|s| s.transport.playing)
        .unwrap_or(false)
}

fn nudge_tempo(sig: Signals, d: i64) {
    if let Some(s) = sig.state.get_untracked() {
        let t = (s.tempo as i64 + d).clamp(TEMPO_MIN as i64, TEMPO_MAX as i64);
        live::edit(Edit::SetTempo { tempo: t });
    }
}

#[component]
fn Avatars(sig: Signals) -> impl IntoView {
    view! {
        <ul class="avatars" aria-label="Who is here">
            {move || {
                let players = sig.players.get();
                let more = players.len().saturating_sub(5);
                let shown: Vec<_> = players
                    .into_iter()
                    .take(5)
                    .map(|p| {
                        let initials: String =
                            p.name.split_whitespace().filter_map(|w| w.chars().next()).collect();
                        view! {
                            <li class="avatar" style=format!("background:{}", p.color)
                                title=p.name.clone() aria-label=p.name.clone()>{initials}</li>
                        }
                    })
                    .collect();
                view! {
                    {shown}
                    {(more > 0).then(|| view! { <li class="avatar more">{format!("+{more}")}</li> })}
                }
            }}
        </ul>
    }
}

/// How well this player's clock is synced: the round trip to the session and how far the
/// clock estimate may be off, so a player on a poor link knows why they may be late.
#[component]
fn SyncIndicator(sig: Signals) -> impl IntoView {
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
fn ConnectionStatus(sig: Signals) -> impl IntoView {
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
        .get()
        .map(|s| {
            s.samples
                .iter()
                .map(|x| (x.instrument(), x.name.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The current step of a track at server time `now` (None when stopped).
fn current_step(s: &SessionState, t: &Track, now: f64) -> Option<usize> {
    let tr = s.transport;
    if !tr.playing || now < tr.anchor_time - 1.0 {
        return None;
    }
    let pos = tr.position_at(now).floor() as i64;
    Some(pos.rem_euclid(t.step_count.max(1) as i64) as usize)
}

#[component]
fn Grid(
    sig: Signals,
    personal: RwSignal<HashMap<String, (bool, bool)>>,
    now: RwSignal<f64>,
    lock_target: RwSignal<Option<(String, u8)>>,
) -> impl IntoView {
    let add_track = move |e: leptos::ev::Event| {
        let instrument = event_target_value(&e);
        if instrument.is_empty() {
            return;
        }
        let n = sig
            .state
            .get_untracked()
            .map(|s| s.tracks.len())
            .unwrap_or(0);
        let id = format!("t{:x}", (js_sys::Math::random() * 1e9) as u64);
        live::edit(Edit::AddTrack {
            track: NewTrack {
                id,
                name: instrument_name(&instrument),
                instrument,
                step_count: None,
            },
        });
        let _ = n;
    };
    let track_ids = move || {
        sig.state
            .get()
            .map(|s| s.tracks.iter().map(|t| t.id.clone()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    view! {
        <section class="grid" role="grid" aria-label="Pattern" on:keydown=grid_keys>
            <For each=track_ids key=|id| id.clone() let:track_id>
                <TrackRow sig=sig personal=personal now=now track_id=track_id lock_target=lock_target/>
            </For>
            <Show when=move || !sig.read_only.get()>
                <div class="add-track">
                    <label>"+ Add track "
                        <InstrumentSelect value=String::new() on_change=Callback::new(add_track)/>
                    </label>
                </div>
            </Show>
        </section>
    }
}

#[component]
fn InstrumentSelect(
    value: String,
    on_change: Callback<leptos::ev::Event>,
    #[prop(default = Vec::new())] recordings: Vec<(String, String)>,
) -> impl IntoView {
    let groups = [
        (Group::Drums, "Drums"),
        (Group::Bass, "Bass"),
        (Group::Keys, "Keys"),
        (Group::Leads, "Leads"),
        (Group::Pads, "Pads"),
        (Group::Fx, "FX"),
    ];
    let empty = value.is_empty();
    view! {
        <select aria-label="Instrument" on:change=move |e| on_change.run(e)>
            {empty.then(|| view! { <option value="" selected=true>"choose…"</option> })}
            {groups.into_iter().map(|(g, label)| {
                let items: Vec<_> = CATALOG.iter().filter(|e| e.group == g).map(|e| {
                    let selected = e.id == value;
                    view! { <option value=e.id selected=selected>{e.name}</option> }
                }).collect();
                (!items.is_empty()).then(|| view! { <optgroup label=label>{items}</optgroup> })
            }).collect_view()}
            {(!recordings.is_empty()).then(|| view! {
                <optgroup label="Recordings">
                    {recordings.into_iter().map(|(id, name)| {
                        let selected = id == value;
                        view! { <option value=id selected=selected>{name}</option> }
                    }).collect_view()}
                </optgroup>
            })}
        </select>
    }
}

#[component]
fn TrackRow(
    sig: Signals,
    personal: RwSignal<HashMap<String, (bool, bool)>>,
    now: RwSignal<f64>,
    track_id: String,
    lock_target: RwSignal<Option<(String, u8)>>,
) -> impl IntoView {
    let id = track_id.clone();
    let track = Memo::new(move |_| sig.state.get().and_then(|s| s.track(&id).cloned()));
    let id = track_id.clone();
    let index = Memo::new(move |_| {
        sig.state
            .get()
            .and_then(|s| s.tracks.iter().position(|t| t.id == id))
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
        sig.state
            .get()
            .and_then(|s| s.track(&id).and_then(|t| current_step(&s, t, n)))
    });
    let tid = track_id.clone();
    let cells = move || {
        let Some(t) = track.get() else {
            return Vec::new();
        };
        let tid = tid.clone();
        (0..t.step_count as usize).map(move |k| {
            let on = t.steps.get(k);
            let lock = t.locks.get(&(k as u8)).copied();
            let tid2 = tid.clone();
            let tid3 = tid.clone();
            let label = format!("{} step {}, {}", t.name, k + 1, if on { "on" } else { "off" });
            let glow = move || {
                let n = crate::live::perf_now();
                sig.glows.get().iter().rev().find(|g| g.track == tid3 && g.step as usize == k && g.until > n)
                    .map(|g| format!("--glow:{}", g.color))
            };
            view! {
                <button class="cell" class:on=on class:beat=k % 4 == 0 class:now=move || playhead.get() == Some(k)
                    class:locked=lock.is_some() role="gridcell" aria-pressed=on.to_string() aria-label=label
                    style=move || format!("--track:{};{}", color(), glow().unwrap_or_default())
                    data-step=k.to_string()
                    prop:disabled=move || sig.read_only.get()
                    on:click={
                        let tid = tid2.clone();
                        move |e: leptos::ev::MouseEvent| {
                            if e.shift_key() {
                                // Shift-click opens the parameter-lock editor.
                                lock_target.set(Some((tid.clone(), k as u8)));
                            } else {
                                live::edit(Edit::SetStep { track_id: tid.clone(), step: k as i64, active: !on })
                            }
                        }
                    }
                    on:contextmenu={
                        let tid = tid2.clone();
                        move |e: leptos::ev::MouseEvent| {
                            // A long press on a phone arrives as a context menu.
                            e.prevent_default();
                            lock_target.set(Some((tid.clone(), k as u8)));
                        }
                    }>
                    {lock.and_then(|l| l.pitch).map(|p| if p > 0 { format!("+{p}") } else { p.to_string() })}
                </button>
            }
        }).collect::<Vec<_>>()
    };
    let id_inst = track_id.clone();
    // The picker is rebuilt only when the track's instrument or the recordings change (not on
    // every step edit: an open picker stays open).
    let picker_input = Memo::new(move |_| track.get().map(|t| (t.instrument, recordings_of(sig))));
    let id_count = track_id.clone();
    let id_del = track_id.clone();
    let id_vol = track_id.clone();
    view! {
        <div class="track" role="row" data-track=track_id.clone()>
            <div class="track-head">
                <span class="chip" style=move || format!("background:{}", color())></span>
                <span class="track-name">{move || track.get().map(|t| t.name).unwrap_or_default()}</span>
                {move || picker_input.get().map(|(instrument, recordings)| {
                    let id = id_inst.clone();
                    view! { <crate::picker::Picker value=instrument recordings=recordings track=index
                        on_choose=Callback::new(move |instrument| live::edit(Edit::SetTrackInstrument { track_id: id.clone(), instrument }))/> }
                })}
                <button class="toggle" aria-label="Mute (only for you)" aria-pressed=move || mine.get().0.to_string()
                    class:active=move || mine.get().0 on:click=move |_| toggle_personal(0)>"M"</button>
                <button class="toggle" aria-label="Solo (only for you)" aria-pressed=move || mine.get().1.to_string()
                    class:active=move || mine.get().1 on:click=move |_| tp(1)>"S"</button>
                <details class="more">
                    <summary aria-label="Track settings">"⋯"</summary>
                    <label>"Steps "
                        <select aria-label="Step count" on:change=move |e| {
                            if let Ok(n) = event_target_value(&e).parse::<i64>() {
                                live::edit(Edit::SetTrackStepCount { track_id: id_count.clone(), step_count: n })
                            }
                        }>
                            {move || {
                                let cur = track.get().map(|t| t.step_count).unwrap_or(16);
                                STEP_COUNTS.iter().map(|&n| view! { <option value=n.to_string() selected=n == cur>{n}</option> }).collect_view()
                            }}
                        </select>
                    </label>
                    <label>"Name "
                        <input type="text" maxlength="32" aria-label="Track name"
                            prop:value=move || track.get().map(|t| t.name).unwrap_or_default()
                            on:change={
                                let id = id_vol.clone();
                                move |e| live::edit(Edit::SetTrackName { track_id: id.clone(), name: event_target_value(&e) })
                            }/>
                    </label>
                    <Slider label="Volume" min=0 max=100
                        value=Signal::derive(move || track.get().map(|t| (t.volume * 100.0).round() as i64).unwrap_or(80))
                        on_set={
                            let id = id_vol.clone();
                            Callback::new(move |v: i64| live::edit(Edit::SetTrackVolume { track_id: id.clone(), volume: v as f64 / 100.0 }))
                        }/>
                    <Slider label="Pan" min=-100 max=100
                        value=Signal::derive(move || track.get().map(|t| (t.pan * 100.0).round() as i64).unwrap_or(0))
                        on_set={
                            let id = id_vol.clone();
                            Callback::new(move |v: i64| live::edit(Edit::SetTrackPan { track_id: id.clone(), pan: v as f64 / 100.0 }))
                        }/>
                    <Slider label="Transpose" min=-24 max=24
                        value=Signal::derive(move || track.get().map(|t| t.transpose as i64).unwrap_or(0))
                        on_set={
                            let id = id_vol.clone();
                            Callback::new(move |v: i64| live::edit(Edit::SetTrackTranspose { track_id: id.clone(), transpose: v }))
                        }/>
                    <Slider label="Swing" min=0 max=100
                        value=Signal::derive(move || track.get().map(|t| t.swing as i64).unwrap_or(0))
                        on_set={
                            let id = id_vol.clone();
                            Callback::new(move |v: i64| live::edit(Edit::SetTrackSwing { track_id: id.clone(), swing: v }))
                        }/>
                    <button class="danger" on:click=move |_| live::edit(Edit::DeleteTrack { track_id: id_del.clone() })>"Delete track"</button>
                </details>
            </div>
            <div class="cells">{cells}</div>
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
        <label class="slider">{label}" "
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
fn LockEditor(sig: Signals, target: RwSignal<Option<(String, u8)>>) -> impl IntoView {
    let lock = Memo::new(move |_| {
        let (t, k) = target.get()?;
        let s = sig.state.get()?;
        let track = s.track(&t)?;
        Some((
            track.name.clone(),
            k,
            track.locks.get(&k).copied().unwrap_or_default(),
        ))
    });
    let send = move |pitch: Option<i64>, volume: Option<f64>, tie: bool| {
        if let Some((t, k)) = target.get_untracked() {
            let l = keyboardia_core::protocol::LockRequest { pitch, volume, tie };
            let empty = l.pitch.is_none() && l.volume.is_none() && !l.tie;
            live::edit(Edit::SetParameterLock {
                track_id: t,
                step: k as i64,
                lock: (!empty).then_some(l),
            });
        }
    };
    let current = move || lock.get_untracked().map(|x| x.2).unwrap_or_default();
    view! {
        <Show when=move || lock.get().is_some()>
            <div class="lock-editor" role="dialog" aria-label="Parameter lock">
                <h3>{move || lock.get().map(|(n, k, _)| format!("{n}, step {}", k + 1))}</h3>
                <label>"Pitch "
                    <input type="range" min="-24" max="24" aria-label="Pitch lock in semitones"
                        prop:value=move || lock.get().and_then(|x| x.2.pitch).unwrap_or(0).to_string()
                        on:change=move |e| {
                            let c = current();
                            let p = event_target_value(&e).parse::<i64>().ok().filter(|p| *p != 0);
                            send(p, c.volume.map(f64::from), c.tie);
                        }/>
                    <output>{move || lock.get().and_then(|x| x.2.pitch).map(|p| format!("{p:+}")).unwrap_or_else(|| "0".into())}</output>
                </label>
                <label>"Volume "
                    <input type="range" min="0" max="100" aria-label="Volume lock"
                        prop:value=move || lock.get().and_then(|x| x.2.volume).map(|v| (v * 100.0).round() as i64).unwrap_or(100).to_string()
                        on:change=move |e| {
                            let c = current();
                            let v = event_target_value(&e).parse::<f64>().ok().map(|v| v / 100.0).filter(|v| *v < 1.0);
                            send(c.pitch.map(i64::from), v, c.tie);
                        }/>
                </label>
                <label>
                    <input type="checkbox" aria-label="Tie to the previous step"
                        prop:checked=move || lock.get().map(|x| x.2.tie).unwrap_or(false)
                        on:change=move |_| {
                            let c = current();
                            send(c.pitch.map(i64::from), c.volume.map(f64::from), !c.tie);
                        }/>
                    " Tie to the previous step"
                </label>
                <div class="row">
                    <button on:click=move |_| send(None, None, false)>"Clear"</button>
                    <button on:click=move |_| target.set(None)>"Done"</button>
                </div>
            </div>
        </Show>
    }
}

/// Track colours: distinct for colour-blind players too, always paired with the track's name.
const TRACK_COLORS: &[&str] = &[
    "#f4a261", "#2ec4b6", "#e76f51", "#8ecae6", "#ffb703", "#b5179e", "#90be6d", "#4361ee",
];
