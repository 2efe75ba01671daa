//! The step ruler above the grid and the shared loop region on it: drag over the step numbers to
//! loop those steps (a click loops that bar), arrow keys move or resize it, Delete clears it.

use keyboardia_core::limits::STEP_SLOTS;
use keyboardia_core::model::LoopRegion;
use keyboardia_core::protocol::{Edit, LoopRegionRequest};
use leptos::prelude::*;

use crate::app::ui;
use crate::live;

/// Sets (or with `None`, clears) the loop region for everyone.
fn send(region: Option<(usize, usize)>) {
    live::edit(Edit::SetLoopRegion {
        region: region.map(|(start, end)| LoopRegionRequest {
            start: start as i64,
            end: end as i64,
        }),
    });
}

/// The step of the ruler under the point (client coordinates).
fn tick_at(x: i32, y: i32) -> Option<usize> {
    let el = web_sys::window()?
        .document()?
        .element_from_point(x as f32, y as f32)?;
    el.closest(".tick")
        .ok()
        .flatten()?
        .get_attribute("data-step")?
        .parse()
        .ok()
}

/// "steps 5–8" (one-based, end included).
pub(crate) fn region_text(r: &LoopRegion) -> String {
    format!("steps {}–{}", r.start + 1, r.end)
}

#[component]
pub(crate) fn LoopRuler() -> impl IntoView {
    let ui = ui();
    let sig = ui.sig;
    let region = Memo::new(move |_| sig.state.with(|s| s.as_ref().and_then(|s| s.loop_region)));
    // The ruler spans the longest track.
    let steps = Memo::new(move |_| {
        sig.state
            .with(|s| {
                s.as_ref()
                    .and_then(|s| s.tracks.iter().map(|t| t.step_count as usize).max())
            })
            .unwrap_or(16)
            .max(16)
    });
    // A drag in progress: where it started and where it is.
    let drag = RwSignal::new(None::<(usize, usize)>);
    let span = |(a, b): (usize, usize)| (a.min(b), a.max(b) + 1);
    let ro = move || sig.read_only.get();
    let down = move |e: leptos::ev::PointerEvent| {
        if e.button() != 0 || ro() {
            return;
        }
        if let Some(k) = tick_at(e.client_x(), e.client_y()) {
            e.prevent_default();
            drag.set(Some((k, k)));
        }
    };
    let moved = window_event_listener(leptos::ev::pointermove, move |e| {
        if let Some((a, b)) = drag.get_untracked() {
            if let Some(k) = tick_at(e.client_x(), e.client_y()) {
                if k != b {
                    drag.set(Some((a, k)));
                }
            }
        }
    });
    let up = window_event_listener(leptos::ev::pointerup, move |_| {
        let Some((a, b)) = drag.get_untracked() else {
            return;
        };
        drag.set(None);
        if a == b {
            // A click loops its bar.
            let bar = a / 16 * 16;
            send(Some((bar, (bar + 16).min(steps.get_untracked()))));
        } else {
            send(Some(span((a, b))));
        }
    });
    let cancel = window_event_listener(leptos::ev::pointercancel, move |_| drag.set(None));
    on_cleanup(move || {
        moved.remove();
        up.remove();
        cancel.remove();
    });
    // The keyboard: arrows move the region, Shift+arrows change its end, Delete clears it, Enter
    // loops the first bar when there is none.
    let keys = move |e: leptos::ev::KeyboardEvent| {
        if ro() {
            return;
        }
        let n = steps.get_untracked();
        let r = region.get_untracked();
        let next = match (e.key().as_str(), r) {
            ("Delete" | "Backspace", Some(_)) => {
                e.prevent_default();
                send(None);
                return;
            }
            ("Enter", None) => Some((0, 16.min(n))),
            ("ArrowLeft", Some(r)) if e.shift_key() => Some((
                r.start as usize,
                (r.end as usize - 1).max(r.start as usize + 1),
            )),
            ("ArrowRight", Some(r)) if e.shift_key() => {
                Some((r.start as usize, (r.end as usize + 1).min(STEP_SLOTS)))
            }
            ("ArrowLeft", Some(r)) if r.start > 0 => {
                Some((r.start as usize - 1, r.end as usize - 1))
            }
            ("ArrowRight", Some(r)) if (r.end as usize) < STEP_SLOTS => {
                Some((r.start as usize + 1, r.end as usize + 1))
            }
            _ => None,
        };
        if let Some(x) = next {
            e.prevent_default();
            e.stop_propagation();
            send(Some(x));
        }
    };
    let shown = move || {
        drag.get()
            .map(span)
            .or_else(|| region.get().map(|r| (r.start as usize, r.end as usize)))
    };
    let label = move || {
        match region.get() {
        Some(r) => format!("Loop region: {}. Drag over the step numbers to change it; arrows move it, Shift and arrows resize it, Delete clears it", region_text(&r)),
        None => "Loop region: none, every track loops its whole length. Drag over the step numbers to loop some steps, or press Enter to loop the first bar".into(),
    }
    };
    view! {
        <div class="ruler-row" data-testid="ruler">
            <div class="ruler-head">
                <span class="ruler-title">"Loop"</span>
                <span class="ruler-text dim" data-testid="loop-text">
                    {move || region.get().map(|r| region_text(&r)).unwrap_or_else(|| "whole tracks".into())}
                </span>
                <Show when=move || region.get().is_some() && !ro()>
                    <button class="loop-clear" aria-label="Clear the loop region" title="Clear the loop region (every track loops its whole length)"
                        on:click=move |_| send(None)>"✕"</button>
                </Show>
            </div>
            <div class="ruler" role="group" tabindex=move || (!ro()).then_some("0") aria-label=label
                class:has-loop=move || shown().is_some()
                on:pointerdown=down on:keydown=keys>
                {move || (0..steps.get()).map(|k| {
                    let inside = move || shown().is_some_and(|(a, b)| k >= a && k < b);
                    view! {
                        <span class="tick" class:in-loop=inside class:beat=k % 4 == 0 data-step=k.to_string()>
                            {(k % 4 == 0).then(|| (k + 1).to_string())}
                        </span>
                    }
                }).collect_view()}
            </div>
        </div>
    }
}
