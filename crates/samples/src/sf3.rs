//! A small, tolerant reader of SoundFont 3 files: the preset/instrument/sample tables of the
//! `pdta` chunk, the Ogg Vorbis streams of `smpl`, and the resolution of one preset into the
//! zones that play it (generators of the preset and instrument levels combined as the
//! SoundFont 2.04 specification says).
//!
//! Tolerant: the MuseScore_General SF3 has an odd-length `sdta` chunk without the RIFF pad
//! byte, so after an odd-sized chunk the next chunk id is looked for at both offsets.

use anyhow::{bail, Context, Result};

/// A parsed SoundFont: the tables, and where the sample data lies in the file.
pub struct SoundFont {
    data: Vec<u8>,
    smpl: std::ops::Range<usize>,
    presets: Vec<Preset>,
    pbag: Vec<(u16, u16)>,
    pgen: Vec<(u16, [u8; 2])>,
    inst: Vec<(String, u16)>,
    ibag: Vec<(u16, u16)>,
    igen: Vec<(u16, [u8; 2])>,
    pub samples: Vec<SampleHeader>,
}

#[derive(Clone, Debug)]
pub struct Preset {
    pub name: String,
    pub program: u16,
    pub bank: u16,
    bag: u16,
}

#[derive(Clone, Debug)]
pub struct SampleHeader {
    pub name: String,
    /// SF3: byte offsets of the Ogg stream in `smpl`.
    pub start: u32,
    pub end: u32,
    /// SF3: frame offsets in the decoded sample.
    pub loop_start: u32,
    pub loop_end: u32,
    pub rate: u32,
    pub original_pitch: u8,
    pub pitch_correction: i8,
    pub kind: u16,
}

impl SampleHeader {
    /// The right half of a stereo pair (we keep left or mono only).
    pub fn is_right(&self) -> bool {
        self.kind & 0x0F == 2
    }
    pub fn is_vorbis(&self) -> bool {
        self.kind & 0x10 != 0
    }
}

/// One zone of a resolved preset, with every generator that matters here.
#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    /// The instrument (of the preset's possibly several, layered) this zone belongs to.
    pub instrument: usize,
    pub sample: usize,
    pub key_lo: u8,
    pub key_hi: u8,
    pub vel_lo: u8,
    pub vel_hi: u8,
    /// Root key (overriding root key, or the sample's original pitch).
    pub root: u8,
    /// Tuning in cents: coarse and fine tune of both levels plus the sample's correction.
    pub tune: i32,
    /// Cents per key (100 for a normal keyboard).
    pub scale_tuning: i32,
    pub looped: bool,
    /// Offsets in frames (start, end, loop start, loop end) added to the sample's own.
    pub offsets: [i32; 4],
    /// Initial attenuation in centibels.
    pub attenuation: i32,
    /// Low-pass filter cutoff in absolute cents (13500 and above: open).
    pub filter_fc: i32,
    /// Volume envelope: delay, attack, hold, decay (timecents), sustain (cB), release
    /// (timecents).
    pub env: [i32; 6],
}

