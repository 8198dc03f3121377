//! OCI's limit of two auth tokens per user, checked when a plan creates one.
//!
//! The decision is a pure function of what the provider can know at plan time: the user's
//! tokens as the service lists them, whether this create replaces a token, and whether the
//! replacement is create-before-destroy.
//!
//! The plugin protocol does not tell a provider about `create_before_destroy`, and a tainted
//! object is planned like a new one (no prior state, no private data), so the provider often
//! cannot know whether a token is freed before the create. The rule therefore reports an
//! error only when the create fails in every case the provider cannot rule out, a warning
//! when it fails in some of them, and nothing when it fits in all of them:
//! - a token frees a slot only when it is the one being replaced and it is destroyed first
//!   (Terraform's default; not with `create_before_destroy`);
//! - ACTIVE tokens always count; tokens in another state that is not DELETED (CREATING,
//!   INACTIVE, DELETING) may count, since the service's rule for them is not documented.

use crate::diag::{AttrPath, Diagnostic};

/// Auth tokens a user may hold at once (Oracle's documentation).
pub const TOKENS_PER_USER: usize = 2;

/// A token of the user, as the service lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldToken {
    pub id: String,
    pub description: String,
    pub lifecycle_state: String,
}

impl HeldToken {
    fn is_active(&self) -> bool {
        self.lifecycle_state == "ACTIVE"
    }

    fn is_gone(&self) -> bool {
        self.lifecycle_state == "DELETED"
    }
}

/// What the create being planned replaces, as far as the provider knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replacing {
    /// A new resource instance: nothing is destroyed for it.
    Nothing,
    /// The replacement of this token (a changed force-new attribute or `-replace`).
    Token(String),
    /// Unknown: a create without prior state may still be the replacement of a tainted token
    /// of this user, which Terraform plans exactly like a new instance.
    Unknown,
}

/// What the create meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It fits in every case the provider cannot rule out.
    Fits,
    /// It fails in some of them.
    MayExceed,
    /// It fails in all of them.
    Exceeds,
}

/// The slots the other tokens hold once the create runs, at least and at most.
fn occupancy(
    tokens: &[HeldToken],
    replacing: &Replacing,
    create_before_destroy: Option<bool>,
) -> (usize, usize) {
    let held: Vec<&HeldToken> = tokens.iter().filter(|t| !t.is_gone()).collect();
    let active = held.iter().filter(|t| t.is_active()).count();
    let destroy_first_possible = create_before_destroy != Some(true);
    let destroy_first_certain = create_before_destroy == Some(false);
    // At least: only ACTIVE tokens count, and an ACTIVE token is freed when it can be.
    let freed_active = match replacing {
        Replacing::Nothing => false,
        Replacing::Token(id) => {
            destroy_first_possible && held.iter().any(|t| &t.id == id && t.is_active())
        }
        Replacing::Unknown => destroy_first_possible && active > 0,
    };
    let least = active - usize::from(freed_active);
    // At most: every token counts, and one is freed only when that is certain.
    let freed_surely = match replacing {
        Replacing::Token(id) => destroy_first_certain && held.iter().any(|t| &t.id == id),
        Replacing::Nothing | Replacing::Unknown => false,
    };
    let most = held.len() - usize::from(freed_surely);
    (least, most)
}

/// Whether a create for a user holding `tokens` fits in the limit.
pub fn verdict(
    tokens: &[HeldToken],
    replacing: &Replacing,
    create_before_destroy: Option<bool>,
) -> Verdict {
    let (least, most) = occupancy(tokens, replacing, create_before_destroy);
    if least >= TOKENS_PER_USER {
        Verdict::Exceeds
    } else if most >= TOKENS_PER_USER {
        Verdict::MayExceed
    } else {
        Verdict::Fits
    }
}

/// The user's tokens, one line each: description, OCID and state.
fn listing(tokens: &[HeldToken]) -> String {
    tokens
        .iter()
        .filter(|t| !t.is_gone())
        .map(|t| {
            format!(
                "\n  - {:?} ({}, {})",
                t.description, t.id, t.lifecycle_state
            )
        })
        .collect()
}

/// The plan-time diagnostic on `user_id`, or `None` when the create fits.
pub fn check(
    user_id: &str,
    tokens: &[HeldToken],
    replacing: &Replacing,
    create_before_destroy: Option<bool>,
) -> Option<Diagnostic> {
    let held = tokens.iter().filter(|t| !t.is_gone()).count();
    let list = listing(tokens);
    match verdict(tokens, replacing, create_before_destroy) {
        Verdict::Fits => None,
        Verdict::Exceeds => Some(Diagnostic::error(
            AttrPath::attr("user_id"),
            "Auth token limit reached",
            format!(
                "OCI allows {TOKENS_PER_USER} auth tokens per user, and user {user_id} already holds {held}, which this plan does not delete before the create:{list}\nCreating another one would fail. Delete one of them first (for example with `oci iam auth-token delete`), or use another user."
            ),
        )),
        Verdict::MayExceed => {
            let why = match replacing {
                Replacing::Token(id) if create_before_destroy != Some(false) => format!(
                    "This create replaces {id}; it fits only if Terraform deletes that token first (its default), and fails with `create_before_destroy`."
                ),
                Replacing::Unknown => "It fits only if one of them is deleted before the create, as when this plan replaces a tainted token of this resource; otherwise it fails.".to_owned(),
                _ => "It fits only if the tokens that are not ACTIVE do not count toward the limit.".to_owned(),
            };
            Some(Diagnostic::warning(
                AttrPath::attr("user_id"),
                "Auth token limit may be reached",
                format!(
                    "OCI allows {TOKENS_PER_USER} auth tokens per user, and user {user_id} already holds {held}:{list}\n{why}"
                ),
            ))
        }
    }
}

