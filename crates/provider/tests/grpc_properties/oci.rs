//! `oci_identity_auth_token` against fake-oci: configurations, out-of-band changes, and what a refresh must show.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use fake_oci::{FakeOci, TEST_PUBLIC_KEY, TEST_TENANCY, TEST_USER};
use proptest::prelude::*;

use crate::front::{Front, Proto, Step};
use crate::schema::BlockS;
use crate::terraform::*;
use crate::value::Tv;

pub const OCI: &str = "oci_identity_auth_token";
pub const OTHER_USER: &str =
    "ocid1.user.oc1..aaaaaaaaseconduser0000000000000000000000000000000000000000";
pub const USERS: &[&str] = &[TEST_USER, OTHER_USER];

#[derive(Debug, Clone)]
pub struct OciCfg {
    pub description: In,
    pub user_id: In,
    /// The `timeouts` block: none, valid, or with an invalid duration.
    pub timeouts: Option<&'static str>,
    pub computed: Option<&'static str>,
}

impl OciCfg {
    pub fn cfg(&self, schema: &BlockS) -> Cfg {
        let build = |plan: bool| {
            let pick = |i: &In| {
                if plan {
                    i.plan.clone()
                } else {
                    i.apply.clone()
                }
            };
            let mut v = Tv::obj([
                ("description", pick(&self.description)),
                ("user_id", pick(&self.user_id)),
            ]);
            if let Some(create) = self.timeouts {
                v.set(
                    "timeouts",
                    Tv::obj([("create", Tv::s(create)), ("delete", Tv::s("5m"))]),
                );
            }
            if let Some(attr) = self.computed {
                v.set(attr, Tv::s("ocid1.credential.oc1..bogus"));
            }
            schema.complete(&v)
        };
        let mut invalid = BTreeSet::new();
        if self.description.plan.is_null() {
            invalid.insert(attr_path("description"));
        }
        if self.user_id.plan.is_null() || self.user_id.plan.as_str() == Some("") {
            invalid.insert(attr_path("user_id"));
        }
        if self.timeouts == Some("soon") {
            invalid.insert(vec![
                Step::Attr("timeouts".into()),
                Step::Attr("create".into()),
            ]);
        }
        if let Some(attr) = self.computed {
            invalid.insert(attr_path(attr));
        }
        Cfg {
            plan: build(true),
            apply: build(false),
            invalid,
        }
    }
}

pub fn oci_cfg() -> impl Strategy<Value = OciCfg> {
    let descriptions = &["", "ci", "deploy key", "ünïcode ✓", "say \"hi\" \\ /?%20"];
    let description = prop_oneof![
        12 => pick(descriptions).prop_map(known),
        4 => pick(descriptions).prop_map(later),
        1 => Just(known(Tv::Null)),
    ];
    let user_id = prop_oneof![
        12 => pick(USERS).prop_map(known),
        4 => pick(USERS).prop_map(later),
        1 => Just(known(Tv::s(""))),
        1 => Just(known(Tv::Null)),
    ];
    let timeouts = prop_oneof![
        8 => Just(None),
        3 => Just(Some("20m")),
        1 => Just(Some("soon")),
    ];
    let computed = prop_oneof![
        24 => Just(None),
        1 => proptest::sample::select(&["token", "id", "state", "time_created"][..]).prop_map(Some),
    ];
    (description, user_id, timeouts, computed).prop_map(
        |(description, user_id, timeouts, computed)| OciCfg {
            description,
            user_id,
            timeouts,
            computed,
        },
    )
}

#[derive(Debug, Clone)]
pub enum OciEvent {
    /// Someone deletes the token (console, CLI).
    Delete,
    /// Someone changes its description.
    Describe(&'static str),
}

pub fn oci_event() -> impl Strategy<Value = Option<OciEvent>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(OciEvent::Delete)),
        1 => proptest::sample::select(&["edited", ""][..]).prop_map(|d| Some(OciEvent::Describe(d))),
    ]
}

#[derive(Debug, Clone)]
pub struct OciCase {
    pub seed: u64,
    /// Tokens pass through CREATING and DELETING (each completes on the next read) instead of
    /// changing state at once.
    pub transitions: bool,
    pub first: OciCfg,
    /// Each step's configuration (`None`: the same as before) and the server event after it.
    pub steps: Vec<(Option<OciCfg>, Option<OciEvent>)>,
}

pub fn oci_case() -> impl Strategy<Value = OciCase> {
    (
        0u64..4,
        any::<bool>(),
        oci_cfg(),
        proptest::collection::vec(
            (proptest::option::weighted(0.5, oci_cfg()), oci_event()),
            1..=6,
        ),
    )
        .prop_map(|(seed, transitions, first, steps)| OciCase {
            seed,
            transitions,
            first,
            steps,
        })
}

pub fn no_defaults(_: &str) -> Option<Tv> {
    None
}

