//! One track of the grid: its head (colour, meter, name, instrument, mute/solo, settings) and its step cells.

use crate::app::instrument_name;
use crate::app::recordings_of;
use crate::app::toggle_sheet;
use crate::app::ui;
use crate::app::Sheet;
use crate::grid::current_step;
use crate::live;
use crate::pattern_tools::PatternMenu;
use keyboardia_core::protocol::Edit;
use leptos::prelude::*;
use std::collections::BTreeSet;
use std::time::Duration;

#[component]
pub(crate) fn TrackRow(track_id: String) -> impl IntoView {
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
    let index = crate::app::track_index(sig, id.clone());
    let color = move || crate::app::track_color(index.get());
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
    // The shared loop region: the steps it never plays are dimmed.
    let loop_region =
        Memo::new(move |_| sig.state.with(|s| s.as_ref().and_then(|s| s.loop_region)));
    // Painting: a press on a step and a drag across others sets them all to the first step's
    // new state, sent as one edit (one undo) on release; a press without a drag is a click.
    let paint = RwSignal::new(None::<Paint>);
    let tid = track_id.clone();
    let paint_move = window_event_listener(leptos::ev::pointermove, move |e| {
        if paint.with_untracked(|p| p.is_none()) {
            return;
        }
        let Some(k) = cell_at(e.client_x(), e.client_y(), &tid) else {
            return;
        };
        if paint.with_untracked(|p| p.as_ref().is_some_and(|p| !p.steps.contains(&k))) {
            cancel_press();
            paint.update(|p| {
                if let Some(p) = p {
                    p.steps.insert(k);
                }
            });
        }
    });
    let tid = track_id.clone();
    let paint_end = move |send: bool| {
        let Some(p) = paint.get_untracked() else {
            return;
        };
        paint.set(None);
        if p.steps.len() < 2 || !send {
            return;
        }
        eat_click.set_value(true);
        let edits: Vec<Edit> = track.with_untracked(|t| {
            t.as_ref()
                .map(|t| {
                    p.steps
                        .iter()
                        .filter(|&&k| t.steps.get(k) != p.on)
                        .map(|&k| Edit::SetStep {
                            track_id: tid.clone(),
                            step: k as i64,
                            active: p.on,
                        })
                        .collect()
                })
                .unwrap_or_default()
        });
        if !edits.is_empty() {
            live::edit(Edit::Batch { edits });
        }
    };
    // A second finger on the grid makes it a scroll: no paint, no long press, no toggle.
    Effect::new(move |_| {
        if ui.two_finger.get() {
            if paint.with_untracked(|p| p.is_some()) {
                paint.set(None);
            }
            cancel_press();
            eat_click.set_value(true);
        }
    });
    let pe = paint_end.clone();
    let paint_up = window_event_listener(leptos::ev::pointerup, move |_| pe(true));
    let paint_cancel = window_event_listener(leptos::ev::pointercancel, move |_| paint_end(false));
    on_cleanup(move || {
        paint_move.remove();
        paint_up.remove();
        paint_cancel.remove();
    });
    let tid = track_id.clone();
    let cells = move || {
        let Some(t) = track.get() else {
            return Vec::new();
        };
        let tid = tid.clone();
        let sc = t.step_count as usize;
        (0..sc).map(move |k| {
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
            let painted = move |k: usize| paint.with(|p| p.as_ref().filter(|p| p.steps.contains(&k)).map(|p| p.on));
            let open = {
                let tid = tid.clone();
                move || ui.sheet.set(Some(Sheet::Lock(tid.clone(), k as u8)))
            };
            let (o1, o2, o3, o4) = (open.clone(), open.clone(), open.clone(), open);
            let tid_click = tid.clone();
            view! {
                <button class="cell" class:on=move || painted(k).unwrap_or(on)
                    class:painting=move || painted(k).is_some()
                    class:out-loop=move || loop_region.get().is_some_and(|r| !r.sounds(k, sc))
                    class:beat=k % 4 == 0 class:now=move || playhead.get() == Some(k)
                    class:locked=lock.is_some() aria-pressed=on.to_string() aria-label=label
                    style=move || format!("--track:{};{}", color(), glow().unwrap_or_default())
                    data-step=k.to_string()
                    prop:disabled=move || sig.read_only.get()
                    on:pointerdown=move |e: leptos::ev::PointerEvent| {
                        eat_click.set_value(false);
                        cancel_press();
                        if ui.two_finger.get_untracked() {
                            eat_click.set_value(true);
                            return;
                        }
                        if e.button() == 0 && !e.shift_key() && !ui.lock_mode.get_untracked() && !sig.read_only.get_untracked() {
                            // Not BTreeSet::from([k]): that sorts (keyboardia_core::sorted).
                            let mut steps = BTreeSet::new();
                            steps.insert(k);
                            paint.set(Some(Paint { on: !on, steps }));
                        }
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
            .map(|c| crate::text::upper(c.encode_utf8(&mut [0; 4])))
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
            Some(Sheet::Track(t))
            | Some(Sheet::Instrument(t))
            | Some(Sheet::Lock(t, _))
            | Some(Sheet::Roll(t)) => t == id,
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
                        <PatternMenu track_id=id2.clone() name=Signal::derive(name)/>
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

/// A paint in progress: the state every touched step gets, and the steps touched.
#[derive(Clone, Debug, PartialEq)]
struct Paint {
    on: bool,
    steps: BTreeSet<usize>,
}

/// The step of track `track` under the point (client coordinates), if a cell of it is there.
fn cell_at(x: i32, y: i32, track: &str) -> Option<usize> {
    let el = web_sys::window()?
        .document()?
        .element_from_point(x as f32, y as f32)?;
    let cell = el.closest(".cell").ok().flatten()?;
    let row = cell.closest(".track").ok().flatten()?;
    if row.get_attribute("data-track").as_deref() != Some(track) {
        return None;
    }
    cell.get_attribute("data-step")?.parse().ok()
}
