//! Oracle Cloud Identifiers: the shape every id an OCI request puts into a URL must have.
//!
//! An OCID is `ocid1.<resource type>.<realm>.[region][.future use].<unique id>`, with
//! lower-case letters, digits, `-` and `_` between the dots. Checking it before any request
//! means a `user_id` such as `..` or `a/b` never reaches a URL.

use crate::diag::{AttrPath, Diagnostic};

/// The longest OCID accepted; real ones are well under 100 characters.
pub const MAX_LEN: usize = 255;

/// Why `text` is not an OCID of one of `kinds` (any kind when empty), or `None` when it is.
pub fn problem(text: &str, kinds: &[&str]) -> Option<String> {
    if text.len() > MAX_LEN {
        return Some(format!(
            "is {} characters long; an OCID has at most {MAX_LEN}",
            text.len()
        ));
    }
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() < 5 || parts[0] != "ocid1" {
        return Some(
            "is not an OCID (ocid1.<type>.<realm>.[region].<unique id>, such as ocid1.user.oc1..aaaa…)"
                .to_owned(),
        );
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if let Some(bad) = text.chars().find(|c| *c != '.' && !allowed(*c)) {
        return Some(format!("contains {bad:?}, which no OCID has"));
    }
    let last = parts.len() - 1;
    if parts[1].is_empty() || parts[2].is_empty() || parts[last].is_empty() {
        return Some("is not an OCID: its type, realm and unique id must not be empty".to_owned());
    }
    if !kinds.is_empty() && !kinds.contains(&parts[1]) {
        return Some(format!(
            "is the OCID of a {}, not of a {}",
            parts[1],
            kinds.join(" or a ")
        ));
    }
    None
}

/// An error naming `attribute` when `text` is not an OCID of one of `kinds`.
pub fn check(attribute: &str, text: &str, kinds: &[&str]) -> Option<Diagnostic> {
    let why = problem(text, kinds)?;
    Some(Diagnostic::error(
        AttrPath::attr(attribute),
        format!("Invalid value for `{attribute}`"),
        format!("`{attribute}` {why}; got {:?}.", shorten(text)),
    ))
}

/// The first 80 characters of `text`, so a huge value does not flood the message.
fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(80).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_shapes_pass_and_others_do_not() {
        for good in [
            "ocid1.user.oc1..aaaaaaaat5nvwcna5j6aqzjcaty5eqbb6qt2jvpkanghtgdaqedqw3rynjq",
            "ocid1.tenancy.oc1..aaaaaaaaba3pv6wkcr4jqae5f15p2b2m2yt2j6rx32uzr4h25vqstifsfdsq",
            "ocid1.user.oc1.phx.abc",
            "ocid1.user.oc1..u1",
            // A region such as `us-ashburn-1` and unique ids carry `-` and `_`.
            "ocid1.user.oc1.us-ashburn-1.abc",
            "ocid1.user.oc1..ab_cd",
        ] {
            assert_eq!(problem(good, &[]), None, "{good}");
        }
        for bad in [
            "",
            "..",
            "u1",
            "ocid1.user",
            "ocid1.user.oc1..",
            "ocid1..oc1..x",
            "ocid1.user.oc1../x",
            "ocid1.user.oc1..a/b",
            "ocid1.user.oc1..a b",
            "ocid1.user.oc1..%2e%2e",
            "ocid2.user.oc1..x",
        ] {
            assert!(problem(bad, &[]).is_some(), "{bad}");
        }
        assert!(problem(&format!("ocid1.user.oc1..{}", "a".repeat(300)), &[]).is_some());
        assert!(problem("ocid1.tenancy.oc1..x", &["user"]).is_some());
        assert_eq!(
            problem("ocid1.compartment.oc1..x", &["tenancy", "compartment"]),
            None
        );
    }

    #[test]
    fn the_error_names_the_attribute() {
        let d = check("user_id", "..", &["user"]).unwrap();
        assert_eq!(d.path.to_string(), "user_id");
        assert!(
            d.detail.contains("`user_id` is not an OCID"),
            "{}",
            d.detail
        );
    }
}
