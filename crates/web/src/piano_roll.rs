//! The piano roll of a melodic track: notes over the scale's pitches, placed, painted, lengthened,
//! moved and weighted (velocity) with a pointer or the keyboard alone; each gesture is one edit.
//!
//! A step holds one note: the step on, its pitch lock, and the tie locks of the steps that
//! follow it (its length). Every gesture ends in one `BATCH` of the step and lock edits that turn
//! the track's notes into the new ones, so it is one undo.

use keyboardia_core::limits::{CHORD_MAX_NOTES, PITCH_MAX, PITCH_MIN};
use keyboardia_core::model::{Chord, Lock, Track};
use keyboardia_core::music::{track_base, Key, Scale};
use keyboardia_core::protocol::{Edit, LockRequest};
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::app::ui;
use crate::grid::current_step;
use crate::key::note_name;
use crate::sheets::{sheet_track, SheetHead};
use crate::{audio, live};

/// The notes of one step: `len` steps from `start` (the first step on, the others tied),
/// `pitches` in semitones from the track's note (the step's pitch first, then its chord), and
/// `vol` their velocity (the head's volume lock; none is full).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Note {
    pub start: usize,
    pub len: usize,
    pub pitches: Vec<i8>,
    pub vol: Option<f32>,
}

/// The notes of a track's loop, one entry a struck step.
pub(crate) fn notes_of(t: &Track) -> Vec<Note> {
    let n = t.step_count as usize;
    let mut out: Vec<Note> = Vec::new();
    for k in 0..n {
        if !t.steps.get(k) {
            continue;
        }
        let lock = t.locks.get(&(k as u8)).copied().unwrap_or_default();
        match out.last_mut() {
            Some(last) if lock.tie && last.start + last.len == k => last.len += 1,
            _ => out.push(Note {
                start: k,
                len: 1,
                pitches: lock.notes().collect(),
                vol: lock.volume,
            }),
        }
    }
    out
}

/// The lock a step of `note` gets (`j` steps into it); the roll does not own `cutoff`, kept.
fn lock_for(note: &Note, j: usize, cutoff: Option<f32>) -> Lock {
    let pitch = note.pitches.first().copied().unwrap_or(0);
    let rest: Vec<i64> = note.pitches.iter().skip(1).map(|&p| p as i64).collect();
    Lock {
        pitch: (pitch != 0).then_some(pitch),
        volume: if j == 0 { note.vol } else { None },
        tie: j > 0,
        cutoff,
        chord: Chord::new(&rest).unwrap_or_default().without(pitch),
    }
}

/// The step edits that turn track `t`'s notes into `notes` (steps outside the loop, locks of
/// steps that stay off, and cutoff locks are left alone).
pub(crate) fn pattern_edits(t: &Track, notes: &[Note]) -> Vec<Edit> {
    let n = t.step_count as usize;
    let cur = |k: usize| t.locks.get(&(k as u8)).copied().unwrap_or_default();
    let mut want: Vec<Option<Lock>> = vec![None; n];
    for note in notes {
        for j in 0..note.len {
            let k = note.start + j;
            if let Some(w) = want.get_mut(k) {
                *w = Some(lock_for(note, j, cur(k).cutoff));
            }
        }
    }
    let mut edits = Vec::new();
    for (k, w) in want.into_iter().enumerate() {
        let on = t.steps.get(k);
        let cur = cur(k);
        let lock_edit = |l: Lock| Edit::SetParameterLock {
            track_id: t.id.clone(),
            step: k as i64,
            lock: (!l.is_empty()).then(|| LockRequest {
                pitch: l.pitch.map(i64::from),
                volume: l.volume.map(f64::from),
                tie: l.tie,
                cutoff: l.cutoff.map(f64::from),
                chord: l.chord.iter().map(i64::from).collect(),
            }),
        };
        let set = |active: bool| Edit::SetStep {
            track_id: t.id.clone(),
            step: k as i64,
            active,
        };
        match w {
            Some(l) => {
                if !on {
                    edits.push(set(true));
                }
                if cur != l {
                    edits.push(lock_edit(l));
                }
            }
            None if on => {
                edits.push(set(false));
                let bare = Lock {
                    cutoff: cur.cutoff,
                    ..Lock::default()
                };
                if cur != bare {
                    edits.push(lock_edit(bare));
                }
            }
            None => {}
        }
    }
    edits
}

