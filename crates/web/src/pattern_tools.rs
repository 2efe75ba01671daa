//! Pattern tools of one track (rotate, shift, reverse, invert, mirror, euclid, randomize,
//! duplicate, copy and paste through the system clipboard): a menu in the row, a section of the
//! track sheet on a phone.

use std::collections::BTreeMap;

use keyboardia_core::limits::TRACK_NAME_MAX_CHARS;
use keyboardia_core::model::{Lock, Steps, Track};
use keyboardia_core::music::{is_melodic, PatternOp};
use keyboardia_core::protocol::Edit;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;

use crate::app::{ui, Sheet};
use crate::{api, live};

/// What "Copy pattern" puts on the clipboard: a versioned JSON text, so a paste can tell a
/// Keyboardia pattern from any other text (and a later version can still read this one).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Clip {
    /// Always "keyboardia-pattern".
    pub kind: String,
    /// 1.
    pub version: u32,
    pub step_count: u16,
    pub steps: Steps,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub locks: BTreeMap<u8, Lock>,
}

pub(crate) const CLIP_KIND: &str = "keyboardia-pattern";
pub(crate) const CLIP_VERSION: u32 = 1;

/// The clipboard text of a track's pattern (its loop: steps and locks, and its length).
pub(crate) fn copy_text(t: &Track) -> String {
    let n = t.step_count as usize;
    let mut steps = Steps::default();
    for i in 0..n {
        steps.set(i, t.steps.get(i));
    }
    let mut locks = t.locks.clone();
    locks.retain(|k, _| (*k as usize) < n);
    let clip = Clip {
        kind: CLIP_KIND.into(),
        version: CLIP_VERSION,
        step_count: t.step_count,
        steps,
        locks,
    };
    serde_json::to_string(&clip).unwrap_or_default()
}

/// Reads a clipboard text as a pattern, or says plainly why it is not one.
pub(crate) fn parse_clip(text: &str) -> Result<Clip, String> {
    let not_ours =
        "The clipboard does not hold a Keyboardia pattern: copy one with “Copy pattern” first.";
    let v: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|_| not_ours.to_string())?;
    if v.get("kind").and_then(|k| k.as_str()) != Some(CLIP_KIND) {
        return Err(not_ours.into());
    }
    match v.get("version").and_then(|k| k.as_u64()) {
        Some(1) => {}
        Some(n) => {
            return Err(format!(
                "This pattern was copied from a newer Keyboardia (format {n}); reload the page to paste it."
            ))
        }
        None => return Err(not_ours.into()),
    }
    let clip: Clip = serde_json::from_str(text.trim())
        .map_err(|e| format!("The copied pattern is damaged and was not pasted ({e})."))?;
    if !keyboardia_core::limits::STEP_COUNTS.contains(&clip.step_count) {
        return Err(format!(
            "The copied pattern has {} steps, which no track can have.",
            clip.step_count
        ));
    }
    Ok(clip)
}

/// The edit a paste makes: the pattern (and its length, if the track's differs), as one.
pub(crate) fn paste_edit(t: &Track, clip: Clip) -> Edit {
    let pattern = Edit::SetTrackPattern {
        track_id: t.id.clone(),
        steps: clip.steps,
        locks: clip.locks,
    };
    if clip.step_count == t.step_count {
        pattern
    } else {
        Edit::Batch {
            edits: vec![
                Edit::SetTrackStepCount {
                    track_id: t.id.clone(),
                    step_count: clip.step_count as i64,
                },
                pattern,
            ],
        }
    }
}

fn clipboard() -> Option<web_sys::Clipboard> {
    web_sys::window().map(|w| w.navigator().clipboard())
}

