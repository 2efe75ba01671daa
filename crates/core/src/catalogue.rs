//! The instrument catalogue: every instrument this build can play, defined once.
//!
//! The server and the Worker check track instruments against it ([`known`], [`check_known`]),
//! the API serves it (`GET /api/instruments`), the picker groups it by [`Category`], and the
//! sample pipeline (`crates/samples`) prepares one folder per [`Kind::Sampled`] entry.
//!
//! ## Instrument ids
//! Every id passes [`crate::model::check_instrument`] and names a path in the sample store:
//! - synthesized voices keep their historical ids: `drums/<piece>`, `synth/<preset>`, `fx/<name>`;
//! - sampled melodic instruments are `sampled/<name>` (`sampled/piano`, `sampled/strings`);
//! - sampled drum kits have one instrument per kit piece, `kit-<kit>/<piece>` (`kit-808/kick`,
//!   `kit-808/hat-closed`): one track plays one drum sound, as with the synthesized kit. The
//!   hats of one kit share the choke group `kit-<kit>/hat`: a closed or pedal hat cuts that
//!   kit's ringing open hat, across tracks;
//! - recordings are `recording/<sample id>` and are not in the catalogue: they belong to a
//!   session ([`crate::model::SampleRef::instrument`]).
//!
//! A sampled instrument's files live under its id: `<id>/manifest.json` (see
//! [`crate::manifest`]) plus one FLAC file per zone.

use std::sync::LazyLock;

use serde::Serialize;

use crate::model::{check_instrument, Invalid, SampleRef};

/// How an instrument makes its sound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Synthesized by the engine; nothing to load.
    Synth,
    /// Played from prepared samples (a manifest and its FLAC files).
    Sampled,
    /// A session's own recording (never in the catalogue; see [`known`]).
    Recording,
}

/// Where an instrument appears in the picker, in picker order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Drums,
    Bass,
    Keys,
    Guitar,
    Strings,
    Voices,
    Brass,
    Winds,
    Mallets,
    Leads,
    Pads,
    Fx,
}

/// The playable MIDI note range (inclusive) of an instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Range {
    pub lo: u8,
    pub hi: u8,
}

/// One instrument of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub id: &'static str,
    pub name: &'static str,
    pub category: Category,
    pub kind: Kind,
    /// The notes this instrument sounds good over (the step's note is `base + transpose +
    /// pitch lock`).
    pub range: Range,
    /// The MIDI note a step plays before transpose and pitch locks.
    pub base: u8,
    /// Key of the licence and credit text that ships with the instrument ([`credit`]).
    pub licence: &'static str,
    /// For a kit piece, the kit's display name ("TR-808").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kit: Option<&'static str>,
    /// Instruments sharing a choke group cut each other's sound (closed/open hat).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub choke: Option<&'static str>,
}

/// Licence key of the synthesized instruments (the engine's own code, MIT).
pub const LICENCE_KEYBOARDIA: &str = "keyboardia";
/// Licence key of everything sampled from MuseScore_General (MIT, parts PD or CC0).
pub const LICENCE_MUSESCORE_GENERAL: &str = "musescore-general";
/// Licence key of the acoustic kit's recordings from Sonic Pi's sample pack (CC0).
pub const LICENCE_SONIC_PI: &str = "sonic-pi-cc0";

/// What each licence key means, for the picker's Credits panel. The full licence texts ship
/// with the prepared library (`CREDITS.txt`, written by `crates/samples` from the package the
/// samples came from).
pub fn credit(licence: &str) -> Option<&'static str> {
    match licence {
        LICENCE_KEYBOARDIA => Some("Synthesized by Keyboardia's engine (MIT)."),
        LICENCE_MUSESCORE_GENERAL => Some(
            "Samples from MuseScore_General SoundFont (MIT, parts PD or CC0) by S. Christian \
             Collins, based on Fluid (R3) GM by Frank Wen and Fluid (R3) Mono by Michael \
             Cowgill; see CREDITS.txt.",
        ),
        LICENCE_SONIC_PI => Some(
            "Drum recordings by menegass and Neotone (CC0, freesound.org), from Sonic Pi's \
             sample pack as packaged by Debian (sonic-pi-samples); see CREDITS.txt.",
        ),
        _ => None,
    }
}

