//! Property tests of the DynamicValue codec over random schemas and the model's real ones:
//! msgpack round trips; an independent msgpack writer (numbers as integer, float64 or decimal
//! string; unknowns as any extension type) decodes to the same values; stored-state JSON decodes
//! to the same values; and arbitrary or truncated bytes give an error, never a panic.

use std::collections::BTreeMap;

use model::schema::{AttrType, Attribute, Block, NestedBlock, Nesting, Presence};
use model::value::Value;
use proptest::prelude::*;
use provider::codec::{decode_block, decode_block_json, encode};
use rmpv::Value as Mp;

const NAMES: [&str; 5] = ["alpha", "beta", "gamma", "delta", "epsilon"];

fn arb_type() -> impl Strategy<Value = AttrType> {
    let leaf = prop_oneof![
        Just(AttrType::String),
        Just(AttrType::Number),
        Just(AttrType::Bool)
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| AttrType::List(Box::new(t))),
            inner.clone().prop_map(|t| AttrType::Set(Box::new(t))),
            inner.clone().prop_map(|t| AttrType::Map(Box::new(t))),
            proptest::collection::vec(inner, 1..4)
                .prop_map(|types| AttrType::Object(NAMES.iter().copied().zip(types).collect())),
        ]
    })
}

fn attribute(name: &'static str, ty: AttrType) -> Attribute {
    Attribute {
        name,
        ty,
        presence: Presence::Optional,
        description: "",
        sensitive: false,
        force_new: false,
        default: None,
        validators: Vec::new(),
        deprecated: false,
    }
}

fn arb_attributes() -> impl Strategy<Value = Vec<Attribute>> {
    proptest::collection::vec(arb_type(), 0..4).prop_map(|types| {
        ["a0", "a1", "a2", "a3"]
            .into_iter()
            .zip(types)
            .map(|(n, t)| attribute(n, t))
            .collect()
    })
}

fn arb_block() -> impl Strategy<Value = Block> {
    let nesting = prop_oneof![
        Just(Nesting::Single),
        Just(Nesting::List),
        Just(Nesting::Set)
    ];
    (
        arb_attributes(),
        proptest::collection::vec((nesting, arb_attributes()), 0..3),
    )
        .prop_map(|(attributes, nested)| Block {
            attributes,
            blocks: ["b0", "b1", "b2"]
                .into_iter()
                .zip(nested)
                .map(|(type_name, (nesting, attributes))| NestedBlock {
                    type_name,
                    nesting,
                    block: Block {
                        attributes,
                        blocks: Vec::new(),
                        description: "",
                    },
                    min_items: 0,
                    max_items: 0,
                    description: "",
                    force_new: false,
                })
                .collect(),
            description: "",
        })
}

/// Numbers Terraform may send: integers, fractions, large and tiny magnitudes.
fn arb_number() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
        -1.0e300f64..1.0e300,
        -1.0f64..1.0,
    ]
}

/// A value of type `ty`; `unknowns` allows unknown values (absent from stored state).
fn arb_value(ty: &AttrType, unknowns: bool) -> BoxedStrategy<Value> {
    let known: BoxedStrategy<Value> = match ty {
        AttrType::String => ".{0,8}".prop_map(Value::String).boxed(),
        AttrType::Number => arb_number().prop_map(Value::Number).boxed(),
        AttrType::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        AttrType::List(inner) => proptest::collection::vec(arb_value(inner, unknowns), 0..3)
            .prop_map(Value::List)
            .boxed(),
        AttrType::Set(inner) => proptest::collection::vec(arb_value(inner, unknowns), 0..3)
            .prop_map(Value::Set)
            .boxed(),
        AttrType::Map(inner) => {
            proptest::collection::btree_map("[a-z]{1,4}", arb_value(inner, unknowns), 0..3)
                .prop_map(Value::Map)
                .boxed()
        }
        AttrType::Object(attrs) => attrs
            .iter()
            .map(|(name, ty)| {
                let name: &'static str = name;
                arb_value(ty, unknowns).prop_map(move |v| (name.to_owned(), v))
            })
            .collect::<Vec<_>>()
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect()))
            .boxed(),
    };
    if unknowns {
        prop_oneof![1 => Just(Value::Null), 1 => Just(Value::Unknown), 4 => known].boxed()
    } else {
        prop_oneof![1 => Just(Value::Null), 4 => known].boxed()
    }
}

