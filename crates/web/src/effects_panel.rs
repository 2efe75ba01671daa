//! The effects panel: the master chain (bypass, reverb, delay, chorus, drive, EQ, compressor)
//! and an XY pad, and each track's sends, filter and drive; every control is built from the
//! core's parameter table, glows when another player moves it, and works with the keyboard.

use keyboardia_core::effects::{Fx, Kind, Scope};
use keyboardia_core::protocol::Edit;
use leptos::prelude::*;

use crate::app::ui;
use crate::live;
use crate::sheets::SheetHead;

/// The glow key of a parameter (see `live::glow_for`: effect glows use step `u8::MAX`).
pub(crate) fn glow_key(track: Option<&str>, p: Fx) -> String {
    format!("fx:{}:{}", track.unwrap_or(""), p.name())
}

/// The value of a parameter in the shown state (its default when unset).
fn value_of(track: Option<&str>, p: Fx) -> Option<f32> {
    let sig = ui().sig;
    sig.state.with(|s| {
        let s = s.as_ref()?;
        Some(match track {
            None => s.effects.get(p),
            Some(id) => s.track(id)?.fx.get(p),
        })
    })
}

fn send(track: Option<String>, p: Fx, value: f64) {
    live::edit(Edit::SetEffect {
        track_id: track,
        param: p,
        value,
    });
}

/// Where a value sits on its control, 0..1 (exponential for frequencies and times).
pub(crate) fn to_unit(p: Fx, v: f32) -> f64 {
    match p.spec().kind {
        Kind::Range { min, max, log, .. } => {
            let (v, min, max) = (v as f64, min as f64, max as f64);
            if log {
                (v / min).ln() / (max / min).ln()
            } else {
                (v - min) / (max - min)
            }
        }
        Kind::Choice(names) => v as f64 / (names.len().max(2) - 1) as f64,
        Kind::Toggle => v as f64,
    }
    .clamp(0.0, 1.0)
}

/// The value at a place on the control (rounded so the wire carries short numbers).
pub(crate) fn from_unit(p: Fx, u: f64) -> f64 {
    let u = u.clamp(0.0, 1.0);
    match p.spec().kind {
        Kind::Range { min, max, log, .. } => {
            let (min, max) = (min as f64, max as f64);
            let v = if log {
                min * (max / min).powf(u)
            } else {
                min + (max - min) * u
            };
            let digits = if max - min > 100.0 { 0 } else { 3 };
            let k = 10f64.powi(digits);
            ((v * k).round() / k).clamp(min, max)
        }
        Kind::Choice(names) => (u * (names.len() - 1) as f64).round(),
        Kind::Toggle => u.round(),
    }
}

/// One control for one parameter: a slider, a choice or a switch, with its value and unit.
#[component]
pub(crate) fn FxControl(track: Option<String>, param: Fx) -> impl IntoView {
    let sig = ui().sig;
    let spec = param.spec();
    let t1 = track.clone();
    let value = Memo::new(move |_| value_of(t1.as_deref(), param).unwrap_or(spec.default));
    let key = glow_key(track.as_deref(), param);
    let glow = move || {
        let n = live::perf_now();
        sig.glows
            .get()
            .iter()
            .rev()
            .find(|g| g.step == u8::MAX && g.track == key && g.until > n)
            .map(|g| format!("--glow:{}", g.color))
    };
    let label = spec.label;
    let read_only = move || sig.read_only.get();
    let control = match spec.kind {
        Kind::Range { .. } => {
            let tr = track.clone();
            view! {
                <input type="range" min="0" max="1000" step="1" aria-label=label
                    disabled=read_only
                    aria-valuetext=move || param.display(value.get())
                    prop:value=move || (to_unit(param, value.get()) * 1000.0).round().to_string()
                    on:input=move |e| {
                        if let Some(u) = crate::text::number(&event_target_value(&e)) {
                            send(tr.clone(), param, from_unit(param, u / 1000.0));
                        }
                    }/>
            }
            .into_any()
        }
        Kind::Choice(names) => {
            let tr = track.clone();
            view! {
                <select aria-label=label disabled=read_only on:change=move |e| {
                    if let Some(i) = crate::text::number(&event_target_value(&e)) {
                        send(tr.clone(), param, i);
                    }
                }>
                    {names.iter().enumerate().map(|(i, n)| view! {
                        <option value=i.to_string() selected=move || value.get() as usize == i>{*n}</option>
                    }).collect_view()}
                </select>
            }
            .into_any()
        }
        Kind::Toggle => {
            let tr = track.clone();
            view! {
                // The accessible name holds the visible text ("Bypass off"), as the label says.
                <button class="fx-toggle" aria-label=move || format!("{label} {}", param.display(value.get()))
                    disabled=read_only
                    aria-pressed=move || (value.get() >= 0.5).to_string()
                    on:click=move |_| send(tr.clone(), param, if value.get_untracked() >= 0.5 { 0.0 } else { 1.0 })>
                    {move || param.display(value.get())}
                </button>
            }
            .into_any()
        }
    };
    view! {
        <label class="field fx-control" style=glow data-param=spec.name>
            <span>{label}</span>
            {control}
            <output>{move || if matches!(spec.kind, Kind::Toggle) { String::new() } else { param.display(value.get()) }}</output>
        </label>
    }
}

