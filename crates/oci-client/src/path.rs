//! Request paths built from ids: every id is checked to be an OCID before any request, and
//! every segment is percent-encoded with an explicit set.
//!
//! The OCID check is hand-written because no crate knows OCIDs; it is the documented shape
//! `ocid1.<resource type>.<realm>.[region][.future use].<unique id>`, and it is what keeps a
//! user's `..` or a tampered state's `x/../y` from turning into another signed request.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::Error;

/// What a path segment or a query value may hold unencoded: the unreserved characters of
/// RFC 3986 (`A-Z a-z 0-9 - . _ ~`). Everything else, `/`, `%`, `?`, `#` and `;` included, is
/// percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The longest id accepted. Real OCIDs are about a hundred characters.
pub const MAX_OCID_LEN: usize = 255;

/// Checks that `value`, given as the argument `name`, is an OCID.
pub fn check_ocid(name: &'static str, value: &str) -> Result<(), Error> {
    let refuse = |reason: &str| {
        Err(Error::InvalidId {
            name,
            value: shown(value),
            reason: reason.to_owned(),
        })
    };
    if value.is_empty() {
        return refuse("it is empty");
    }
    if value.len() > MAX_OCID_LEN {
        return refuse(&format!("it is longer than {MAX_OCID_LEN} characters"));
    }
    let parts: Vec<&str> = value.split('.').collect();
    let well_formed = parts.len() >= 5
        && parts[0]
            .strip_prefix("ocid")
            .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        && !parts[1].is_empty()
        && !parts[2].is_empty()
        && !parts[parts.len() - 1].is_empty()
        && parts.iter().all(|part| {
            part.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !well_formed {
        return refuse(
            "it is not an OCID (ocid1.<resource type>.<realm>.[region].<unique id>, such as ocid1.user.oc1..aaaa…)",
        );
    }
    Ok(())
}

/// `value` as one path segment. A segment of dots only (`.` or `..`) would be read as a dot
/// segment even when encoded (URL parsers treat `%2E` as `.`), so it is refused.
pub fn segment(name: &'static str, value: &str) -> Result<String, Error> {
    if value.is_empty() || value.bytes().all(|b| b == b'.') {
        return Err(Error::InvalidId {
            name,
            value: shown(value),
            reason: "it is empty or a dot segment".to_owned(),
        });
    }
    Ok(utf8_percent_encode(value, SEGMENT).to_string())
}

/// `value` percent-encoded for a query parameter.
pub fn query_value(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// An id as an error shows it: quoted, with control characters escaped, and cut short.
fn shown(value: &str) -> String {
    const MAX_SHOWN: usize = 80;
    let mut out: String = value.chars().take(MAX_SHOWN).collect();
    if value.chars().count() > MAX_SHOWN {
        out.push('…');
    }
    format!("{out:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ocids() {
        for good in [
            "ocid1.user.oc1..aaaaaaaat5nvwcna5j6aqzjcaty5eqbb6qt2jvpkanghtgdaqedqw3rynjq",
            "ocid1.credential.oc1..t",
            "ocid1.instance.oc1.phx.abuw4ljrlsfiqw6vzzxb43vyypt4pkodawglp3wqxjqofakrwvou52gb6s5a",
            "ocid2.user.oc1.us-ashburn-1.future.x_y-z",
        ] {
            assert!(check_ocid("user_id", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "u1",
            "ocid1.user.oc1..",
            "ocid1..oc1..a",
            "ocid.user.oc1..a",
            "ocidx.user.oc1..a",
            "ocid1.user.oc1..a/../b",
            "ocid1.user.oc1..a%2F",
            "ocid1.user.oc1..a b",
            "ocid1.user.oc1..a?x",
            "ocid1.user.oc1..ü",
        ] {
            let err = check_ocid("user_id", bad).unwrap_err();
            assert!(err.to_string().starts_with("user_id "), "{err}");
        }
        let long = format!("ocid1.user.oc1..{}", "a".repeat(MAX_OCID_LEN));
        assert!(check_ocid("user_id", &long).is_err());
        // 255 characters exactly is still an OCID.
        let prefix = "ocid1.user.oc1..";
        let longest = format!("{prefix}{}", "a".repeat(255 - prefix.len()));
        assert!(check_ocid("user_id", &longest).is_ok());
        assert!(check_ocid("user_id", &format!("{longest}a")).is_err());
    }

    #[test]
    fn ids_are_cut_after_80_characters_only() {
        assert_eq!(shown(&"a".repeat(80)), format!("{:?}", "a".repeat(80)));
        assert_eq!(
            shown(&"a".repeat(81)),
            format!("{:?}", format!("{}…", "a".repeat(80)))
        );
        assert_eq!(shown("ab"), "\"ab\"");
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(
            segment("id", "ocid1.user.oc1..a-b_c~").unwrap(),
            "ocid1.user.oc1..a-b_c~"
        );
        assert_eq!(segment("id", "a/b c?%#;").unwrap(), "a%2Fb%20c%3F%25%23%3B");
        assert_eq!(segment("id", "ü").unwrap(), "%C3%BC");
        for dots in ["", ".", "..", "..."] {
            assert!(segment("id", dots).is_err(), "{dots:?}");
        }
        assert_eq!(query_value("a=b&c+d"), "a%3Db%26c%2Bd");
    }

    #[test]
    fn errors_show_ids_short_and_escaped() {
        let err = check_ocid("token_id", &format!("\n{}", "x".repeat(500))).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("\"\\nxxx"), "{text}");
        assert!(text.len() < 300, "{text}");
    }
}
