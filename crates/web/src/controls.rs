//! Small reusable controls: a labelled slider and a button that repeats while held.

use leptos::prelude::*;
use std::time::Duration;

/// A labelled range input showing its value; `on_set` gets the new value when it is released.
#[component]
pub(crate) fn Slider(
    label: &'static str,
    min: i64,
    max: i64,
    value: Signal<i64>,
    on_set: Callback<i64>,
) -> impl IntoView {
    view! {
        <label class="slider field">{label}
            <input type="range" min=min.to_string() max=max.to_string() aria-label=label
                prop:value=move || value.get().to_string()
                on:change=move |e| {
                    if let Ok(v) = event_target_value(&e).parse::<i64>() {
                        on_set.run(v)
                    }
                }/>
            <output>{move || value.get()}</output>
        </label>
    }
}

/// A button that repeats while held (after a short delay), like a keyboard key.
#[component]
pub(crate) fn RepeatButton(
    class: &'static str,
    label: &'static str,
    text: &'static str,
    on_step: Callback<()>,
) -> impl IntoView {
    let timer = StoredValue::new(None::<TimeoutHandle>);
    let repeat = StoredValue::new(None::<IntervalHandle>);
    let stop = move || {
        if let Some(t) = timer.get_value() {
            t.clear();
        }
        if let Some(r) = repeat.get_value() {
            r.clear();
        }
        timer.set_value(None);
        repeat.set_value(None);
    };
    let down = move |e: leptos::ev::PointerEvent| {
        if e.button() != 0 {
            return;
        }
        stop();
        on_step.run(());
        let h = set_timeout_with_handle(
            move || {
                let r =
                    set_interval_with_handle(move || on_step.run(()), Duration::from_millis(70));
                repeat.set_value(r.ok());
            },
            Duration::from_millis(400),
        );
        timer.set_value(h.ok());
    };
    on_cleanup(stop);
    view! {
        <button class=class aria-label=label
            on:pointerdown=down
            on:pointerup=move |_| stop()
            on:pointerleave=move |_| stop()
            on:pointercancel=move |_| stop()
            // A long hold on a touch screen is a repeat, not a context menu.
            on:contextmenu=move |e: leptos::ev::MouseEvent| e.prevent_default()
            // Keyboard activation (a click with no pointer behind it).
            on:click=move |e: leptos::ev::MouseEvent| if e.detail() == 0 { on_step.run(()) }>
            {text}
        </button>
    }
}
