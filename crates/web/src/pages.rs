//! The pages: the landing page (new session, published gallery), the session page (connection, clock, engine) and the refusal page.

use crate::api;
use crate::app::page_keys;
use crate::app::start_audio;
use crate::app::ui;
use crate::app::Sheet;
use crate::app::Ui;
use crate::audio;
use crate::grid::follow_playhead;
use crate::grid::Grid;
use crate::header::Banner;
use crate::header::Header;
use crate::header::ThemeToggle;
use crate::live;
use crate::live::Signals;
use crate::live::Status;
use crate::sheets::SheetView;
use crate::transport::ConnectionStatus;
use crate::transport::Transport;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::collections::HashMap;
use wasm_bindgen::JsCast;

/// The landing page, in a wasm module of its own: a player who follows a session's link never
/// fetches it.
#[leptos::wasm_split::wasm_split(landing, wasm_split_path = ::leptos::wasm_split, fallible)]
pub(crate) fn landing() -> Result<AnyView, crate::lazy::NotLoaded> {
    Ok(view! { <Landing/> }.into_any())
}

#[component]
pub(crate) fn Landing() -> impl IntoView {
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

#[component]
pub(crate) fn SessionPage(id: String) -> impl IntoView {
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
        grid_scroll: RwSignal::new(0),
        two_finger: RwSignal::new(false),
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
    // The transport follows the session, the clock estimate, (four times a second) the audio
    // clock's drift against the system clock, and at once a jump of the output. Where the output
    // is, is read every 25 ms: one reading can be late on a busy machine, so it takes several.
    let retime = RwSignal::new(0u32);
    let mut ticks = 0u32;
    let retime_tick = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || {
        ticks = ticks.wrapping_add(1);
        if audio::read_output() || ticks.is_multiple_of(10) {
            retime.update(|n| *n = n.wrapping_add(1));
        }
    });
    if let Some(w) = web_sys::window() {
        let _ = w.set_interval_with_callback_and_timeout_and_arguments_0(
            retime_tick.as_ref().unchecked_ref(),
            25,
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

/// The 11th player, or a client too old: a plain page that says why, with nothing that looks
/// usable but the ways on.
#[component]
pub(crate) fn Refused() -> impl IntoView {
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

#[component]
pub(crate) fn SessionView() -> impl IntoView {
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
