//! The kit's own reading of schemas and its own msgpack encoding of values (written here from
//! the protocol's rules, not borrowed from the provider's codec, so a codec bug shows up as a
//! difference from Terraform instead of cancelling out).

use anyhow::{Context, Result, anyhow, bail};
use provider::proto::tfplugin6 as pb;
use serde_json::{Map, Value as Json, json};

/// How an unknown value ("known after apply") is written in transcripts.
pub const UNKNOWN: &str = "(known after apply)";

#[derive(Debug, Clone)]
pub struct Block {
    pub attrs: Vec<Attr>,
    pub blocks: Vec<Nested>,
}

#[derive(Debug, Clone)]
pub struct Attr {
    pub name: String,
    pub ty: Json,
    pub computed: bool,
    pub sensitive: bool,
}

#[derive(Debug, Clone)]
pub struct Nested {
    pub name: String,
    pub nesting: pb::schema::nested_block::NestingMode,
    pub block: Block,
}

impl Block {
    pub fn from_proto(block: &pb::schema::Block) -> Result<Block> {
        let attrs = block
            .attributes
            .iter()
            .map(|a| {
                Ok(Attr {
                    name: a.name.clone(),
                    ty: serde_json::from_slice(&a.r#type)
                        .with_context(|| format!("the type of attribute {}", a.name))?,
                    computed: a.computed,
                    sensitive: a.sensitive,
                })
            })
            .collect::<Result<_>>()?;
        let blocks = block
            .block_types
            .iter()
            .map(|b| {
                Ok(Nested {
                    name: b.type_name.clone(),
                    nesting: b.nesting(),
                    block: Block::from_proto(
                        b.block
                            .as_ref()
                            .ok_or_else(|| anyhow!("block {} has no schema", b.type_name))?,
                    )?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Block { attrs, blocks })
    }

    /// The names that may appear in a configuration object of this block.
    pub fn knows(&self, name: &str) -> bool {
        self.attrs.iter().any(|a| a.name == name) || self.blocks.iter().any(|b| b.name == name)
    }
}

/// msgpack of a block's object; missing attributes are null, missing blocks empty.
pub fn encode_block(block: &Block, value: &Json) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &block_value(block, value)?)?;
    Ok(out)
}

pub fn null() -> Vec<u8> {
    vec![0xc0]
}

fn block_value(block: &Block, value: &Json) -> Result<rmpv::Value> {
    use pb::schema::nested_block::NestingMode;
    if value.is_null() {
        return Ok(rmpv::Value::Nil);
    }
    let Some(object) = value.as_object() else {
        bail!("expected an object, found {value}");
    };
    for key in object.keys() {
        if !block.knows(key) {
            bail!("unsupported argument {key:?}");
        }
    }
    let mut entries = Vec::new();
    for attr in &block.attrs {
        let v = object.get(&attr.name).unwrap_or(&Json::Null);
        let encoded = typed(&attr.ty, v).with_context(|| format!("attribute {:?}", attr.name))?;
        entries.push((rmpv::Value::from(attr.name.as_str()), encoded));
    }
    for nested in &block.blocks {
        let v = object.get(&nested.name).unwrap_or(&Json::Null);
        let items: Vec<&Json> = match v {
            Json::Null => Vec::new(),
            Json::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        let encoded = match nested.nesting {
            NestingMode::Single | NestingMode::Group => match items.first() {
                Some(item) => block_value(&nested.block, item)?,
                None => rmpv::Value::Nil,
            },
            NestingMode::List | NestingMode::Set => rmpv::Value::Array(
                items
                    .into_iter()
                    .map(|item| block_value(&nested.block, item))
                    .collect::<Result<_>>()?,
            ),
            other => bail!("block nesting {other:?} is not supported by the kit"),
        };
        entries.push((rmpv::Value::from(nested.name.as_str()), encoded));
    }
    Ok(rmpv::Value::Map(entries))
}

/// A JSON value as a value of cty type `ty`, converting as Terraform does (a number or bool
/// given for a string becomes its text, and back).
fn typed(ty: &Json, value: &Json) -> Result<rmpv::Value> {
    if value.is_null() {
        return Ok(rmpv::Value::Nil);
    }
    if value.as_str() == Some(UNKNOWN) {
        return Ok(rmpv::Value::Ext(0, vec![0]));
    }
    match (ty, value) {
        (Json::String(t), _) if t == "string" => match value {
            Json::String(s) => Ok(rmpv::Value::from(s.as_str())),
            Json::Number(n) => Ok(rmpv::Value::from(n.to_string())),
            Json::Bool(b) => Ok(rmpv::Value::from(b.to_string())),
            other => bail!("a string is required, found {other}"),
        },
        (Json::String(t), _) if t == "number" => {
            let n = match value {
                Json::Number(n) => n.as_f64(),
                Json::String(s) => s.parse::<f64>().ok(),
                _ => None,
            }
            .ok_or_else(|| anyhow!("a number is required, found {value}"))?;
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                Ok(rmpv::Value::from(n as i64))
            } else {
                Ok(rmpv::Value::F64(n))
            }
        }
        (Json::String(t), _) if t == "bool" => match value {
            Json::Bool(b) => Ok(rmpv::Value::Boolean(*b)),
            Json::String(s) if s == "true" || s == "false" => Ok(rmpv::Value::Boolean(s == "true")),
            other => bail!("a bool is required, found {other}"),
        },
        (Json::Array(t), _) if t.len() == 2 => {
            let kind = t[0].as_str().unwrap_or_default();
            match (kind, value) {
                ("list" | "set", Json::Array(items)) => Ok(rmpv::Value::Array(
                    items
                        .iter()
                        .map(|i| typed(&t[1], i))
                        .collect::<Result<_>>()?,
                )),
                ("map", Json::Object(m)) => Ok(rmpv::Value::Map(
                    m.iter()
                        .map(|(k, v)| Ok((rmpv::Value::from(k.as_str()), typed(&t[1], v)?)))
                        .collect::<Result<_>>()?,
                )),
                ("object", Json::Object(m)) => {
                    let Some(fields) = t[1].as_object() else {
                        bail!("bad object type {ty}");
                    };
                    Ok(rmpv::Value::Map(
                        fields
                            .iter()
                            .map(|(k, fty)| {
                                Ok((
                                    rmpv::Value::from(k.as_str()),
                                    typed(fty, m.get(k).unwrap_or(&Json::Null))?,
                                ))
                            })
                            .collect::<Result<_>>()?,
                    ))
                }
                _ => bail!("a value of type {ty} is required, found {value}"),
            }
        }
        _ => bail!("type {ty} is not supported by the kit"),
    }
}

/// msgpack (as the provider sends it) to JSON; unknowns become [`UNKNOWN`].
pub fn decode(bytes: &[u8]) -> Result<Json> {
    if bytes.is_empty() {
        return Ok(Json::Null);
    }
    let value = rmpv::decode::read_value(&mut &bytes[..]).context("a msgpack value")?;
    to_json(&value)
}

fn to_json(value: &rmpv::Value) -> Result<Json> {
    Ok(match value {
        rmpv::Value::Nil => Json::Null,
        rmpv::Value::Boolean(b) => json!(b),
        rmpv::Value::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(n), _) => json!(n),
            (_, Some(n)) => json!(n),
            _ => bail!("integer out of range"),
        },
        rmpv::Value::F32(f) => json!(f),
        rmpv::Value::F64(f) => json!(f),
        rmpv::Value::String(s) => json!(s.as_str().ok_or_else(|| anyhow!("not UTF-8"))?),
        rmpv::Value::Binary(_) => bail!("binary values are not part of the protocol"),
        rmpv::Value::Array(items) => Json::Array(items.iter().map(to_json).collect::<Result<_>>()?),
        rmpv::Value::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let key = k
                    .as_str()
                    .ok_or_else(|| anyhow!("a map key that is not a string"))?;
                map.insert(key.to_owned(), to_json(v)?);
            }
            Json::Object(map)
        }
        rmpv::Value::Ext(0, _) => json!(UNKNOWN),
        rmpv::Value::Ext(t, _) => bail!("msgpack extension {t} is not part of the protocol"),
    })
}

/// Whether a decoded value holds an unknown anywhere.
pub fn has_unknown(value: &Json) -> bool {
    match value {
        Json::String(s) => s == UNKNOWN,
        Json::Array(items) => items.iter().any(has_unknown),
        Json::Object(m) => m.values().any(has_unknown),
        _ => false,
    }
}
