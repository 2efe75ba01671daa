//! Every limit of the session model and the live session, defined once and shared by the
//! server, the Cloudflare host and the browser (LESSONS: constants drifted between client and
//! server when they were written twice).

/// Wire protocol version spoken by this build. A client states it in `HELLO`.
pub const PROTOCOL_VERSION: u32 = 1;
/// Oldest protocol version this build still accepts.
pub const MIN_PROTOCOL_VERSION: u32 = 1;

pub const MAX_TRACKS: usize = 16;
/// Fixed storage per track; the step count is a loop window over these slots.
pub const STEP_SLOTS: usize = 128;
/// Allowed loop lengths (step counts) for a track.
pub const STEP_COUNTS: &[u16] = &[
    3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 20, 21, 24, 27, 28, 32, 36, 48, 64, 96,
    128,
];
pub const TEMPO_MIN: u16 = 60;
pub const TEMPO_MAX: u16 = 180;
pub const SWING_MAX: u8 = 100;
pub const SESSION_NAME_MAX_CHARS: usize = 100;
pub const TRACK_NAME_MAX_CHARS: usize = 32;
pub const PITCH_MIN: i8 = -24;
pub const PITCH_MAX: i8 = 24;
/// Notes one step of a melodic track may hold: its pitch and up to three chord notes.
pub const CHORD_MAX_NOTES: usize = 4;
pub const TRANSPOSE_MIN: i8 = -24;
pub const TRANSPOSE_MAX: i8 = 24;
/// Length limits of identifiers on the wire.
pub const TRACK_ID_MAX_CHARS: usize = 36;
pub const INSTRUMENT_ID_MAX_CHARS: usize = 64;
pub const MUTATION_ID_MAX_CHARS: usize = 64;
pub const PLAYER_ID_MAX_CHARS: usize = 64;
pub const PLAYER_NAME_MAX_CHARS: usize = 32;
pub const MAX_SAMPLES_PER_SESSION: usize = 64;

/// Parts of one `BATCH` edit (an undo, a redo, a pattern tool): one edit, one log entry.
pub const MAX_BATCH_EDITS: usize = 512;
/// Undo levels each player keeps (their own edits only).
pub const UNDO_LEVELS: usize = 200;

/// Players connected to one session at once.
pub const MAX_PLAYERS: usize = 10;
/// Largest WebSocket text message the session accepts.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Largest HTTP JSON body the API accepts.
pub const MAX_JSON_BODY_BYTES: usize = 64 * 1024;
/// Largest recording upload.
pub const MAX_RECORDING_BYTES: usize = 8 * 1024 * 1024;
/// Longest recording, in seconds.
pub const MAX_RECORDING_SECONDS: f64 = 30.0;