const fn r(lo: u8, hi: u8) -> Range {
    Range { lo, hi }
}

/// The synthesized instruments (the ids `crates/audio/src/instrument.rs` knows).
const SYNTH: &[(&str, &str, Category, u8, Range)] = &[
    ("drums/kick", "Kick", Category::Drums, 60, r(36, 84)),
    ("drums/kick-808", "808 Kick", Category::Drums, 60, r(36, 84)),
    ("drums/snare", "Snare", Category::Drums, 60, r(36, 84)),
    ("drums/clap", "Clap", Category::Drums, 60, r(36, 84)),
    (
        "drums/hihat-closed",
        "Closed Hat",
        Category::Drums,
        60,
        r(36, 84),
    ),
    (
        "drums/hihat-open",
        "Open Hat",
        Category::Drums,
        60,
        r(36, 84),
    ),
    ("drums/tom-low", "Low Tom", Category::Drums, 60, r(36, 84)),
    ("drums/tom-mid", "Mid Tom", Category::Drums, 60, r(36, 84)),
    ("drums/tom-high", "High Tom", Category::Drums, 60, r(36, 84)),
    ("drums/rim", "Rim", Category::Drums, 60, r(36, 84)),
    ("drums/cowbell", "Cowbell", Category::Drums, 60, r(36, 84)),
    ("drums/shaker", "Shaker", Category::Drums, 60, r(36, 84)),
    ("drums/clave", "Clave", Category::Drums, 60, r(36, 84)),
    ("synth/bass", "Bass", Category::Bass, 36, r(12, 72)),
    ("synth/sub-bass", "Sub Bass", Category::Bass, 36, r(12, 72)),
    ("synth/acid", "Acid", Category::Bass, 36, r(12, 72)),
    ("synth/keys", "Keys", Category::Keys, 60, r(24, 108)),
    ("synth/organ", "Organ", Category::Keys, 60, r(24, 108)),
    ("synth/pluck", "Pluck", Category::Leads, 60, r(24, 108)),
    ("synth/lead", "Lead", Category::Leads, 60, r(24, 108)),
    ("synth/pad", "Pad", Category::Pads, 60, r(24, 108)),
    ("fx/zap", "Zap", Category::Fx, 60, r(36, 84)),
    ("fx/blip", "Blip", Category::Fx, 60, r(36, 84)),
    ("fx/riser", "Riser", Category::Fx, 60, r(36, 84)),
];