/// The error of a create the service refused for the limit (a race with another client, or
/// a case the plan could only warn about); `cause` is the service's answer.
pub fn at_apply(user_id: &str, tokens: &[HeldToken], cause: &str) -> Diagnostic {
    let held = tokens.iter().filter(|t| !t.is_gone()).count();
    let list = if held == 0 {
        " (the list taken after the refusal shows none)".to_owned()
    } else {
        format!(":{}", listing(tokens))
    };
    Diagnostic::error(
        AttrPath::attr("user_id"),
        "Auth token limit reached",
        format!(
            "OCI refused to create an auth token for user {user_id}: a user may hold {TOKENS_PER_USER}, and this one holds {held}{list}\nDelete one of them first, or use another user.\nOCI answered: {cause}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Severity;

    fn token(id: &str, state: &str) -> HeldToken {
        HeldToken {
            id: id.to_owned(),
            description: format!("desc of {id}"),
            lifecycle_state: state.to_owned(),
        }
    }

    fn check_verdict(states: &[&str], replacing: Replacing, cbd: Option<bool>, expected: Verdict) {
        let tokens: Vec<HeldToken> = states
            .iter()
            .enumerate()
            .map(|(idx, s)| token(&format!("t{idx}"), s))
            .collect();
        assert_eq!(
            verdict(&tokens, &replacing, cbd),
            expected,
            "{states:?} {replacing:?} {cbd:?}"
        );
    }

    #[test]
    fn verdicts() {
        use Verdict::*;
        let t0 = || Replacing::Token("t0".to_owned());
        check_verdict(&[], Replacing::Nothing, None, Fits);
        check_verdict(&["ACTIVE"], Replacing::Nothing, None, Fits);
        check_verdict(&["ACTIVE", "ACTIVE"], Replacing::Nothing, None, Exceeds);
        check_verdict(&["ACTIVE", "DELETED"], Replacing::Nothing, None, Fits);
        check_verdict(&["ACTIVE", "DELETING"], Replacing::Nothing, None, MayExceed);
        // Destroy-then-create frees the replaced token's slot; create-before-destroy does not.
        check_verdict(&["ACTIVE", "ACTIVE"], t0(), Some(false), Fits);
        check_verdict(&["ACTIVE", "ACTIVE"], t0(), Some(true), Exceeds);
        check_verdict(&["ACTIVE", "ACTIVE"], t0(), None, MayExceed);
        check_verdict(&["ACTIVE"], t0(), Some(true), Fits);
        check_verdict(&["ACTIVE", "ACTIVE"], Replacing::Unknown, None, MayExceed);
        check_verdict(
            &["ACTIVE", "ACTIVE"],
            Replacing::Unknown,
            Some(true),
            Exceeds,
        );
        // The replaced token is another user's: it frees nothing here.
        let other = Replacing::Token("elsewhere".to_owned());
        check_verdict(&["ACTIVE", "ACTIVE"], other, Some(false), Exceeds);
    }

    #[test]
    fn diagnostics_name_the_user_and_the_tokens() {
        let tokens = [
            token("ocid1.credential.oc1..a", "ACTIVE"),
            token("ocid1.credential.oc1..b", "ACTIVE"),
        ];
        let d = check("ocid1.user.oc1..u", &tokens, &Replacing::Nothing, None).unwrap();
        assert_eq!(d.severity, Severity::Error);
        assert_eq!(d.path.to_string(), "user_id");
        for needle in [
            "ocid1.user.oc1..u",
            "ocid1.credential.oc1..a",
            "\"desc of ocid1.credential.oc1..b\"",
        ] {
            assert!(d.detail.contains(needle), "{needle}: {}", d.detail);
        }
        let d = check(
            "u",
            &tokens,
            &Replacing::Token("ocid1.credential.oc1..a".into()),
            None,
        )
        .unwrap();
        assert_eq!(d.severity, Severity::Warning);
        assert!(d.detail.contains("create_before_destroy"), "{}", d.detail);
        assert!(check("u", &tokens[..1], &Replacing::Nothing, None).is_none());
        let d = at_apply(
            "ocid1.user.oc1..u",
            &tokens,
            "OCI answered 400 LimitExceeded",
        );
        assert_eq!(d.severity, Severity::Error);
        assert!(
            d.detail.contains("ocid1.credential.oc1..b") && d.detail.contains("LimitExceeded"),
            "{}",
            d.detail
        );
    }
}
