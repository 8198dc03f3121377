//! Credentials from explicit settings, `OCI_*` variables and the OCI config file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_client::config::{Environment, Settings, identity_override, resolve};
use oci_client::{Error, SecretString};

fn keys() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/oci/keys")
}

fn key(name: &str) -> String {
    std::fs::read_to_string(keys().join(name)).unwrap()
}

fn fp() -> String {
    key("test_user_fingerprint.txt").trim().to_owned()
}

/// Resolves with a fake environment and a fake file system.
fn check(
    settings: &Settings,
    vars: &[(&str, &str)],
    files: &[(&str, String)],
) -> Result<oci_client::Credentials, Error> {
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let files: BTreeMap<PathBuf, String> = files
        .iter()
        .map(|(k, v)| (PathBuf::from(k), v.clone()))
        .collect();
    let var = move |name: &str| vars.get(name).cloned();
    let read = move |path: &Path| {
        files
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    };
    let env = Environment {
        var: &var,
        read_file: &read,
        home: Some(PathBuf::from("/home/u")),
    };
    resolve(settings, &env)
}

fn explicit() -> Settings {
    Settings {
        tenancy_ocid: Some("ocid1.tenancy.oc1..t".into()),
        user_ocid: Some("ocid1.user.oc1..u".into()),
        fingerprint: Some(fp()),
        private_key: Some(SecretString::from(key("test_user_key.pem"))),
        region: Some("us-ashburn-1".into()),
        ..Settings::default()
    }
}

#[test]
fn explicit_settings_alone_are_enough() {
    let creds = check(&explicit(), &[], &[]).unwrap();
    assert_eq!(creds.user, "ocid1.user.oc1..u");
    assert_eq!(creds.fingerprint, fp());
    assert_eq!(creds.region.as_deref(), Some("us-ashburn-1"));
}

#[test]
fn every_key_format_loads() {
    for file in ["test_user_key.pem", "test_user_key_pkcs1.pem"] {
        let settings = Settings {
            private_key: Some(SecretString::from(key(file))),
            ..explicit()
        };
        assert!(check(&settings, &[], &[]).is_ok(), "{file}");
        // Text around the PEM block (as in a file with notes) does not matter.
        let noted = Settings {
            private_key: Some(SecretString::from(format!(
                "a note\n{}\ntrailing\n",
                key(file)
            ))),
            ..explicit()
        };
        assert!(check(&noted, &[], &[]).is_ok(), "{file} with notes");
    }
    let encrypted = Settings {
        private_key: Some(SecretString::from(key("test_user_key_encrypted.pem"))),
        ..explicit()
    };
    let err = check(&encrypted, &[], &[]).unwrap_err();
    assert!(err.to_string().contains("no passphrase"), "{err}");
    let wrong = Settings {
        private_key_password: Some(SecretString::from("nope")),
        ..encrypted.clone()
    };
    assert!(
        check(&wrong, &[], &[])
            .unwrap_err()
            .to_string()
            .contains("wrong passphrase")
    );
    let right = Settings {
        private_key_password: Some(SecretString::from("test-passphrase")),
        ..encrypted
    };
    assert!(check(&right, &[], &[]).is_ok());
    // The OCI CLI's label line after the key is ignored.
    let labelled = Settings {
        private_key: Some(SecretString::from(format!(
            "{}OCI_API_KEY\n",
            key("test_user_key.pem")
        ))),
        ..explicit()
    };
    assert!(check(&labelled, &[], &[]).is_ok());
    let garbage = Settings {
        private_key: Some(SecretString::from("not a key")),
        ..explicit()
    };
    assert!(matches!(check(&garbage, &[], &[]), Err(Error::Key(_))));
}

