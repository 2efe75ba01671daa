//! The instrument picker of a track: every instrument of the core's catalogue (and the
//! session's recordings) grouped by category, filtered by typing, operable from the keyboard
//! (arrows move, Enter chooses, Shift+Enter auditions, Esc closes), with an audition button per
//! instrument that plays one note for this player only (loading a sampled instrument first)
//! without touching the shared session. Choosing sends `SetTrackInstrument` (through
//! `on_choose`). A track whose instrument this build does not know shows "unknown instrument".
//! The panel's footer opens the Credits: each sampled instrument's licence and credit.

use keyboardia_core::catalogue::{self, Category, Kind};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::sampled;

pub const CATEGORIES: [(Category, &str); 12] = [
    (Category::Drums, "Drums"),
    (Category::Bass, "Bass"),
    (Category::Keys, "Keys"),
    (Category::Guitar, "Guitar"),
    (Category::Strings, "Strings"),
    (Category::Voices, "Voices"),
    (Category::Brass, "Brass"),
    (Category::Winds, "Winds"),
    (Category::Mallets, "Mallets"),
    (Category::Leads, "Leads"),
    (Category::Pads, "Pads"),
    (Category::Fx, "FX"),
];

#[derive(Clone, Debug, PartialEq)]
struct Item {
    id: String,
    name: String,
    group: &'static str,
    sampled: bool,
}

fn all_items(recordings: &[(String, String)]) -> Vec<Item> {
    let mut v = Vec::new();
    for (cat, label) in CATEGORIES {
        for e in catalogue::all().iter().filter(|e| e.category == cat) {
            v.push(Item {
                id: e.id.to_string(),
                name: e.name.to_string(),
                group: label,
                sampled: e.kind == Kind::Sampled,
            });
        }
    }
    for (id, name) in recordings {
        v.push(Item {
            id: id.clone(),
            name: name.clone(),
            group: "Recordings",
            sampled: false,
        });
    }
    v
}

/// Whether every word typed appears in the item's name, group or id.
fn matches(item: &Item, query: &str) -> bool {
    let hay = crate::text::lower(&format!("{} {} {}", item.name, item.group, item.id));
    query
        .split_whitespace()
        .all(|w| hay.contains(&crate::text::lower(w)))
}

/// The display name of a track's instrument, or None if this build does not know it.
pub fn display_name(id: &str, recordings: &[(String, String)]) -> Option<String> {
    catalogue::lookup(id)
        .map(|e| e.name.to_string())
        .or_else(|| {
            recordings
                .iter()
                .find(|(r, _)| r == id)
                .map(|(_, n)| n.clone())
        })
}

