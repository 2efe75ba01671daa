//! The session header: name, who is here, share/remix/publish, exports, theme, and the published banner.

use crate::api;
use crate::app::derive;
use crate::app::local_storage;
use crate::app::source_key;
use crate::app::toggle_sheet;
use crate::app::ui;
use crate::app::Sheet;
use crate::live;
use keyboardia_core::protocol::Edit;
use leptos::prelude::*;

#[component]
pub(crate) fn Header() -> impl IntoView {
    let ui = ui();
    let sig = ui.sig;
    let id = ui.session_id.get_value();
    let page_url = web_sys::window()
        .and_then(|w| w.location().href().ok())
        .map(|u| u.split('?').next().unwrap_or("").to_string())
        .unwrap_or_default();
    let link = page_url.clone();
    let copy_link = move |_| {
        api::copy_to_clipboard(&link);
        sig.message.set(Some(
            "Link copied: send it to whoever you want to jam with".into(),
        ));
    };
    let name = move || {
        sig.state
            .with(|s| s.as_ref().map(|s| s.name.clone()).unwrap_or_default())
    };
    let export_href = format!("/api/sessions/{id}/export.wav");
    let midi_href = format!("/api/sessions/{id}/export.mid");
    let qr_src = format!("/api/sessions/{id}/qr.svg");
    view! {
        <header class="top">
            <a class="brand" href="/">"Keyboardia"</a>
            {move || if sig.read_only.get() {
                view! { <h1 class="session-name as-text">{name}</h1> }.into_any()
            } else {
                view! {
                    <input class="session-name" aria-label="Session name" prop:value=name
                        on:change=move |e| live::edit(Edit::SetSessionName { name: event_target_value(&e) })/>
                }.into_any()
            }}
            <Avatars/>
            <nav class="actions" aria-label="Session">
                <button aria-expanded=move || ui.share_open.get().to_string()
                    on:click=move |_| ui.share_open.update(|o| *o = !*o)>"Share"</button>
                <button class="remix" on:click=move |_| derive(ui, "remix")>"Remix"</button>
                <button class="fx-open" aria-haspopup="dialog" title="Effects (E)"
                    on:click=move |_| toggle_sheet(ui, Sheet::Effects)>"Effects"</button>
                <Show when=move || !sig.read_only.get()>
                    <button class="publish" aria-haspopup="dialog"
                        on:click=move |_| toggle_sheet(ui, Sheet::Publish)>"Publish…"</button>
                </Show>
                // On a phone these four live in the "More" sheet.
                <span class="wide-only">
                    <a class="button" href=export_href download="">"WAV"</a>
                    <a class="button" href=midi_href download="">"MIDI"</a>
                    <ThemeToggle/>
                    <button class="help" aria-label="Keyboard shortcuts and help" title="Shortcuts (?)"
                        aria-haspopup="dialog" on:click=move |_| toggle_sheet(ui, Sheet::Help)>"?"</button>
                </span>
                <button class="overflow" aria-label="More: export, theme, shortcuts" aria-haspopup="dialog"
                    on:click=move |_| toggle_sheet(ui, Sheet::More)>"⋯"</button>
            </nav>
        </header>
        <Show when=move || ui.share_open.get()>
            <div class="share" role="dialog" aria-label="Share this session">
                <img src=qr_src.clone() width="200" height="200" alt="QR code of this session's link"/>
                <div class="share-link">
                    <input readonly aria-label="Session link" prop:value=page_url.clone()/>
                    <button on:click=copy_link.clone()>"Copy link"</button>
                </div>
                <p class="dim">"Anyone with the link joins instantly. Esc closes this."</p>
            </div>
        </Show>
    }
}

/// Whether the light theme is on (dark by default), for every theme toggle on the page.
#[derive(Clone, Copy)]
pub(crate) struct LightTheme(pub(crate) RwSignal<bool>);

pub(crate) fn light_theme() -> LightTheme {
    use_context::<LightTheme>().unwrap_or_else(|| {
        let on = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
            .and_then(|r| r.get_attribute("data-theme"))
            .as_deref()
            == Some("light");
        let t = LightTheme(RwSignal::new(on));
        provide_context(t);
        t
    })
}

/// The light or dark theme (dark by default), kept in this browser.
#[component]
pub(crate) fn ThemeToggle() -> impl IntoView {
    let light = light_theme().0;
    let toggle = move |_| {
        let l = !light.get_untracked();
        light.set(l);
        let theme = if l { "light" } else { "dark" };
        if let Some(r) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
        {
            let _ = r.set_attribute("data-theme", theme);
        }
        if let Some(s) = local_storage() {
            let _ = s.set_item("keyboardia-theme", theme);
        }
    };
    view! {
        <button class="theme" aria-pressed=move || light.get().to_string() on:click=toggle
            title="Switch between the dark and the light theme">
            {move || if light.get() { "Dark theme" } else { "Light theme" }}
        </button>
    }
}

/// The published session's banner: read-only, a Remix button, and for the player who published
/// it, the way back to their editable session.
#[component]
pub(crate) fn Banner() -> impl IntoView {
    let ui = ui();
    let back = local_storage().and_then(|s| {
        s.get_item(&source_key(&ui.session_id.get_value()))
            .ok()
            .flatten()
    });
    view! {
        <div class="banner" role="status">
            <span>"Published copy: read-only. Remix it to make your own editable copy."</span>
            <button class="primary" on:click=move |_| derive(ui, "remix")>"Remix it"</button>
            {back.map(|src| view! {
                <a class="button" data-testid="back-to-source" href=format!("/s/{src}")>"← Back to your editable session"</a>
            })}
        </div>
    }
}

#[component]
pub(crate) fn Avatars() -> impl IntoView {
    let sig = ui().sig;
    view! {
        <ul class="avatars" aria-label="Who is here">
            {move || {
                let me = sig.me.get().map(|m| m.id);
                let mut players = sig.players.get();
                // This player first, marked.
                keyboardia_core::sorted::sort_by_key(&mut players, |p| Some(&p.id) != me.as_ref());
                let more = players.len().saturating_sub(5);
                let shown: Vec<_> = players
                    .into_iter()
                    .take(5)
                    .map(|p| {
                        let initials: String =
                            p.name.split_whitespace().filter_map(|w| w.chars().next()).collect();
                        let mine = Some(&p.id) == me.as_ref();
                        let label = if mine { format!("{} (you)", p.name) } else { p.name.clone() };
                        view! {
                            <li class="avatar" class:me=mine style=format!("--player:{};color:{}", p.color, ink_on(&p.color))
                                title=label.clone() aria-label=label>{initials}</li>
                        }
                    })
                    .collect();
                view! {
                    {shown}
                    {(more > 0).then(|| view! { <li class="avatar more" aria-label=format!("{more} more")>{format!("+{more}")}</li> })}
                }
            }}
        </ul>
    }
}

/// Dark or light text, whichever reads better on a `#rrggbb` background.
pub(crate) fn ink_on(bg: &str) -> &'static str {
    let hex = bg.trim_start_matches('#');
    let c = |i: usize| {
        let v =
            u8::from_str_radix(hex.get(i..i + 2).unwrap_or("80"), 16).unwrap_or(128) as f64 / 255.0;
        if v <= 0.03928 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * c(0) + 0.7152 * c(2) + 0.0722 * c(4);
    // Contrast with #111 (luminance ~0.0056) against contrast with white.
    if (l + 0.05) / 0.0556 >= 1.05 / (l + 0.05) {
        "#111"
    } else {
        "#fff"
    }
}
