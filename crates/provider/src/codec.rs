//! DynamicValue: msgpack (and JSON, for stored state) to the model's values and back.
//!
//! msgpack does not tell a list from a set or an object from a map, so decoding follows the
//! schema. Unknown is any msgpack extension value (type 0, or 12 for refined unknowns).
//!
//! Both decoders take any bytes: bad input is an error, never a panic, and memory stays
//! bounded. Before a value is built, a pass that allocates nothing counts its elements (a
//! header claiming 2^32 of them costs nothing up front) and refuses more than [`MAX_VALUES`];
//! nesting is bounded by rmpv's and serde_json's depth limits, and the model's values follow
//! the schema. Numbers must be finite.

use std::collections::BTreeMap;

use model::schema::{AttrType, Block, Nesting};
use model::value::Value;
use rmpv::Value as Mp;

/// The most values (scalars, lists and maps, at any depth) one DynamicValue may hold: far more
/// than any of our schemas needs, and little memory.
pub const MAX_VALUES: usize = 1 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("the value is not valid msgpack: {0}")]
    Msgpack(String),
    #[error("the value is not valid JSON: {0}")]
    Json(String),
    #[error("{path}: expected {expected}")]
    Shape { path: String, expected: String },
    #[error("the value holds more than {MAX_VALUES} elements")]
    TooLarge,
}

fn shape(path: &str, expected: &str) -> CodecError {
    CodecError::Shape {
        path: if path.is_empty() {
            "(root)".into()
        } else {
            path.to_owned()
        },
        expected: expected.to_owned(),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// Decodes a block from msgpack bytes.
pub fn decode_block(block: &Block, bytes: &[u8]) -> Result<Value, CodecError> {
    count_msgpack(bytes)?;
    let mut reader = bytes;
    let mp =
        rmpv::decode::read_value(&mut reader).map_err(|e| CodecError::Msgpack(e.to_string()))?;
    block_from_mp(block, &mp, "")
}

/// Walks the msgpack value at the start of `bytes` without building it: an error when it is
/// truncated, malformed, or holds more than [`MAX_VALUES`] values.
fn count_msgpack(mut bytes: &[u8]) -> Result<(), CodecError> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], CodecError> {
        if n > bytes.len() {
            return Err(CodecError::Msgpack("unexpected end of input".into()));
        }
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Ok(head)
    }
    /// A big-endian length of `width` (1, 2 or 4) bytes.
    fn length(bytes: &mut &[u8], width: usize) -> Result<u64, CodecError> {
        let mut be = [0u8; 8];
        be[8 - width..].copy_from_slice(take(bytes, width)?);
        Ok(u64::from_be_bytes(be))
    }
    // Values still to read; each costs at least one byte, and `seen` caps the total.
    let mut pending: u64 = 1;
    let mut seen = 0usize;
    while pending > 0 {
        pending -= 1;
        seen += 1;
        if seen > MAX_VALUES {
            return Err(CodecError::TooLarge);
        }
        // The msgpack markers: (values inside, bytes to skip).
        let marker = take(&mut bytes, 1)?[0];
        let (children, skip) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (2 * u64::from(marker & 0x0f), 0),
            0x90..=0x9f => (u64::from(marker & 0x0f), 0),
            0xa0..=0xbf => (0, u64::from(marker & 0x1f)),
            0xc1 => return Err(CodecError::Msgpack("reserved marker 0xc1".into())),
            // bin and str 8/16/32
            0xc4 | 0xd9 => (0, length(&mut bytes, 1)?),
            0xc5 | 0xda => (0, length(&mut bytes, 2)?),
            0xc6 | 0xdb => (0, length(&mut bytes, 4)?),
            // ext 8/16/32: the length, the type byte, the data
            0xc7 => (0, length(&mut bytes, 1)? + 1),
            0xc8 => (0, length(&mut bytes, 2)? + 1),
            0xc9 => (0, length(&mut bytes, 4)? + 1),
            // fixext 1/2/4/8/16
            0xd4 => (0, 2),
            0xd5 => (0, 3),
            0xd6 => (0, 5),
            0xd7 => (0, 9),
            0xd8 => (0, 17),
            // u8, i8 / u16, i16 / f32, u32, i32 / f64, u64, i64
            0xcc | 0xd0 => (0, 1),
            0xcd | 0xd1 => (0, 2),
            0xca | 0xce | 0xd2 => (0, 4),
            0xcb | 0xcf | 0xd3 => (0, 8),
            0xdc => (length(&mut bytes, 2)?, 0),
            0xdd => (length(&mut bytes, 4)?, 0),
            0xde => (2 * length(&mut bytes, 2)?, 0),
            0xdf => (2 * length(&mut bytes, 4)?, 0),
        };
        take(&mut bytes, usize::try_from(skip).unwrap_or(usize::MAX))?;
        pending += children;
    }
    Ok(())
}

