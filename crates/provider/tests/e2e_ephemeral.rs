//! The ephemeral resources through real Terraform 1.11 (ephemeral resources need 1.10; 1.0.3
//! is covered by the other end-to-end tests, which must keep passing unchanged) against the
//! in-process fakes.
//!
//! LXD: an ephemeral token from the default provider lets a second, aliased provider with its
//! own client certificate and configuration directory join the fake over HTTPS in the same run,
//! and a resource through that alias works. OCI: a token opened in plan and apply and deleted
//! after each. Afterwards the state file, the saved plan file, the plan and apply output and a
//! `TF_LOG=trace` log hold none of the ephemeral secrets, and the fakes hold no token the
//! ephemeral resources made (`revoke_on_close = false` keeps the LXD token pending).

mod support;

use std::path::Path;

use support::Workspace;

const JOINER: &str = "terraform-joiner";

/// The provider RPCs of a Terraform trace log, in order: Terraform's own `GRPCProvider.v6: X`
/// lines, and for the ephemeral RPCs the provider's `plugin RPC` lines (Terraform 1.11 does not
/// log every one of them). `exit` is Terraform ending a provider process.
fn rpc_calls(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| {
            // Terraform re-logs the provider's hclog line as `plugin RPC: rpc=X …` (or, when it
            // cannot parse the line, as the JSON itself).
            if line.contains("plugin RPC") {
                let (_, rest) = line
                    .split_once("rpc=")
                    .or_else(|| line.split_once("\"rpc\":\""))?;
                return rest
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .next()
                    .map(str::to_owned);
            }
            let (_, rest) = line.split_once("GRPCProvider.v6: ")?;
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            match name.as_str() {
                "" | "returning" => None,
                "Close" => Some("exit".to_owned()),
                n if n.contains("Ephemeral") => None,
                _ => Some(name),
            }
        })
        .collect()
}

/// Everything a saved plan file holds, uncompressed (it is a zip archive).
fn plan_file_contents(path: &Path) -> String {
    let out = std::process::Command::new("unzip")
        .arg("-p")
        .arg(path)
        .output()
        .expect("unzip is needed to read a saved plan file");
    assert!(out.status.success(), "unzip failed on the plan file");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that none of `secrets` occurs in `text` (`what` names the artifact).
fn assert_free_of(secrets: &[String], text: &str, what: &str) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "an ephemeral secret reached {what}"
        );
    }
}

mod lxd {
    use super::*;
    use fake_lxd::{ClockMode, Config, FakeLxd, TEST_EPOCH};

    async fn fake() -> (FakeLxd, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        // A manual clock keeps every finished operation listed, so the test sees every token
        // the fake issued, revoked or used ones included.
        let fake = FakeLxd::start(Config {
            clock: ClockMode::Manual(TEST_EPOCH),
            unix_socket: Some(dir.path().join("unix.socket")),
            ..Config::for_testing()
        })
        .await
        .unwrap();
        (fake, dir)
    }

