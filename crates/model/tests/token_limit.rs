//! The plan-time check of OCI's two-token limit against a reference model that simulates the
//! apply in every case the provider cannot rule out.
//!
//! Raise the case count locally with `PROPTEST_CASES=100000 cargo test -p model --test token_limit`.

use model::diag::Severity;
use model::oci_token_limit::{self as limit, HeldToken, Replacing, Verdict};
use proptest::prelude::*;

const STATES: [&str; 5] = ["ACTIVE", "CREATING", "INACTIVE", "DELETING", "DELETED"];

/// Whether the create fails in one world: `cbd` says whether the replacement creates first,
/// `others_count` whether tokens that are not ACTIVE hold a slot, `replaced` which token (if
/// any) this resource's replacement destroys.
fn fails(tokens: &[HeldToken], replaced: Option<&str>, cbd: bool, others_count: bool) -> bool {
    let mut remaining: Vec<&HeldToken> = tokens
        .iter()
        .filter(|t| t.lifecycle_state != "DELETED")
        .collect();
    // Destroy-then-create: the replaced token is gone before the create runs.
    if let Some(replaced) = replaced
        && !cbd
    {
        remaining.retain(|t| t.id != replaced);
    }
    let occupied = remaining
        .iter()
        .filter(|t| t.lifecycle_state == "ACTIVE" || others_count)
        .count();
    occupied >= 2
}

/// Every world consistent with what the provider knows, and whether the create fails in it.
fn worlds(tokens: &[HeldToken], replacing: &Replacing, cbd: Option<bool>) -> Vec<bool> {
    let cbds: Vec<bool> = cbd.map_or(vec![false, true], |b| vec![b]);
    let replaced: Vec<Option<String>> = match replacing {
        Replacing::Nothing => vec![None],
        Replacing::Token(id) => vec![Some(id.clone())],
        // A tainted object of this resource may be any token of the user, or none at all.
        Replacing::Unknown => std::iter::once(None)
            .chain(
                tokens
                    .iter()
                    .filter(|t| t.lifecycle_state != "DELETED")
                    .map(|t| Some(t.id.clone())),
            )
            .collect(),
    };
    let mut out = Vec::new();
    for cbd in &cbds {
        for replaced in &replaced {
            for others_count in [false, true] {
                out.push(fails(tokens, replaced.as_deref(), *cbd, others_count));
            }
        }
    }
    out
}

fn tokens() -> impl Strategy<Value = Vec<HeldToken>> {
    proptest::collection::vec((0..STATES.len(), "[a-z ]{0,6}"), 0..5).prop_map(|items| {
        items
            .into_iter()
            .enumerate()
            .map(|(idx, (state, description))| HeldToken {
                id: format!("ocid1.credential.oc1..t{idx}"),
                description,
                lifecycle_state: STATES[state].to_owned(),
            })
            .collect()
    })
}

fn replacing() -> impl Strategy<Value = Replacing> {
    prop_oneof![
        Just(Replacing::Nothing),
        Just(Replacing::Unknown),
        // One of the user's tokens, or a token the list does not show (another user's).
        (0..6usize).prop_map(|idx| Replacing::Token(format!("ocid1.credential.oc1..t{idx}"))),
    ]
}

proptest! {
    #[test]
    fn no_false_alarm_and_every_certain_failure_caught(
        tokens in tokens(),
        replacing in replacing(),
        cbd in proptest::option::of(any::<bool>()),
    ) {
        let outcomes = worlds(&tokens, &replacing, cbd);
        let expected = if outcomes.iter().all(|f| *f) {
            Verdict::Exceeds
        } else if outcomes.iter().any(|f| *f) {
            Verdict::MayExceed
        } else {
            Verdict::Fits
        };
        prop_assert_eq!(limit::verdict(&tokens, &replacing, cbd), expected);

        let user = "ocid1.user.oc1..u";
        let diag = limit::check(user, &tokens, &replacing, cbd);
        match expected {
            Verdict::Fits => prop_assert!(diag.is_none()),
            Verdict::MayExceed | Verdict::Exceeds => {
                let diag = diag.unwrap();
                let severity = if expected == Verdict::Exceeds { Severity::Error } else { Severity::Warning };
                prop_assert_eq!(diag.severity, severity);
                prop_assert_eq!(diag.path.to_string(), "user_id");
                prop_assert!(diag.detail.contains(user));
                for token in tokens.iter().filter(|t| t.lifecycle_state != "DELETED") {
                    prop_assert!(diag.detail.contains(&token.id), "{}", diag.detail);
                    prop_assert!(diag.detail.contains(&format!("{:?}", token.description)), "{}", diag.detail);
                }
            }
        }
    }
}
