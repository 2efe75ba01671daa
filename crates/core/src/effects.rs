//! The effects a session shares: every parameter of the master chain and of each track's
//! sends, filter and drive, defined once ([`Fx`]) with its range, default, unit and label.
//!
//! The model keeps only the values that differ from their defaults ([`FxValues`]): a session
//! that never touched an effect has no `effects` in its JSON, so documents written before the
//! effects existed stay byte-identical, and a parameter added later loads as its default in
//! every older document. Validation, the edit rules, undo, the web panel and the sound engine's
//! mapping all read the same table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::Invalid;

/// Whether a parameter belongs to the session's master chain or to one track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Session,
    Track,
}

/// How a parameter's number is read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// A continuous value in `min..=max`, shown in `unit`; `log` knobs move exponentially
    /// (frequencies, times).
    Range {
        min: f32,
        max: f32,
        unit: &'static str,
        log: bool,
    },
    /// One of several named choices, stored as its index.
    Choice(&'static [&'static str]),
    /// Off (0) or on (1).
    Toggle,
}

/// Everything about one parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spec {
    pub scope: Scope,
    /// Its name on the wire and in the JSON document, e.g. `reverb.decay`.
    pub name: &'static str,
    /// Its label in the app.
    pub label: &'static str,
    pub kind: Kind,
    pub default: f32,
}

/// The delay's note values, in 16th-note steps (1/16, 1/8, 1/4, 1/2).
pub const DELAY_DIVISIONS: [&str; 4] = ["1/16", "1/8", "1/4", "1/2"];
/// How the delay's note value is played.
pub const DELAY_FEELS: [&str; 3] = ["straight", "dotted", "triplet"];
/// A track filter's shapes (`off` passes the sound unchanged).
pub const FILTER_MODES: [&str; 4] = ["off", "low-pass", "high-pass", "band-pass"];

