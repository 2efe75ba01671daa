//! The step grid: the scroller of track rows, keyboard moves between cells, following the playhead, adding a track.

use crate::app::instrument_name;
use crate::app::toggle_sheet;
use crate::app::ui;
use crate::app::Sheet;
use crate::live;
use crate::live::Signals;
use crate::ruler::LoopRuler;
use crate::track_row::TrackRow;
use keyboardia_core::model::SessionState;
use keyboardia_core::model::Track;
use keyboardia_core::protocol::Edit;
use keyboardia_core::protocol::NewTrack;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// Arrow keys move focus through the grid: left and right along a track, up and down across
/// tracks (to the same step, or the last one a shorter track has).
pub(crate) fn grid_keys(e: leptos::ev::KeyboardEvent) {
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

/// The current step of a track at server time `now` (None when stopped).
pub(crate) fn current_step(s: &SessionState, t: &Track, now: f64) -> Option<usize> {
    let tr = s.transport;
    if !tr.playing || now < tr.anchor_time - 1.0 {
        return None;
    }
    let pos = tr.position_at(now).floor() as i64;
    // Wrapped into the loop region if there is one (the engine's rule).
    let pos = s.loop_region.map_or(pos, |r| r.wrap(pos));
    Some(pos.rem_euclid(t.step_count.max(1) as i64) as usize)
}

thread_local! {
    /// Following the playhead: until when the player's own scrolling pauses it (performance
    /// ms), and where we last scrolled the grid to.
    static FOLLOW: std::cell::Cell<(f64, i32)> = const { std::cell::Cell::new((0.0, -1)) };
}

/// How long a player's own scrolling (or touching the grid) pauses following the playhead.
pub(crate) const FOLLOW_PAUSE_MS: f64 = 3000.0;

pub(crate) fn pause_following() {
    FOLLOW.with(|f| {
        let (_, at) = f.get();
        f.set((live::perf_now() + FOLLOW_PAUSE_MS, at));
    });
}

/// Keeps the furthest playhead in view: when it reaches the last visible column the grid pages
/// to it (and back to the start when the longest track wraps). Not while the player scrolls.
pub(crate) fn follow_playhead(playing: bool) {
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
pub(crate) fn Grid() -> impl IntoView {
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
        ui.grid_scroll.update(|n| *n = n.wrapping_add(1));
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
    // Two fingers scroll the grid sideways (a finger on a step paints: cells pan only
    // vertically). Touches on the grid: pointer id and x; the fingers' mean x and the scroll
    // position when the second finger landed.
    let touches = StoredValue::new(Vec::<(i32, f64)>::new());
    let pan = StoredValue::new(None::<(f64, i32)>);
    let mean =
        move || touches.with_value(|t| t.iter().map(|p| p.1).sum::<f64>() / t.len().max(1) as f64);
    let grid = NodeRef::<leptos::html::Div>::new();
    let touch_down = move |e: leptos::ev::PointerEvent| {
        if e.pointer_type() != "touch" {
            return;
        }
        touches.update_value(|t| {
            t.retain(|p| p.0 != e.pointer_id());
            t.push((e.pointer_id(), e.client_x() as f64));
        });
        if touches.with_value(|t| t.len()) == 2 {
            ui.two_finger.set(true);
            pause_following();
            let scroll = grid.get_untracked().map_or(0, |g| g.scroll_left());
            pan.set_value(Some((mean(), scroll)));
        }
    };
    let touch_move = move |e: leptos::ev::PointerEvent| {
        let id = e.pointer_id();
        touches.update_value(|t| {
            if let Some(p) = t.iter_mut().find(|p| p.0 == id) {
                p.1 = e.client_x() as f64;
            }
        });
        if let (Some((x0, s0)), Some(g)) = (pan.get_value(), grid.get_untracked()) {
            if touches.with_value(|t| t.len()) >= 2 {
                g.set_scroll_left(s0 - (mean() - x0).round() as i32);
            }
        }
    };
    let touch_up = move |e: leptos::ev::PointerEvent| {
        touches.update_value(|t| t.retain(|p| p.0 != e.pointer_id()));
        if touches.with_value(|t| t.len()) < 2 {
            pan.set_value(None);
        }
        if touches.with_value(|t| t.is_empty()) && ui.two_finger.get_untracked() {
            ui.two_finger.set(false);
        }
    };
    view! {
        <div class="grid" role="group" aria-label="Pattern" class:lock-mode=move || ui.lock_mode.get()
            node_ref=grid on:pointerdown=touch_down on:pointermove=touch_move
            on:pointerup=touch_up on:pointercancel=touch_up
            // Read-only, its cells cannot take focus: the scroller itself can (keyboard scrolling).
            tabindex=move || sig.read_only.get().then_some("0")
            on:keydown=grid_keys on:scroll=on_scroll
            on:wheel=move |_| pause_following() on:touchstart=move |_| pause_following()>
            <div class="rows">
                <LoopRuler/>
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

pub(crate) fn add_track(sig: Signals, instrument: String) {
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
