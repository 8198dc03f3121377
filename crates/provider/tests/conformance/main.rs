//! The conformance kit: every scenario of `fixtures/conformance/` runs through four frontends —
//! the provider service in this process, the provider binary over gRPC protocol 6 and over
//! protocol 5 (driven by the kit's own small Terraform core, `engine`), and the Terraform CLI —
//! and each must leave the same transcript: after every step the plan, the outputs and the
//! fake's state. The in-process transcript is also pinned by an insta snapshot.
//!
//! `CONFORMANCE_FRONTEND` (a Terraform-compatible binary, e.g. OpenTofu) replaces the default
//! frontends by that one; `CONFORMANCE_PROVIDER_DIR` tests the provider binaries found there
//! instead of this build's. `cargo xtask conformance` sets both.

mod cli;
mod engine;
mod rpc;
mod scenario;
#[path = "../support/mod.rs"]
mod support;
mod wire;
mod world;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::{Value as Json, json};

use engine::Engine;
use provider::proto::{tfplugin5, tfplugin6};
use scenario::{Scenario, Step, Vars, Which};
use world::World;

#[derive(Debug, Clone)]
enum Frontend {
    InProcess,
    Grpc(u32),
    Cli(PathBuf),
}

impl std::fmt::Display for Frontend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Frontend::InProcess => write!(f, "in-process service"),
            Frontend::Grpc(v) => write!(f, "gRPC protocol {v}"),
            Frontend::Cli(path) => write!(f, "CLI {}", path.display()),
        }
    }
}

enum Driver {
    Engine(Box<Engine>, Option<Box<support::Plugin>>),
    Cli(cli::Cli),
}

async fn driver(frontend: &Frontend, scenario: &Scenario, world: &World) -> Result<Driver> {
    let module = scenario.config.clone();
    let config = world.provider_config.clone();
    let binary = world::provider_binary(scenario.provider);
    Ok(match frontend {
        Frontend::InProcess => {
            let rpc: Box<dyn rpc::Rpc> = match scenario.provider {
                Which::Lxd => Box::new(rpc::InProcess(provider::core::Service::new(Arc::new(
                    provider::lxd::LxdProvider::default(),
                )))),
                Which::Oci => Box::new(rpc::InProcess(provider::core::Service::new(Arc::new(
                    provider::oci::OciProvider::default(),
                )))),
            };
            Driver::Engine(Box::new(Engine::new(rpc, module, config).await?), None)
        }
        Frontend::Grpc(version) => {
            let identity = support::Identity::p521();
            let mut plugin = support::Plugin::start(
                &binary,
                &version.to_string(),
                &[
                    ("PLUGIN_CLIENT_CERT", identity.cert_pem.as_str()),
                    // The provider logs everything; the kit greps its log for secrets.
                    ("TF_LOG", "trace"),
                ],
            );
            let handshake = plugin.handshake().await;
            if handshake.protocol != *version {
                bail!("asked for protocol {version}, got {}", handshake.protocol);
            }
            let channel = support::channel(&handshake, Some(&identity)).await?;
            let rpc: Box<dyn rpc::Rpc> = match version {
                5 => Box::new(rpc::Grpc5(tfplugin5::provider_client::ProviderClient::new(
                    channel,
                ))),
                _ => Box::new(rpc::Grpc6(tfplugin6::provider_client::ProviderClient::new(
                    channel,
                ))),
            };
            Driver::Engine(
                Box::new(Engine::new(rpc, module, config).await?),
                Some(Box::new(plugin)),
            )
        }
        Frontend::Cli(terraform) => Driver::Cli(cli::Cli::new(
            terraform,
            scenario.provider,
            &module,
            &config,
            &binary,
            scenario
                .hcl
                .as_ref()
                .map(|dir| support::fixture(&format!("scenarios/{dir}")))
                .as_deref(),
        )?),
    })
}

/// Runs a blocking CLI call without stalling the fakes that share this runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// One Terraform command, whichever frontend carries it out.
impl Driver {
    async fn apply(&mut self, vars: &Vars, destroy: bool) -> Result<Json> {
        match self {
            Driver::Engine(e, _) => e.apply(vars, destroy).await,
            Driver::Cli(c) => blocking(|| c.apply(vars, destroy)),
        }
    }