macro_rules! params {
    ($( $(#[$doc:meta])* $v:ident = $name:literal, $scope:ident, $label:literal, $kind:expr, $default:expr; )*) => {
        /// One effect parameter.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum Fx {
            $( $(#[$doc])* #[serde(rename = $name)] $v, )*
        }

        impl Fx {
            /// Every parameter, in the order the app shows them.
            pub const ALL: &'static [Fx] = &[$(Fx::$v),*];

            pub fn spec(self) -> Spec {
                match self {
                    $( Fx::$v => Spec {
                        scope: Scope::$scope,
                        name: $name,
                        label: $label,
                        kind: $kind,
                        default: $default,
                    }, )*
                }
            }
        }
    };
}

const fn range(min: f32, max: f32, unit: &'static str) -> Kind {
    Kind::Range {
        min,
        max,
        unit,
        log: false,
    }
}

const fn log_range(min: f32, max: f32, unit: &'static str) -> Kind {
    Kind::Range {
        min,
        max,
        unit,
        log: true,
    }
}

params! {
    /// The whole master chain off: the dry mix only (the sends' returns too).
    Bypass = "bypass", Session, "Bypass", Kind::Toggle, 0.0;
    /// How loud the reverb's return is in the mix.
    ReverbMix = "reverb.mix", Session, "Mix", range(0.0, 1.0, ""), 0.0;
    ReverbSize = "reverb.size", Session, "Size", range(0.0, 1.0, ""), 0.6;
    /// Seconds for the tail to fall by 60 dB.
    ReverbDecay = "reverb.decay", Session, "Decay", log_range(0.1, 20.0, "s"), 2.0;
    ReverbDamping = "reverb.damping", Session, "Damping", range(0.0, 1.0, ""), 0.4;
    ReverbPredelay = "reverb.predelay", Session, "Pre-delay", range(0.0, 250.0, "ms"), 20.0;
    DelayMix = "delay.mix", Session, "Mix", range(0.0, 1.0, ""), 0.0;
    DelayDivision = "delay.division", Session, "Time", Kind::Choice(&DELAY_DIVISIONS), 1.0;
    DelayFeel = "delay.feel", Session, "Feel", Kind::Choice(&DELAY_FEELS), 1.0;
    DelayFeedback = "delay.feedback", Session, "Feedback", range(0.0, 0.95, ""), 0.35;
    /// How much darker each repeat is (the low-pass in the loop).
    DelayTone = "delay.tone", Session, "Tone", range(0.0, 1.0, ""), 0.3;
    DelayPingPong = "delay.pingPong", Session, "Ping-pong", Kind::Toggle, 1.0;
    ChorusMix = "chorus.mix", Session, "Mix", range(0.0, 1.0, ""), 0.0;
    ChorusRate = "chorus.rate", Session, "Rate", log_range(0.05, 5.0, "Hz"), 0.6;
    ChorusDepth = "chorus.depth", Session, "Depth", range(0.0, 1.0, ""), 0.5;
    /// Soft saturation of the whole mix.
    Drive = "drive", Session, "Amount", range(0.0, 1.0, ""), 0.0;
    EqLow = "eq.low", Session, "Low", range(-12.0, 12.0, "dB"), 0.0;
    EqMid = "eq.mid", Session, "Mid", range(-12.0, 12.0, "dB"), 0.0;
    EqHigh = "eq.high", Session, "High", range(-12.0, 12.0, "dB"), 0.0;
    /// Level above which the compressor works (0 dB with ratio 1: off).
    CompThreshold = "comp.threshold", Session, "Threshold", range(-40.0, 0.0, "dB"), 0.0;
    CompRatio = "comp.ratio", Session, "Ratio", log_range(1.0, 20.0, ":1"), 1.0;
    CompAttack = "comp.attack", Session, "Attack", log_range(0.1, 100.0, "ms"), 10.0;
    CompRelease = "comp.release", Session, "Release", log_range(10.0, 1000.0, "ms"), 150.0;
    CompMakeup = "comp.makeup", Session, "Makeup", range(0.0, 24.0, "dB"), 0.0;
    /// A track's send to the reverb (after its volume).
    SendReverb = "send.reverb", Track, "Reverb send", range(0.0, 1.0, ""), 0.3;
    /// A track's send to the delay (after its volume and pan).
    SendDelay = "send.delay", Track, "Delay send", range(0.0, 1.0, ""), 0.0;
    FilterMode = "filter.mode", Track, "Filter", Kind::Choice(&FILTER_MODES), 0.0;
    /// The filter's cutoff; a step's `cutoff` lock replaces it on that step.
    FilterCutoff = "filter.cutoff", Track, "Cutoff", log_range(20.0, 20_000.0, "Hz"), 8000.0;
    FilterResonance = "filter.resonance", Track, "Resonance", range(0.0, 1.0, ""), 0.2;
    /// Soft saturation before the track's filter.
    TrackDrive = "track.drive", Track, "Drive", range(0.0, 1.0, ""), 0.0;
}

/// The range a filter cutoff (and a step's cutoff lock) must be in, in Hz.
pub const CUTOFF_MIN: f32 = 20.0;
pub const CUTOFF_MAX: f32 = 20_000.0;

impl Fx {
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn default_value(self) -> f32 {
        self.spec().default
    }

    pub fn scope(self) -> Scope {
        self.spec().scope
    }

    /// The parameter of that wire name.
    pub fn by_name(name: &str) -> Option<Fx> {
        Fx::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// Checks a value for this parameter; the message says what is allowed.
    pub fn check(self, value: f64) -> Result<f32, Invalid> {
        let spec = self.spec();
        let bad = |allowed: String| {
            Err(Invalid(format!(
                "effect {} must be {allowed}, got {value}",
                spec.name
            )))
        };
        if !value.is_finite() {
            return bad("a finite number".into());
        }
        match spec.kind {
            Kind::Range { min, max, .. } => {
                if value < min as f64 || value > max as f64 {
                    return bad(format!("between {min} and {max}"));
                }
                Ok(value as f32)
            }
            Kind::Choice(names) => {
                if value.fract() != 0.0 || value < 0.0 || value >= names.len() as f64 {
                    return bad(format!(
                        "the index of one of {names:?} (0 to {})",
                        names.len() - 1
                    ));
                }
                Ok(value as f32)
            }
            Kind::Toggle => {
                if value != 0.0 && value != 1.0 {
                    return bad("0 (off) or 1 (on)".into());
                }
                Ok(value as f32)
            }
        }
    }

    /// The value as the app shows it, with its unit or choice name.
    pub fn display(self, value: f32) -> String {
        match self.spec().kind {
            Kind::Range { unit, .. } => {
                if unit.is_empty() {
                    format!("{:.0}%", value * 100.0)
                } else if unit == "Hz" && value >= 1000.0 {
                    format!("{:.1} kHz", value / 1000.0)
                } else if value.abs() >= 100.0 || unit == "ms" && value >= 10.0 {
                    format!("{value:.0} {unit}")
                } else {
                    format!("{value:.1} {unit}")
                }
            }
            Kind::Choice(names) => names
                .get(value.max(0.0) as usize)
                .copied()
                .unwrap_or("?")
                .to_string(),
            Kind::Toggle => if value >= 0.5 { "on" } else { "off" }.to_string(),
        }
    }
}

/// The effect values of a session (or one track) that differ from their defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FxValues(BTreeMap<Fx, f32>);

impl FxValues {
    pub fn get(&self, p: Fx) -> f32 {
        self.0.get(&p).copied().unwrap_or_else(|| p.default_value())
    }

    /// Sets a value (already checked); the default is stored as no entry, so every host keeps
    /// the same canonical document.
    pub fn set(&mut self, p: Fx, v: f32) {
        if v == p.default_value() {
            self.0.remove(&p);
        } else {
            self.0.insert(p, v);
        }
    }

    pub fn is_default(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks every stored value belongs to `scope` and is in range (loading a document).
    pub fn validate(&self, scope: Scope) -> Result<(), Invalid> {
        for (p, v) in &self.0 {
            if p.scope() != scope {
                return Err(Invalid(format!(
                    "effect {} belongs to {}, not here",
                    p.name(),
                    match p.scope() {
                        Scope::Session => "the session",
                        Scope::Track => "a track",
                    }
                )));
            }
            p.check(*v as f64)?;
        }
        Ok(())
    }

    /// Whether the filter does anything (its mode is not `off`).
    pub fn filter_on(&self) -> bool {
        self.get(Fx::FilterMode) != 0.0
    }
}

/// Checks a step's cutoff lock.
pub fn check_cutoff(v: f64) -> Result<f32, Invalid> {
    crate::model::check_range_f64("cutoff", v, CUTOFF_MIN as f64, CUTOFF_MAX as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        for (i, p) in Fx::ALL.iter().enumerate() {
            assert_eq!(Fx::by_name(p.name()), Some(*p));
            assert!(Fx::ALL[..i].iter().all(|q| q.name() != p.name()));
            let json = serde_json::to_string(p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.name()));
            // Every default is a valid value.
            assert_eq!(p.check(p.default_value() as f64), Ok(p.default_value()));
        }
    }

    #[test]
    fn defaults_are_not_stored() {
        let mut v = FxValues::default();
        v.set(Fx::ReverbMix, 0.5);
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"reverb.mix":0.5}"#);
        v.set(Fx::ReverbMix, 0.0);
        assert!(v.is_default());
        assert_eq!(v.get(Fx::ReverbDecay), 2.0);
    }

    #[test]
    fn bad_values_say_what_is_allowed() {
        let e = Fx::ReverbDecay.check(30.0).unwrap_err();
        assert!(e.0.contains("between 0.1 and 20"), "{e}");
        let e = Fx::DelayDivision.check(4.0).unwrap_err();
        assert!(e.0.contains("1/16"), "{e}");
        assert!(Fx::DelayDivision.check(1.5).is_err());
        assert!(Fx::Bypass.check(0.5).is_err());
        assert!(Fx::ReverbMix.check(f64::NAN).is_err());
        let mut v = FxValues::default();
        v.set(Fx::SendReverb, 0.9);
        assert!(v.validate(Scope::Session).is_err());
        assert!(v.validate(Scope::Track).is_ok());
    }

    #[test]
    fn values_display_with_units() {
        assert_eq!(Fx::ReverbMix.display(0.25), "25%");
        assert_eq!(Fx::FilterCutoff.display(1500.0), "1.5 kHz");
        assert_eq!(Fx::ReverbDecay.display(2.0), "2.0 s");
        assert_eq!(Fx::DelayDivision.display(1.0), "1/8");
        assert_eq!(Fx::Bypass.display(1.0), "on");
    }
}