/// Someone else with the same key: the OCI client, signing its own requests.
pub fn oci_client(fake: &FakeOci, clock: Arc<ManualClock>) -> oci_client::Client {
    let id = fake.test_identity();
    let settings = oci_client::Settings {
        tenancy_ocid: Some(id.tenancy),
        user_ocid: Some(id.user),
        fingerprint: Some(id.fingerprint),
        private_key: Some(oci_client::SecretString::from(id.private_key_pem)),
        region: Some("us-ashburn-1".into()),
        endpoint: Some(fake.endpoint()),
        ..Default::default()
    };
    let env = oci_client::Environment {
        var: &|_: &str| None,
        read_file: &|p: &Path| std::fs::read_to_string(p),
        home: None,
    };
    let credentials = oci_client::config::resolve(&settings, &env).expect("credentials");
    oci_client::Client::new(&credentials, oci_client::RetryPolicy::default(), clock)
        .expect("client")
}

/// The clients' clock, moved together with the fake's manual clock: everyone signs with the
/// fake's time, and a test can step past the eventual-consistency window without sleeping.
pub struct ManualClock(std::sync::Mutex<time::OffsetDateTime>);

impl oci_client::Clock for ManualClock {
    fn now(&self) -> time::OffsetDateTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ManualClock {
    pub fn at_test_epoch() -> Arc<ManualClock> {
        Arc::new(ManualClock(std::sync::Mutex::new(fake_oci::TEST_EPOCH)))
    }

    /// Moves this clock and the fake's by `by`.
    pub fn advance(&self, fake: &FakeOci, by: std::time::Duration) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += by;
        fake.control().advance(by);
    }
}

pub async fn run_oci(case: OciCase, proto: Proto) {
    // The fake's manual clock (at the test epoch) and the clients' move together.
    let clock = ManualClock::at_test_epoch();
    let fake = FakeOci::start(fake_oci::Config {
        seed: case.seed,
        ..fake_oci::Config::for_testing()
    })
    .await
    .expect("fake-oci starts");
    let control = fake.control();
    control
        .add_user(TEST_TENANCY, OTHER_USER, TEST_PUBLIC_KEY)
        .expect("second user");
    if case.transitions {
        control.set_lifecycle(fake_oci::Delay::Reads(1), fake_oci::Delay::Reads(1));
    }
    let id = fake.test_identity();

    let front = Front::new(provider::oci::OciProvider::with_clock(clock.clone()), proto);
    let (provider_schema, schema) = front.schemas(OCI).await;
    let provider_config = provider_schema.complete(&Tv::obj([
        ("tenancy_ocid", Tv::s(&id.tenancy)),
        ("user_ocid", Tv::s(&id.user)),
        ("fingerprint", Tv::s(&id.fingerprint)),
        ("private_key", Tv::s(&id.private_key_pem)),
        ("region", Tv::s("us-ashburn-1")),
        ("endpoint", Tv::s(&fake.endpoint())),
    ]));
    let diags = front.configure(&provider_config).await;
    assert!(errors(&diags).is_empty(), "configure: {diags:?}");
    let other = oci_client(&fake, clock.clone());

    let mut tf = Terraform {
        front,
        schema: schema.clone(),
        rules: Rules {
            type_name: OCI,
            force_new: &["user_id"],
            defaults: no_defaults,
        },
        state: Tv::Null,
        diags: Vec::new(),
    };
    let mut secrets = BTreeSet::new();
    let mut expect = Expect::Unchanged;
    let mut oci_cfg = &case.first;
    for (next, event) in &case.steps {
        oci_cfg = next.as_ref().unwrap_or(oci_cfg);
        let cfg = oci_cfg.cfg(&schema);
        if tf.step(&cfg, &expect, &|_| Expect::Unchanged).await {
            expect = Expect::Unchanged;
            // Replacements delete what they replace: no token is left behind.
            control.idle().await;
            let mine = tf.state.get("id").as_str();
            let server = control.state();
            let others: Vec<&str> = server["tokens"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| t["state"] != "DELETING")
                .filter_map(|t| t["id"].as_str())
                .filter(|id| Some(*id) != mine)
                .collect();
            assert!(
                others.is_empty(),
                "tokens left behind on the server: {others:?}"
            );
        }
        if let Some(token) = tf.state.get("token").as_str() {
            secrets.insert(token.to_owned());
        }
        let Some(event) = event else { continue };
        let (Some(user), Some(token_id)) = (
            tf.state.get("user_id").as_str(),
            tf.state.get("id").as_str(),
        ) else {
            continue;
        };
        if expect == Expect::Gone {
            continue;
        }
        match event {
            OciEvent::Delete => {
                other
                    .delete_auth_token(user, token_id, None)
                    .await
                    .expect("out-of-band delete");
                // Past the window in which the provider looks again for a token it created.
                clock.advance(&fake, oci_client::client::CONSISTENCY_WINDOW);
                expect = Expect::Gone;
            }
            OciEvent::Describe(d) => {
                other
                    .update_auth_token(user, token_id, d, None)
                    .await
                    .expect("out-of-band edit");
                expect = Expect::Description((*d).to_owned());
            }
        }
    }
    control.idle().await;
    for t in control.state()["tokens"].as_array().into_iter().flatten() {
        if let Some(s) = t["secret"].as_str() {
            secrets.insert(s.to_owned());
        }
    }
    tf.assert_no_secret(&secrets);
}