    async fn plan(&mut self, vars: &Vars) -> Result<Json> {
        match self {
            Driver::Engine(e, _) => e.plan(vars).await,
            Driver::Cli(c) => blocking(|| c.plan(vars)),
        }
    }

    async fn refresh(&mut self, vars: &Vars) -> Result<()> {
        match self {
            Driver::Engine(e, _) => e.refresh(vars).await,
            Driver::Cli(c) => blocking(|| c.refresh(vars)),
        }
    }

    async fn import(&mut self, address: &str, id: &str, vars: &Vars) -> Result<()> {
        match self {
            Driver::Engine(e, _) => e.import(address, id).await,
            Driver::Cli(c) => blocking(|| c.import(address, id, vars)),
        }
    }

    fn state_rm(&mut self, address: &str) -> Result<()> {
        match self {
            Driver::Engine(e, _) => e.state_rm(address),
            Driver::Cli(c) => blocking(|| c.state_rm(address)),
        }
    }

    fn outputs(&self) -> Result<Json> {
        match self {
            Driver::Engine(e, _) => Ok(e.outputs()),
            Driver::Cli(c) => blocking(|| c.outputs()),
        }
    }
}

type Secrets = std::collections::BTreeSet<String>;

/// The transcript of one scenario through one frontend, and the secrets the fake issued.
/// `known` are secrets of the reference run: an ephemeral resource's secret may never appear
/// in the fake's recorded state (fake-oci forgets a deleted token) and the CLI never shows it,
/// but the fake issues the same ones to a frontend that makes the same calls.
async fn transcript(
    scenario: &Scenario,
    frontend: &Frontend,
    known: &Secrets,
) -> Result<(Json, Secrets)> {
    let world = World::start(scenario).await?;
    let mut driver = driver(frontend, scenario, &world).await?;
    let mut vars = Vars::new();
    let mut steps = Vec::new();
    let mut secrets = known.clone();
    for (i, step) in scenario.steps.iter().enumerate() {
        if let Some(v) = step.vars() {
            vars.extend(v.clone());
        }
        let mut record = serde_json::Map::new();
        record.insert("step".into(), json!(step.label()));
        let context = || format!("{}: step {i} ({})", scenario.name, step.label());
        let mut outputs = false;
        match step {
            Step::Apply(_) | Step::Destroy(_) => {
                let destroy = matches!(step, Step::Destroy(_));
                let plan = driver.apply(&vars, destroy).await.with_context(context)?;
                record.insert("plan".into(), plan);
                outputs = true;
            }
            Step::Plan(_) => {
                record.insert(
                    "plan".into(),
                    driver.plan(&vars).await.with_context(context)?,
                );
            }
            Step::Refresh(_) => {
                driver.refresh(&vars).await.with_context(context)?;
                outputs = true;
            }
            Step::Import(import) => {
                let id = world
                    .expand(&import.id, &vars)
                    .await
                    .with_context(context)?;
                driver
                    .import(&import.address, &id, &vars)
                    .await
                    .with_context(context)?;
            }
            Step::StateRm(address) => driver.state_rm(address).with_context(context)?,
            Step::Event(event) => {
                record.insert(
                    "event".into(),
                    world.event(event).await.with_context(context)?,
                );
            }
        }
        if outputs {
            record.insert("outputs".into(), driver.outputs()?);
        }
        let state = world.state().await;
        world::secrets(&state, &mut secrets);
        record.insert("fake".into(), state);
        steps.push(world.normalise(&Json::Object(record)));
    }
    if let Driver::Engine(engine, _) = &driver {
        secrets.extend(engine.ephemeral_secrets().iter().cloned());
    }
    // No secret the fake issued may reach a log, at any level, or a plan's text unless it was
    // already in state (Terraform shows the prior values of non-sensitive attributes and
    // outputs that change; `token` is not sensitive so that the seeds' outputs apply).
    let logs = match &driver {
        Driver::Engine(_, Some(plugin)) => {
            std::fs::read_to_string(&plugin.stderr_path).unwrap_or_default()
        }
        Driver::Engine(_, None) => String::new(),
        Driver::Cli(c) => {
            for (i, (printed, in_state)) in c.plan_outputs().iter().enumerate() {
                for secret in &secrets {
                    if printed.contains(secret.as_str())
                        && !in_state.iter().any(|b| b.contains(secret.as_str()))
                    {
                        bail!(
                            "{}: plan #{i} printed a token that was not in state",
                            scenario.name
                        );
                    }
                }
            }
            c.log()
        }
    };
    if let Frontend::Grpc(_) | Frontend::Cli(_) = frontend
        && logs.is_empty()
    {
        bail!("{}: {frontend} wrote no log at trace level", scenario.name);
    }
    if secrets.is_empty() {
        bail!("{}: the fake issued no secret to look for", scenario.name);
    }
    for secret in &secrets {
        if logs.contains(secret.as_str()) {
            bail!(
                "{}: a token reached the trace log of {frontend}",
                scenario.name
            );
        }
    }
    if let Driver::Engine(_, Some(mut plugin)) = driver {
        plugin.child.kill().await.ok();
    }
    let transcript = json!({
        "scenario": scenario.name,
        "description": scenario.description,
        "steps": steps,
    });
    Ok((transcript, secrets))
}