/// The sampled melodic instruments: id, name, category, base note, range.
const SAMPLED: &[(&str, &str, Category, u8, Range)] = &[
    (
        "sampled/piano",
        "Grand Piano",
        Category::Keys,
        60,
        r(21, 108),
    ),
    (
        "sampled/epiano",
        "Electric Piano",
        Category::Keys,
        60,
        r(28, 103),
    ),
    (
        "sampled/harpsichord",
        "Harpsichord",
        Category::Keys,
        60,
        r(29, 89),
    ),
    ("sampled/organ", "Rock Organ", Category::Keys, 60, r(36, 96)),
    (
        "sampled/organ-drawbar",
        "Drawbar Organ",
        Category::Keys,
        60,
        r(36, 96),
    ),
    (
        "sampled/guitar-nylon",
        "Nylon Guitar",
        Category::Guitar,
        60,
        r(40, 84),
    ),
    (
        "sampled/guitar-steel",
        "Steel Guitar",
        Category::Guitar,
        60,
        r(40, 86),
    ),
    (
        "sampled/guitar-clean",
        "Clean Guitar",
        Category::Guitar,
        60,
        r(40, 86),
    ),
    (
        "sampled/guitar-muted",
        "Muted Guitar",
        Category::Guitar,
        60,
        r(40, 76),
    ),
    (
        "sampled/guitar-overdrive",
        "Overdrive Guitar",
        Category::Guitar,
        60,
        r(40, 86),
    ),
    (
        "sampled/bass-acoustic",
        "Acoustic Bass",
        Category::Bass,
        36,
        r(28, 67),
    ),
    (
        "sampled/bass-finger",
        "Finger Bass",
        Category::Bass,
        36,
        r(28, 67),
    ),
    (
        "sampled/bass-slap",
        "Slap Bass",
        Category::Bass,
        36,
        r(28, 67),
    ),
    (
        "sampled/bass-synth",
        "Synth Bass",
        Category::Bass,
        36,
        r(24, 72),
    ),
    (
        "sampled/strings",
        "Strings",
        Category::Strings,
        60,
        r(28, 96),
    ),
    (
        "sampled/strings-pizzicato",
        "Pizzicato Strings",
        Category::Strings,
        60,
        r(28, 96),
    ),
    (
        "sampled/strings-synth",
        "Synth Strings",
        Category::Strings,
        60,
        r(28, 96),
    ),
    (
        "sampled/violin",
        "Violin",
        Category::Strings,
        60,
        r(55, 100),
    ),
    ("sampled/cello", "Cello", Category::Strings, 48, r(36, 76)),
    ("sampled/harp", "Harp", Category::Strings, 60, r(24, 103)),
    ("sampled/choir", "Choir", Category::Voices, 60, r(40, 84)),
    ("sampled/trumpet", "Trumpet", Category::Brass, 60, r(52, 84)),
    (
        "sampled/trombone",
        "Trombone",
        Category::Brass,
        48,
        r(34, 72),
    ),
    (
        "sampled/french-horn",
        "French Horn",
        Category::Brass,
        60,
        r(34, 77),
    ),
    (
        "sampled/brass",
        "Brass Section",
        Category::Brass,
        60,
        r(34, 84),
    ),
    (
        "sampled/brass-synth",
        "Synth Brass",
        Category::Brass,
        60,
        r(28, 96),
    ),
    (
        "sampled/sax-alto",
        "Alto Sax",
        Category::Winds,
        60,
        r(49, 81),
    ),
    (
        "sampled/clarinet",
        "Clarinet",
        Category::Winds,
        60,
        r(50, 91),
    ),
    ("sampled/flute", "Flute", Category::Winds, 72, r(60, 96)),
    ("sampled/oboe", "Oboe", Category::Winds, 72, r(58, 91)),
    (
        "sampled/vibraphone",
        "Vibraphone",
        Category::Mallets,
        72,
        r(53, 89),
    ),
    (
        "sampled/marimba",
        "Marimba",
        Category::Mallets,
        60,
        r(45, 96),
    ),
    (
        "sampled/xylophone",
        "Xylophone",
        Category::Mallets,
        72,
        r(65, 108),
    ),
    (
        "sampled/glockenspiel",
        "Glockenspiel",
        Category::Mallets,
        84,
        r(72, 108),
    ),
    (
        "sampled/celesta",
        "Celesta",
        Category::Mallets,
        72,
        r(60, 108),
    ),
    (
        "sampled/music-box",
        "Music Box",
        Category::Mallets,
        72,
        r(60, 108),
    ),
    (
        "sampled/kalimba",
        "Kalimba",
        Category::Mallets,
        72,
        r(48, 96),
    ),
    (
        "sampled/steel-drums",
        "Steel Drums",
        Category::Mallets,
        72,
        r(52, 88),
    ),
    (
        "sampled/tubular-bells",
        "Tubular Bells",
        Category::Mallets,
        72,
        r(60, 77),
    ),
    (
        "sampled/lead-saw",
        "Saw Lead",
        Category::Leads,
        60,
        r(24, 108),
    ),
    (
        "sampled/lead-square",
        "Square Lead",
        Category::Leads,
        60,
        r(24, 108),
    ),
    (
        "sampled/pad-warm",
        "Warm Pad",
        Category::Pads,
        60,
        r(24, 96),
    ),
    (
        "sampled/pad-halo",
        "Halo Pad",
        Category::Pads,
        60,
        r(24, 96),
    ),
];

/// A sampled drum kit: its id fragment (`kit-<id>/...`), display name, the licence of its
/// recordings, and the [`KIT_PIECES`] it lacks.
#[derive(Clone, Copy, Debug)]
pub struct Kit {
    pub id: &'static str,
    pub name: &'static str,
    pub licence: &'static str,
    pub missing: &'static [&'static str],
}