/// The master chain's sections, by the prefix of their parameters' names.
const SECTIONS: [(&str, &str); 6] = [
    ("reverb", "Reverb"),
    ("delay", "Delay"),
    ("chorus", "Chorus"),
    ("drive", "Drive"),
    ("eq", "EQ"),
    ("comp", "Compressor"),
];

fn section_of(p: Fx) -> &'static str {
    p.name().split('.').next().unwrap_or("")
}

/// The session's effects, as a sheet.
#[component]
pub(crate) fn EffectsSheet() -> impl IntoView {
    view! {
        <SheetHead title=Signal::derive(|| "Effects".to_string())/>
        <div class="sheet-body effects">
            <p class="hint">"Everyone in the session hears these, and the WAV export has them."</p>
            <FxControl track=None param=Fx::Bypass/>
            <XyPad/>
            {SECTIONS.iter().map(|(prefix, title)| {
                let params: Vec<Fx> = Fx::ALL.iter().copied()
                    .filter(|p| p.scope() == Scope::Session && section_of(*p) == *prefix)
                    .collect();
                view! {
                    <section class="fx-section" aria-label=*title>
                        <h3>{*title}</h3>
                        {params.into_iter().map(|p| view! { <FxControl track=None param=p/> }).collect_view()}
                    </section>
                }
            }).collect_view()}
        </div>
    }
}

/// A track's sends, filter and drive (in its settings sheet).
#[component]
pub(crate) fn TrackEffects(track_id: String) -> impl IntoView {
    let params: Vec<Fx> = Fx::ALL
        .iter()
        .copied()
        .filter(|p| p.scope() == Scope::Track)
        .collect();
    view! {
        <section class="fx-section" aria-label="Track effects">
            <h3>"Effects"</h3>
            {params.into_iter().map(|p| view! { <FxControl track=Some(track_id.clone()) param=p/> }).collect_view()}
        </section>
    }
}

/// What an axis of the XY pad moves: a session parameter, or one of a track's.
#[derive(Clone, Debug, PartialEq)]
struct Axis {
    track: Option<String>,
    param: Fx,
}

impl Axis {
    fn encode(&self) -> String {
        format!(
            "{}|{}",
            self.track.as_deref().unwrap_or(""),
            self.param.name()
        )
    }

    fn decode(s: &str) -> Option<Axis> {
        let (t, p) = s.split_once('|')?;
        Some(Axis {
            track: (!t.is_empty()).then(|| t.to_string()),
            param: Fx::by_name(p)?,
        })
    }
}

/// The parameters an XY pad axis can take: every continuous session parameter, and each
/// track's sends and cutoff.
fn axis_choices() -> Vec<(Axis, String)> {
    let mut out: Vec<(Axis, String)> = Fx::ALL
        .iter()
        .copied()
        .filter(|p| p.scope() == Scope::Session && matches!(p.spec().kind, Kind::Range { .. }))
        .map(|p| {
            let section = SECTIONS
                .iter()
                .find(|(s, _)| *s == section_of(p))
                .map(|(_, t)| *t)
                .unwrap_or("");
            let label = if section == p.spec().label {
                section.to_string()
            } else {
                format!("{section} {}", crate::text::lower(p.spec().label))
            };
            (
                Axis {
                    track: None,
                    param: p,
                },
                label,
            )
        })
        .collect();
    ui().sig.state.with_untracked(|s| {
        for t in s.iter().flat_map(|s| s.tracks.iter()) {
            for p in [Fx::FilterCutoff, Fx::SendReverb, Fx::SendDelay] {
                out.push((
                    Axis {
                        track: Some(t.id.clone()),
                        param: p,
                    },
                    format!("{}: {}", t.name, crate::text::lower(p.spec().label)),
                ));
            }
        }
    });
    out
}