/// The tools as buttons, for the row's menu and the track sheet. `done` runs after a tool that
/// leaves the place (duplicate, piano roll).
#[component]
pub(crate) fn PatternTools(
    track_id: String,
    #[prop(optional)] done: Option<Callback<()>>,
) -> impl IntoView {
    let ui = ui();
    let sig = ui.sig;
    let id = StoredValue::new(track_id.clone());
    let track = Memo::new(move |_| {
        sig.state
            .with(|s| s.as_ref().and_then(|s| s.track(&id.get_value()).cloned()))
    });
    let steps = move || track.with(|t| t.as_ref().map(|t| t.step_count).unwrap_or(16));
    let melodic = move || track.with(|t| t.as_ref().is_some_and(is_melodic));
    let error = RwSignal::new(None::<String>);
    let note = RwSignal::new(None::<String>);
    let op = move |op: PatternOp| {
        error.set(None);
        live::edit(Edit::TransformPattern {
            track_id: id.get_value(),
            op,
        });
    };
    let hits = RwSignal::new(5u16);
    let rotation = RwSignal::new(0u16);
    let finish = move || {
        if let Some(d) = done {
            d.run(())
        }
    };
    let copy = move |_| {
        error.set(None);
        let Some(t) = track.get_untracked() else {
            return;
        };
        let text = copy_text(&t);
        match clipboard() {
            Some(c) => {
                let p = c.write_text(&text);
                spawn_local(async move {
                    match wasm_bindgen_futures::JsFuture::from(p).await {
                        Ok(_) => note.set(Some(format!(
                            "Copied {}'s pattern: paste it on any track",
                            t.name
                        ))),
                        Err(e) => error.set(Some(format!(
                            "The clipboard could not be written: {}",
                            api::js_err(e)
                        ))),
                    }
                });
            }
            None => error.set(Some("This browser has no clipboard to copy to.".into())),
        }
    };
    let paste = move |_| {
        error.set(None);
        note.set(None);
        let Some(c) = clipboard() else {
            error.set(Some("This browser has no clipboard to paste from.".into()));
            return;
        };
        let p = c.read_text();
        spawn_local(async move {
            let text = match wasm_bindgen_futures::JsFuture::from(p).await {
                Ok(v) => v.as_string().unwrap_or_default(),
                Err(e) => {
                    error.set(Some(format!(
                        "The clipboard could not be read (the browser may need your permission): {}",
                        api::js_err(e)
                    )));
                    return;
                }
            };
            let Some(t) = track.get_untracked() else {
                return;
            };
            match parse_clip(&text) {
                Ok(clip) => {
                    live::edit(paste_edit(&t, clip));
                    note.set(Some(format!("Pasted onto {}", t.name)));
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let duplicate = move |_| {
        let new_id = format!("t{:x}", (js_sys::Math::random() * 1e9) as u64);
        let name = track.with_untracked(|t| t.as_ref().map(|t| t.name.clone()).unwrap_or_default());
        let name: String = format!("{name} copy")
            .chars()
            .take(TRACK_NAME_MAX_CHARS)
            .collect();
        // The copy and its name, as one edit (one undo).
        live::edit(Edit::Batch {
            edits: vec![
                Edit::DuplicateTrack {
                    track_id: id.get_value(),
                    new_id: new_id.clone(),
                },
                Edit::SetTrackName {
                    track_id: new_id,
                    name,
                },
            ],
        });
        finish();
    };
    let num = |e: &leptos::ev::Event| event_target_value(e).trim().parse::<u16>().ok();
    view! {
        <div class="tools" data-testid="pattern-tools">
            <div class="tool-row" role="group" aria-label="Move">
                <button data-tool="rotate-left" aria-label="Rotate left" title="Every step one earlier; the first wraps to the end"
                    on:click=move |_| op(PatternOp::RotateLeft)>"⇤ Rotate"</button>
                <button data-tool="rotate-right" aria-label="Rotate right" title="Every step one later; the last wraps to the start"
                    on:click=move |_| op(PatternOp::RotateRight)>"Rotate ⇥"</button>
                <button data-tool="shift-up" aria-label="Shift up in the scale" title="Every note one scale step up"
                    on:click=move |_| op(PatternOp::ShiftUp)>"↑ Shift"</button>
                <button data-tool="shift-down" aria-label="Shift down in the scale" title="Every note one scale step down"
                    on:click=move |_| op(PatternOp::ShiftDown)>"↓ Shift"</button>
            </div>
            <div class="tool-row" role="group" aria-label="Change">
                <button data-tool="reverse" title="The loop played backwards" on:click=move |_| op(PatternOp::Reverse)>"Reverse"</button>
                <button data-tool="invert" title="Steps that are on go off, and the others on" on:click=move |_| op(PatternOp::Invert)>"Invert"</button>
                <button data-tool="mirror" title="The first half mirrored onto the second" on:click=move |_| op(PatternOp::Mirror)>"Mirror"</button>
                <button data-tool="randomize" title="A fresh random pattern (in the key)" on:click=move |_| {
                    let seed = (js_sys::Math::random() * u32::MAX as f64) as u32;
                    op(PatternOp::Randomize { seed, density: 40 })
                }>"Randomize"</button>
            </div>
            <div class="tool-row euclid" role="group" aria-label="Euclidean rhythm">
                <label>"Hits "<input type="number" class="euclid-hits" min="0" max=move || steps().to_string()
                    aria-label="Euclid hits" prop:value=move || hits.get().to_string()
                    on:change=move |e| if let Some(v) = num(&e) { hits.set(v) }/></label>
                <label>"Rotate "<input type="number" class="euclid-rotation" min="0" max=move || (steps().saturating_sub(1)).to_string()
                    aria-label="Euclid rotation" prop:value=move || rotation.get().to_string()
                    on:change=move |e| if let Some(v) = num(&e) { rotation.set(v) }/></label>
                <button data-tool="euclid" title="Spread the hits as evenly as possible over the loop"
                    on:click=move |_| op(PatternOp::Euclid { hits: hits.get_untracked(), rotation: rotation.get_untracked() })>"Euclid"</button>
            </div>
            <div class="tool-row" role="group" aria-label="Copy">
                <button data-tool="copy" title="Copy this pattern to the clipboard (as text)" on:click=copy>"Copy pattern"</button>
                <button data-tool="paste" title="Replace this pattern with the one on the clipboard" on:click=paste>"Paste pattern"</button>
                <button data-tool="duplicate" title="A copy of this track, right below it" on:click=duplicate>"Duplicate track"</button>
            </div>
            <Show when=melodic>
                <button class="open-roll" data-tool="piano-roll" aria-haspopup="dialog" on:click=move |_| {
                    ui.sheet.set(Some(Sheet::Roll(id.get_value())));
                    finish();
                }>"Piano roll…"</button>
            </Show>
            {move || error.get().map(|e| view! { <p class="error tool-error" role="alert">{e}</p> })}
            {move || note.get().map(|n| view! { <p class="dim" role="status">{n}</p> })}
        </div>
    }
}

/// The row's "pattern tools" button and its menu (a popover that floats over the grid and
/// follows its button when the grid or the page scrolls; closed by Esc or a click elsewhere).
#[component]
pub(crate) fn PatternMenu(track_id: String, #[prop(into)] name: Signal<String>) -> impl IntoView {
    let ui = crate::app::ui();
    let open = RwSignal::new(false);
    let pos = RwSignal::new((0.0f64, 0.0f64));
    let button = NodeRef::<leptos::html::Button>::new();
    // Under the button, kept inside the window.
    let place = move || {
        if let Some(b) = button.get_untracked() {
            let r = b.get_bounding_client_rect();
            let vw = web_sys::window()
                .and_then(|w| w.inner_width().ok())
                .and_then(|v| v.as_f64())
                .unwrap_or(1280.0);
            pos.set((r.bottom() + 4.0, r.left().min(vw - 420.0).max(4.0)));
        }
    };
    let toggle = move |_| {
        if !open.get_untracked() {
            place();
        }
        open.update(|o| *o = !*o);
    };
    Effect::new(move |_| {
        let _ = ui.grid_scroll.get();
        if open.get_untracked() {
            place();
        }
    });
    let page_scroll = window_event_listener(leptos::ev::scroll, move |_| {
        if open.get_untracked() {
            place();
        }
    });
    // A press outside the menu (and its button) closes it.
    let outside = window_event_listener(leptos::ev::pointerdown, move |e| {
        if !open.get_untracked() {
            return;
        }
        let inside = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|el| el.closest(".tools-menu, .tools-open").ok().flatten())
            .is_some();
        if !inside {
            open.set(false);
        }
    });
    let esc = window_event_listener(leptos::ev::keydown, move |e| {
        if e.key() == "Escape" && open.get_untracked() {
            open.set(false);
        }
    });
    on_cleanup(move || {
        outside.remove();
        esc.remove();
        page_scroll.remove();
    });
    let close = Callback::new(move |_| open.set(false));
    let keys = move |e: leptos::ev::KeyboardEvent| {
        if e.key() == "Escape" {
            e.stop_propagation();
            open.set(false);
            if let Some(b) = button.get_untracked() {
                let _ = b.focus();
            }
        }
    };
    let tid = track_id.clone();
    view! {
        <button class="tools-open" node_ref=button aria-haspopup="dialog" aria-expanded=move || open.get().to_string()
            aria-label=move || format!("Pattern tools: {}", name.get()) title="Pattern tools" on:click=toggle>"⇄"</button>
        <Show when=move || open.get()>
            <div class="tools-menu" role="dialog" aria-label=move || format!("Pattern tools: {}", name.get())
                style=move || { let (t, l) = pos.get(); format!("top:{t}px;left:{l}px") }
                on:keydown=keys>
                {let tid = tid.clone(); move || { let tid = tid.clone(); Suspend::new(async move { crate::lazy::view_or_notice(tools_view(tid, close).await) }) }}
            </div>
        </Show>
    }
}

/// The tools, in the sheets' wasm module (fetched the first time a menu or a sheet opens).
#[leptos::wasm_split::wasm_split(sheets, wasm_split_path = ::leptos::wasm_split, fallible)]
fn tools_view(track_id: String, done: Callback<()>) -> Result<AnyView, crate::lazy::NotLoaded> {
    Ok(view! { <PatternTools track_id=track_id done=done/> }.into_any())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copied_pattern_pastes_back_and_other_text_is_refused() {
        let mut t = Track::new("a", "A", "synth/lead");
        t.steps = Steps::from_indices(&[0, 3, 20]);
        t.step_count = 16;
        t.locks.insert(
            3,
            Lock {
                pitch: Some(5),
                ..Lock::default()
            },
        );
        let text = copy_text(&t);
        let clip = parse_clip(&text).expect("ours");
        assert_eq!(clip.step_count, 16);
        assert!(clip.steps.get(0) && clip.steps.get(3) && !clip.steps.get(20));
        assert_eq!(clip.locks[&3].pitch, Some(5));
        assert!(parse_clip("hello")
            .unwrap_err()
            .contains("not hold a Keyboardia pattern"));
        assert!(parse_clip(r#"{"kind":"keyboardia-pattern","version":7}"#)
            .unwrap_err()
            .contains("newer"));
        assert!(parse_clip(
            r#"{"kind":"keyboardia-pattern","version":1,"stepCount":16,"steps":"x"}"#
        )
        .unwrap_err()
        .contains("damaged"));
    }
}