/// The note covering step `k`.
fn covering(notes: &[Note], k: usize) -> Option<usize> {
    notes
        .iter()
        .position(|n| n.start <= k && k < n.start + n.len)
}

/// Frees steps `from..to` for a note: a note starting before is cut short, notes starting
/// inside go.
fn clear_span(notes: &mut Vec<Note>, from: usize, to: usize) {
    notes.retain(|n| !(n.start >= from && n.start < to));
    for n in notes.iter_mut() {
        if n.start < from && n.start + n.len > from {
            n.len = from - n.start;
        }
    }
}

/// Places `pitch` at step `start`: into the chord of the notes struck there (false if that
/// step is full), or as a new note of `len` steps.
pub(crate) fn place(notes: &mut Vec<Note>, start: usize, pitch: i8, len: usize) -> bool {
    if let Some(n) = notes.iter_mut().find(|n| n.start == start) {
        if n.pitches.contains(&pitch) {
            return true;
        }
        if n.pitches.len() >= CHORD_MAX_NOTES {
            return false;
        }
        n.pitches.push(pitch);
        return true;
    }
    clear_span(notes, start, start + len);
    notes.push(Note {
        start,
        len,
        pitches: vec![pitch],
        vol: None,
    });
    keyboardia_core::sorted::sort_by_key(notes, |n| n.start);
    true
}

/// Removes `pitch` from note `i` (the whole note when it was its last).
pub(crate) fn remove_pitch(notes: &mut Vec<Note>, i: usize, pitch: i8) {
    if let Some(n) = notes.get_mut(i) {
        n.pitches.retain(|&p| p != pitch);
        if n.pitches.is_empty() {
            notes.remove(i);
        }
    }
}

/// Note `i` made `len` long (within `count` steps), over whatever it now covers.
pub(crate) fn set_len(notes: &mut Vec<Note>, i: usize, len: usize, count: usize) {
    let Some(start) = notes.get(i).map(|n| n.start) else {
        return;
    };
    let len = len.clamp(1, count.saturating_sub(start).max(1));
    notes.retain(|m| !(m.start > start && m.start < start + len));
    if let Some(m) = notes.iter_mut().find(|m| m.start == start) {
        m.len = len;
    }
}

/// The pitches the roll shows, highest first: the key's (every semitone when it is chromatic or
/// key lock is off) over the whole pitch range, and any pitch a note already has.
pub(crate) fn rows_for(key: &Key, base: i32, notes: &[Note]) -> Vec<i8> {
    let all = key.free || key.scale == Scale::Chromatic;
    (PITCH_MIN..=PITCH_MAX)
        .rev()
        .filter(|&p| {
            all || key.contains(base + p as i32) || notes.iter().any(|n| n.pitches.contains(&p))
        })
        .collect()
}

/// What a pointer gesture on the roll is doing.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Drag {
    /// Placing notes of `pitch` on every step passed.
    Paint { pitch: i8 },
    /// Moving pitch `from` of the notes at `start` up or down (now at `now`).
    Move { start: usize, from: i8, now: i8 },
    /// Dragging the end of the note at `start`.
    Length { start: usize },
    /// Setting velocities in the lane.
    Velocity,
}

/// Plays one note of the track for this player only (a placed or moved note).
fn audition(t: &Track, index: usize, pitch: i8) {
    if audio::is_running() {
        audio::audition_pitch(index, &t.instrument, t.transpose as i32 + pitch as i32);
    }
}