const STYLE: &str = r#"
.picker{position:relative;display:inline-block}
.picker-button{min-width:9rem;text-align:left}
.picker-button .unknown{color:#c0392b;font-style:italic}
.picker-progress{font-size:.75em;opacity:.75;margin-left:.4em}
.picker-panel{position:absolute;z-index:50;top:100%;left:0;width:19rem;max-height:24rem;display:flex;flex-direction:column;background:var(--panel,#1d1f24);color:inherit;border:1px solid #555;border-radius:6px;padding:.4rem;box-shadow:0 6px 24px #0008}
.picker-panel input{width:100%;box-sizing:border-box;margin-bottom:.3rem}
.picker-list{list-style:none;margin:0;padding:0;overflow-y:auto;flex:1}
.picker-group{font-size:.75em;text-transform:uppercase;opacity:.6;padding:.3rem .2rem .1rem}
.picker-item{display:flex;align-items:center;gap:.3rem;padding:.15rem .3rem;border-radius:4px;cursor:pointer}
.picker-item[aria-selected=true]{background:#3a6df0;color:#fff}
.picker-item.current .picker-name{font-weight:bold}
.picker-name{flex:1}
.picker-tag{font-size:.7em;opacity:.7}
.picker-item .audition{padding:0 .4rem;line-height:1.4}
.picker-foot{display:flex;justify-content:space-between;align-items:center;font-size:.8em;margin-top:.3rem}
.credits{position:fixed;z-index:60;inset:10% 15%;overflow:auto;background:var(--panel,#1d1f24);border:1px solid #555;border-radius:8px;padding:1rem}
.credits li{margin:.4rem 0}
"#;

fn ensure_style() {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    if doc.get_element_by_id("kb-picker-style").is_some() {
        return;
    }
    if let (Ok(el), Some(head)) = (doc.create_element("style"), doc.head()) {
        el.set_id("kb-picker-style");
        el.set_text_content(Some(STYLE));
        let _ = head.append_child(&el);
    }
}

/// Plays one note of `id` on track `track` for this player only, starting the sound and
/// loading the instrument if needed.
fn audition(track: usize, id: String, status: RwSignal<String>) {
    spawn_local(async move {
        if let Err(e) = crate::audio::start().await {
            status.set(format!("Audio could not start: {}", crate::api::js_err(e)));
            return;
        }
        if let Some(e) = catalogue::lookup(&id).filter(|e| e.kind == Kind::Sampled) {
            let v = keyboardia_audio::sampler::DEFAULT_VELOCITY;
            sampled::ensure(&id, vec![(e.base, v)]);
            let mut waited = 0;
            while !sampled::note_ready(&id, e.base, v) {
                if waited == 0 {
                    status.set(format!("Loading {}…", e.name));
                }
                if waited > 300
                    || sampled::progress()
                        .get_untracked()
                        .get(&id)
                        .is_some_and(|p| p.failed)
                {
                    status.set(format!("{} could not be loaded", e.name));
                    return;
                }
                crate::audio::sleep_ms(50).await;
                waited += 1;
            }
            status.set(String::new());
        }
        crate::audio::audition(track, &id);
    });
}

/// A track's instrument picker: a button naming the instrument (with its loading progress)
/// that opens the searchable list.
#[component]
pub fn Picker(
    /// The track's instrument id.
    value: String,
    /// The track's position (auditions play on its bus).
    track: Memo<usize>,
    on_choose: Callback<String>,
    #[prop(default = Vec::new())] recordings: Vec<(String, String)>,
) -> impl IntoView {
    ensure_style();
    let open = RwSignal::new(false);
    let query = RwSignal::new(String::new());
    let active = RwSignal::new(0usize);
    let status = RwSignal::new(String::new());
    let credits = RwSignal::new(false);
    let input = NodeRef::<leptos::html::Input>::new();
    let button = NodeRef::<leptos::html::Button>::new();
    let items = StoredValue::new(all_items(&recordings));
    let filtered = Memo::new(move |_| {
        let q = query.get();
        items.with_value(|v| {
            v.iter()
                .filter(|i| matches(i, &q))
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    let name = display_name(&value, &recordings);
    let cur_id = StoredValue::new(value.clone());
    let current = value.clone();
    let progress_id = value.clone();
    let progress_text = move || {
        let p = sampled::progress().get().get(&progress_id).copied()?;
        if p.failed {
            Some("samples unavailable".to_string())
        } else if p.done() {
            None
        } else {
            Some(format!("loading {}/{}", p.loaded, p.total))
        }
    };
    let close = move || {
        open.set(false);
        query.set(String::new());
        if let Some(b) = button.get_untracked() {
            let _ = b.focus();
        }
    };
    let choose = move |id: String| {
        close();
        if id != current {
            on_choose.run(id);
        }
    };
    let choose2 = choose.clone();
    let toggle = move |_| {
        let now = !open.get_untracked();
        open.set(now);
        if now {
            // Start on the current instrument.
            let cur = value.clone();
            active.set(
                filtered
                    .get_untracked()
                    .iter()
                    .position(|i| i.id == cur)
                    .unwrap_or(0),
            );
            request_focus(input);
        }
    };
    let keys = move |e: leptos::ev::KeyboardEvent| {
        let n = filtered.with_untracked(|f| f.len());
        match e.key().as_str() {
            "ArrowDown" => {
                e.prevent_default();
                if n > 0 {
                    active.update(|a| *a = (*a + 1).min(n - 1));
                }
                scroll_active();
            }
            "ArrowUp" => {
                e.prevent_default();
                active.update(|a| *a = a.saturating_sub(1));
                scroll_active();
            }
            "Enter" => {
                e.prevent_default();
                let pick = filtered.with_untracked(|f| f.get(active.get_untracked()).cloned());
                if let Some(i) = pick {
                    if e.shift_key() {
                        audition(track.get_untracked(), i.id, status);
                    } else {
                        choose2(i.id);
                    }
                }
            }
            "Escape" => {
                e.prevent_default();
                e.stop_propagation();
                close();
            }
            _ => {}
        }
    };
    let list = move || {
        if !open.get() {
            return Vec::new();
        }
        let f = filtered.get();
        let mut last_group = "";
        let mut out = Vec::new();
        if f.is_empty() {
            out.push(view! { <li class="picker-group">"No instrument matches"</li> }.into_any());
        }
        for (k, it) in f.into_iter().enumerate() {
            if it.group != last_group {
                last_group = it.group;
                out.push(
                    view! { <li class="picker-group" role="presentation">{it.group}</li> }
                        .into_any(),
                );
            }
            let id = it.id.clone();
            let id2 = it.id.clone();
            let is_current = cur_id.with_value(|c| *c == it.id);
            let choose = choose.clone();
            let label = format!("Audition {}", it.name);
            out.push(
                view! {
                    <li class="picker-item" role="option" id=format!("picker-opt-{k}")
                        class:current=is_current data-id=it.id.clone()
                        aria-selected=move || (active.get() == k).to_string()
                        on:mousemove=move |_| if active.get_untracked() != k { active.set(k) }
                        on:click=move |_| choose(id.clone())>
                        <span class="picker-name">{it.name.clone()}</span>
                        {it.sampled.then(|| view! { <span class="picker-tag">"sampled"</span> })}
                        <button class="audition" tabindex="-1" aria-label=label title="Hear it (only you)"
                            on:click=move |e: leptos::ev::MouseEvent| {
                                e.stop_propagation();
                                audition(track.get_untracked(), id2.clone(), status);
                            }>"▶"</button>
                    </li>
                }
                .into_any(),
            );
        }
        out
    };
    view! {
        <div class="picker">
            <button class="picker-button" node_ref=button aria-haspopup="listbox"
                aria-expanded=move || open.get().to_string()
                title="Change the instrument" on:click=toggle>
                {match name {
                    Some(n) => view! { <span>{n}</span> }.into_any(),
                    None => view! { <span class="unknown">"unknown instrument"</span> }.into_any(),
                }}
                <span class="picker-progress">{progress_text}</span>
            </button>
            <div class="picker-panel" role="dialog" aria-label="Choose an instrument" on:keydown=keys
                    style:display=move || if open.get() { "flex" } else { "none" }>
                    <input type="search" node_ref=input placeholder="Search instruments"
                        aria-label="Search instruments" aria-controls="picker-list"
                        title="Arrows move, Enter chooses, Shift+Enter plays it for you, Esc closes"
                        prop:value=move || query.get()
                        on:input=move |e| { query.set(event_target_value(&e)); active.set(0); }/>
                    <ul class="picker-list" role="listbox" aria-label="Instruments">{list}</ul>
                    <div class="picker-foot">
                        <span class="picker-status" aria-live="polite">{move || status.get()}</span>
                        <button class="link" on:click=move |_| credits.set(true)>"Credits"</button>
                    </div>
            </div>
            <Show when=move || credits.get()>
                {move || Suspend::new(async move { crate::lazy::view_or_notice(credits_view(Callback::new(move |_| credits.set(false))).await) })}
            </Show>
        </div>
    }
}

fn request_focus(input: NodeRef<leptos::html::Input>) {
    request_animation_frame(move || {
        if let Some(i) = input.get_untracked() {
            let _ = i.focus();
        }
    });
}

fn scroll_active() {
    request_animation_frame(|| {
        if let Some(el) = web_sys::window().and_then(|w| w.document()).and_then(|d| {
            d.query_selector(".picker-item[aria-selected=true]")
                .ok()
                .flatten()
        }) {
            el.scroll_into_view_with_bool(false);
        }
    });
}

/// The licence and credit of every instrument, by licence (the full texts ship with the
/// sample library as CREDITS.txt).
/// The credits, in the sheets' wasm module (fetched when first needed).
#[leptos::wasm_split::wasm_split(sheets, wasm_split_path = ::leptos::wasm_split, fallible)]
fn credits_view(on_close: Callback<()>) -> Result<AnyView, crate::lazy::NotLoaded> {
    Ok(view! { <Credits on_close=on_close/> }.into_any())
}

#[component]
pub fn Credits(on_close: Callback<()>) -> impl IntoView {
    let mut keys: Vec<&'static str> = catalogue::all().iter().map(|e| e.licence).collect();
    keyboardia_core::sorted::sort_by(&mut keys, |a, b| a.cmp(b));
    keys.dedup();
    let sections = keys
        .into_iter()
        .map(|k| {
            let names: Vec<&str> = catalogue::all()
                .iter()
                .filter(|e| e.licence == k)
                .map(|e| e.name)
                .collect();
            let text = catalogue::credit(k).unwrap_or(k);
            view! {
                <li data-licence=k><strong>{text}</strong>
                    <br/><small>{format!("{} instruments: {}", names.len(), names.join(", "))}</small></li>
            }
        })
        .collect_view();
    view! {
        <div class="credits" role="dialog" aria-label="Credits"
            on:keydown=move |e: leptos::ev::KeyboardEvent| if e.key() == "Escape" { on_close.run(()) }>
            <h2>"Credits"</h2>
            <p>"Keyboardia's sampled instruments and their licences. The full licence texts: "
                <a href="/api/samples/CREDITS.txt" target="_blank" rel="noopener">"CREDITS.txt"</a>"."</p>
            <ul>{sections}</ul>
            <button on:click=move |_| on_close.run(())>"Close"</button>
        </div>
    }
}