/// The frontends to compare with the in-process reference.
fn frontends() -> Vec<Frontend> {
    if let Some(cmd) = std::env::var_os("CONFORMANCE_FRONTEND") {
        return vec![Frontend::Cli(PathBuf::from(cmd))];
    }
    let mut all = vec![Frontend::Grpc(6), Frontend::Grpc(5)];
    all.extend(support::tool("XTASK_TERRAFORM").map(Frontend::Cli));
    all
}

/// The first step where two transcripts differ, both sides shown.
fn difference(reference: &Json, other: &Json) -> String {
    let empty = Vec::new();
    let a = reference["steps"].as_array().unwrap_or(&empty);
    let b = other["steps"].as_array().unwrap_or(&empty);
    for i in 0..a.len().max(b.len()) {
        if a.get(i) != b.get(i) {
            return format!(
                "step {i}:\n--- in-process service\n{}\n--- this frontend\n{}",
                serde_yaml::to_string(&a.get(i)).unwrap_or_default(),
                serde_yaml::to_string(&b.get(i)).unwrap_or_default()
            );
        }
    }
    "the headers differ".to_owned()
}

async fn conformance(name: &str) {
    let scenario = scenario::load(name).unwrap();
    let (reference, secrets) = transcript(&scenario, &Frontend::InProcess, &Secrets::new())
        .await
        .unwrap_or_else(|e| panic!("in-process service: {e:#}"));
    insta::with_settings!({
        description => scenario.description.clone(),
        omit_expression => true,
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_yaml_snapshot!(name, reference);
    });
    for frontend in frontends() {
        let (other, _) = transcript(&scenario, &frontend, &secrets)
            .await
            .unwrap_or_else(|e| panic!("{frontend}: {e:#}"));
        assert!(
            other == reference,
            "{name}: {frontend} differs from the in-process service at {}",
            difference(&reference, &other)
        );
        eprintln!("{name}: {frontend} conforms");
    }
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                conformance(stringify!($name)).await;
            }
        )*

        #[test]
        fn every_scenario_file_has_a_test() {
            let listed: Vec<String> = vec![$(stringify!($name).to_owned()),*];
            assert_eq!(scenario::all(), listed, "list each fixtures/conformance/*.yaml in scenarios! (sorted)");
        }

        #[test]
        fn every_hcl_scenario_is_held_to_a_transcript() {
            let held: Vec<String> = scenario::all()
                .iter()
                .filter_map(|name| scenario::load(name).unwrap().hcl)
                .collect();
            let mut dirs: Vec<String> = std::fs::read_dir(support::fixture("scenarios"))
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect();
            dirs.sort();
            for dir in dirs {
                assert!(held.contains(&dir), "fixtures/scenarios/{dir} is not the `hcl` of any conformance scenario");
            }
        }
    };
}

scenarios!(
    lxd_ephemeral_trust_token,
    lxd_trust_token_always,
    lxd_trust_token_expiry,
    lxd_trust_token_once,
    lxd_trust_token_projects,
    oci_auth_token,
    oci_ephemeral_auth_token,
);