fn finite(n: f64, path: &str) -> Result<Value, CodecError> {
    if n.is_finite() {
        Ok(Value::Number(n))
    } else {
        Err(shape(path, "a finite number"))
    }
}

fn block_from_mp(block: &Block, mp: &Mp, path: &str) -> Result<Value, CodecError> {
    match mp {
        Mp::Nil => return Ok(Value::Null),
        Mp::Ext(..) => return Ok(Value::Unknown),
        Mp::Map(_) => {}
        _ => return Err(shape(path, "an object")),
    }
    let entries = map_entries(mp, path)?;
    let mut out = BTreeMap::new();
    for attr in &block.attributes {
        let value = match entries.get(attr.name) {
            Some(v) => from_mp(&attr.ty, v, &join(path, attr.name))?,
            None => Value::Null,
        };
        out.insert(attr.name.to_owned(), value);
    }
    for nested in &block.blocks {
        let name = nested.type_name;
        let at = join(path, name);
        let value = match (nested.nesting, entries.get(name)) {
            (Nesting::Single, Some(v)) => block_from_mp(&nested.block, v, &at)?,
            (Nesting::Single, None) => Value::Null,
            (Nesting::List | Nesting::Set, None | Some(Mp::Nil)) => empty(nested.nesting),
            (_, Some(Mp::Ext(..))) => Value::Unknown,
            (nesting, Some(Mp::Array(items))) => {
                let items = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| block_from_mp(&nested.block, v, &format!("{at}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                if nesting == Nesting::Set {
                    Value::Set(items)
                } else {
                    Value::List(items)
                }
            }
            (_, Some(_)) => return Err(shape(&at, "a list of blocks")),
        };
        out.insert(name.to_owned(), value);
    }
    Ok(Value::Object(out))
}

fn empty(nesting: Nesting) -> Value {
    match nesting {
        Nesting::Set => Value::Set(Vec::new()),
        _ => Value::List(Vec::new()),
    }
}

fn map_entries<'a>(mp: &'a Mp, path: &str) -> Result<BTreeMap<&'a str, &'a Mp>, CodecError> {
    let Mp::Map(pairs) = mp else {
        return Err(shape(path, "an object"));
    };
    pairs
        .iter()
        .map(|(k, v)| {
            k.as_str()
                .map(|k| (k, v))
                .ok_or_else(|| shape(path, "string keys"))
        })
        .collect()
}

fn from_mp(ty: &AttrType, mp: &Mp, path: &str) -> Result<Value, CodecError> {
    Ok(match (ty, mp) {
        (_, Mp::Nil) => Value::Null,
        (_, Mp::Ext(..)) => Value::Unknown,
        (AttrType::String, Mp::String(s)) => Value::String(
            s.as_str()
                .ok_or_else(|| shape(path, "UTF-8 text"))?
                .to_owned(),
        ),
        (AttrType::Bool, Mp::Boolean(b)) => Value::Bool(*b),
        (AttrType::Number, Mp::Integer(i)) => finite(i.as_f64().unwrap_or_default(), path)?,
        (AttrType::Number, Mp::F32(f)) => finite(f64::from(*f), path)?,
        (AttrType::Number, Mp::F64(f)) => finite(*f, path)?,
        (AttrType::Number, Mp::String(s)) => finite(
            s.as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| shape(path, "a number"))?,
            path,
        )?,
        (AttrType::List(inner), Mp::Array(items)) => {
            Value::List(items_from_mp(inner, items, path)?)
        }
        (AttrType::Set(inner), Mp::Array(items)) => Value::Set(items_from_mp(inner, items, path)?),
        (AttrType::Map(inner), Mp::Map(_)) => Value::Map(
            map_entries(mp, path)?
                .into_iter()
                .map(|(k, v)| Ok((k.to_owned(), from_mp(inner, v, &format!("{path}[{k:?}]"))?)))
                .collect::<Result<_, CodecError>>()?,
        ),
        (AttrType::Object(attrs), Mp::Map(_)) => {
            let entries = map_entries(mp, path)?;
            Value::Object(
                attrs
                    .iter()
                    .map(|(name, ty)| {
                        let v = entries
                            .get(name)
                            .map_or(Ok(Value::Null), |v| from_mp(ty, v, &join(path, name)))?;
                        Ok(((*name).to_owned(), v))
                    })
                    .collect::<Result<_, CodecError>>()?,
            )
        }
        (ty, _) => return Err(shape(path, &format!("a {}", type_name(ty)))),
    })
}

fn items_from_mp(inner: &AttrType, items: &[Mp], path: &str) -> Result<Vec<Value>, CodecError> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| from_mp(inner, v, &format!("{path}[{i}]")))
        .collect()
}