impl Kit {
    /// Whether the kit has piece `piece` (a [`KIT_PIECES`] id).
    pub fn has(&self, piece: &str) -> bool {
        !self.missing.contains(&piece)
    }
}

/// A kit of the SoundFont: a sample for every piece.
const fn gm_kit(id: &'static str, name: &'static str) -> Kit {
    Kit {
        id,
        name,
        licence: LICENCE_MUSESCORE_GENERAL,
        missing: &[],
    }
}

/// The sampled drum kits. The acoustic kit is recorded at two strengths (soft and hard) for
/// its drums and crash, so a step's velocity chooses between two recordings.
pub const KITS: &[Kit] = &[
    Kit {
        id: "acoustic",
        name: "Acoustic",
        licence: LICENCE_SONIC_PI,
        missing: &["rim", "clap", "ride"],
    },
    gm_kit("standard", "Standard"),
    gm_kit("power", "Power"),
    gm_kit("electronic", "Electronic"),
    gm_kit("808", "TR-808"),
    gm_kit("brush", "Brush"),
];

/// The pieces of every sampled kit: id fragment, display name, choke group within the kit.
pub const KIT_PIECES: &[(&str, &str, Option<&str>)] = &[
    ("kick", "Kick", None),
    ("snare", "Snare", None),
    ("rim", "Side Stick", None),
    ("clap", "Clap", None),
    ("hat-closed", "Closed Hat", Some("hat")),
    ("hat-pedal", "Pedal Hat", Some("hat")),
    ("hat-open", "Open Hat", Some("hat")),
    ("tom-low", "Low Tom", None),
    ("tom-mid", "Mid Tom", None),
    ("tom-high", "High Tom", None),
    ("crash", "Crash", None),
    ("ride", "Ride", None),
    ("cowbell", "Cowbell", None),
];

/// The base note of every sampled kit piece: a step plays the sample at its recorded pitch.
pub const KIT_BASE_NOTE: u8 = 60;

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

static ALL: LazyLock<Vec<Entry>> = LazyLock::new(|| {
    let mut v = Vec::new();
    for &(id, name, category, base, range) in SYNTH {
        v.push(Entry {
            id,
            name,
            category,
            kind: Kind::Synth,
            range,
            base,
            licence: LICENCE_KEYBOARDIA,
            kit: None,
            choke: None,
        });
    }
    for kit in KITS {
        for &(piece, piece_name, choke) in KIT_PIECES {
            if !kit.has(piece) {
                continue;
            }
            v.push(Entry {
                id: leak(format!("kit-{}/{piece}", kit.id)),
                name: leak(format!("{} {piece_name}", kit.name)),
                category: Category::Drums,
                kind: Kind::Sampled,
                range: r(KIT_BASE_NOTE - 24, KIT_BASE_NOTE + 24),
                base: KIT_BASE_NOTE,
                licence: kit.licence,
                kit: Some(kit.name),
                choke: choke.map(|c| leak(format!("kit-{}/{c}", kit.id))),
            });
        }
    }
    for &(id, name, category, base, range) in SAMPLED {
        v.push(Entry {
            id,
            name,
            category,
            kind: Kind::Sampled,
            range,
            base,
            licence: LICENCE_MUSESCORE_GENERAL,
            kit: None,
            choke: None,
        });
    }
    v
});

/// Every instrument of the catalogue, synthesized first, then the kits, then melodic samples.
pub fn all() -> &'static [Entry] {
    &ALL
}

/// The catalogue entry with this id.
pub fn lookup(id: &str) -> Option<&'static Entry> {
    all().iter().find(|e| e.id == id)
}

/// The sampled instruments (the ones with files to prepare and load).
pub fn sampled() -> impl Iterator<Item = &'static Entry> {
    all().iter().filter(|e| e.kind == Kind::Sampled)
}

/// Whether `id` is something a track may play: a catalogue instrument, or `recording/<id>`
/// for one of `recording_ids` (the session's [`SampleRef::id`]s).
pub fn known<'a>(id: &str, recording_ids: impl IntoIterator<Item = &'a str>) -> bool {
    match id.strip_prefix("recording/") {
        Some(rec) => recording_ids.into_iter().any(|r| r == rec),
        None => lookup(id).is_some(),
    }
}

