//! The model's schemas match every attribute of the users' documents in `fixtures/seeds/`.

use std::path::Path;

use model::schema::{Presence, TypeSchema};

fn seed(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/seeds")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Seen {
    Required,
    Optional,
    Exported,
}

/// The bullet list `* `name` - ...` under each heading, classified by the heading and the text.
fn attributes(section: &str) -> Vec<(String, Seen)> {
    let mut out = Vec::new();
    let mut exported = false;
    for line in section.lines() {
        let lower = line.to_ascii_lowercase();
        if line.starts_with('#') || lower.starts_with("the following") {
            exported = lower.contains("attribute") || lower.contains("exported");
            continue;
        }
        let Some(rest) = line.trim_start().strip_prefix("* `") else {
            continue;
        };
        let Some((name, text)) = rest.split_once('`') else {
            continue;
        };
        let seen = if text.contains("Required") {
            Seen::Required
        } else if text.contains("Optional") {
            Seen::Optional
        } else if exported {
            Seen::Exported
        } else {
            // Under "arguments support updates" the seed repeats an argument without a marker.
            continue;
        };
        out.push((name.to_owned(), seen));
    }
    out
}

fn check(schema: &TypeSchema, section: &str) {
    let seen = attributes(section);
    assert!(!seen.is_empty(), "no attributes found for {}", schema.name);
    for (name, how) in seen {
        let attr = schema
            .block
            .attributes
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "{}: the seed's `{name}` is missing from the schema",
                    schema.name
                )
            });
        let ok = match how {
            Seen::Required => attr.presence == Presence::Required,
            Seen::Optional => matches!(
                attr.presence,
                Presence::Optional | Presence::OptionalComputed
            ),
            // Exported attributes include the arguments, which are exported too.
            Seen::Exported => true,
        };
        assert!(
            ok,
            "{}: `{name}` is {how:?} in the seed but {:?} in the schema",
            schema.name, attr.presence
        );
    }
}

#[test]
fn lxd_trust_token_matches_its_seed() {
    check(
        &model::lxd_trust_token::schema(),
        &seed("lxd_trust_token.md"),
    );
}

#[test]
fn oci_auth_token_resource_and_data_source_match_their_seed() {
    let text = seed("oci_identity_auth_token.md");
    let (resource, data) = text
        .split_once("# oci_identity_auth_tokens")
        .expect("the seed documents the data source after the resource");
    check(&model::oci_identity_auth_token::schema(), resource);
    check(&model::oci_identity_auth_tokens::schema(), data);
}

#[test]
fn seed_examples_are_the_model_examples() {
    let lxd = seed("lxd_trust_token.md");
    assert!(lxd.contains(model::lxd_trust_token::EXAMPLE.trim_end()));
    let oci = seed("oci_identity_auth_token.md");
    assert!(oci.contains(model::oci_identity_auth_token::EXAMPLE.trim_end()));
    assert!(oci.contains(model::oci_identity_auth_tokens::EXAMPLE.trim_end()));
}

#[test]
fn the_parser_sees_what_it_should() {
    let seen = attributes(
        "## Argument Reference\n\n* `name` - **Required** - x\n* `remote` - *Optional* - y\n## Attribute Reference\n\nThe following attributes are exported:\n\n* `token` - z\n",
    );
    assert_eq!(
        seen,
        vec![
            ("name".into(), Seen::Required),
            ("remote".into(), Seen::Optional),
            ("token".into(), Seen::Exported)
        ]
    );
}