fn type_name(ty: &AttrType) -> &'static str {
    match ty {
        AttrType::String => "string",
        AttrType::Number => "number",
        AttrType::Bool => "bool",
        AttrType::List(_) => "list",
        AttrType::Set(_) => "set",
        AttrType::Map(_) => "map",
        AttrType::Object(_) => "object",
    }
}

/// Encodes a value as msgpack (unknown as extension type 0).
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, &to_mp(value));
    out
}

/// 2^63: the int64 range is [-2^63, 2^63).
const TWO_TO_63: f64 = 9_223_372_036_854_775_808.0;

fn to_mp(value: &Value) -> Mp {
    match value {
        Value::Null => Mp::Nil,
        Value::Unknown => Mp::Ext(0, vec![0]),
        Value::Bool(b) => Mp::Boolean(*b),
        // As go-cty writes numbers: one that is an int64 as an integer, any other as a float64.
        Value::Number(n) if n.fract() == 0.0 && (-TWO_TO_63..TWO_TO_63).contains(n) => {
            Mp::Integer((*n as i64).into())
        }
        Value::Number(n) => Mp::F64(*n),
        Value::String(s) => Mp::String(s.as_str().into()),
        Value::List(items) | Value::Set(items) => Mp::Array(items.iter().map(to_mp).collect()),
        Value::Map(map) | Value::Object(map) => Mp::Map(
            map.iter()
                .map(|(k, v)| (Mp::String(k.as_str().into()), to_mp(v)))
                .collect(),
        ),
    }
}

/// Decodes a block from JSON (the `attributes` of a stored state); unknown keys are dropped.
pub fn decode_block_json(block: &Block, bytes: &[u8]) -> Result<Value, CodecError> {
    count_json(bytes)?;
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| CodecError::Json(e.to_string()))?;
    block_from_json(block, &json, "")
}

/// Parses JSON without building it: an error when it is not JSON or holds more than
/// [`MAX_VALUES`] values.
fn count_json(bytes: &[u8]) -> Result<(), CodecError> {
    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use std::cell::Cell;

    #[derive(Clone, Copy)]
    struct Budget<'a>(&'a Cell<usize>);

    impl Budget<'_> {
        fn spend<E: de::Error>(self) -> Result<(), E> {
            let left = self.0.get();
            if left == 0 {
                return Err(E::custom(CodecError::TooLarge));
            }
            self.0.set(left - 1);
            Ok(())
        }
    }

    impl<'de> DeserializeSeed<'de> for Budget<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Budget<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            self.spend()
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            self.spend()
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            self.spend()
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            self.spend()
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            self.spend()
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            self.spend()
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            self.spend()?;
            while seq.next_element_seed(self)?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            self.spend()?;
            while map.next_key_seed(self)?.is_some() {
                map.next_value_seed(self)?;
            }
            Ok(())
        }
    }

    let left = Cell::new(MAX_VALUES);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Budget(&left)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| match left.get() {
            0 => CodecError::TooLarge,
            _ => CodecError::Json(e.to_string()),
        })
}

fn block_from_json(
    block: &Block,
    json: &serde_json::Value,
    path: &str,
) -> Result<Value, CodecError> {
    let map = match json {
        serde_json::Value::Null => return Ok(Value::Null),
        serde_json::Value::Object(map) => map,
        _ => return Err(shape(path, "an object")),
    };
    let mut out = BTreeMap::new();
    for attr in &block.attributes {
        let v = map.get(attr.name).map_or(Ok(Value::Null), |v| {
            from_json(&attr.ty, v, &join(path, attr.name))
        })?;
        out.insert(attr.name.to_owned(), v);
    }
    for nested in &block.blocks {
        let at = join(path, nested.type_name);
        let v = match (nested.nesting, map.get(nested.type_name)) {
            (Nesting::Single, Some(v)) => block_from_json(&nested.block, v, &at)?,
            (Nesting::Single, None) => Value::Null,
            (n, None | Some(serde_json::Value::Null)) => empty(n),
            (n, Some(serde_json::Value::Array(items))) => {
                let items = items
                    .iter()
                    .map(|v| block_from_json(&nested.block, v, &at))
                    .collect::<Result<Vec<_>, _>>()?;
                if n == Nesting::Set {
                    Value::Set(items)
                } else {
                    Value::List(items)
                }
            }
            (_, Some(_)) => return Err(shape(&at, "a list of blocks")),
        };
        out.insert(nested.type_name.to_owned(), v);
    }
    Ok(Value::Object(out))
}

