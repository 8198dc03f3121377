//! Property tests of the DynamicValue codec over random schemas and the model's real ones:
//! msgpack round trips; an independent msgpack writer (numbers as integer, float64 or decimal
//! string; unknowns as any extension type) decodes to the same values; stored-state JSON decodes
//! to the same values; and arbitrary or truncated bytes give an error, never a panic.
//! Hostile input against arbitrary schemas (random bytes, random msgpack and JSON trees,
//! headers claiming 2^32 elements, more than `MAX_VALUES` elements) is an error or a value that
//! conforms to the schema, never a panic, and the decoders' memory stays bounded (a counting
//! allocator measures it).

use std::collections::BTreeMap;

use model::schema::{AttrType, Attribute, Block, NestedBlock, Nesting, Presence};
use model::value::Value;
use proptest::prelude::*;
use provider::codec::{CodecError, MAX_VALUES, decode_block, decode_block_json, encode};
use rmpv::Value as Mp;

/// Counts the bytes this thread holds, and the most it held, so that a test can measure what
/// one decode costs.
struct Counting;

thread_local! {
    static LIVE: std::cell::Cell<isize> = const { std::cell::Cell::new(0) };
    static PEAK: std::cell::Cell<isize> = const { std::cell::Cell::new(0) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + delta);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

// SAFETY: every call goes to the system allocator unchanged; only counters are added.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = unsafe { std::alloc::System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        let p = unsafe { std::alloc::System.realloc(ptr, layout, size) };
        if !p.is_null() {
            note(size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What `f` returns, and the most memory it held at once beyond what the thread held before.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(|l| l.get());
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(|p| p.get());
    (out, usize::try_from(peak - base).unwrap_or(0))
}

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

/// An arbitrary msgpack tree: any scalar, extension, list or map (keys of any kind).
fn arb_mp() -> impl Strategy<Value = Mp> {
    let leaf = prop_oneof![
        Just(Mp::Nil),
        any::<bool>().prop_map(Mp::Boolean),
        any::<i64>().prop_map(Mp::from),
        any::<u64>().prop_map(Mp::from),
        any::<f64>().prop_map(Mp::F64),
        any::<f32>().prop_map(Mp::F32),
        prop_oneof![
            "[a-z0-9]{0,6}".prop_map(|s| Mp::from(s.as_str())),
            Just(Mp::from("a0")),
            Just(Mp::from("b0")),
            Just(Mp::from("1e400")),
            Just(Mp::from("NaN")),
            Just(Mp::from("-inf")),
        ],
        proptest::collection::vec(any::<u8>(), 0..4).prop_map(Mp::Binary),
        (any::<i8>(), proptest::collection::vec(any::<u8>(), 0..4))
            .prop_map(|(t, d)| Mp::Ext(t, d)),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Mp::Array),
            proptest::collection::vec(
                (
                    prop_oneof![
                        3 => proptest::sample::select(vec!["a0", "a1", "a2", "a3", "b0", "b1", "b2", "alpha", "beta"])
                            .prop_map(Mp::from),
                        1 => inner.clone(),
                    ],
                    inner
                ),
                0..5
            )
            .prop_map(Mp::Map),
        ]
    })
}

/// An arbitrary JSON tree, keys mostly the schemas' names.
fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value as J;
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(J::from),
        any::<f64>().prop_map(J::from),
        "[a-z0-9]{0,6}".prop_map(J::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(J::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    proptest::sample::select(vec![
                        "a0", "a1", "a2", "a3", "b0", "b1", "b2", "alpha", "beta"
                    ])
                    .prop_map(str::to_owned),
                    "[a-z]{1,3}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| J::Object(m.into_iter().collect())),
        ]
    })
}

fn any_block() -> impl Strategy<Value = Block> {
    prop_oneof![arb_block(), proptest::sample::select(model_blocks())]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_against_arbitrary_schemas_never_panic(
        block in any_block(),
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let decoded = [decode_block(&block, &bytes), decode_block_json(&block, &bytes)];
        for value in decoded.into_iter().flatten() {
            prop_assert!(acceptable(&block, &value), "{value:?}");
        }
    }

    #[test]
    fn arbitrary_msgpack_trees_decode_to_conforming_values_or_errors(block in any_block(), mp in arb_mp()) {
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &mp).unwrap();
        if let Ok(value) = decode_block(&block, &bytes) {
            prop_assert!(acceptable(&block, &value), "{value:?}");
            prop_assert!(!has_non_finite(&value), "{value:?}");
        }
    }

    #[test]
    fn arbitrary_json_trees_decode_to_conforming_values_or_errors(block in any_block(), json in arb_json()) {
        let text = json.to_string();
        if let Ok(value) = decode_block_json(&block, text.as_bytes()) {
            prop_assert!(acceptable(&block, &value), "{value:?}");
        }
    }

    #[test]
    fn huge_length_headers_are_errors_that_cost_nothing(
        block in any_block(),
        marker in proptest::sample::select(vec![0xdcu8, 0xdd, 0xde, 0xdf, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xd9, 0xda, 0xdb]),
        tail in proptest::collection::vec(any::<u8>(), 0..32),
    ) {
        let mut bytes = vec![marker, 0xff, 0xff, 0xff, 0xff];
        bytes.extend_from_slice(&tail);
        let (decoded, peak) = peak_during(|| decode_block(&block, &bytes));
        prop_assert!(decoded.is_err());
        prop_assert!(peak < 64 * 1024, "{peak} bytes");
    }
}