#[test]
fn the_kit_reads_unknowns_and_types_as_terraform_writes_them() {
    // A hand-written msgpack object: {"a": unknown, "b": 3, "c": ["x"]} (cty's encoding of an
    // unknown is extension type 0).
    let bytes = [
        0x83, 0xa1, b'a', 0xd4, 0x00, 0x00, 0xa1, b'b', 0x03, 0xa1, b'c', 0x91, 0xa1, b'x',
    ];
    let value = wire::decode(&bytes).unwrap();
    assert_eq!(value, json!({"a": wire::UNKNOWN, "b": 3, "c": ["x"]}));
    assert!(wire::has_unknown(&value));
    let plan = json!({"resource_changes": [
        {"address": "t.a", "mode": "managed", "change": {"actions": ["create"], "before": null,
         "after": {"x": "1"}, "after_unknown": {"id": true}}},
        {"address": "t.b", "mode": "managed", "change": {"actions": ["no-op"]}},
        {"address": "data.t.c", "mode": "data", "change": {"actions": ["read"]}},
    ]});
    assert_eq!(
        cli::changes(&plan),
        json!([{"address": "t.a", "actions": ["create"], "before": null,
                "after": {"x": "1", "id": wire::UNKNOWN}}])
    );
}

#[tokio::test]
async fn placeholders_read_the_fake_and_variables() -> Result<()> {
    let scenario = scenario::load("oci_auth_token")?;
    let world = World::start(&scenario).await?;
    let vars = Vars::from([("user".to_owned(), "u1".to_owned())]);
    // `/tokens` is an array, not a string.
    assert!(world.expand("x/{fake:/tokens}", &vars).await.is_err());
    assert_eq!(world.expand("users/{var:user}", &vars).await?, "users/u1");
    assert!(world.expand("{nope:x}", &vars).await.is_err());
    assert!(world.expand("{var:missing}", &vars).await.is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_kit_notices_a_different_outcome() -> Result<()> {
    // The same scenario against a fake with another seed issues other ids and secrets: the
    // transcripts must differ, or the comparison would prove nothing.
    let scenario = scenario::load("oci_auth_token")?;
    let (reference, _) = transcript(&scenario, &Frontend::InProcess, &Secrets::new()).await?;
    let mut other = scenario.clone();
    other.fake.seed += 1;
    let (changed, _) = transcript(&other, &Frontend::InProcess, &Secrets::new()).await?;
    assert_ne!(reference, changed);
    assert!(difference(&reference, &changed).starts_with("step 0:"));
    Ok(())
}

#[test]
fn the_engine_holds_applies_to_their_plans() {
    let planned = json!({"id": wire::UNKNOWN, "name": "a", "list": ["x"]});
    assert!(
        engine::consistent(
            "t.a",
            &planned,
            &json!({"id": "1", "name": "a", "list": ["x"]})
        )
        .is_ok()
    );
    let changed = engine::consistent(
        "t.a",
        &planned,
        &json!({"id": "1", "name": "b", "list": ["x"]}),
    );
    assert!(changed.unwrap_err().to_string().contains("t.a.name"));
    assert!(
        engine::consistent(
            "t.a",
            &planned,
            &json!({"id": wire::UNKNOWN, "name": "a", "list": ["x"]})
        )
        .is_err()
    );
    assert!(
        engine::consistent(
            "t.a",
            &planned,
            &json!({"id": "1", "name": "a", "list": []})
        )
        .is_err()
    );
}

#[test]
fn the_engine_opens_an_ephemeral_resource_after_the_resources_it_refers_to() {
    for (config, after) in [
        (json!({"name": "x"}), false),
        (json!({"name": "${var.name}", "n": "${data.t.d.id}"}), false),
        (json!({"name": "${ephemeral.t.e.name}"}), false),
        (json!({"name": "join-${t.base.operation_id}"}), true),
        (json!({"list": ["a", "${var.x}-${t.a.id}"]}), true),
        (json!({"nested": {"user_id": "${ t.kept.user_id }"}}), true),
    ] {
        assert_eq!(engine::refers_to_resources(&config), after, "{config}");
    }
}
