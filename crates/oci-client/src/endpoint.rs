//! The Identity endpoint of a region, or an explicit override.
//!
//! The SDKs build `https://identity.{region}.oci.{second-level domain of the realm}`.
//! Realm oc1 (`oraclecloud.com`) holds every public commercial region, and a region this table
//! does not list is assumed to be in oc1, as the Python SDK does for a region it does not know.
//! The table lists the other realms whose regions are public knowledge in the SDKs' region
//! tables; it is deliberately small, and a region missing from it can always be reached with an
//! explicit endpoint override. Region short keys such as `iad` are not translated.
//!
//! | Realm | Domain | Regions |
//! |---|---|---|
//! | oc2 | oraclegovcloud.com | us-langley-1, us-luke-1 |
//! | oc3 | oraclegovcloud.com | us-gov-ashburn-1, us-gov-chicago-1, us-gov-phoenix-1 |
//! | oc4 | oraclegovcloud.uk | uk-gov-london-1, uk-gov-cardiff-1 |
//! | oc5 | oraclecloud5.com | us-tacoma-1 |
//! | oc8 | oraclecloud8.com | ap-chiyoda-1, ap-ibaraki-1 |
//! | oc9 | oraclecloud9.com | me-dcc-muscat-1 |
//! | oc10 | oraclecloud10.com | ap-dcc-canberra-1 |
//! | oc14 | oraclecloud14.com | eu-dcc-dublin-1, eu-dcc-dublin-2, eu-dcc-milan-1, eu-dcc-milan-2, eu-dcc-rating-1, eu-dcc-rating-2 |
//! | oc19 | oraclecloud.eu | eu-frankfurt-2, eu-madrid-2 |
//! | oc20 | oraclecloud20.com | eu-jovanovac-1 |
//! | oc24 | oraclecloud24.com | eu-dcc-zurich-1 |

use crate::error::Error;

/// The realms other than oc1: name, second-level domain, regions. Kept in step with the table
/// in the module documentation.
const REALMS: &[(&str, &str, &[&str])] = &[
    ("oc2", "oraclegovcloud.com", &["us-langley-1", "us-luke-1"]),
    (
        "oc3",
        "oraclegovcloud.com",
        &["us-gov-ashburn-1", "us-gov-chicago-1", "us-gov-phoenix-1"],
    ),
    (
        "oc4",
        "oraclegovcloud.uk",
        &["uk-gov-london-1", "uk-gov-cardiff-1"],
    ),
    ("oc5", "oraclecloud5.com", &["us-tacoma-1"]),
    ("oc8", "oraclecloud8.com", &["ap-chiyoda-1", "ap-ibaraki-1"]),
    ("oc9", "oraclecloud9.com", &["me-dcc-muscat-1"]),
    ("oc10", "oraclecloud10.com", &["ap-dcc-canberra-1"]),
    (
        "oc14",
        "oraclecloud14.com",
        &[
            "eu-dcc-dublin-1",
            "eu-dcc-dublin-2",
            "eu-dcc-milan-1",
            "eu-dcc-milan-2",
            "eu-dcc-rating-1",
            "eu-dcc-rating-2",
        ],
    ),
    ("oc19", "oraclecloud.eu", &["eu-frankfurt-2", "eu-madrid-2"]),
    ("oc20", "oraclecloud20.com", &["eu-jovanovac-1"]),
    ("oc24", "oraclecloud24.com", &["eu-dcc-zurich-1"]),
];

/// `https://identity.{region}.oci.{domain}`, the form the SDKs build.
pub fn for_region(region: &str) -> Result<String, Error> {
    let valid = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(Error::Config(format!(
            "region {region:?} is not a region identifier such as \"us-ashburn-1\""
        )));
    }
    let domain = REALMS
        .iter()
        .find(|(_, _, regions)| regions.contains(&region))
        .map_or("oraclecloud.com", |(_, domain, _)| domain);
    Ok(format!("https://identity.{region}.oci.{domain}"))
}

/// Checks an override such as `http://127.0.0.1:18080`; the API version path is added later.
pub fn check_override(endpoint: &str) -> Result<reqwest::Url, Error> {
    let url = reqwest::Url::parse(endpoint)
        .map_err(|e| Error::Config(format!("endpoint {endpoint:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::Config(format!(
            "endpoint {endpoint:?} must be an http:// or https:// URL with a host"
        )));
    }
    // User information would be printed wherever the endpoint is, and a query or fragment
    // would change what is signed.
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(Error::Config(
            "the endpoint must be scheme, host, port and path only (no user, query or fragment)"
                .into(),
        ));
    }
    Ok(url)
}

/// `true` when `url` is plain `http://` to a host that is not loopback (`127.0.0.0/8`, `::1`,
/// `localhost`): signed requests, and the token secrets in the replies, would cross the network
/// unencrypted. Such an endpoint still works (a test rig may need it); callers warn.
pub fn is_plain_http_to_remote(url: &reqwest::Url) -> bool {
    if url.scheme() != "http" {
        return false;
    }
    let host = url.host_str().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => {
            let name = bare.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    !loopback
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_carries_no_user_password_query_or_fragment() {
        assert!(check_override("http://127.0.0.1:1/x").is_ok());
        for bad in [
            "http://user@127.0.0.1:1",
            "http://:secret@127.0.0.1:1",
            "http://user:secret@127.0.0.1:1",
            "http://127.0.0.1:1/?q=1",
            "http://127.0.0.1:1/#f",
        ] {
            let err = check_override(bad).unwrap_err();
            assert!(
                err.to_string().contains("no user, query or fragment"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn regions() {
        assert_eq!(
            for_region("us-ashburn-1").unwrap(),
            "https://identity.us-ashburn-1.oci.oraclecloud.com"
        );
        assert_eq!(
            for_region("uk-gov-london-1").unwrap(),
            "https://identity.uk-gov-london-1.oci.oraclegovcloud.uk"
        );
        assert_eq!(
            for_region("eu-frankfurt-2").unwrap(),
            "https://identity.eu-frankfurt-2.oci.oraclecloud.eu"
        );
        assert_eq!(
            for_region("us-gov-ashburn-1").unwrap(),
            "https://identity.us-gov-ashburn-1.oci.oraclegovcloud.com"
        );
        assert_eq!(
            for_region("a-new-region-1").unwrap(),
            "https://identity.a-new-region-1.oci.oraclecloud.com"
        );
        assert!(for_region("US East").is_err());
        assert!(for_region("").is_err());
        assert!(for_region("us-ashburn-1.evil.example/x").is_err());
        assert!(check_override("http://127.0.0.1:8080").is_ok());
        assert!(check_override("ftp://x").is_err());
        assert!(check_override("127.0.0.1:8080").is_err());
        assert!(check_override("https://identity.example:8443/prefix").is_ok());
        let err = check_override("http://user:pw@127.0.0.1:1").unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
        assert!(check_override("http://127.0.0.1:1/?a=b").is_err());
    }

    #[test]
    fn plain_http_is_for_loopback() {
        let remote = |endpoint: &str| is_plain_http_to_remote(&check_override(endpoint).unwrap());
        for local in [
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://[::1]:1",
            "http://localhost:1",
            "http://LOCALHOST.",
            "http://fake.localhost",
            "https://identity.example",
        ] {
            assert!(!remote(local), "{local}");
        }
        for far in [
            "http://10.0.0.1",
            "http://identity.example",
            "http://localhost.example",
            "http://[::2]",
            "http://0.0.0.0",
        ] {
            assert!(remote(far), "{far}");
        }
    }
}