fn from_json(ty: &AttrType, json: &serde_json::Value, path: &str) -> Result<Value, CodecError> {
    use serde_json::Value as J;
    Ok(match (ty, json) {
        (_, J::Null) => Value::Null,
        (AttrType::String, J::String(s)) => Value::String(s.clone()),
        (AttrType::Bool, J::Bool(b)) => Value::Bool(*b),
        (AttrType::Number, J::Number(n)) => finite(n.as_f64().unwrap_or_default(), path)?,
        (AttrType::List(inner), J::Array(items)) => Value::List(
            items
                .iter()
                .map(|v| from_json(inner, v, path))
                .collect::<Result<_, _>>()?,
        ),
        (AttrType::Set(inner), J::Array(items)) => Value::Set(
            items
                .iter()
                .map(|v| from_json(inner, v, path))
                .collect::<Result<_, _>>()?,
        ),
        (AttrType::Map(inner), J::Object(map)) => Value::Map(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), from_json(inner, v, path)?)))
                .collect::<Result<_, CodecError>>()?,
        ),
        (AttrType::Object(attrs), J::Object(map)) => Value::Object(
            attrs
                .iter()
                .map(|(name, ty)| {
                    Ok((
                        (*name).to_owned(),
                        map.get(*name)
                            .map_or(Ok(Value::Null), |v| from_json(ty, v, &join(path, name)))?,
                    ))
                })
                .collect::<Result<_, CodecError>>()?,
        ),
        (ty, _) => return Err(shape(path, &format!("a {}", type_name(ty)))),
    })
}

/// The cty type of an attribute as Terraform's schema wants it, as JSON bytes.
pub fn cty_type(ty: &AttrType) -> Vec<u8> {
    cty_json(ty).to_string().into_bytes()
}

fn cty_json(ty: &AttrType) -> serde_json::Value {
    use serde_json::json;
    match ty {
        AttrType::String => json!("string"),
        AttrType::Number => json!("number"),
        AttrType::Bool => json!("bool"),
        AttrType::List(inner) => json!(["list", cty_json(inner)]),
        AttrType::Set(inner) => json!(["set", cty_json(inner)]),
        AttrType::Map(inner) => json!(["map", cty_json(inner)]),
        AttrType::Object(attrs) => {
            let fields: serde_json::Map<String, serde_json::Value> = attrs
                .iter()
                .map(|(n, t)| ((*n).to_owned(), cty_json(t)))
                .collect();
            json!(["object", fields])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> Block {
        model::oci_identity_auth_tokens::schema().block
    }

    #[test]
    fn unknown_null_and_nested_blocks_round_trip() {
        let value = Value::object([
            ("user_id", Value::Unknown),
            ("auth_tokens", Value::Null),
            ("tokens", Value::List(vec![])),
            ("id", Value::string("x")),
            (
                "filter",
                Value::Set(vec![Value::object([
                    ("name", Value::string("state")),
                    ("values", Value::List(vec![Value::string("ACTIVE")])),
                    ("regex", Value::Bool(false)),
                ])]),
            ),
        ]);
        let bytes = encode(&value);
        assert_eq!(decode_block(&block(), &bytes).unwrap(), value);
    }

    #[test]
    fn unknown_is_ext_zero_and_any_ext_reads_as_unknown() {
        assert_eq!(encode(&Value::Unknown), vec![0xd4, 0x00, 0x00]);
        let refined = rmpv::Value::Map(vec![(
            rmpv::Value::String("user_id".into()),
            rmpv::Value::Ext(12, vec![0x81, 0x01, 0xc3]),
        )]);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &refined).unwrap();
        assert_eq!(
            decode_block(&block(), &bytes).unwrap().get("user_id"),
            &Value::Unknown
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(matches!(
            decode_block(&block(), &[0x82, 0xa4, b'n']),
            Err(CodecError::Msgpack(_))
        ));
        let wrong = encode(&Value::object([("user_id", Value::Bool(true))]));
        assert_eq!(
            decode_block(&block(), &wrong).unwrap_err().to_string(),
            "user_id: expected a string"
        );
        assert!(decode_block_json(&block(), b"{not json").is_err());
    }

    #[test]
    fn json_state_drops_unknown_keys_and_fills_missing_ones() {
        let value = decode_block_json(&block(), br#"{"user_id":"u","legacy":1}"#).unwrap();
        assert_eq!(value.get("user_id"), &Value::string("u"));
        assert_eq!(value.get("filter"), &Value::Set(vec![]));
        assert!(model::value::conforms_block(&block(), &value));
    }

    #[test]
    fn cty_types() {
        assert_eq!(
            cty_type(&AttrType::List(Box::new(AttrType::String))),
            br#"["list","string"]"#
        );
        assert_eq!(
            String::from_utf8(cty_type(&AttrType::Object(vec![("a", AttrType::Bool)]))).unwrap(),
            r#"["object",{"a":"bool"}]"#
        );
    }
}