#[component]
pub(crate) fn PianoRoll(id: String) -> impl IntoView {
    let ui = ui();
    let sig = ui.sig;
    let track = sheet_track(ui, id.clone());
    let key = Memo::new(move |_| {
        sig.state
            .with(|s| s.as_ref().map(|s| s.key).unwrap_or_default())
    });
    let index = crate::app::track_index(sig, id.clone());
    let color = move || crate::app::track_color(index.get());
    let draft = RwSignal::new(None::<Vec<Note>>);
    let notes = Memo::new(move |_| {
        draft
            .get()
            .unwrap_or_else(|| track.with(|t| t.as_ref().map(notes_of).unwrap_or_default()))
    });
    let count =
        Memo::new(move |_| track.with(|t| t.as_ref().map(|t| t.step_count as usize).unwrap_or(16)));
    let base = Memo::new(move |_| track.with(|t| t.as_ref().map(track_base).unwrap_or(60)));
    let rows = Memo::new(move |_| notes.with(|ns| rows_for(&key.get(), base.get(), ns)));
    let row_of = move |p: i8| rows.with(|r| r.iter().position(|&x| x == p));
    let first_pitch = notes.with_untracked(|ns| ns.first().map(|n| n.pitches[0]).unwrap_or(0));
    // Set when a step was already full (four notes): the status says so.
    let full = RwSignal::new(false);
    let cursor = RwSignal::new((0usize, first_pitch));
    let drag = StoredValue::new(None::<Drag>);
    let area = NodeRef::<leptos::html::Div>::new();
    let lane = NodeRef::<leptos::html::Div>::new();
    let scroller = NodeRef::<leptos::html::Div>::new();

    let commit = move |new: Vec<Note>| {
        draft.set(None);
        let edits = track.with_untracked(|t| {
            t.as_ref()
                .map(|t| pattern_edits(t, &new))
                .unwrap_or_default()
        });
        if !edits.is_empty() {
            live::edit(Edit::Batch { edits });
        }
    };
    let hear = move |p: i8| {
        if let Some(t) = track.get_untracked() {
            audition(&t, index.get_untracked(), p);
        }
    };
    // The step and row under a point of the roll.
    let at = move |x: f64, y: f64| -> Option<(usize, usize)> {
        let el = area.get_untracked()?;
        let r = el.get_bounding_client_rect();
        let n = count.get_untracked().max(1);
        let nr = rows.with_untracked(|r| r.len()).max(1);
        let k = ((x - r.left()) / (r.width() / n as f64))
            .floor()
            .clamp(0.0, n as f64 - 1.0) as usize;
        let row = ((y - r.top()) / (r.height() / nr as f64))
            .floor()
            .clamp(0.0, nr as f64 - 1.0) as usize;
        Some((k, row))
    };
    let pitch_at = move |row: usize| rows.with_untracked(|r| r.get(row).copied().unwrap_or(0));

    let down = move |e: leptos::ev::PointerEvent| {
        if e.button() != 0 || sig.read_only.get_untracked() {
            return;
        }
        full.set(false);
        let Some((k, row)) = at(e.client_x() as f64, e.client_y() as f64) else {
            return;
        };
        if let Some(a) = area.get_untracked() {
            let _ = a.set_pointer_capture(e.pointer_id());
            let _ = a.focus();
        }
        e.prevent_default();
        let target = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok());
        let class = |c: &str| target.as_ref().is_some_and(|t| t.class_list().contains(c));
        let mut ns = notes.get_untracked();
        let p = pitch_at(row);
        if class("roll-end") || class("roll-note") {
            let Some(i) = covering(&ns, k) else { return };
            let start = ns[i].start;
            // The note under the pointer (its element says which pitch of a chord).
            let from = target
                .as_ref()
                .and_then(|t| t.closest(".roll-note").ok().flatten())
                .and_then(|t| t.get_attribute("data-pitch"))
                .and_then(|v| v.parse::<i8>().ok())
                .unwrap_or(ns[i].pitches[0]);
            cursor.set((start, from));
            drag.set_value(Some(if class("roll-end") {
                Drag::Length { start }
            } else {
                Drag::Move {
                    start,
                    from,
                    now: from,
                }
            }));
            draft.set(Some(ns));
        } else {
            cursor.set((k, p));
            if place(&mut ns, k, p, 1) {
                hear(p);
            } else {
                full.set(true);
            }
            drag.set_value(Some(Drag::Paint { pitch: p }));
            draft.set(Some(ns));
        }
    };
    let moved = move |e: leptos::ev::PointerEvent| {
        let Some(d) = drag.get_value() else { return };
        let Some((k, row)) = at(e.client_x() as f64, e.client_y() as f64) else {
            return;
        };
        let Some(mut ns) = draft.get_untracked() else {
            return;
        };
        match d {
            Drag::Paint { pitch } => {
                if ns
                    .iter()
                    .any(|n| n.start == k && n.pitches.contains(&pitch))
                {
                    return;
                }
                if !place(&mut ns, k, pitch, 1) {
                    full.set(true);
                }
                cursor.set((k, pitch));
            }
            Drag::Move { start, from, now } => {
                let p = pitch_at(row);
                let Some(n) = ns.iter_mut().find(|n| n.start == start) else {
                    return;
                };
                if p == now || n.pitches.contains(&p) {
                    return;
                }
                if let Some(x) = n.pitches.iter_mut().find(|x| **x == now) {
                    *x = p;
                }
                drag.set_value(Some(Drag::Move {
                    start,
                    from,
                    now: p,
                }));
                cursor.set((start, p));
                hear(p);
            }
            Drag::Length { start } => {
                let Some(i) = ns.iter().position(|n| n.start == start) else {
                    return;
                };
                let len = k.saturating_sub(start) + 1;
                if ns[i].len == len {
                    return;
                }
                set_len(&mut ns, i, len, count.get_untracked());
            }
            Drag::Velocity => return,
        }
        draft.set(Some(ns));
    };
    let up = move |_e: leptos::ev::PointerEvent| {
        let Some(d) = drag.get_value() else { return };
        drag.set_value(None);
        let Some(mut ns) = draft.get_untracked() else {
            return;
        };
        // A click on a note (no move) removes it (from its chord).
        if let Drag::Move { start, from, now } = d {
            if from == now {
                if let Some(i) = ns.iter().position(|n| n.start == start) {
                    remove_pitch(&mut ns, i, from);
                }
            }
        }
        commit(ns);
    };
    let cancel = move |_e: leptos::ev::PointerEvent| {
        drag.set_value(None);
        draft.set(None);
    };

    // The velocity lane: a press or a drag sets the velocity of the notes under it.
    let vel_at = move |e: &leptos::ev::PointerEvent| -> Option<(usize, f32)> {
        let el = lane.get_untracked()?;
        let r = el.get_bounding_client_rect();
        let n = count.get_untracked().max(1);
        let k = ((e.client_x() as f64 - r.left()) / (r.width() / n as f64))
            .floor()
            .clamp(0.0, n as f64 - 1.0) as usize;
        let v = (1.0 - (e.client_y() as f64 - r.top()) / r.height()).clamp(0.05, 1.0);
        Some((k, ((v * 20.0).round() / 20.0) as f32))
    };
    let set_vel = move |e: &leptos::ev::PointerEvent| {
        let Some((k, v)) = vel_at(e) else { return };
        let mut ns = draft
            .get_untracked()
            .unwrap_or_else(|| notes.get_untracked());
        if let Some(i) = covering(&ns, k) {
            ns[i].vol = (v < 1.0).then_some(v);
            cursor.set((ns[i].start, ns[i].pitches[0]));
        }
        draft.set(Some(ns));
    };
    let lane_down = move |e: leptos::ev::PointerEvent| {
        if e.button() != 0 || sig.read_only.get_untracked() {
            return;
        }
        if let Some(l) = lane.get_untracked() {
            let _ = l.set_pointer_capture(e.pointer_id());
        }
        e.prevent_default();
        drag.set_value(Some(Drag::Velocity));
        set_vel(&e);
    };
    let lane_move = move |e: leptos::ev::PointerEvent| {
        if drag.get_value() == Some(Drag::Velocity) {
            set_vel(&e);
        }
    };

    // The keyboard alone: arrows move the cursor, Shift+arrows change the note's length and
    // pitch, Enter or Space place, Delete removes, - and + change its velocity.
    let keys = move |e: leptos::ev::KeyboardEvent| {
        full.set(false);
        let (k, p) = cursor.get_untracked();
        let n = count.get_untracked();
        let mut ns = notes.get_untracked();
        let shift = e.shift_key();
        let row = row_of(p).unwrap_or(0);
        let nr = rows.with_untracked(|r| r.len());
        let key = e.key();
        let mut changed = false;
        match key.as_str() {
            "ArrowLeft" | "ArrowRight" if !shift => {
                let d = if key == "ArrowLeft" { -1 } else { 1 };
                cursor.set(((k as i64 + d).clamp(0, n as i64 - 1) as usize, p));
            }
            "ArrowUp" | "ArrowDown" if !shift => {
                let r = if key == "ArrowUp" {
                    row.saturating_sub(1)
                } else {
                    (row + 1).min(nr - 1)
                };
                cursor.set((k, pitch_at(r)));
            }
            "ArrowLeft" | "ArrowRight" => {
                if let Some(i) = covering(&ns, k) {
                    let len = if key == "ArrowLeft" {
                        ns[i].len.saturating_sub(1)
                    } else {
                        ns[i].len + 1
                    };
                    let start = ns[i].start;
                    set_len(&mut ns, i, len, n);
                    let end = ns
                        .iter()
                        .find(|m| m.start == start)
                        .map(|m| m.start + m.len - 1)
                        .unwrap_or(start);
                    cursor.set((end, p));
                    changed = true;
                }
            }
            "ArrowUp" | "ArrowDown" => {
                if let Some(i) = covering(&ns, k) {
                    // The cursor's note of the chord (else its first) moves to the next row.
                    let old = if ns[i].pitches.contains(&p) {
                        p
                    } else {
                        ns[i].pitches[0]
                    };
                    let r = row_of(old).unwrap_or(row);
                    let r = if key == "ArrowUp" {
                        r.saturating_sub(1)
                    } else {
                        (r + 1).min(nr - 1)
                    };
                    let np = pitch_at(r);
                    if !ns[i].pitches.contains(&np) {
                        if let Some(x) = ns[i].pitches.iter_mut().find(|x| **x == old) {
                            *x = np;
                        }
                        cursor.set((k, np));
                        hear(np);
                        changed = true;
                    }
                }
            }
            "Enter" | " " => {
                if !ns.iter().any(|m| m.start == k && m.pitches.contains(&p)) {
                    if place(&mut ns, k, p, 1) {
                        hear(p);
                        changed = true;
                    } else {
                        full.set(true);
                    }
                }
            }
            "Delete" | "Backspace" => {
                // The cursor's note of a chord, else the whole step's notes.
                if let Some(i) = covering(&ns, k) {
                    if ns[i].pitches.contains(&p) {
                        remove_pitch(&mut ns, i, p);
                    } else {
                        ns.remove(i);
                    }
                    changed = true;
                }
            }
            "-" | "+" | "=" => {
                if let Some(i) = covering(&ns, k) {
                    let v = ns[i].vol.unwrap_or(1.0) + if key == "-" { -0.1 } else { 0.1 };
                    let v = (v.clamp(0.1, 1.0) * 10.0).round() / 10.0;
                    ns[i].vol = (v < 1.0).then_some(v);
                    changed = true;
                }
            }
            _ => return,
        }
        e.prevent_default();
        e.stop_propagation();
        if changed && !sig.read_only.get_untracked() {
            commit(ns);
        }
        // Keep the cursor in view.
        request_animation_frame(move || {
            if let Some(c) = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| d.query_selector(".roll-cursor").ok().flatten())
            {
                let o = web_sys::ScrollIntoViewOptions::new();
                o.set_block(web_sys::ScrollLogicalPosition::Nearest);
                o.set_inline(web_sys::ScrollLogicalPosition::Nearest);
                c.scroll_into_view_with_scroll_into_view_options(&o);
            }
        });
    };

    // Opened: the cursor's row in the middle of the view.
    Effect::new(move |_| {
        let r = row_of(cursor.get_untracked().1).unwrap_or(0);
        request_animation_frame(move || {
            if let (Some(s), Some(a)) = (scroller.get_untracked(), area.get_untracked()) {
                let nr = rows.with_untracked(|r| r.len()).max(1) as f64;
                let rh = a.get_bounding_client_rect().height() / nr;
                s.set_scroll_top((r as f64 * rh - s.client_height() as f64 / 2.0).max(0.0) as i32);
            }
        });
    });

    // The playhead: the step this track plays now.
    let playhead = Memo::new(move |_| {
        let now = ui.now.get();
        sig.state.with(|s| {
            s.as_ref()
                .and_then(|s| track.with(|t| t.as_ref().and_then(|t| current_step(s, t, now))))
        })
    });
    let name = move || track.with(|t| t.as_ref().map(|t| t.name.clone()).unwrap_or_default());
    let status = move || {
        let (k, p) = cursor.get();
        let b = base.get();
        if full.get() {
            return format!(
                "Step {} already holds {CHORD_MAX_NOTES} notes: remove one first",
                k + 1
            );
        }
        let what = notes.with(|ns| match covering(ns, k) {
            Some(i) => {
                let n = &ns[i];
                let names: Vec<String> =
                    n.pitches.iter().map(|&p| note_name(b + p as i32)).collect();
                format!(
                    "{} {} from step {}, {} step{}, velocity {}%",
                    if names.len() > 1 { "chord" } else { "note" },
                    names.join(" "),
                    n.start + 1,
                    n.len,
                    if n.len == 1 { "" } else { "s" },
                    (n.vol.unwrap_or(1.0) * 100.0).round()
                )
            }
            None => "no note".into(),
        });
        format!("Step {}, {}: {what}", k + 1, note_name(b + p as i32))
    };
    let pos = move |start: usize, row: usize, len: usize| {
        format!(
            "left:calc({start} * var(--cw));top:calc({row} * var(--rh));width:calc({len} * var(--cw))"
        )
    };
    view! {
        <SheetHead title=Signal::derive(move || format!("{} · piano roll", name()))/>
        <div class="sheet-body roll-body">
            <div class="roll-scroll" node_ref=scroller>
                <div class="roll" style=move || format!("--steps:{};--rows:{};--track:{}", count.get(), rows.with(|r| r.len()), color())>
                    <div class="roll-keys" aria-hidden="true">
                        {move || rows.get().into_iter().map(|p| {
                            let n = base.get() + p as i32;
                            let root = n.rem_euclid(12) == key.get().root as i32;
                            view! { <div class="roll-key" class:root=root class:zero=p == 0 data-pitch=p.to_string()>{note_name(n)}</div> }
                        }).collect_view()}
                    </div>
                    <div class="roll-area" node_ref=area tabindex="0" role="application"
                        aria-label=move || format!("Piano roll of {}: arrows move, Enter places a note, Shift and arrows change its length and pitch, Delete removes it", name())
                        aria-describedby="roll-status"
                        on:pointerdown=down on:pointermove=moved on:pointerup=up on:pointercancel=cancel
                        on:keydown=keys>
                        {move || rows.get().into_iter().enumerate().map(|(i, p)| {
                            let n = base.get() + p as i32;
                            let black = matches!(n.rem_euclid(12), 1 | 3 | 6 | 8 | 10);
                            view! { <div class="roll-row" class:black=black class:zero=p == 0 style=format!("top:calc({i} * var(--rh))")></div> }
                        }).collect_view()}
                        {move || notes.get().into_iter().flat_map(|n| n.pitches.iter().map(|&p| {
                            let row = row_of(p).unwrap_or(0);
                            view! {
                                <div class="roll-note" data-start=n.start.to_string() data-pitch=p.to_string() data-len=n.len.to_string()
                                    style=format!("{};opacity:{}", pos(n.start, row, n.len), 0.45 + 0.55 * n.vol.unwrap_or(1.0))>
                                    <span class="roll-end" title="Drag to change the length"></span>
                                </div>
                            }
                        }).collect::<Vec<_>>()).collect_view()}
                        <div class="roll-cursor" style=move || { let (k, p) = cursor.get(); pos(k, row_of(p).unwrap_or(0), 1) }></div>
                        {move || playhead.get().map(|k| view! { <div class="roll-now" style=format!("left:calc({k} * var(--cw))")></div> })}
                    </div>
                    <div class="roll-vel-label">"Velocity"</div>
                    <div class="roll-vel" node_ref=lane aria-hidden="true"
                        on:pointerdown=lane_down on:pointermove=lane_move on:pointerup=up on:pointercancel=cancel>
                        {move || notes.get().into_iter().map(|n| view! {
                            <div class="roll-vel-bar" data-start=n.start.to_string()
                                style=format!("left:calc({} * var(--cw));height:{}%", n.start, (n.vol.unwrap_or(1.0) * 100.0).round())></div>
                        }).collect_view()}
                    </div>
                </div>
            </div>
            <p id="roll-status" class="roll-status" role="status" aria-live="polite" data-testid="roll-status">{status}</p>
            <p class="dim">"Click to place a note (more on the same step make a chord), drag across steps to paint, drag a note up or down to change its pitch, drag its end to lengthen it; a click on a note removes it. Keys: arrows, Shift+arrows, Enter, Delete, − and +."</p>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyboardia_core::model::Steps;

    fn lock(pitch: Option<i8>, tie: bool) -> Lock {
        Lock {
            pitch,
            tie,
            ..Lock::default()
        }
    }

    #[test]
    fn notes_read_and_write_back_as_steps_and_locks() {
        let mut t = Track::new("t", "T", "synth/lead");
        t.steps = Steps::from_indices(&[0, 1, 2, 5]);
        t.locks.insert(
            0,
            Lock {
                volume: Some(0.5),
                cutoff: Some(800.0),
                ..lock(Some(3), false)
            },
        );
        t.locks.insert(1, lock(Some(3), true));
        t.locks.insert(2, lock(None, true));
        let ns = notes_of(&t);
        assert_eq!(
            ns,
            vec![
                Note {
                    start: 0,
                    len: 3,
                    pitches: vec![3],
                    vol: Some(0.5)
                },
                Note {
                    start: 5,
                    len: 1,
                    pitches: vec![0],
                    vol: None
                },
            ]
        );
        // Unchanged notes need no edit (and a cutoff lock is the roll's to keep).
        let mut same = t.clone();
        same.locks.insert(2, lock(Some(3), true));
        assert!(pattern_edits(&same, &notes_of(&same)).is_empty());
        // A note placed inside another cuts it short.
        let mut ns2 = ns.clone();
        assert!(place(&mut ns2, 1, -2, 1));
        assert_eq!(ns2[0].len, 1);
        assert_eq!(
            ns2[1],
            Note {
                start: 1,
                len: 1,
                pitches: vec![-2],
                vol: None
            }
        );
        let edits = pattern_edits(&t, &ns2);
        assert!(edits.iter().any(|e| matches!(e, Edit::SetParameterLock { step: 1, lock: Some(l), .. } if l.pitch == Some(-2) && !l.tie)));
        assert!(edits.iter().any(|e| matches!(
            e,
            Edit::SetStep {
                step: 2,
                active: false,
                ..
            }
        )));
        assert!(edits.iter().any(|e| matches!(e, Edit::SetParameterLock { step: 0, lock: Some(l), .. } if l.cutoff == Some(800.0))) || !edits.iter().any(|e| matches!(e, Edit::SetParameterLock { step: 0, .. })));
        // Lengthening covers the following steps with ties.
        let mut ns3 = ns.clone();
        set_len(&mut ns3, 1, 4, 16);
        assert_eq!(ns3[1].len, 4);
        let e3 = pattern_edits(&t, &ns3);
        assert!(e3.iter().any(|e| matches!(
            e,
            Edit::SetStep {
                step: 8,
                active: true,
                ..
            }
        )));
        assert!(e3
            .iter()
            .any(|e| matches!(e, Edit::SetParameterLock { step: 8, lock: Some(l), .. } if l.tie)));
        // The rows of C major over the range, highest first.
        let key = Key {
            root: 0,
            scale: Scale::Major,
            free: false,
        };
        let rows = rows_for(&key, 60, &[]);
        assert_eq!(rows.first(), Some(&24));
        assert!(rows.contains(&0) && !rows.contains(&1) && rows.contains(&2));
        assert_eq!(rows_for(&Key::default(), 60, &[]).len(), 49);
    }

    #[test]
    fn a_step_holds_a_chord_of_up_to_four_notes() {
        let mut t = Track::new("t", "T", "synth/lead");
        t.steps = Steps::from_indices(&[4]);
        let mut ns = notes_of(&t);
        for p in [4, 7, 11] {
            assert!(place(&mut ns, 4, p, 1));
        }
        assert!(!place(&mut ns, 4, 12, 1), "a fifth note does not fit");
        assert_eq!(ns[0].pitches, vec![0, 4, 7, 11]);
        let edits = pattern_edits(&t, &ns);
        assert!(edits.iter().any(|e| matches!(e, Edit::SetParameterLock { step: 4, lock: Some(l), .. } if l.pitch.is_none() && l.chord == vec![4, 7, 11])));
        // Removing the step's own pitch: the next note leads.
        remove_pitch(&mut ns, 0, 0);
        let l = lock_for(&ns[0], 0, None);
        assert_eq!((l.pitch, l.chord.as_slice()), (Some(4), &[7, 11][..]));
        // Read back from the lock: the same notes.
        t.locks.insert(4, l);
        assert_eq!(notes_of(&t)[0].pitches, vec![4, 7, 11]);
    }
}
