//! Injected faults: per method and path pattern, N times or always.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetWhen {
    /// Drop the connection without acting.
    Before,
    /// Act on the state, then drop the connection without answering.
    After,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Action {
    Status {
        status: u16,
        #[serde(default)]
        body: Option<serde_json::Value>,
        #[serde(default)]
        headers: Option<std::collections::BTreeMap<String, String>>,
    },
    Delay {
        delay_ms: u64,
    },
    Reset {
        reset: ResetWhen,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Rule {
    /// `GET`, `POST`…, or `*` for any.
    pub method: String,
    /// A path glob: `*` matches one segment, `**` the rest of the path.
    pub path: String,
    /// How many more requests this rule applies to; `None` means always.
    #[serde(default)]
    pub times: Option<u32>,
    pub action: Action,
}

/// `true` when `path` matches the glob `pattern`.
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let mut pat = pattern.trim_matches('/').split('/');
    let mut segs = path.trim_matches('/').split('/');
    loop {
        match (pat.next(), segs.next()) {
            (Some("**"), _) => return true,
            (Some(p), Some(s)) if p == "*" || p == s => continue,
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Takes the first matching rule's action, counting it down.
pub fn take(rules: &mut Vec<Rule>, method: &str, path: &str) -> Option<Action> {
    let idx = rules.iter().position(|r| {
        (r.method == "*" || r.method.eq_ignore_ascii_case(method)) && path_matches(&r.path, path)
    })?;
    let action = rules[idx].action.clone();
    if let Some(times) = &mut rules[idx].times {
        *times = times.saturating_sub(1);
        if *times == 0 {
            rules.remove(idx);
        }
    }
    Some(action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(path_matches("/1.0/operations/*", "/1.0/operations/x"));
        assert!(path_matches("/1.0/**", "/1.0/operations/x/wait"));
        assert!(!path_matches("/1.0/operations/*", "/1.0/operations/x/wait"));
        assert!(path_matches(
            "/20160918/users/*/authTokens",
            "/20160918/users/u1/authTokens"
        ));
        assert!(path_matches(
            "/20160918/**",
            "/20160918/users/u1/authTokens/t1"
        ));
        assert!(!path_matches(
            "/20160918/users/*/authTokens",
            "/20160918/users/u1/authTokens/t1"
        ));
        assert!(!path_matches("/1.0/certificates", "/1.0/operations"));
        assert!(!path_matches("/a/*/c", "/a/b/d"));
    }

    #[test]
    fn rules_count_down() {
        let mut rules = vec![Rule {
            method: "POST".into(),
            path: "/**".into(),
            times: Some(2),
            action: Action::Delay { delay_ms: 1 },
        }];
        assert!(take(&mut rules, "GET", "/x").is_none());
        assert!(take(&mut rules, "post", "/x").is_some());
        assert!(take(&mut rules, "POST", "/x").is_some());
        assert!(take(&mut rules, "POST", "/x").is_none());
        assert!(rules.is_empty());
    }

    #[test]
    fn actions_parse_from_json() {
        let a: Action =
            serde_json::from_str(r#"{"status":429,"headers":{"retry-after":"1"}}"#).unwrap();
        assert!(matches!(a, Action::Status { status: 429, .. }));
        let a: Action = serde_json::from_str(r#"{"reset":"after"}"#).unwrap();
        assert_eq!(
            a,
            Action::Reset {
                reset: ResetWhen::After
            }
        );
    }
}