/// A decoded block: null, unknown, or an object of the block's shape, where a list or set of
/// nested blocks may also be wholly unknown (a `dynamic` block over an unknown collection).
fn acceptable(block: &Block, value: &Value) -> bool {
    let map = match value {
        Value::Null | Value::Unknown => return true,
        Value::Object(map) => map,
        _ => return false,
    };
    map.len() == block.attributes.len() + block.blocks.len()
        && block.attributes.iter().all(|a| {
            map.get(a.name)
                .is_some_and(|v| model::value::conforms(&a.ty, v))
        })
        && block
            .blocks
            .iter()
            .all(|b| match (b.nesting, map.get(b.type_name)) {
                (_, Some(Value::Unknown)) => true,
                (Nesting::Single, Some(v)) => acceptable(&b.block, v),
                (Nesting::List, Some(Value::List(items)))
                | (Nesting::Set, Some(Value::Set(items))) => {
                    items.iter().all(|v| acceptable(&b.block, v))
                }
                _ => false,
            })
}

fn has_non_finite(value: &Value) -> bool {
    match value {
        Value::Number(n) => !n.is_finite(),
        Value::List(items) | Value::Set(items) => items.iter().any(has_non_finite),
        Value::Map(map) | Value::Object(map) => map.values().any(has_non_finite),
        _ => false,
    }
}

/// A block with one attribute `a0` of type list(string).
fn strings_block() -> Block {
    Block {
        attributes: vec![attribute("a0", AttrType::List(Box::new(AttrType::String)))],
        blocks: Vec::new(),
        description: "",
    }
}

/// `{"a0": [nil; n]}` in msgpack.
fn many_nils(n: usize) -> Vec<u8> {
    let mut bytes = vec![0x81, 0xa2, b'a', b'0', 0xdd];
    bytes.extend_from_slice(&u32::try_from(n).unwrap().to_be_bytes());
    bytes.resize(bytes.len() + n, 0xc0);
    bytes
}

#[test]
fn more_values_than_the_budget_is_an_error_before_anything_is_built() {
    let block = strings_block();
    // Within the budget, a big list decodes.
    let fits = many_nils(MAX_VALUES - 3);
    let (decoded, _) = peak_during(|| decode_block(&block, &fits));
    let Value::List(items) = decoded.unwrap().get("a0").clone() else {
        panic!("not a list")
    };
    assert_eq!(items.len(), MAX_VALUES - 3);

    // One more is refused, and refusing it allocates (next to) nothing.
    let over = many_nils(MAX_VALUES - 2);
    let (decoded, peak) = peak_during(|| decode_block(&block, &over));
    assert_eq!(decoded, Err(CodecError::TooLarge));
    assert!(peak < 64 * 1024, "{peak} bytes");

    let json = format!("{{\"a0\":[{}null]}}", "null,".repeat(MAX_VALUES));
    let (decoded, peak) = peak_during(|| decode_block_json(&block, json.as_bytes()));
    assert_eq!(decoded, Err(CodecError::TooLarge));
    assert!(peak < 64 * 1024, "{peak} bytes");
}