/// Two parameters on one surface, for performance: drag (or use the arrow keys) to move both.
#[component]
fn XyPad() -> impl IntoView {
    let sig = ui().sig;
    let x = RwSignal::new(Axis {
        track: None,
        param: Fx::DelayFeedback,
    });
    let y = RwSignal::new(Axis {
        track: None,
        param: Fx::ReverbMix,
    });
    let unit = move |a: &Axis| {
        to_unit(
            a.param,
            value_of(a.track.as_deref(), a.param).unwrap_or(a.param.default_value()),
        )
    };
    let pos = Memo::new(move |_| {
        sig.state.track();
        (unit(&x.get()), unit(&y.get()))
    });
    let set = move |ux: f64, uy: f64| {
        if sig.read_only.get_untracked() {
            return;
        }
        let (ax, ay) = (x.get_untracked(), y.get_untracked());
        send(ax.track.clone(), ax.param, from_unit(ax.param, ux));
        send(ay.track.clone(), ay.param, from_unit(ay.param, uy));
    };
    let pad = NodeRef::<leptos::html::Div>::new();
    let dragging = RwSignal::new(false);
    let at = move |e: &leptos::ev::PointerEvent| {
        let Some(el) = pad.get_untracked() else {
            return;
        };
        let r = el.get_bounding_client_rect();
        let ux = (e.client_x() as f64 - r.left()) / r.width().max(1.0);
        let uy = 1.0 - (e.client_y() as f64 - r.top()) / r.height().max(1.0);
        set(ux, uy);
    };
    let select = move |axis: RwSignal<Axis>, name: &'static str| {
        view! {
            <label class="field">{name}
                <select aria-label=format!("XY pad {name} axis") on:change=move |e| {
                    if let Some(a) = Axis::decode(&event_target_value(&e)) {
                        axis.set(a);
                    }
                }>
                    {move || axis_choices().into_iter().map(|(a, label)| {
                        let selected = a == axis.get();
                        view! { <option value=a.encode() selected=selected>{label}</option> }
                    }).collect_view()}
                </select>
                <output></output>
            </label>
        }
    };
    let label = move || {
        let (ax, ay) = (x.get(), y.get());
        let v = |a: &Axis| {
            a.param
                .display(value_of(a.track.as_deref(), a.param).unwrap_or(a.param.default_value()))
        };
        format!(
            "XY pad: {} {}, {} {}",
            ax.param.spec().label,
            v(&ax),
            ay.param.spec().label,
            v(&ay)
        )
    };
    view! {
        <section class="fx-section xy" aria-label="XY pad">
            <h3>"XY pad"</h3>
            {select(x, "X")}
            {select(y, "Y")}
            <div class="xy-pad" node_ref=pad tabindex="0" role="application"
                aria-label=label
                on:pointerdown=move |e| {
                    if let Some(el) = pad.get_untracked() {
                        let _ = el.set_pointer_capture(e.pointer_id());
                    }
                    dragging.set(true);
                    at(&e);
                }
                on:pointermove=move |e| if dragging.get_untracked() { at(&e) }
                on:pointerup=move |_| dragging.set(false)
                on:pointercancel=move |_| dragging.set(false)
                on:keydown=move |e: leptos::ev::KeyboardEvent| {
                    let (ux, uy) = pos.get_untracked();
                    let d = if e.shift_key() { 0.01 } else { 0.05 };
                    let (nx, ny) = match e.key().as_str() {
                        "ArrowLeft" => (ux - d, uy),
                        "ArrowRight" => (ux + d, uy),
                        "ArrowUp" => (ux, uy + d),
                        "ArrowDown" => (ux, uy - d),
                        _ => return,
                    };
                    e.prevent_default();
                    set(nx, ny);
                }>
                <div class="xy-dot" style=move || {
                    let (ux, uy) = pos.get();
                    format!("left:{:.1}%;top:{:.1}%", ux * 100.0, (1.0 - uy) * 100.0)
                }></div>
            </div>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knob_positions_round_trip() {
        for p in Fx::ALL.iter().copied() {
            let d = p.default_value();
            let back = from_unit(p, to_unit(p, d)) as f32;
            assert!(
                (back - d).abs() <= d.abs() * 0.01 + 0.001,
                "{p:?}: {d} -> {back}"
            );
            // Every position gives a value the core accepts.
            for u in [0.0, 0.13, 0.5, 0.77, 1.0] {
                assert!(p.check(from_unit(p, u)).is_ok(), "{p:?} at {u}");
            }
        }
        // Frequencies move in octaves: the middle of 20 Hz..20 kHz is about 632 Hz.
        assert!((from_unit(Fx::FilterCutoff, 0.5) - 632.0).abs() < 2.0);
    }
}
