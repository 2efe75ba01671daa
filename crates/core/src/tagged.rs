//! Reading internally tagged JSON (`{"type": "SET_STEP", ...fields}`) without serde's buffered
//! path.
//!
//! serde's derive for `#[serde(tag = "type")]` (and for `flatten` and `untagged`) first buffers
//! the whole value into its private `Content` tree, then deserializes the variant from that: one
//! more generic instantiation of every variant's visitor, and of every type nested in it, for a
//! second deserializer. In the browser app that was about 80 KB of wasm (docs/BENCHMARKS.md).
//!
//! Here the value is kept as its JSON text ([`RawValue`]); a struct that only has `type` reads
//! the tag, and the same text is read again into the variant's own struct. The wire format is
//! the one the derive reads (other fields, such as `seq` next to a change, are ignored), and so
//! are the errors: an unknown tag is serde's "unknown variant" error, a missing one "missing
//! field `type`", and a bad field the variant's own error (without a position, as before: the
//! outer deserializer adds its own where it has one).
//!
//! Serialization stays derived (`#[serde(tag = "type")]` serializes without buffering).
//!
//! Used for what the browser app reads: [`Change`](crate::protocol::Change),
//! [`Applied`](crate::protocol::Applied) and [`ServerMessage`](crate::protocol::ServerMessage)
//! (a server message is read in about 0.67 µs instead of 0.96 µs). Edits, which only the servers
//! read, keep the derive: read this way a `SET_STEP` edit took 0.84 µs instead of 0.46 µs (the
//! text is read four times: the frame's head, the tag, the fields and the `mid`).

use std::borrow::Cow;

use serde::de::{DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// A tagged value's JSON text, as read from any `serde_json` deserializer (a `&str`, bytes, a
/// reader or a [`serde_json::Value`]).
pub(crate) fn raw<'de, D: Deserializer<'de>>(d: D) -> Result<Box<RawValue>, D::Error> {
    Box::<RawValue>::deserialize(d)
}

/// The `"type"` of a tagged value.
pub(crate) fn tag<E: serde::de::Error>(raw: &RawValue) -> Result<Cow<'_, str>, E> {
    #[derive(Deserialize)]
    struct Tag<'a> {
        #[serde(rename = "type", borrow)]
        ty: Cow<'a, str>,
    }
    read::<Tag>(raw.get()).map(|t| t.ty).map_err(error)
}

/// The value read again as `T` (a variant's fields).
pub(crate) fn body<T: DeserializeOwned, E: serde::de::Error>(raw: &RawValue) -> Result<T, E> {
    read(raw.get()).map_err(error)
}

/// Reads a struct from a JSON object, through [`ObjectOnly`].
fn read<'de, T: Deserialize<'de>>(text: &'de str) -> serde_json::Result<T> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = T::deserialize(ObjectOnly(&mut de))?;
    de.end()?;
    Ok(value)
}

/// `serde_json`'s deserializer, except that a struct is read only from an object. serde's derive
/// also reads a struct from an array of its fields (`visit_seq`); a tagged value is always an
/// object, so that half of every variant's visitor would be dead code in the app.
struct ObjectOnly<'a, 'de>(&'a mut serde_json::Deserializer<serde_json::de::StrRead<'de>>);

impl<'de> Deserializer<'de> for ObjectOnly<'_, 'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> serde_json::Result<V::Value> {
        self.0.deserialize_any(v)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> serde_json::Result<V::Value> {
        self.0.deserialize_map(v)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// An error of the inner read, as the outer deserializer's: without the inner position (which
/// counts from the start of this value, not of the message).
fn error<E: serde::de::Error>(e: serde_json::Error) -> E {
    E::custom(unpositioned(&e))
}

fn unpositioned(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if e.line() == 0 {
        return text;
    }
    let at = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&at) {
        Some(t) => t.to_owned(),
        None => text,
    }
}

/// The error for a tag no variant has, as serde words it.
pub(crate) fn unknown<E: serde::de::Error>(tag: &str, expected: &'static [&'static str]) -> E {
    E::unknown_variant(tag, expected)
}