    /// Every token the fake ever issued: (operation id, token name, token string, secret).
    fn issued(fake: &FakeLxd) -> Vec<(String, String, String, String)> {
        let state = fake.control().state();
        state["operations"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|op| {
                let token = op["token"].as_str()?.to_owned();
                let secret = fake_lxd::state::decode_token(&token)?.secret;
                let name = op["metadata"]["request"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                Some((op["id"].as_str()?.to_owned(), name, token, secret))
            })
            .collect()
    }

    /// The pending tokens named `name`.
    fn pending_named(fake: &FakeLxd, name: &str) -> usize {
        let pending: Vec<String> = fake
            .control()
            .pending_tokens()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        issued(fake)
            .iter()
            .filter(|(id, n, _, _)| n == name && pending.contains(id))
            .count()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_ephemeral_token_lets_an_aliased_provider_join_and_leaves_no_trace() {
        let Some(terraform) = support::tool("XTASK_TERRAFORM") else {
            return;
        };
        let (fake, lxd_dir) = fake().await;
        let mut ws = Workspace::new(&terraform, "../ephemeral/lxd_join", common_lxd_binary());
        ws.set("LXD_DIR", lxd_dir.path().display().to_string());
        ws.set(
            "LXD_CONF",
            ws.dir.path().join("lxc-config").display().to_string(),
        );
        ws.set(
            "TF_VAR_https_address",
            format!("https://{}", fake.https_addr()),
        );
        let log = ws.dir.path().join("terraform.log");
        ws.set("TF_LOG", "trace");
        ws.set("TF_LOG_PATH", log.display().to_string());
        tokio::task::spawn_blocking(move || {
            let mut outputs = String::new();
            // Plan only, saved: Terraform opens the token, the alias joins with it, Close
            // finds it used. Nothing is left pending.
            let plan = ws.ok(&["plan", "-input=false", "-out=saved.tfplan"]);
            outputs.push_str(&plan);
            assert!(
                plan.contains("lxd_trust_token.via_alias will be created"),
                "{plan}"
            );
            assert_eq!(pending_named(&fake, JOINER), 0, "plan left a token pending");
            assert_eq!(issued(&fake).len(), 1, "the plan opened one token");
            let trusted = fake.control().state()["certificates"]
                .as_array()
                .unwrap()
                .len();
            assert_eq!(trusted, 1, "the alias joined with the ephemeral token");
            let plan_log = std::fs::read_to_string(&log).unwrap();
            let plan_calls = rpc_calls(&plan_log);
            std::fs::write(&log, "").unwrap();

            // Apply the saved plan: opened again (the alias is already trusted, so this token
            // is not used), the resource through the alias is created, Close revokes the token.
            let apply = ws.ok(&["apply", "-input=false", "saved.tfplan"]);
            outputs.push_str(&apply);
            assert_eq!(
                pending_named(&fake, JOINER),
                0,
                "apply left a token pending"
            );
            assert_eq!(issued(&fake).iter().filter(|t| t.1 == JOINER).count(), 2);
            let via_alias = ws.attrs("lxd_trust_token.via_alias");
            let via_alias_id = via_alias["operation_id"].as_str().unwrap().to_owned();
            assert_eq!(pending_named(&fake, "made-through-the-alias"), 1);
            let apply_log = std::fs::read_to_string(&log).unwrap();
            let apply_calls = rpc_calls(&apply_log);
            eprintln!("terraform plan called: {}", plan_calls.join(", "));
            eprintln!(
                "terraform apply (saved plan) called: {}",
                apply_calls.join(", ")
            );
            assert!(plan_calls.contains(&"OpenEphemeralResource".to_owned()));
            assert!(plan_calls.contains(&"CloseEphemeralResource".to_owned()));
            assert!(apply_calls.contains(&"OpenEphemeralResource".to_owned()));
            assert!(apply_calls.contains(&"CloseEphemeralResource".to_owned()));

            // No artifact holds an ephemeral secret. The managed token made through the alias
            // is in the state file by design, which shows the search finds what is there.
            let ephemeral: Vec<String> = issued(&fake)
                .into_iter()
                .filter(|t| t.1 == JOINER)
                .flat_map(|t| [t.2, t.3])
                .collect();
            let state_file =
                std::fs::read_to_string(ws.dir.path().join("terraform.tfstate")).unwrap();
            assert_free_of(&ephemeral, &state_file, "the state file");
            let managed = issued(&fake)
                .into_iter()
                .find(|t| t.0 == via_alias_id)
                .unwrap();
            assert!(
                state_file.contains(&managed.2),
                "the search must see the managed token"
            );
            let saved = ws.dir.path().join("saved.tfplan");
            assert_free_of(
                &ephemeral,
                &plan_file_contents(&saved),
                "the saved plan file",
            );
            assert_free_of(
                &ephemeral,
                &ws.ok(&["show", "-json", "saved.tfplan"]),
                "the shown plan",
            );
            assert_free_of(&ephemeral, &ws.ok(&["show"]), "terraform show");
            assert_free_of(&ephemeral, &outputs, "the plan and apply output");
            assert_free_of(&ephemeral, &plan_log, "the plan's trace log");
            assert_free_of(&ephemeral, &apply_log, "the apply's trace log");

            // With revoke_on_close = false the plan's token outlives the run.
            let plan = ws.ok(&["plan", "-input=false", "-var", "revoke_on_close=false"]);
            assert!(plan.contains("No changes"), "{plan}");
            assert_eq!(
                pending_named(&fake, JOINER),
                1,
                "revoke_on_close = false must keep it"
            );

            // Destroy: opened once more and revoked; only the kept token is still pending.
            ws.ok(&["destroy", "-auto-approve", "-input=false"]);
            assert_eq!(pending_named(&fake, JOINER), 1);
            assert_eq!(fake.control().pending_tokens().len(), 1);
        })
        .await
        .unwrap();
    }

    /// `terraform validate` refuses a name LXD would refuse and an empty project, and
    /// Terraform points at the attribute's line (the diagnostic names its attribute).
    #[tokio::test(flavor = "multi_thread")]
    async fn bad_names_and_projects_are_refused_at_their_attribute() {
        let Some(terraform) = support::tool("XTASK_TERRAFORM") else {
            return;
        };
        let ws = Workspace::new(&terraform, "../ephemeral/lxd_join", common_lxd_binary());
        tokio::task::spawn_blocking(move || {
            let cases = [
                ("name = \"-joiner\"", "Invalid value for `name`"),
                ("name = \"a/b\"", "Invalid value for `name`"),
                ("name = \"\"", "`name`"),
                ("projects = [\"\"]", "Invalid value for `projects`"),
            ];
            for (line, summary) in cases {
                let name = if line.starts_with("name") {
                    ""
                } else {
                    "  name = \"joiner\"\n"
                };
                std::fs::write(
                    ws.dir.path().join("main.tf"),
                    format!("ephemeral \"lxd_trust_token\" \"t\" {{\n{name}  {line}\n}}\n"),
                )
                .unwrap();
                let out = ws.run(&["validate", "-no-color"]);
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(!out.status.success(), "{line}: {text}");
                assert!(text.contains(summary), "{line}: {text}");
                // Terraform shows the source line of the attribute the diagnostic names.
                assert!(text.contains(line), "{line}: {text}");
            }
        })
        .await
        .unwrap();
    }

    fn common_lxd_binary() -> &'static Path {
        Path::new(env!("CARGO_BIN_EXE_terraform-provider-lxd"))
    }
}

mod oci {
    use super::*;
    use fake_oci::{ClockMode, Config, FakeOci};