#[test]
fn environment_variables_fill_what_is_unset_and_explicit_wins() {
    let settings = Settings {
        tenancy_ocid: None,
        region: None,
        ..explicit()
    };
    let creds = check(
        &settings,
        &[
            ("OCI_TENANCY_OCID", "ocid1.tenancy.oc1..env"),
            ("TF_VAR_region", "eu-frankfurt-1"),
            ("OCI_USER_OCID", "ignored"),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(creds.tenancy, "ocid1.tenancy.oc1..env");
    assert_eq!(creds.region.as_deref(), Some("eu-frankfurt-1"));
    assert_eq!(
        creds.user, "ocid1.user.oc1..u",
        "explicit settings win over the environment"
    );
}

#[test]
fn the_config_file_profile_inherits_default() {
    let config = format!(
        "[DEFAULT]\nuser=ocid1.user.oc1..file\nfingerprint={}\nkey_file=~/.oci/key.pem\ntenancy=ocid1.tenancy.oc1..file\nregion=us-ashburn-1\n\n[OTHER]\nregion=eu-frankfurt-1\n",
        fp()
    );
    let files = [
        ("/home/u/.oci/config", config.clone()),
        ("/home/u/.oci/key.pem", key("test_user_key.pem")),
    ];
    let creds = check(&Settings::default(), &[], &files).unwrap();
    assert_eq!(
        (creds.user.as_str(), creds.region.as_deref()),
        ("ocid1.user.oc1..file", Some("us-ashburn-1"))
    );
    let other = Settings {
        config_file_profile: Some("OTHER".into()),
        ..Settings::default()
    };
    assert_eq!(
        check(&other, &[], &files).unwrap().region.as_deref(),
        Some("eu-frankfurt-1")
    );
    let missing = Settings {
        config_file_profile: Some("NOPE".into()),
        ..Settings::default()
    };
    assert!(
        check(&missing, &[], &files)
            .unwrap_err()
            .to_string()
            .contains("\"NOPE\"")
    );
    // OCI_CONFIG_FILE moves the file.
    let moved = [
        ("/elsewhere/config", config),
        ("/home/u/.oci/key.pem", key("test_user_key.pem")),
    ];
    assert!(
        check(
            &Settings::default(),
            &[("OCI_CONFIG_FILE", "/elsewhere/config")],
            &moved
        )
        .is_ok()
    );
}

#[test]
fn missing_and_wrong_settings_name_the_setting() {
    let err = check(
        &Settings {
            tenancy_ocid: None,
            ..explicit()
        },
        &[],
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("tenancy_ocid is not set"), "{err}");
    let err = check(
        &Settings {
            fingerprint: Some("00:11".into()),
            ..explicit()
        },
        &[],
        &[],
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("does not match the private key"),
        "{err}"
    );
    for auth in ["InstancePrincipal", "ResourcePrincipal"] {
        let err = check(
            &Settings {
                auth: Some(auth.into()),
                ..explicit()
            },
            &[],
            &[],
        )
        .unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Unsupported {
                    setting: "auth",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("not supported yet"));
    }
    let config = "[DEFAULT]\nsecurity_token_file=/x\nuser=u\ntenancy=t\nregion=r\n".to_owned();
    let err = check(
        &Settings::default(),
        &[],
        &[("/home/u/.oci/config", config)],
    )
    .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(
        err.to_string().contains("auth = \"SecurityToken\""),
        "{err}"
    );
}

#[test]
fn endpoint_overrides() {
    assert_eq!(
        identity_override("oci_core.X=http://a;oci_identity.IdentityClient=http://127.0.0.1:1"),
        Some("http://127.0.0.1:1".into())
    );
    assert_eq!(identity_override("oci_core.X=http://a"), None);
    let creds = check(
        &explicit(),
        &[(
            "CLIENT_HOST_OVERRIDES",
            "oci_identity.IdentityClient=http://127.0.0.1:9",
        )],
        &[],
    )
    .unwrap();
    assert_eq!(creds.endpoint.as_deref(), Some("http://127.0.0.1:9"));
    let settings = Settings {
        endpoint: Some("http://127.0.0.1:7".into()),
        ..explicit()
    };
    assert_eq!(
        check(
            &settings,
            &[(
                "CLIENT_HOST_OVERRIDES",
                "oci_identity.IdentityClient=http://127.0.0.1:9"
            )],
            &[]
        )
        .unwrap()
        .endpoint
        .as_deref(),
        Some("http://127.0.0.1:7")
    );
}

#[test]
fn debug_output_hides_the_key() {
    let creds = check(&explicit(), &[], &[]).unwrap();
    let text = format!("{creds:?} {:?} {:?}", creds.signer(), explicit());
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    assert!(!text.contains(&key("test_user_key.pem")[40..80]));
    let shown = format!("{creds:?}");
    assert!(shown.starts_with("Credentials {"), "{shown}");
    assert!(
        shown.contains(&creds.tenancy) && shown.contains(&creds.user),
        "{shown}"
    );
}

#[test]
fn comments_and_blank_lines_of_the_config_file_are_skipped() {
    let text = "\n# region = commented-out\n[DEFAULT]\n\n; user = commented-out\nregion = us-phoenix-1\n  # tenancy = x\n";
    let profile = oci_client::config::parse_profile(text, "DEFAULT").unwrap();
    assert_eq!(
        profile.get("region").map(String::as_str),
        Some("us-phoenix-1")
    );
    assert!(
        !profile.contains_key("user") && !profile.contains_key("tenancy"),
        "{profile:?}"
    );
    assert!(
        profile
            .keys()
            .all(|k| !k.starts_with('#') && !k.starts_with(';')),
        "{profile:?}"
    );
}

#[test]
fn an_empty_environment_variable_counts_as_unset() {
    // SAFETY: nextest runs each test in its own process, and this test starts no thread.
    unsafe {
        std::env::set_var("OCI_CLIENT_TEST_EMPTY", "");
        std::env::set_var("OCI_CLIENT_TEST_SET", "x");
    }
    let env = oci_client::Environment::process();
    assert_eq!((env.var)("OCI_CLIENT_TEST_EMPTY"), None);
    assert_eq!((env.var)("OCI_CLIENT_TEST_SET").as_deref(), Some("x"));
}

#[test]
fn environment_wins_over_the_file_and_tf_var_over_oci() {
    let config = format!(
        "[DEFAULT]\nuser=ocid1.user.oc1..file\nfingerprint={}\nkey_file=~/.oci/key.pem\ntenancy=ocid1.tenancy.oc1..file\nregion=us-ashburn-1\n\n[CI]\ntenancy=ocid1.tenancy.oc1..ci\n",
        fp()
    );
    let files = [
        ("/home/u/.oci/config", config),
        ("/home/u/.oci/key.pem", key("test_user_key.pem")),
        ("/keys/encrypted.pem", key("test_user_key_encrypted.pem")),
    ];
    let creds = check(
        &Settings::default(),
        &[
            ("OCI_USER_OCID", "ocid1.user.oc1..oci"),
            ("TF_VAR_user_ocid", "ocid1.user.oc1..tfvar"),
            ("OCI_REGION", "eu-frankfurt-1"),
            ("OCI_CONFIG_FILE_PROFILE", "CI"),
            ("OCI_PRIVATE_KEY_PATH", "/keys/encrypted.pem"),
            ("OCI_PRIVATE_KEY_PASSWORD", "test-passphrase"),
        ],
        &files,
    )
    .unwrap();
    assert_eq!(
        creds.user, "ocid1.user.oc1..tfvar",
        "TF_VAR_ is read before OCI_"
    );
    assert_eq!(creds.region.as_deref(), Some("eu-frankfurt-1"));
    assert_eq!(
        creds.tenancy, "ocid1.tenancy.oc1..ci",
        "the profile from OCI_CONFIG_FILE_PROFILE"
    );
    // The private key in the variable wins over the file's path.
    let creds = check(
        &Settings::default(),
        &[("OCI_PRIVATE_KEY", key("test_user_key_pkcs1.pem").as_str())],
        &files,
    )
    .unwrap();
    assert_eq!(creds.user, "ocid1.user.oc1..file");
}

#[test]
fn key_file_and_pass_phrase_from_the_profile() {
    let config = format!(
        "# comment\n[DEFAULT]\nregion=us-ashburn-1\n\n[ENC]\nuser = ocid1.user.oc1..enc\nfingerprint = {}\nkey_file = ~/keys/enc.pem\npass_phrase = test-passphrase\ntenancy = ocid1.tenancy.oc1..enc\n",
        fp().to_ascii_uppercase()
    );
    let files = [
        ("/home/u/oci.conf", config),
        (
            "/home/u/keys/enc.pem",
            format!("{}OCI_API_KEY\n", key("test_user_key_encrypted.pem")),
        ),
    ];
    let settings = Settings {
        config_file_profile: Some("ENC".into()),
        ..Settings::default()
    };
    let creds = check(&settings, &[("OCI_CONFIG_FILE", "~/oci.conf")], &files).unwrap();
    assert_eq!(creds.user, "ocid1.user.oc1..enc");
    assert_eq!(
        creds.fingerprint,
        fp(),
        "fingerprints compare in lower case"
    );
    assert_eq!(
        creds.region.as_deref(),
        Some("us-ashburn-1"),
        "inherited from DEFAULT"
    );
    // An explicit passphrase wins over the file's, and a wrong one says so.
    let wrong = Settings {
        private_key_password: Some(SecretString::from("not-it")),
        ..settings.clone()
    };
    let err = check(&wrong, &[("OCI_CONFIG_FILE", "~/oci.conf")], &files).unwrap_err();
    assert!(err.to_string().contains("wrong passphrase"), "{err}");
    assert!(!err.to_string().contains("not-it"));
    // A key file that cannot be read names the path.
    let err = check(
        &Settings {
            private_key_path: Some("/nowhere/key.pem".into()),
            ..settings
        },
        &[("OCI_CONFIG_FILE", "~/oci.conf")],
        &files,
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nowhere/key.pem"), "{err}");
}

#[test]
fn other_authentication_from_the_environment_is_refused_by_name() {
    let err = check(&explicit(), &[("OCI_AUTH", "InstancePrincipal")], &[]).unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported { setting: "auth", value } if value == "InstancePrincipal"),
        "{err}"
    );
    assert!(err.to_string().contains("auth"), "{err}");
}

#[test]
fn a_profile_that_holds_a_session_signs_with_a_key_given_any_way() {
    let config = "[DEFAULT]\nsecurity_token_file=/x\n".to_owned();
    let files = [
        ("/home/u/.oci/config", config),
        ("/home/u/key.pem", key("test_user_key.pem")),
    ];
    let without_key = || Settings {
        private_key: None,
        ..explicit()
    };
    let pem = key("test_user_key.pem");
    let given: [(Settings, &[(&str, &str)]); 4] = [
        (explicit(), &[]),
        (
            Settings {
                private_key_path: Some("/home/u/key.pem".into()),
                ..without_key()
            },
            &[],
        ),
        (without_key(), &[("OCI_PRIVATE_KEY", pem.as_str())]),
        (
            without_key(),
            &[("OCI_PRIVATE_KEY_PATH", "/home/u/key.pem")],
        ),
    ];
    for (i, (settings, vars)) in given.iter().enumerate() {
        let creds = check(settings, vars, &files);
        assert!(creds.is_ok(), "{i}: {:?}", creds.err());
    }
}

#[test]
fn a_named_profile_must_exist_and_an_unnamed_one_may_be_missing() {
    let config = "[OTHER]\nregion=eu-frankfurt-1\n".to_owned();
    let files = [("/home/u/.oci/config", config)];
    // No profile named and no DEFAULT section: the explicit settings are enough.
    assert!(check(&explicit(), &[], &files).is_ok());
    let named = Settings {
        config_file_profile: Some("MISSING".into()),
        ..explicit()
    };
    let err = check(&named, &[], &files).unwrap_err();
    assert!(err.to_string().contains("\"MISSING\" is not in"), "{err}");
    let err = check(&named, &[], &[]).unwrap_err();
    assert!(err.to_string().contains("cannot be read"), "{err}");
}

#[test]
fn a_config_file_named_by_a_tilde_is_read_from_home() {
    let config = "[DEFAULT]\nregion=eu-frankfurt-1\n".to_owned();
    let settings = Settings {
        region: None,
        ..explicit()
    };
    let creds = check(
        &settings,
        &[("OCI_CONFIG_FILE", "~")],
        &[("/home/u", config.clone())],
    )
    .unwrap();
    assert_eq!(creds.region.as_deref(), Some("eu-frankfurt-1"));
    let creds = check(
        &settings,
        &[("OCI_CONFIG_FILE", "~/elsewhere")],
        &[("/home/u/elsewhere", config)],
    )
    .unwrap();
    assert_eq!(creds.region.as_deref(), Some("eu-frankfurt-1"));
}
