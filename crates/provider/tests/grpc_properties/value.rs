//! Terraform values as the test reads and writes them, in its own msgpack.

use std::collections::BTreeMap;

use rmpv::Value as Mp;

/// A Terraform value without its type: enough for the attributes of these two resources.
#[derive(Clone, PartialEq)]
pub enum Tv {
    Null,
    Unknown,
    Bool(bool),
    Num(f64),
    Str(String),
    List(Vec<Tv>),
    Obj(BTreeMap<String, Tv>),
}

/// Shows values with every `token` attribute redacted, so no failure message carries one.
impl std::fmt::Debug for Tv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tv::Null => f.write_str("null"),
            Tv::Unknown => f.write_str("<unknown>"),
            Tv::Bool(b) => write!(f, "{b}"),
            Tv::Num(n) => write!(f, "{n}"),
            Tv::Str(s) => write!(f, "{s:?}"),
            Tv::List(items) => f.debug_list().entries(items).finish(),
            Tv::Obj(map) => {
                let mut m = f.debug_map();
                for (k, v) in map {
                    if k == "token" && matches!(v, Tv::Str(_)) {
                        m.entry(k, &"<redacted>");
                    } else {
                        m.entry(k, v);
                    }
                }
                m.finish()
            }
        }
    }
}

impl Tv {
    pub fn s(text: &str) -> Tv {
        Tv::Str(text.to_owned())
    }

    pub fn obj<'a>(pairs: impl IntoIterator<Item = (&'a str, Tv)>) -> Tv {
        Tv::Obj(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    pub fn get(&self, name: &str) -> &Tv {
        match self {
            Tv::Obj(map) => map.get(name).unwrap_or(&Tv::Null),
            _ => &Tv::Null,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Tv::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Tv::Null)
    }

    pub fn has_unknown(&self) -> bool {
        match self {
            Tv::Unknown => true,
            Tv::List(items) => items.iter().any(Tv::has_unknown),
            Tv::Obj(map) => map.values().any(Tv::has_unknown),
            _ => false,
        }
    }

    /// Equal and wholly known, as Terraform's `Equals(...).True()`.
    pub fn surely_eq(&self, other: &Tv) -> bool {
        !self.has_unknown() && !other.has_unknown() && self == other
    }

    pub fn set(&mut self, name: &str, value: Tv) {
        if let Tv::Obj(map) = self {
            map.insert(name.to_owned(), value);
        }
    }
}

pub fn to_mp(value: &Tv) -> Mp {
    match value {
        Tv::Null => Mp::Nil,
        // Terraform writes an unknown as extension 0 with one zero byte.
        Tv::Unknown => Mp::Ext(0, vec![0]),
        Tv::Bool(b) => Mp::Boolean(*b),
        Tv::Num(n) => Mp::F64(*n),
        Tv::Str(s) => Mp::String(s.as_str().into()),
        Tv::List(items) => Mp::Array(items.iter().map(to_mp).collect()),
        Tv::Obj(map) => Mp::Map(
            map.iter()
                .map(|(k, v)| (Mp::String(k.as_str().into()), to_mp(v)))
                .collect(),
        ),
    }
}

pub fn from_mp(mp: &Mp) -> Tv {
    match mp {
        Mp::Nil => Tv::Null,
        Mp::Ext(..) => Tv::Unknown,
        Mp::Boolean(b) => Tv::Bool(*b),
        Mp::Integer(i) => Tv::Num(i.as_f64().unwrap_or(f64::NAN)),
        Mp::F32(n) => Tv::Num(f64::from(*n)),
        Mp::F64(n) => Tv::Num(*n),
        Mp::String(s) => Tv::Str(s.as_str().expect("UTF-8 string").to_owned()),
        Mp::Array(items) => Tv::List(items.iter().map(from_mp).collect()),
        Mp::Map(pairs) => Tv::Obj(
            pairs
                .iter()
                .map(|(k, v)| (k.as_str().expect("string key").to_owned(), from_mp(v)))
                .collect(),
        ),
        other => panic!("unexpected msgpack value {other:?}"),
    }
}

/// The JSON a state file stores for a wholly known value.
pub fn to_json(value: &Tv) -> serde_json::Value {
    match value {
        Tv::Null => serde_json::Value::Null,
        Tv::Unknown => panic!("a state has no unknown values"),
        Tv::Bool(b) => serde_json::Value::Bool(*b),
        Tv::Num(n) => serde_json::json!(n),
        Tv::Str(s) => serde_json::Value::String(s.clone()),
        Tv::List(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Tv::Obj(map) => {
            serde_json::Value::Object(map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

pub fn encode(value: &Tv) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &to_mp(value)).expect("msgpack encoding");
    out
}

pub fn decode(bytes: &[u8]) -> Tv {
    let mut reader = bytes;
    let mp = rmpv::decode::read_value(&mut reader).expect("the provider sent valid msgpack");
    assert!(reader.is_empty(), "trailing bytes after the msgpack value");
    from_mp(&mp)
}

/// `planned` allows `actual`: every value known in `planned` is the same in `actual`
/// (Terraform's `AssertObjectCompatible`, for these types).
pub fn compatible(planned: &Tv, actual: &Tv) -> bool {
    match (planned, actual) {
        (Tv::Unknown, _) => true,
        (Tv::List(a), Tv::List(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| compatible(x, y))
        }
        (Tv::Obj(a), Tv::Obj(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, x)| b.get(k).is_some_and(|y| compatible(x, y)))
        }
        (a, b) => a == b,
    }
}
