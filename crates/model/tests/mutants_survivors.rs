//! Behaviour that `cargo xtask mutants -p model` found untested (issue 20): each test fails
//! when the code it names is wrong, not only when one particular mutant is applied.

use std::time::Duration;

use model::diag::{self, AttrPath, Diagnostic};
use model::oci_identity_auth_token as oci;
use model::oci_identity_auth_tokens as tokens;
use model::plan;
use model::schema::{AttrType, Attribute, Block, NestedBlock, Nesting, Presence};
use model::value::Value;
use time::macros::datetime;

fn filter(name: &str, values: &[&str], regex: Value) -> Value {
    Value::object([
        ("name", Value::string(name)),
        (
            "values",
            Value::List(values.iter().map(|v| Value::string(*v)).collect()),
        ),
        ("regex", regex),
    ])
}

fn tokens_config(filters: Vec<Value>) -> Value {
    Value::object([
        ("user_id", Value::string("ocid1.user.oc1..u")),
        ("filter", Value::Set(filters)),
        ("auth_tokens", Value::Null),
        ("tokens", Value::Null),
        ("id", Value::Null),
    ])
}

fn listed(id: &str, description: &str) -> oci::ServerAuthToken {
    oci::ServerAuthToken {
        id: id.into(),
        user_id: "ocid1.user.oc1..u".into(),
        description: description.into(),
        token: None,
        lifecycle_state: "ACTIVE".into(),
        inactive_status: None,
        time_created: datetime!(2026-01-02 03:04:05 UTC),
        time_expires: None,
    }
}

