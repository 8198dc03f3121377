//! A small semantic value tree: what Terraform means by a value, without any wire format.
//!
//! The provider decodes msgpack or JSON into this and encodes it back; the model plans and
//! refreshes with it.

use std::collections::BTreeMap;

use crate::schema::{AttrType, Block, Nesting};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// Not known until apply.
    Unknown,
    Bool(bool),
    Number(f64),
    String(String),
    List(Vec<Value>),
    Set(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Object(BTreeMap<String, Value>),
}

impl Value {
    pub fn string(text: impl Into<String>) -> Value {
        Value::String(text.into())
    }

    pub fn object<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// `true` when this value or anything inside it is unknown.
    pub fn contains_unknown(&self) -> bool {
        match self {
            Value::Unknown => true,
            Value::List(items) | Value::Set(items) => items.iter().any(Value::contains_unknown),
            Value::Map(items) | Value::Object(items) => items.values().any(Value::contains_unknown),
            _ => false,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The attribute `name` of an object; `Null` for anything else or a missing key.
    pub fn get(&self, name: &str) -> &Value {
        match self {
            Value::Object(map) => map.get(name).unwrap_or(&Value::Null),
            _ => &Value::Null,
        }
    }

    /// The null value of a block: every attribute null, every nested list or set block empty.
    pub fn null_block(block: &Block) -> Value {
        let mut map = BTreeMap::new();
        for attr in &block.attributes {
            map.insert(attr.name.to_owned(), Value::Null);
        }
        for nested in &block.blocks {
            let empty = match nested.nesting {
                Nesting::Single => Value::Null,
                Nesting::List => Value::List(Vec::new()),
                Nesting::Set => Value::Set(Vec::new()),
            };
            map.insert(nested.type_name.to_owned(), empty);
        }
        Value::Object(map)
    }
}

/// Checks that `value` has the shape of `ty` (null and unknown fit every type).
pub fn conforms(ty: &AttrType, value: &Value) -> bool {
    match (ty, value) {
        (_, Value::Null | Value::Unknown) => true,
        (AttrType::String, Value::String(_))
        | (AttrType::Number, Value::Number(_))
        | (AttrType::Bool, Value::Bool(_)) => true,
        (AttrType::List(inner), Value::List(items)) | (AttrType::Set(inner), Value::Set(items)) => {
            items.iter().all(|item| conforms(inner, item))
        }
        (AttrType::Map(inner), Value::Map(items)) => {
            items.values().all(|item| conforms(inner, item))
        }
        (AttrType::Object(attrs), Value::Object(items)) => {
            items.len() == attrs.len()
                && attrs
                    .iter()
                    .all(|(name, ty)| items.get(*name).is_some_and(|v| conforms(ty, v)))
        }
        _ => false,
    }
}

/// Checks that `value` is an object with exactly the attributes and blocks of `block`.
pub fn conforms_block(block: &Block, value: &Value) -> bool {
    let Value::Object(map) = value else {
        return false;
    };
    if map.len() != block.attributes.len() + block.blocks.len() {
        return false;
    }
    let attrs_ok = block
        .attributes
        .iter()
        .all(|a| map.get(a.name).is_some_and(|v| conforms(&a.ty, v)));
    let blocks_ok = block
        .blocks
        .iter()
        .all(|b| match (b.nesting, map.get(b.type_name)) {
            (Nesting::Single, Some(Value::Null | Value::Unknown)) => true,
            (Nesting::Single, Some(v)) => conforms_block(&b.block, v),
            (Nesting::List, Some(Value::List(items))) | (Nesting::Set, Some(Value::Set(items))) => {
                items.iter().all(|v| conforms_block(&b.block, v))
            }
            _ => false,
        });
    attrs_ok && blocks_ok
}
