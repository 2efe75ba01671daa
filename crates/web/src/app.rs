//! The app's root: routing, the session page's shared state (`Ui`, the open `Sheet`), shared actions.
//!
//! Where things are: [`crate::pages`] (landing, session page, refusal), [`crate::header`],
//! [`crate::transport`], [`crate::grid`] and [`crate::track_row`] (the steps),
//! [`crate::sheets`] (everything secondary), [`crate::controls`] (small reusable controls).
//!
//! The session page: a header (name, who is here, share/remix/publish), a transport bar (at the
//! bottom on a phone), the grid (one horizontal scroller with a fixed track column that follows
//! the playhead), and one *sheet* for everything secondary (track settings, the instrument
//! picker, the step editor, publish, shortcuts): a panel beside the grid on a desktop, a bottom
//! sheet on a phone. Nothing secondary floats over the header or the transport.

use crate::api;
use crate::audio;
use crate::header::light_theme;
use crate::live;
use crate::live::Signals;
use crate::pages::landing;
use crate::pages::SessionPage;
use keyboardia_audio::CATALOG;
use keyboardia_core::protocol::Edit;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::collections::HashMap;
use wasm_bindgen::JsCast;

#[component]
pub fn App() -> impl IntoView {
    let _ = light_theme();
    let path = api::location_path();
    match path.strip_prefix("/s/") {
        Some(id) if !id.is_empty() => {
            view! { <SessionPage id=id.trim_end_matches('/').to_string()/> }.into_any()
        }
        _ => Suspend::new(async { crate::lazy::view_or_notice(landing().await) }).into_any(),
    }
}

pub(crate) fn instrument_name(id: &str) -> String {
    CATALOG
        .iter()
        .find(|e| e.id == id)
        .map(|e| e.name.to_string())
        .unwrap_or_else(|| id.rsplit('/').next().unwrap_or(id).to_string())
}

/// What the sheet shows (one at a time).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Sheet {
    /// A track's settings.
    Track(String),
    /// The instrument picker for a track.
    Instrument(String),
    /// The instrument picker that adds a track.
    AddTrack,
    /// The piano roll of a melodic track.
    Roll(String),
    /// The step editor (parameter locks) of one step.
    Lock(String, u8),
    /// "Publish this session?"
    Publish,
    /// Keyboard shortcuts and help.
    Help,
    /// What the header has no room for on a phone: exports, theme, shortcuts.
    More,
    /// The session's effects.
    Effects,
}

/// The session page's state, shared by its parts (all `Copy`).
#[derive(Clone, Copy)]
pub(crate) struct Ui {
    pub(crate) sig: Signals,
    /// This player's own mix: track id -> (muted, soloed).
    pub(crate) personal: RwSignal<HashMap<String, (bool, bool)>>,
    /// Server time, for the playhead.
    pub(crate) now: RwSignal<f64>,
    pub(crate) sheet: RwSignal<Option<Sheet>>,
    pub(crate) audio_on: RwSignal<bool>,
    pub(crate) audio_starting: RwSignal<bool>,
    /// "Step editor" mode: a click on a cell opens its editor instead of toggling it.
    pub(crate) lock_mode: RwSignal<bool>,
    pub(crate) share_open: RwSignal<bool>,
    pub(crate) session_id: StoredValue<String>,
    /// Each track's output level (0 to 1, by track index), for the track meters.
    pub(crate) levels: RwSignal<Vec<f64>>,
    /// Counts the grid's scroll events: what floats over the grid (the pattern menu) follows it.
    pub(crate) grid_scroll: RwSignal<u32>,
    /// Two fingers are on the grid: they scroll it sideways (one finger paints steps), and no
    /// step is painted or toggled until every finger has left.
    pub(crate) two_finger: RwSignal<bool>,
}

pub(crate) fn ui() -> Ui {
    expect_context::<Ui>()
}

/// Starts the sound (once; from a user gesture).
pub(crate) fn start_audio(ui: Ui) {
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

pub(crate) fn toggle_play(ui: Ui) {
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

pub(crate) fn toggle_sheet(ui: Ui, s: Sheet) {
    ui.sheet.update(|cur| {
        *cur = if cur.as_ref() == Some(&s) {
            None
        } else {
            Some(s)
        }
    });
}

/// Keys for the whole page: Space plays and stops (unless typing or on a button), `?` opens the
/// shortcuts, Escape closes what is open.
pub(crate) fn page_keys(ui: Ui, e: web_sys::KeyboardEvent) {
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
    let plain = !(e.ctrl_key() || e.meta_key() || e.alt_key());
    if e.key().eq_ignore_ascii_case("e") && !typing && plain && tag != "DIV" {
        e.prevent_default();
        toggle_sheet(ui, Sheet::Effects);
    }
    // Ctrl/Cmd+Z undoes, with Shift (or Ctrl+Y) redoes: the player's own edits.
    let key = crate::text::lower(&e.key());
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

/// Where a published copy came from, remembered by the browser that published it (the editable
/// session's link is a key to edit it: it is never shown to the copy's other visitors).
pub(crate) fn source_key(id: &str) -> String {
    format!("keyboardia-published-from:{id}")
}

pub(crate) fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}

/// Remix and publish both create a session from this one and open it.
pub(crate) fn derive(ui: Ui, action: &'static str) {
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

pub(crate) fn playing(sig: Signals) -> bool {
    sig.state
        .with(|s| s.as_ref().map(|s| s.transport.playing))
        .unwrap_or(false)
}

/// The session's recordings as (instrument id, name), for the instrument picker.
pub(crate) fn recordings_of(sig: Signals) -> Vec<(String, String)> {
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

/// Track colours: distinct for colour-blind players too, always paired with the track's initial
/// and name.
pub(crate) const TRACK_COLORS: &[&str] = &[
    "#f4a261", "#2ec4b6", "#e76f51", "#8ecae6", "#ffb703", "#e58ad8", "#90be6d", "#8fa2ff",
];

/// Where track `id` is in the list (0 when it is gone), as a memo: its index for the engine and
/// its colour.
pub(crate) fn track_index(sig: Signals, id: String) -> Memo<usize> {
    Memo::new(move |_| {
        sig.state
            .with(|s| {
                s.as_ref()
                    .and_then(|s| s.tracks.iter().position(|t| t.id == id))
            })
            .unwrap_or(0)
    })
}

/// The colour of the track at `index`.
pub(crate) fn track_color(index: usize) -> &'static str {
    TRACK_COLORS[index % TRACK_COLORS.len()]
}