fn arb_object(block: &Block, unknowns: bool) -> BoxedStrategy<Value> {
    let attrs: Vec<BoxedStrategy<(String, Value)>> = block
        .attributes
        .iter()
        .map(|a| {
            let name = a.name.to_owned();
            arb_value(&a.ty, unknowns)
                .prop_map(move |v| (name.clone(), v))
                .boxed()
        })
        .collect();
    let nested: Vec<BoxedStrategy<(String, Value)>> = block
        .blocks
        .iter()
        .map(|b| {
            let name = b.type_name.to_owned();
            let one = arb_object(&b.block, unknowns);
            let value = match b.nesting {
                Nesting::Single => prop_oneof![Just(Value::Null), one].boxed(),
                Nesting::List => proptest::collection::vec(one, 0..3)
                    .prop_map(Value::List)
                    .boxed(),
                Nesting::Set => proptest::collection::vec(one, 0..3)
                    .prop_map(Value::Set)
                    .boxed(),
            };
            value.prop_map(move |v| (name.clone(), v)).boxed()
        })
        .collect();
    (attrs, nested)
        .prop_map(|(a, n)| Value::Object(a.into_iter().chain(n).collect::<BTreeMap<_, _>>()))
        .boxed()
}

fn block_and_value(unknowns: bool) -> impl Strategy<Value = (Block, Value)> {
    arb_block().prop_flat_map(move |block| {
        let value = arb_object(&block, unknowns);
        (Just(block), value)
    })
}

fn model_blocks() -> Vec<Block> {
    vec![
        model::lxd_trust_token::schema().block,
        model::oci_identity_auth_token::schema().block,
        model::oci_identity_auth_tokens::schema().block,
        model::provider_lxd::schema().block,
        model::provider_oci::schema().block,
    ]
}

fn model_block_and_value(unknowns: bool) -> impl Strategy<Value = (Block, Value)> {
    proptest::sample::select(model_blocks()).prop_flat_map(move |block| {
        let value = arb_object(&block, unknowns);
        (Just(block), value)
    })
}

/// How the independent writer spells numbers.
#[derive(Debug, Clone, Copy)]
enum Numbers {
    IntegersWhenWhole,
    Float64,
    DecimalText,
}

/// A msgpack writer of our own, independent of the codec's encoder.
fn write(value: &Value, numbers: Numbers, ext: i8) -> Mp {
    match value {
        Value::Null => Mp::Nil,
        Value::Unknown => Mp::Ext(ext, vec![0xd4, 0x00]),
        Value::Bool(b) => Mp::Boolean(*b),
        Value::Number(n) => match numbers {
            Numbers::IntegersWhenWhole if n.fract() == 0.0 && n.abs() < 1.0e15 => {
                Mp::from(*n as i64)
            }
            Numbers::IntegersWhenWhole | Numbers::Float64 => Mp::F64(*n),
            Numbers::DecimalText => Mp::from(n.to_string()),
        },
        Value::String(s) => Mp::from(s.as_str()),
        Value::List(items) | Value::Set(items) => {
            Mp::Array(items.iter().map(|v| write(v, numbers, ext)).collect())
        }
        Value::Map(map) | Value::Object(map) => Mp::Map(
            map.iter()
                .map(|(k, v)| (Mp::from(k.as_str()), write(v, numbers, ext)))
                .collect(),
        ),
    }
}

/// Stored state as Terraform writes it (`RawState.json`).
fn json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Unknown => unreachable!("state holds no unknowns"),
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => (*n).into(),
        Value::String(s) => s.as_str().into(),
        Value::List(items) | Value::Set(items) => items.iter().map(json).collect(),
        Value::Map(map) | Value::Object(map) => {
            serde_json::Value::Object(map.iter().map(|(k, v)| (k.clone(), json(v))).collect())
        }
    }
}

fn arb_numbers() -> impl Strategy<Value = Numbers> {
    prop_oneof![
        Just(Numbers::IntegersWhenWhole),
        Just(Numbers::Float64),
        Just(Numbers::DecimalText)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn msgpack_round_trips((block, value) in block_and_value(true)) {
        prop_assert_eq!(decode_block(&block, &encode(&value)), Ok(value));
    }

    #[test]
    fn model_schemas_round_trip((block, value) in model_block_and_value(true)) {
        prop_assert_eq!(decode_block(&block, &encode(&value)), Ok(value));
    }

    #[test]
    fn any_number_spelling_and_any_extension_type_decode_alike(
        (block, value) in block_and_value(true),
        numbers in arb_numbers(),
        ext in any::<i8>(),
    ) {
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &write(&value, numbers, ext)).unwrap();
        prop_assert_eq!(decode_block(&block, &bytes), Ok(value));
    }

    #[test]
    fn stored_state_json_decodes_alike((block, value) in block_and_value(false)) {
        let text = json(&value).to_string();
        prop_assert_eq!(decode_block_json(&block, text.as_bytes()), Ok(value));
    }

    #[test]
    fn truncated_msgpack_is_an_error((block, value) in model_block_and_value(true), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&value);
        let cut = cut.index(bytes.len());
        prop_assert!(decode_block(&block, &bytes[..cut]).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        for block in model_blocks() {
            let _ = decode_block(&block, &bytes);
            let _ = decode_block_json(&block, &bytes);
        }
    }
}