/// The ids the data source exports for `config` over two listed tokens.
fn read_ids(config: &Value) -> Vec<String> {
    let parsed = tokens::Config::from_value(config).expect("config parses");
    let listed = [listed("t1", "ci-deploy"), listed("t2", "laptop")];
    let Value::List(items) = tokens::read(config, &parsed, &listed)
        .get("auth_tokens")
        .clone()
    else {
        panic!("auth_tokens is a list");
    };
    items
        .iter()
        .map(|item| item.get("id").as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn filter_regex_from_configuration_selects_by_pattern() {
    let check = |regex: Value, expected: &[&str]| {
        let config = tokens_config(vec![filter("description", &["^ci-"], regex.clone())]);
        assert_eq!(read_ids(&config), expected, "regex = {regex:?}");
    };
    // With `regex = true` the value is a pattern; otherwise it must equal the attribute.
    check(Value::Bool(true), &["t1"]);
    check(Value::Bool(false), &[]);
    check(Value::Null, &[]);
    let exact = tokens_config(vec![filter("description", &["laptop"], Value::Bool(false))]);
    assert_eq!(read_ids(&exact), ["t2"]);
}

#[test]
fn filter_regex_of_the_wrong_type_is_an_error_naming_it() {
    let config = tokens_config(vec![filter("description", &["x"], Value::string("yes"))]);
    let err = tokens::Config::from_value(&config).expect_err("a string is not a bool");
    assert!(err.to_string().contains("regex"), "{err}");
}

#[test]
fn has_errors_is_true_only_with_an_error() {
    let warning = Diagnostic::warning(AttrPath::attr("a"), "w", "w");
    let error = Diagnostic::error(AttrPath::attr("a"), "e", "e");
    assert!(!diag::has_errors(&[]));
    assert!(!diag::has_errors(std::slice::from_ref(&warning)));
    assert!(diag::has_errors(&[warning.clone(), error.clone()]));
    assert!(diag::has_errors(&[error]));
}

#[test]
fn timeouts_parse_every_unit_and_multiply_the_amount() {
    let check = |text: &str, expected: Option<Duration>| {
        assert_eq!(oci::parse_duration(text).ok(), expected, "{text:?}");
    };
    check("250ms", Some(Duration::from_millis(250)));
    check("45s", Some(Duration::from_secs(45)));
    check("3m", Some(Duration::from_secs(180)));
    check("2h", Some(Duration::from_secs(7200)));
    check("1h30m", Some(Duration::from_secs(5400)));
    check("1m1s500ms", Some(Duration::from_millis(61_500)));
    check("1.5h", Some(Duration::from_secs(5400)));
    check(" 20m ", Some(Duration::from_secs(1200)));
    check("", None);
    check("20", None);
    check("m", None);
    check("5d", None);
}

#[test]
fn timeouts_create_and_delete_read_their_own_attribute() {
    let timeouts = oci::Timeouts {
        create: Some("90s".into()),
        update: Some("2m".into()),
        delete: Some("250ms".into()),
    };
    assert_eq!(
        oci::Timeouts::create(Some(&timeouts)),
        Duration::from_secs(90)
    );
    assert_eq!(
        oci::Timeouts::delete(Some(&timeouts)),
        Duration::from_millis(250)
    );
    assert_eq!(oci::Timeouts::create(None), oci::DEFAULT_TIMEOUT);
    let unparsable = oci::Timeouts {
        create: Some("soon".into()),
        ..oci::Timeouts::default()
    };
    assert_eq!(
        oci::Timeouts::create(Some(&unparsable)),
        oci::DEFAULT_TIMEOUT
    );
    assert_eq!(
        oci::Timeouts::delete(Some(&unparsable)),
        oci::DEFAULT_TIMEOUT
    );
}

const SECRET: &str = "s3cr3t-token-value";

#[test]
fn debug_of_oci_types_never_shows_the_token() {
    let mut server = listed("t1", "d");
    server.token = Some(SECRET.into());
    let config = oci::Config {
        description: "d".into(),
        user_id: "ocid1.user.oc1..u".into(),
        timeouts: None,
    };
    let state = oci::after_create(&config, &server);
    assert_eq!(state.token.as_deref(), Some(SECRET));
    for text in [format!("{server:?}"), format!("{state:?}")] {
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
        assert!(text.contains("t1"), "the id stays visible: {text}");
    }
}

#[test]
fn debug_of_lxd_types_never_shows_the_token() {
    use model::lxd_trust_token as lxd;
    let config = lxd::Config::from_value(&Value::object([
        ("name", Value::string("client")),
        ("projects", Value::Null),
        ("remote", Value::Null),
        ("trigger", Value::Null),
    ]))
    .expect("config parses");
    let server = lxd::ServerToken {
        operation_id: "op-1".into(),
        name: "client".into(),
        token: SECRET.into(),
        expires_at: None,
    };
    let state = lxd::after_create(config, &server);
    assert_eq!(state.token, SECRET);
    for text in [format!("{server:?}"), format!("{state:?}")] {
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
        assert!(
            text.contains("op-1"),
            "the operation id stays visible: {text}"
        );
    }
}

fn attr(name: &'static str, presence: Presence) -> Attribute {
    Attribute {
        name,
        ty: AttrType::String,
        presence,
        description: "What it is. More words.",
        sensitive: false,
        force_new: false,
        default: None,
        validators: Vec::new(),
        deprecated: false,
    }
}

fn block_with(min_items: u32, max_items: u32) -> Block {
    Block {
        description: "",
        attributes: vec![attr("name", Presence::Required)],
        blocks: vec![NestedBlock {
            type_name: "rule",
            nesting: Nesting::List,
            block: Block {
                description: "",
                attributes: vec![attr("value", Presence::Required)],
                blocks: Vec::new(),
            },
            min_items,
            max_items,
            description: "",
            force_new: false,
        }],
    }
}

fn rules(n: usize) -> Value {
    Value::List(
        (0..n)
            .map(|_| Value::object([("value", Value::string("v"))]))
            .collect(),
    )
}

/// The diagnostics of `config`, as `path: summary: detail` lines.
fn validate(block: &Block, config: &Value) -> Vec<String> {
    plan::validate(block, config)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn nested_block_counts_are_checked_against_min_and_max() {
    let check = |min: u32, max: u32, n: usize, expected: &[&str]| {
        let config = Value::object([("name", Value::string("x")), ("rule", rules(n))]);
        assert_eq!(
            validate(&block_with(min, max), &config),
            expected,
            "min {min} max {max} n {n}"
        );
    };
    check(0, 0, 3, &[]);
    check(1, 0, 1, &[]);
    check(
        1,
        0,
        0,
        &["rule: Wrong number of `rule` blocks: `rule` takes at least 1 block(s), got 0."],
    );
    check(0, 2, 2, &[]);
    check(
        0,
        2,
        3,
        &["rule: Wrong number of `rule` blocks: `rule` takes between 0 and 2 block(s), got 3."],
    );
    check(
        1,
        1,
        2,
        &["rule: Wrong number of `rule` blocks: `rule` takes exactly 1 block(s), got 2."],
    );
}

#[test]
fn missing_required_attributes_are_named_with_their_path() {
    let config = Value::object([
        ("name", Value::Null),
        (
            "rule",
            Value::List(vec![
                Value::object([("value", Value::string("v"))]),
                Value::object([("value", Value::Null)]),
            ]),
        ),
    ]);
    assert_eq!(
        validate(&block_with(0, 0), &config),
        [
            "name: Missing required argument `name`: The argument `name` is required: What it is",
            "rule[1].value: Missing required argument `value`: The argument `value` is required: What it is",
        ]
    );
    let unknown = Value::object([("name", Value::Unknown), ("rule", Value::Unknown)]);
    assert_eq!(validate(&block_with(0, 0), &unknown), Vec::<String>::new());
}

/// The second full run of `cargo xtask mutants -p model` (506 mutants) found the rest below.
#[test]
fn each_provider_serves_exactly_its_types() {
    let names = |types: Vec<model::schema::TypeSchema>| -> Vec<&'static str> {
        types.iter().map(|t| t.name).collect()
    };
    assert_eq!(
        names(model::lxd_types()),
        ["lxd_trust_token", "lxd_trust_tokens"]
    );
    assert_eq!(
        names(model::oci_types()),
        [
            "oci_identity_auth_token",
            "oci_identity_auth_tokens",
            "oci_identity_user"
        ]
    );
    assert_eq!(names(model::lxd_ephemeral_types()), ["lxd_trust_token"]);
    assert_eq!(
        names(model::oci_ephemeral_types()),
        ["oci_identity_auth_token"]
    );
    let all = names(model::all_schemas());
    for name in [
        "lxd",
        "oci",
        "lxd_trust_token",
        "lxd_trust_tokens",
        "oci_identity_auth_token",
        "oci_identity_auth_tokens",
        "oci_identity_user",
    ] {
        assert!(all.contains(&name), "all_schemas lacks {name}: {all:?}");
    }
    assert_eq!(all.len(), 7, "{all:?}");
}

/// The committed `docs/` and `examples/` are what the schemas render (the snapshot `cargo
/// xtask docs --check` also compares): a change to how a page is written shows here.
#[test]
fn rendered_pages_are_the_committed_pages() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let pages = model::docs::pages();
    assert!(pages.len() >= 10, "{} pages", pages.len());
    for page in pages {
        let committed = std::fs::read_to_string(root.join(&page.path))
            .unwrap_or_else(|e| panic!("{}: {e}", page.path));
        assert!(
            committed == page.content,
            "{} differs from what the schema renders; run `cargo xtask docs`",
            page.path
        );
    }
}

#[test]
fn an_ephemeral_token_refuses_an_empty_project_name_only() {
    let config = |projects: &[&str]| {
        Value::object([
            ("name", Value::string("ci")),
            (
                "projects",
                Value::List(projects.iter().map(|p| Value::string(*p)).collect()),
            ),
        ])
    };
    let errors = |projects: &[&str]| -> Vec<AttrPath> {
        model::ephemeral_lxd_trust_token::validate(&config(projects))
            .into_iter()
            .filter(|d| d.summary.contains("projects"))
            .map(|d| d.path)
            .collect()
    };
    assert_eq!(
        errors(&["default", "", "web"]),
        [AttrPath::attr("projects").index(1)]
    );
    assert!(errors(&["default", "web"]).is_empty());
}

#[test]
fn an_import_id_must_be_a_uuid_of_36_characters() {
    let parse = model::lxd_trust_token::parse_import_id;
    assert_eq!(
        parse("38C4BD1A-6F72-4D2B-B5BF-E1D99AAF62C1").unwrap(),
        "38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1"
    );
    for bad in [
        "x".repeat(36),
        "38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1f".to_owned(),
        "38c4bd1a6f724d2bb5bfe1d99aaf62c1".to_owned(),
        "38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c".to_owned(),
    ] {
        assert!(parse(&bad).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn timeouts_default_to_twenty_minutes_and_come_from_the_configuration() {
    assert_eq!(oci::Timeouts::create(None), Duration::from_secs(20 * 60));
    assert_eq!(oci::Timeouts::delete(None), Duration::from_secs(20 * 60));
    let config = oci::Config::from_value(&Value::object([
        ("description", Value::string("ci")),
        ("user_id", Value::string("ocid1.user.oc1..u")),
        (
            "timeouts",
            Value::object([
                ("create", Value::string("5m")),
                ("update", Value::Null),
                ("delete", Value::string("45s")),
            ]),
        ),
    ]))
    .unwrap();
    assert_eq!(
        oci::Timeouts::create(config.timeouts.as_ref()),
        Duration::from_secs(300)
    );
    assert_eq!(
        oci::Timeouts::delete(config.timeouts.as_ref()),
        Duration::from_secs(45)
    );
    // An update keeps the timeouts of the new configuration.
    let created = oci::after_create(
        &oci::Config {
            timeouts: None,
            ..config.clone()
        },
        &listed("t1", "ci"),
    );
    assert_eq!(created.timeouts, None);
    assert_eq!(
        oci::after_update(&created, &config).timeouts,
        config.timeouts
    );
}

#[test]
fn timeouts_take_the_small_units_and_the_longest_duration_terraform_holds() {
    let check = |text: &str, expected: Result<Duration, oci::DurationError>| {
        assert_eq!(oci::parse_duration(text), expected, "{text:?}");
    };
    check("1500ns", Ok(Duration::from_nanos(1500)));
    check("2us", Ok(Duration::from_micros(2)));
    check("3µs", Ok(Duration::from_micros(3)));
    check("4μs", Ok(Duration::from_micros(4)));
    // Go's largest duration, to the nanosecond, is a timeout; one second more is not.
    check("9223372036.854775807s", Ok(oci::MAX_TIMEOUT));
    check("9223372037s", Err(oci::DurationError::TooLong));
}

#[test]
fn the_data_source_id_is_the_fnv_hash_of_the_user_and_stays_the_same() {
    // FNV-1a (64 bits) of "a" is 0xaf63dc4c8601ec8c: an id kept in existing states.
    assert_eq!(
        tokens::data_source_id("a"),
        format!("IdentityAuthTokensDataSource-{}", 0xaf63_dc4c_8601_ec8c_u64)
    );
    assert_ne!(
        tokens::data_source_id("ocid1.user.oc1..a"),
        tokens::data_source_id("ocid1.user.oc1..b")
    );
}

#[test]
fn a_user_waits_twenty_minutes_and_an_unknown_email_is_left_to_the_server() {
    assert_eq!(model::oci_identity_user::WAIT, Duration::from_secs(20 * 60));
    let config = model::oci_identity_user::Config::from_value(&Value::object([
        ("compartment_id", Value::string("ocid1.tenancy.oc1..t")),
        ("name", Value::string("ci")),
        ("description", Value::string("CI")),
        ("email", Value::Unknown),
    ]))
    .unwrap();
    assert_eq!(config.email, None);
}

#[test]
fn an_ocid_is_at_most_255_characters_and_has_a_unique_id() {
    let of_length = |n: usize| format!("ocid1.user.oc1..{}", "a".repeat(n - 16));
    assert_eq!(model::ocid::problem(&of_length(255), &["user"]), None);
    assert!(model::ocid::problem(&of_length(256), &["user"]).is_some());
    for bad in ["ocid1.user.oc1..", "ocid1.user..x.y", "ocid1..oc1..y"] {
        assert!(
            model::ocid::problem(bad, &[]).is_some(),
            "{bad:?} was accepted"
        );
    }
}

#[test]
fn an_invalid_ocid_is_quoted_whole_when_short_and_cut_at_80_characters_when_long() {
    let detail = |text: &str| {
        model::ocid::check("user_id", text, &["user"])
            .expect("an error")
            .detail
    };
    assert!(detail("a/b").ends_with("got \"a/b\"."), "{}", detail("a/b"));
    let long = format!("ocid1/{}", "x".repeat(300));
    let shown = detail(&long);
    assert!(shown.contains(&format!("\"{}…\"", &long[..80])), "{shown}");
    assert!(!shown.contains(&long[..81]), "{shown}");
}

#[test]
fn an_import_id_is_unescaped_to_its_last_character() {
    let (user, token) = oci::parse_import_id(
        "users/ocid1.user.oc1..ab%2Dcd/authTokens/ocid1.credential.oc1..tok%5Fen",
    )
    .unwrap();
    assert_eq!(user, "ocid1.user.oc1..ab-cd");
    assert_eq!(token, "ocid1.credential.oc1..tok_en");
}

#[test]
fn the_limit_error_counts_only_the_tokens_still_held() {
    use model::oci_token_limit::{HeldToken, Replacing, check};
    let token = |id: &str, state: &str| HeldToken {
        id: id.into(),
        description: id.into(),
        lifecycle_state: state.into(),
    };
    let tokens = [
        token("a", "ACTIVE"),
        token("b", "ACTIVE"),
        token("c", "DELETED"),
    ];
    let error = check("ocid1.user.oc1..u", &tokens, &Replacing::Nothing, None).expect("exceeds");
    assert!(
        error.detail.contains("already holds 2,"),
        "{}",
        error.detail
    );
}

#[test]
fn a_replacement_frees_its_slot_only_when_terraform_surely_destroys_first() {
    use model::oci_token_limit::{HeldToken, Replacing, Verdict, check, verdict};
    let token = |id: &str, state: &str| HeldToken {
        id: id.into(),
        description: id.into(),
        lifecycle_state: state.into(),
    };
    let full = [token("a", "ACTIVE"), token("b", "ACTIVE")];
    let replacing_a = Replacing::Token("a".into());
    // Destroy-before-create said outright: the replaced token's slot is free.
    assert_eq!(verdict(&full, &replacing_a, Some(false)), Verdict::Fits);
    // Terraform's default, which `create_before_destroy` may still change: it may not be.
    assert_eq!(verdict(&full, &replacing_a, None), Verdict::MayExceed);
    assert_eq!(verdict(&full, &replacing_a, Some(true)), Verdict::Exceeds);

    let warning = |tokens: &[HeldToken], replacing: &Replacing, cbd: Option<bool>| {
        check("ocid1.user.oc1..u", tokens, replacing, cbd)
            .expect("a warning")
            .detail
    };
    // A tainted replacement may free a slot: the warning says so.
    let tainted = warning(&full, &Replacing::Unknown, None);
    assert!(tainted.contains("tainted"), "{tainted}");
    // Replacing a token the user does not hold, destroy-first: only the INACTIVE token may
    // count, and the warning says that, not that the create replaces something.
    let mixed = [token("a", "ACTIVE"), token("b", "INACTIVE")];
    let other = warning(&mixed, &Replacing::Token("z".into()), Some(false));
    assert!(other.contains("not ACTIVE"), "{other}");
    assert!(!other.contains("replaces z"), "{other}");
    let default = warning(&full, &replacing_a, None);
    assert!(default.contains("replaces a"), "{default}");
}

#[test]
fn unknowns_are_found_at_any_depth() {
    use std::collections::BTreeMap;
    let map = |v: Value| Value::Map(BTreeMap::from([("k".to_owned(), v)]));
    assert!(Value::List(vec![Value::string("a"), Value::Unknown]).contains_unknown());
    assert!(Value::Set(vec![Value::Unknown]).contains_unknown());
    assert!(map(Value::Unknown).contains_unknown());
    assert!(Value::object([("a", Value::List(vec![Value::Unknown]))]).contains_unknown());
    assert!(!Value::object([("a", map(Value::string("x")))]).contains_unknown());
}

#[test]
fn values_conform_to_their_types_and_blocks_only() {
    use model::value::{conforms, conforms_block};
    use std::collections::BTreeMap;
    let strings = AttrType::Map(Box::new(AttrType::String));
    let map = |v: Value| Value::Map(BTreeMap::from([("k".to_owned(), v)]));
    assert!(conforms(&strings, &map(Value::string("v"))));
    assert!(!conforms(&strings, &map(Value::Bool(true))));
    assert!(!conforms(&AttrType::String, &Value::Bool(true)));
    let pair = AttrType::Object(vec![("a", AttrType::String), ("b", AttrType::Bool)]);
    assert!(conforms(
        &pair,
        &Value::object([("a", Value::string("x")), ("b", Value::Bool(true))])
    ));
    // The right attribute names with a wrong type, and the right types with a missing name.
    assert!(!conforms(
        &pair,
        &Value::object([("a", Value::string("x")), ("b", Value::string("y"))])
    ));
    assert!(!conforms(
        &pair,
        &Value::object([("a", Value::string("x"))])
    ));

    let single = Block {
        description: "",
        attributes: vec![attr("name", Presence::Required)],
        blocks: vec![NestedBlock {
            type_name: "inner",
            nesting: Nesting::Single,
            block: Block {
                description: "",
                attributes: vec![attr("value", Presence::Required)],
                blocks: Vec::new(),
            },
            min_items: 0,
            max_items: 1,
            description: "",
            force_new: false,
        }],
    };
    let with_inner = |name: Value, inner: Value| Value::object([("name", name), ("inner", inner)]);
    let inner = Value::object([("value", Value::string("v"))]);
    assert!(conforms_block(
        &single,
        &with_inner(Value::string("n"), inner.clone())
    ));
    assert!(conforms_block(
        &single,
        &with_inner(Value::string("n"), Value::Null)
    ));
    // A good attribute does not make up for a bad block, nor the other way round.
    assert!(!conforms_block(
        &single,
        &with_inner(
            Value::string("n"),
            Value::object([("value", Value::Bool(true))])
        )
    ));
    assert!(!conforms_block(
        &single,
        &with_inner(Value::Bool(true), inner)
    ));
}

/// A default the description does not already state is written after it, in HCL's spelling:
/// a quoted string, a bare boolean, `[]` for an empty list.
#[test]
fn a_page_states_each_default_the_description_leaves_out() {
    use model::schema::{self, Default, Kind, TypeSchema};
    let with_default = |name, ty, default| Attribute {
        default: Some(default),
        ..schema::attr(name, ty, Presence::Optional, "What it is.")
    };
    let schema = TypeSchema {
        name: "x_thing",
        kind: Kind::Resource,
        version: 0,
        block: Block {
            attributes: vec![
                with_default("mode", AttrType::String, Default::String("fast")),
                with_default("on", AttrType::Bool, Default::Bool(true)),
                with_default(
                    "tags",
                    AttrType::List(Box::new(AttrType::String)),
                    Default::EmptyList,
                ),
            ],
            blocks: vec![],
            description: "A thing.",
        },
        importable: false,
        import_id_format: None,
    };
    let page = model::docs::render(&schema, "", "", None);
    for line in [
        "* `mode` - *Optional* - What it is. Defaults to `\"fast\"`.",
        "* `on` - *Optional* - What it is. Defaults to `true`.",
        "* `tags` - *Optional* - What it is. Defaults to `[]`.",
    ] {
        assert!(page.lines().any(|l| l == line), "{line:?} not in:\n{page}");
    }
}