fn u16le(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32le(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
fn name(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).trim().to_string()
}
fn plausible_id(b: &[u8], i: usize) -> bool {
    b.get(i..i + 4)
        .is_some_and(|id| id.iter().all(|c| c.is_ascii_alphanumeric() || *c == b' '))
}

/// The chunks (id, data range) between `from` and `to`, tolerating a missing pad byte.
fn chunks(b: &[u8], mut at: usize, to: usize) -> Result<Vec<([u8; 4], std::ops::Range<usize>)>> {
    let mut out = Vec::new();
    while at + 8 <= to {
        let id: [u8; 4] = b[at..at + 4].try_into().unwrap();
        let size = u32le(b, at + 4) as usize;
        let start = at + 8;
        let end = start + size;
        if end > to {
            bail!(
                "chunk {:?} at {at} runs past its parent",
                String::from_utf8_lossy(&id)
            );
        }
        out.push((id, start..end));
        at = end;
        if size % 2 == 1 && at < to && !plausible_id(b, at) && plausible_id(b, at + 1) {
            at += 1;
        }
    }
    Ok(out)
}

impl SoundFont {
    pub fn parse(data: Vec<u8>) -> Result<SoundFont> {
        if data.len() < 12 || &data[0..4] != b"RIFF" || &data[8..12] != b"sfbk" {
            bail!("not a SoundFont (RIFF sfbk) file");
        }
        let top = chunks(&data, 12, data.len())?;
        let mut smpl = None;
        let mut pdta = None;
        for (id, r) in &top {
            if id != b"LIST" || r.len() < 4 {
                continue;
            }
            match &data[r.start..r.start + 4] {
                b"sdta" => {
                    for (sid, sr) in chunks(&data, r.start + 4, r.end)? {
                        if &sid == b"smpl" {
                            smpl = Some(sr);
                        }
                    }
                }
                b"pdta" => pdta = Some(chunks(&data, r.start + 4, r.end)?),
                _ => {}
            }
        }
        let smpl = smpl.context("no smpl chunk")?;
        let pdta = pdta.context("no pdta chunk")?;
        let get = |name: &[u8; 4], rec: usize| -> Result<&[u8]> {
            let (_, r) = pdta
                .iter()
                .find(|(id, _)| id == name)
                .with_context(|| format!("no {} chunk", String::from_utf8_lossy(name)))?;
            if r.len() % rec != 0 {
                bail!(
                    "{} is not a whole number of records",
                    String::from_utf8_lossy(name)
                );
            }
            Ok(&data[r.clone()])
        };
        let presets = get(b"phdr", 38)?
            .chunks(38)
            .map(|c| Preset {
                name: name(&c[..20]),
                program: u16le(c, 20),
                bank: u16le(c, 22),
                bag: u16le(c, 24),
            })
            .collect();
        let bags = |b: &[u8]| b.chunks(4).map(|c| (u16le(c, 0), u16le(c, 2))).collect();
        let gens = |b: &[u8]| b.chunks(4).map(|c| (u16le(c, 0), [c[2], c[3]])).collect();
        let pbag = bags(get(b"pbag", 4)?);
        let pgen = gens(get(b"pgen", 4)?);
        let inst = get(b"inst", 22)?
            .chunks(22)
            .map(|c| (name(&c[..20]), u16le(c, 20)))
            .collect();
        let ibag = bags(get(b"ibag", 4)?);
        let igen = gens(get(b"igen", 4)?);
        let samples = get(b"shdr", 46)?
            .chunks(46)
            .map(|c| SampleHeader {
                name: name(&c[..20]),
                start: u32le(c, 20),
                end: u32le(c, 24),
                loop_start: u32le(c, 28),
                loop_end: u32le(c, 32),
                rate: u32le(c, 36),
                original_pitch: c[40],
                pitch_correction: c[41] as i8,
                kind: u16le(c, 44),
            })
            .collect();
        Ok(SoundFont {
            data,
            smpl,
            presets,
            pbag,
            pgen,
            inst,
            ibag,
            igen,
            samples,
        })
    }

    /// The preset at `bank:program`.
    pub fn preset(&self, bank: u16, program: u16) -> Option<&Preset> {
        // The last record is the terminal "EOP".
        self.presets[..self.presets.len().saturating_sub(1)]
            .iter()
            .find(|p| p.bank == bank && p.program == program)
    }

    /// The Ogg Vorbis bytes of sample `i`.
    pub fn ogg(&self, i: usize) -> Result<&[u8]> {
        let h = &self.samples[i];
        if !h.is_vorbis() {
            bail!("sample {} is not Vorbis-compressed", h.name);
        }
        let (s, e) = (h.start as usize, h.end as usize);
        if s >= e || self.smpl.start + e > self.smpl.end {
            bail!("sample {} lies outside smpl", h.name);
        }
        Ok(&self.data[self.smpl.start + s..self.smpl.start + e])
    }

    /// Decodes sample `i` to 16-bit PCM (first channel) and its rate.
    pub fn decode(&self, i: usize) -> Result<(Vec<i16>, u32)> {
        let ogg = self.ogg(i)?;
        let mut r = lewton::inside_ogg::OggStreamReader::new(std::io::Cursor::new(ogg))
            .with_context(|| format!("sample {}: bad Ogg stream", self.samples[i].name))?;
        let ch = r.ident_hdr.audio_channels.max(1) as usize;
        let rate = r.ident_hdr.audio_sample_rate;
        let mut pcm = Vec::new();
        while let Some(p) = r
            .read_dec_packet_itl()
            .with_context(|| format!("sample {}: Vorbis decode", self.samples[i].name))?
        {
            pcm.extend(p.iter().step_by(ch));
        }
        Ok((pcm, rate))
    }

    fn bag_gens<'a>(
        bags: &'a [(u16, u16)],
        gens: &'a [(u16, [u8; 2])],
        range: std::ops::Range<usize>,
    ) -> impl Iterator<Item = &'a [(u16, [u8; 2])]> + 'a {
        range.map(move |b| {
            let lo = bags[b].0 as usize;
            let hi = bags.get(b + 1).map_or(gens.len(), |n| n.0 as usize);
            &gens[lo.min(gens.len())..hi.min(gens.len())]
        })
    }

    /// Every zone that plays preset `p`, left or mono samples only.
    pub fn zones(&self, p: &Preset) -> Result<Vec<Zone>> {
        let pi = self
            .presets
            .iter()
            .position(|q| q.bank == p.bank && q.program == p.program)
            .context("preset vanished")?;
        let pbags = p.bag as usize..self.presets[pi + 1].bag as usize;
        let pzones: Vec<_> = Self::bag_gens(&self.pbag, &self.pgen, pbags).collect();
        let mut pglobal: &[(u16, [u8; 2])] = &[];
        let mut out = Vec::new();
        for (n, pz) in pzones.iter().enumerate() {
            let Some(inst) = pz
                .iter()
                .find(|g| g.0 == 41)
                .map(|g| u16::from_le_bytes(g.1))
            else {
                if n == 0 {
                    pglobal = pz;
                }
                continue;
            };
            let pg = Gens::layered(pglobal, pz);
            let i = inst as usize;
            if i + 1 >= self.inst.len() {
                bail!("preset {} names instrument {i} that does not exist", p.name);
            }
            let ibags = self.inst[i].1 as usize..self.inst[i + 1].1 as usize;
            let izones: Vec<_> = Self::bag_gens(&self.ibag, &self.igen, ibags).collect();
            let mut iglobal: &[(u16, [u8; 2])] = &[];
            for (m, iz) in izones.iter().enumerate() {
                let Some(sample) = iz
                    .iter()
                    .find(|g| g.0 == 53)
                    .map(|g| u16::from_le_bytes(g.1))
                else {
                    if m == 0 {
                        iglobal = iz;
                    }
                    continue;
                };
                let ig = Gens::layered(iglobal, iz);
                let s = sample as usize;
                let Some(h) = self.samples.get(s) else {
                    bail!(
                        "instrument {} names sample {s} that does not exist",
                        self.inst[i].0
                    );
                };
                if h.is_right() {
                    continue;
                }
                let (ik_lo, ik_hi) = ig.range(43);
                let (pk_lo, pk_hi) = pg.range(43);
                let (iv_lo, iv_hi) = ig.range(44);
                let (pv_lo, pv_hi) = pg.range(44);
                let key = (ik_lo.max(pk_lo), ik_hi.min(pk_hi));
                let vel = (iv_lo.max(pv_lo), iv_hi.min(pv_hi));
                if key.0 > key.1 || vel.0 > vel.1 {
                    continue;
                }
                // Instrument-level values plus preset-level offsets.
                let sum =
                    |g: u16, default: i32| ig.get(g).unwrap_or(default) + pg.get(g).unwrap_or(0);
                let root = ig.get(58).filter(|r| (0..=127).contains(r));
                out.push(Zone {
                    instrument: i,
                    sample: s,
                    key_lo: key.0,
                    key_hi: key.1,
                    vel_lo: vel.0,
                    vel_hi: vel.1,
                    root: root.map_or(h.original_pitch.min(127), |r| r as u8),
                    tune: sum(51, 0) * 100 + sum(52, 0) + h.pitch_correction as i32,
                    scale_tuning: sum(56, 100),
                    looped: matches!(ig.get(54).unwrap_or(0), 1 | 3),
                    offsets: [
                        ig.get(0).unwrap_or(0) + ig.get(4).unwrap_or(0) * 32768,
                        ig.get(1).unwrap_or(0) + ig.get(12).unwrap_or(0) * 32768,
                        ig.get(2).unwrap_or(0) + ig.get(45).unwrap_or(0) * 32768,
                        ig.get(3).unwrap_or(0) + ig.get(50).unwrap_or(0) * 32768,
                    ],
                    attenuation: sum(48, 0),
                    filter_fc: sum(8, 13500),
                    env: [
                        sum(33, -12000),
                        sum(34, -12000),
                        sum(35, -12000),
                        sum(36, -12000),
                        sum(37, 0),
                        sum(38, -12000),
                    ],
                });
            }
        }
        Ok(out)
    }
}

/// The generators of one zone: the global zone's, overridden by the zone's own.
struct Gens<'a> {
    global: &'a [(u16, [u8; 2])],
    local: &'a [(u16, [u8; 2])],
}

impl<'a> Gens<'a> {
    fn layered(global: &'a [(u16, [u8; 2])], local: &'a [(u16, [u8; 2])]) -> Gens<'a> {
        Gens { global, local }
    }
    fn raw(&self, op: u16) -> Option<[u8; 2]> {
        self.local
            .iter()
            .rev()
            .find(|g| g.0 == op)
            .or_else(|| self.global.iter().rev().find(|g| g.0 == op))
            .map(|g| g.1)
    }
    fn get(&self, op: u16) -> Option<i32> {
        self.raw(op).map(|b| i16::from_le_bytes(b) as i32)
    }
    fn range(&self, op: u16) -> (u8, u8) {
        self.raw(op).map_or((0, 127), |b| (b[0], b[1]))
    }
}
