//! The Identity endpoint of a region, or an explicit override.

use crate::error::Error;

/// The second-level domain of each realm, and the regions that are not in the commercial realm.
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
    ("oc8", "oraclecloud8.com", &["ap-chiyoda-1", "ap-ibaraki-1"]),
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
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(for_region("US East").is_err());
        assert!(check_override("http://127.0.0.1:8080").is_ok());
        assert!(check_override("ftp://x").is_err());
        assert!(check_override("127.0.0.1:8080").is_err());
    }
}
