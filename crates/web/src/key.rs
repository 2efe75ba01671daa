//! The session's key: root and scale selects, the key lock, and "move the notes into the new key?".

use keyboardia_core::model::SessionState;
use keyboardia_core::music::{is_melodic, snap_pitch, Key, Scale};
use keyboardia_core::protocol::Edit;
use leptos::prelude::*;

use crate::app::ui;
use crate::live;

/// Note names of the twelve roots (0 = C).
pub(crate) const ROOTS: [&str; 12] = [
    "C", "C♯", "D", "E♭", "E", "F", "F♯", "G", "A♭", "A", "B♭", "B",
];

/// The name of MIDI note `n`, as "C4" (middle C).
pub(crate) fn note_name(n: i32) -> String {
    format!(
        "{}{}",
        ROOTS[n.rem_euclid(12) as usize],
        n.div_euclid(12) - 1
    )
}

/// "D Natural minor", or "Chromatic" (its root plays no part).
pub(crate) fn key_name(k: &Key) -> String {
    if k.scale == Scale::Chromatic {
        "Chromatic".into()
    } else {
        format!("{} {}", ROOTS[k.root as usize], k.scale.name())
    }
}

/// The scale's id on the wire (`natural-minor`): its JSON string without the quotes (the same
/// serde code as the messages', not a second instantiation for `serde_json::Value`).
fn scale_id(s: Scale) -> String {
    let json = serde_json::to_string(&s).unwrap_or_default();
    json.trim_matches('"').to_string()
}

fn scale_of(id: &str) -> Option<Scale> {
    serde_json::to_string(id)
        .ok()
        .and_then(|json| serde_json::from_str(&json).ok())
}

/// How many pitch locks of melodic tracks a change to `key` would move.
fn notes_to_move(s: &SessionState, key: &Key) -> usize {
    s.tracks
        .iter()
        .filter(|t| is_melodic(t))
        .map(|t| {
            t.locks
                .values()
                .filter_map(|l| l.pitch)
                .filter(|&p| snap_pitch(key, t, p) != p)
                .count()
        })
        .sum()
}

fn send(key: Key, move_notes: bool) {
    live::edit(Edit::SetKey {
        root: key.root as i64,
        scale: key.scale,
        free: key.free,
        move_notes,
    });
}

/// Root and scale selects and the key lock toggle. A change of key that would move notes asks
/// first: move them into the new key, or keep them where they are (either is one edit).
#[component]
pub(crate) fn KeyControl() -> impl IntoView {
    let ui = ui();
    let sig = ui.sig;
    let key = Memo::new(move |_| {
        sig.state
            .with(|s| s.as_ref().map(|s| s.key).unwrap_or_default())
    });
    // A key chosen but not sent yet (its notes would move): the question is open.
    let pending = RwSignal::new(None::<(Key, usize)>);
    let choose = move |k: Key| {
        let n = sig
            .state
            .with_untracked(|s| s.as_ref().map(|s| notes_to_move(s, &k)))
            .unwrap_or(0);
        if n == 0 {
            pending.set(None);
            send(k, false);
        } else {
            pending.set(Some((k, n)));
        }
    };
    let ro = move || sig.read_only.get();
    // What the selects show: the key being asked about, else the session's.
    let shown = move || pending.get().map(|p| p.0).unwrap_or_else(|| key.get());
    view! {
        <div class="key" role="group" aria-label="Key" data-testid="key">
            {move || if ro() {
                view! { <span class="as-text">"Key: "{move || key_name(&key.get())}</span> }.into_any()
            } else {
                view! {
                    <select class="key-root" aria-label="Key root" title="The key's root note"
                        prop:value=move || shown().root.to_string()
                        on:change=move |e| {
                            if let Ok(r) = event_target_value(&e).parse::<u8>() {
                                let mut k = pending.get_untracked().map(|p| p.0).unwrap_or(key.get_untracked());
                                k.root = r;
                                choose(k);
                            }
                        }>
                        {ROOTS.iter().enumerate().map(|(i, n)| view! {
                            <option value=i.to_string() selected=move || shown().root as usize == i>{*n}</option>
                        }).collect_view()}
                    </select>
                    <select class="key-scale" aria-label="Scale" title="The scale: key lock keeps pitches in it"
                        prop:value=move || scale_id(shown().scale)
                        on:change=move |e| {
                            if let Some(sc) = scale_of(&event_target_value(&e)) {
                                let mut k = pending.get_untracked().map(|p| p.0).unwrap_or(key.get_untracked());
                                k.scale = sc;
                                choose(k);
                            }
                        }>
                        {Scale::ALL.iter().map(|&sc| view! {
                            <option value=scale_id(sc) selected=move || shown().scale == sc>{sc.name()}</option>
                        }).collect_view()}
                    </select>
                    <button class="key-lock" aria-pressed=move || (!key.get().free).to_string()
                        title="Key lock: new pitches snap into the scale (melodic tracks)"
                        on:click=move |_| {
                            let mut k = key.get_untracked();
                            k.free = !k.free;
                            send(k, false);
                        }>
                        "Key lock"
                    </button>
                }.into_any()
            }}
            {move || pending.get().map(|(k, n)| view! {
                <div class="key-ask" role="alertdialog" aria-label="Move the notes into the new key?">
                    <span>{format!("{} to {}: move {n} note{} into the new key?", key_name(&key.get_untracked()), key_name(&k), if n == 1 { "" } else { "s" })}</span>
                    <button class="primary" data-testid="move-notes" on:click=move |_| { pending.set(None); send(k, true); }>"Move notes"</button>
                    <button data-testid="keep-notes" on:click=move |_| { pending.set(None); send(k, false); }>"Keep notes"</button>
                    <button aria-label="Cancel the key change" on:click=move |_| pending.set(None)>"Cancel"</button>
                </div>
            })}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_ids_are_the_wire_names_and_read_back() {
        assert_eq!(scale_id(Scale::NaturalMinor), "natural-minor");
        for s in Scale::ALL {
            assert_eq!(scale_of(&scale_id(s)), Some(s));
        }
        assert_eq!(scale_of("nope"), None);
        assert_eq!(scale_of("\"major"), None);
    }
}