    fn tokens(fake: &FakeOci) -> Vec<serde_json::Value> {
        fake.control().state()["tokens"].as_array().unwrap().clone()
    }

    fn workspace(terraform: &Path, fake: &FakeOci, keys: &Path) -> Workspace {
        let mut ws = Workspace::new(
            terraform,
            "../ephemeral/oci_auth_token",
            Path::new(env!("CARGO_BIN_EXE_terraform-provider-oci")),
        );
        ws.set("OCI_CONFIG_FILE", keys.join("config").display().to_string());
        ws.set(
            "CLIENT_HOST_OVERRIDES",
            format!("oci_identity.IdentityClient={}", fake.endpoint()),
        );
        ws.set("TF_VAR_user_ocid", fake.test_identity().user);
        ws
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_ephemeral_auth_token_is_deleted_after_plan_and_apply() {
        let Some(terraform) = support::tool("XTASK_TERRAFORM") else {
            return;
        };
        // Protocol 6, then protocol 5 (served when it is the only choice).
        for protocol in [None, Some("5")] {
            deleted_after_plan_and_apply(&terraform, protocol).await;
        }
    }

    async fn deleted_after_plan_and_apply(terraform: &Path, protocol: Option<&'static str>) {
        let keys = tempfile::tempdir().unwrap();
        // Terraform signs with the wall clock, so the fake follows it.
        let fake = FakeOci::start(Config {
            clock: ClockMode::System,
            ..Config::for_testing()
        })
        .await
        .unwrap();
        support::write_oci_config(&fake, keys.path());
        let mut ws = workspace(terraform, &fake, keys.path());
        if let Some(protocol) = protocol {
            ws.set("TF_PROVIDER_FORCE_PROTOCOL", protocol);
        }
        let log = ws.dir.path().join("terraform.log");
        ws.set("TF_LOG", "trace");
        ws.set("TF_LOG_PATH", log.display().to_string());
        tokio::task::spawn_blocking(move || {
            ws.ok(&["plan", "-input=false", "-out=saved.tfplan"]);
            let plan_calls = rpc_calls(&std::fs::read_to_string(&log).unwrap());
            assert!(tokens(&fake).is_empty(), "plan left a token on the server");
            std::fs::write(&log, "").unwrap();
            ws.ok(&["apply", "-input=false", "saved.tfplan"]);
            let apply_calls = rpc_calls(&std::fs::read_to_string(&log).unwrap());
            assert!(tokens(&fake).is_empty(), "apply left a token on the server");
            eprintln!("oci plan ({protocol:?}) called: {}", plan_calls.join(", "));
            eprintln!(
                "oci apply ({protocol:?}, saved plan) called: {}",
                apply_calls.join(", ")
            );
            for calls in [&plan_calls, &apply_calls] {
                let opens = calls
                    .iter()
                    .filter(|c| *c == "OpenEphemeralResource")
                    .count();
                let closes = calls
                    .iter()
                    .filter(|c| *c == "CloseEphemeralResource")
                    .count();
                assert_eq!((opens, closes), (1, 1), "{calls:?}");
            }
            let state_file =
                std::fs::read_to_string(ws.dir.path().join("terraform.tfstate")).unwrap();
            assert!(!state_file.contains("ocid1.credential"), "{state_file}");
            assert!(
                !plan_file_contents(&ws.dir.path().join("saved.tfplan"))
                    .contains("ocid1.credential")
            );
            ws.ok(&["destroy", "-auto-approve", "-input=false"]);
            assert!(tokens(&fake).is_empty());
        })
        .await
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn bad_input_is_refused_naming_the_attribute_and_unknown_config_defers_open() {
        let Some(terraform) = support::tool("XTASK_TERRAFORM") else {
            return;
        };
        let keys = tempfile::tempdir().unwrap();
        let fake = FakeOci::start(Config {
            clock: ClockMode::System,
            ..Config::for_testing()
        })
        .await
        .unwrap();
        support::write_oci_config(&fake, keys.path());
        let ws = workspace(&terraform, &fake, keys.path());
        tokio::task::spawn_blocking(move || {
            let main = ws.dir.path().join("main.tf");
            std::fs::write(
                &main,
                "ephemeral \"oci_identity_auth_token\" \"t\" {\n  user_id     = \"alice\"\n  description = \"x\"\n}\n",
            )
            .unwrap();
            let out = ws.run(&["validate"]);
            let text = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success());
            assert!(text.contains("Invalid value for `user_id`"), "{text}");
            assert!(text.contains("must be the OCID of a user"), "{text}");

            // A user id known only at apply: the plan opens nothing, the apply opens and closes.
            std::fs::write(
                &main,
                "variable \"user_ocid\" {}\nresource \"terraform_data\" \"user\" {\n  input = var.user_ocid\n}\nephemeral \"oci_identity_auth_token\" \"t\" {\n  user_id     = terraform_data.user.output\n  description = \"x\"\n}\n",
            )
            .unwrap();
            let plan = ws.ok(&["plan", "-input=false"]);
            assert!(plan.contains("1 to add"), "{plan}");
            assert!(tokens(&fake).is_empty());
            ws.ok(&["apply", "-auto-approve", "-input=false"]);
            assert!(tokens(&fake).is_empty());
        })
        .await
        .unwrap();
    }
}