/// [`known`] as a validation rule, with the message the sender sees.
pub fn check_known(id: &str, samples: &[SampleRef]) -> Result<(), Invalid> {
    check_instrument(id)?;
    if known(id, samples.iter().map(|s| s.id.as_str())) {
        Ok(())
    } else if id.starts_with("recording/") {
        Err(Invalid(format!(
            "instrument {id:?} names a recording this session does not have"
        )))
    } else {
        Err(Invalid(format!(
            "unknown instrument {id:?} (not in this build's catalogue; see GET /api/instruments)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_valid() {
        let mut seen = HashSet::new();
        for e in all() {
            assert!(seen.insert(e.id), "duplicate id {}", e.id);
            check_instrument(e.id).unwrap();
            assert!(e.range.lo <= e.base && e.base <= e.range.hi, "{}", e.id);
            assert!(e.range.hi <= 127);
            assert!(credit(e.licence).is_some(), "{}", e.id);
            assert!(!e.id.contains(".."));
            match e.kind {
                Kind::Synth => assert!(
                    ["drums/", "synth/", "fx/"]
                        .iter()
                        .any(|p| e.id.starts_with(p)),
                    "{}",
                    e.id
                ),
                Kind::Sampled => assert!(
                    e.id.starts_with("sampled/") || e.id.starts_with("kit-"),
                    "{}",
                    e.id
                ),
                Kind::Recording => panic!("recordings are not catalogue entries"),
            }
        }
    }

    #[test]
    fn the_library_is_big_enough() {
        let melodic = sampled().filter(|e| e.kit.is_none()).count();
        let kits: HashSet<_> = sampled().filter_map(|e| e.kit).collect();
        assert!(melodic >= 30, "{melodic} melodic instruments");
        assert!(kits.len() >= 4, "{} kits", kits.len());
        // Closed and open hat of a kit choke each other; different kits do not.
        let c = lookup("kit-808/hat-closed").unwrap().choke;
        assert_eq!(c, lookup("kit-808/hat-open").unwrap().choke);
        assert!(c.is_some());
        assert_ne!(c, lookup("kit-standard/hat-open").unwrap().choke);
        // Every piece a kit lacks is a piece.
        for kit in KITS {
            for p in kit.missing {
                assert!(KIT_PIECES.iter().any(|(id, _, _)| id == p), "{p}");
                assert!(lookup(&format!("kit-{}/{p}", kit.id)).is_none(), "{p}");
            }
        }
        assert!(lookup("kit-acoustic/clap").is_none());
        assert_eq!(
            lookup("kit-acoustic/snare").unwrap().licence,
            LICENCE_SONIC_PI
        );
    }

    #[test]
    fn known_rejects_strangers() {
        let samples = vec![SampleRef {
            id: "abc".into(),
            name: "Take".into(),
            path: "recordings/x/abc.wav".into(),
            duration_ms: 10,
        }];
        let ids = || samples.iter().map(|s| s.id.as_str());
        assert!(known("sampled/piano", ids()));
        assert!(known("drums/kick", ids()));
        assert!(known("recording/abc", ids()));
        assert!(!known("recording/abd", ids()));
        assert!(!known("../../etc/passwd", ids()));
        assert!(!known("sampled/kazoo", ids()));
        let e = check_known("sampled/kazoo", &samples).unwrap_err();
        assert!(e.0.contains("unknown instrument"), "{e}");
        assert!(check_known("../../etc/passwd", &samples).is_err());
        assert!(check_known("recording/abc", &samples).is_ok());
    }

    #[test]
    fn serves_as_json() {
        let v = serde_json::to_value(lookup("kit-808/hat-open").unwrap()).unwrap();
        assert_eq!(v["kind"], "sampled");
        assert_eq!(v["category"], "drums");
        assert_eq!(v["range"]["lo"], 36);
        assert_eq!(v["licence"], "musescore-general");
        assert_eq!(v["choke"], "kit-808/hat");
    }
}