#[test]
fn non_finite_numbers_are_errors_naming_the_attribute() {
    let block = Block {
        attributes: vec![attribute("a0", AttrType::Number)],
        blocks: Vec::new(),
        description: "",
    };
    for number in [
        Mp::from("1e400"),
        Mp::from("NaN"),
        Mp::from("-inf"),
        Mp::F64(f64::INFINITY),
        Mp::F32(f32::NAN),
    ] {
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &Mp::Map(vec![(Mp::from("a0"), number.clone())]))
            .unwrap();
        assert_eq!(
            decode_block(&block, &bytes).unwrap_err().to_string(),
            "a0: expected a finite number",
            "{number:?}"
        );
    }
    assert!(decode_block_json(&block, br#"{"a0":1e400}"#).is_err());
}

/// A block with the string attributes `a0` and `a1`.
fn two_strings_block() -> Block {
    Block {
        attributes: vec![
            attribute("a0", AttrType::String),
            attribute("a1", AttrType::String),
        ],
        blocks: Vec::new(),
        description: "",
    }
}

#[test]
fn an_extension_of_every_width_is_an_unknown_and_what_follows_it_is_read() {
    let block = two_strings_block();
    // Extension type 0xc1 (-63, any type is an unknown) with no data, in its three headers:
    // the type byte after the length is skipped, not read as the reserved marker 0xc1.
    for header in [
        &[0xc7u8, 0x00][..],
        &[0xc8, 0x00, 0x00],
        &[0xc9, 0, 0, 0, 0],
    ] {
        let mut bytes = vec![0x82, 0xa2, b'a', b'0'];
        bytes.extend_from_slice(header);
        bytes.push(0xc1);
        bytes.extend_from_slice(&[0xa2, b'a', b'1', 0xa1, b'x']);
        let decoded = decode_block(&block, &bytes).unwrap_or_else(|e| panic!("{header:x?}: {e}"));
        assert_eq!(decoded.get("a0"), &Value::Unknown, "{header:x?}");
        assert_eq!(decoded.get("a1"), &Value::String("x".into()), "{header:x?}");
    }
}

#[test]
fn a_wholly_unknown_block_decodes_to_unknown() {
    // Terraform sends an object it cannot know yet as an extension in place of the object.
    for bytes in [&[0xd4u8, 0x00, 0x00][..], &[0xc7, 0x00, 0x00]] {
        assert_eq!(
            decode_block(&two_strings_block(), bytes),
            Ok(Value::Unknown),
            "{bytes:x?}"
        );
    }
}

#[test]
fn each_entry_of_a_map_counts_as_two_values_against_the_budget() {
    // `{"a0": [m; k]}`, each `m` a map of three nil keys to nil values in a map16 or map32
    // header: 1 + 7k values past the object's three. With k chosen so that 7k is over the
    // budget and 6k is not, a map counted as less than two values an entry gets past it.
    let k = MAX_VALUES / 13 * 2;
    assert!(7 * k > MAX_VALUES && 6 * k < MAX_VALUES - 4);
    for header in [&[0xdeu8, 0x00, 0x03][..], &[0xdf, 0, 0, 0, 0x03]] {
        let mut bytes = vec![0x81, 0xa2, b'a', b'0', 0xdd];
        bytes.extend_from_slice(&u32::try_from(k).unwrap().to_be_bytes());
        for _ in 0..k {
            bytes.extend_from_slice(header);
            bytes.extend_from_slice(&[0xc0; 6]);
        }
        let (decoded, peak) = peak_during(|| decode_block(&strings_block(), &bytes));
        assert_eq!(decoded, Err(CodecError::TooLarge), "{header:x?}");
        assert!(peak < 64 * 1024, "{header:x?}: {peak} bytes");
    }
    // One entry in a map16 header is two values, not three: the value after it is read.
    let bytes = [0xde, 0x00, 0x01, 0xa2, b'a', b'0', 0xa1, b'x'];
    let decoded = decode_block(&two_strings_block(), &bytes).unwrap();
    assert_eq!(decoded.get("a0"), &Value::String("x".into()));
    assert_eq!(decoded.get("a1"), &Value::Null);
}

#[test]
fn numbers_are_written_as_go_cty_writes_them() {
    // An int64 as a msgpack integer, in the fewest bytes; anything else as a float64 (0xcb).
    let two_to_63 = 9_223_372_036_854_775_808.0_f64;
    let largest_below = two_to_63 - 1024.0;
    for (n, first_byte) in [
        (3.0, 0x03),
        (-1.0, 0xff),
        (-two_to_63, 0xd3),
        (largest_below, 0xcf),
        (two_to_63, 0xcb),
        (-two_to_63 - 2048.0, 0xcb),
        (0.5, 0xcb),
        (1e300, 0xcb),
    ] {
        let bytes = encode(&Value::Number(n));
        assert_eq!(bytes[0], first_byte, "{n}: {bytes:x?}");
        let mut reader = bytes.as_slice();
        let back = rmpv::decode::read_value(&mut reader).unwrap();
        let decoded = back
            .as_f64()
            .or_else(|| back.as_i64().map(|i| i as f64))
            .or_else(|| back.as_u64().map(|u| u as f64));
        assert_eq!(decoded, Some(n), "{n}: {back:?}");
    }
}

#[test]
fn every_kind_of_json_value_counts_against_the_budget() {
    let block = strings_block();
    for scalar in [
        "true", "false", "-1", "1", "1.5", "\"s\"", "null", "[]", "{}",
    ] {
        let mut json = String::with_capacity(MAX_VALUES * (scalar.len() + 1) + 16);
        json.push_str("{\"a0\":[");
        for _ in 0..MAX_VALUES {
            json.push_str(scalar);
            json.push(',');
        }
        json.push_str(scalar);
        json.push_str("]}");
        let (decoded, peak) = peak_during(|| decode_block_json(&block, json.as_bytes()));
        assert_eq!(decoded, Err(CodecError::TooLarge), "{scalar}");
        assert!(peak < 64 * 1024, "{scalar}: {peak} bytes");
    }
}