/// An internally tagged enum of struct variants: the enum (with its derived `Serialize`, tag
/// `"type"`, fields in camelCase) and a `Deserialize` through [`raw`], [`tag`] and [`body`], from
/// one list of variants, each written `"TAG" => Variant { fields }`.
macro_rules! tagged_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[doc = $vdoc:literal])*
                $tag:literal => $variant:ident {
                    $( $(#[$fattr:meta])* $field:ident : $fty:ty ),* $(,)?
                }
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(serde::Serialize)]
        #[serde(tag = "type", rename_all_fields = "camelCase")]
        $vis enum $name {
            $(
                $(#[doc = $vdoc])*
                #[serde(rename = $tag)]
                $variant { $( $(#[$fattr])* $field : $fty ),* },
            )*
        }

        impl $name {
            /// Reads a value from its JSON text (see `crate::tagged`).
            #[allow(dead_code)]
            pub(crate) fn from_raw<E: serde::de::Error>(
                raw: &serde_json::value::RawValue,
            ) -> Result<Self, E> {
                const TAGS: &[&str] = &[$($tag),*];
                let tag = $crate::tagged::tag::<E>(raw)?;
                match tag.as_ref() {
                    $(
                        $tag => {
                            #[derive(serde::Deserialize)]
                            #[serde(rename_all = "camelCase")]
                            struct Fields {
                                $( $(#[$fattr])* $field : $fty ),*
                            }
                            let Fields { $($field),* } = $crate::tagged::body::<Fields, E>(raw)?;
                            Ok($name::$variant { $($field),* })
                        }
                    )*
                    other => Err($crate::tagged::unknown(other, TAGS)),
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::from_raw(&$crate::tagged::raw(d)?)
            }
        }
    };
}
pub(crate) use tagged_enum;

#[cfg(test)]
mod tests {
    use crate::protocol::{Applied, Change, ServerMessage};

    fn error<T: serde::de::DeserializeOwned + std::fmt::Debug>(text: &str) -> String {
        serde_json::from_str::<T>(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_read_as_the_derive_words_them() {
        let e = error::<Change>(r#"{"type":"NOPE"}"#);
        assert!(
            e.starts_with("unknown variant `NOPE`, expected one of `SET_STEP`, "),
            "{e}"
        );
        assert_eq!(
            error::<Change>(r#"{"trackId":"a"}"#),
            "missing field `type`"
        );
        assert_eq!(
            error::<Change>(r#"{"type":"SET_STEP","trackId":"a","step":300,"active":true}"#),
            "invalid value: integer `300`, expected u8"
        );
        // Nested: no inner position; the outer deserializer adds its own where it has one.
        assert_eq!(
            error::<Applied>(r#"{"type":"BATCH","seq":1,"changes":[{"type":"SET_SWING"}]}"#),
            "missing field `swing`"
        );
        assert_eq!(
            error::<Vec<Change>>(r#"[{"type":"SET_SWING"}]"#),
            "missing field `swing` at line 1 column 22"
        );
        assert_eq!(
            error::<Applied>(r#"{"type":"SET_SWING","swing":3}"#),
            "missing field `seq`"
        );
    }

    #[test]
    fn reads_from_a_value_and_ignores_other_fields() {
        let v = serde_json::json!({"type": "SET_SWING", "swing": 3, "seq": 7, "mid": "m"});
        let a: Applied = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(a.change, Change::SetSwing { swing: 3 });
        assert_eq!((a.seq, a.mid.as_deref()), (7, Some("m")));
        assert_eq!(
            serde_json::from_value::<ServerMessage>(v).unwrap(),
            ServerMessage::Applied(a)
        );
        assert_eq!(ServerMessage::decode(r#"{"type":"NOPE","seq":1}"#), None);
    }
}
