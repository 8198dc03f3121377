//! Differential test: one table of steps, sent by one runner to a real daemon and to the fake
//! profile that imitates it (Debian's LXD 5.0.2 and the `5.0` profile, Debian's Incus 6.0 and
//! the `incus-6.0` profile), compared after normalising ids, secrets, fingerprints,
//! certificates, addresses and times.
//!
//! Each daemon's normalised transcript is also kept as a snapshot (`tests/snapshots/`): the
//! comparison checks the real daemon against it whenever the daemon is at hand, and a
//! daemon-free test checks the fake against it on every run, so that a change to the fake's
//! handlers fails quickly and without a daemon.
//!
//! Time passes differently on the two sides: a step that waits for the daemon's clock (a token
//! expiring, the expiry sweep) polls the real daemon with a deadline and advances the fake's
//! manual clock by the same amounts, so that the fake side never sleeps.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use common::{
    Daemon, RealDaemon, Reply, https_client, https_request, normalise, token_from_op, tool,
    unix_request,
};
use fake_lxd::{ClientCert, Config, Control, FakeLxd, Profile};

/// Who sends a step: the unix socket (trusted), or an HTTPS client with the named client
/// certificate (made on first use), or without one.
#[derive(Clone, Copy)]
enum Via {
    Unix,
    Https(Option<&'static str>),
}

/// What a step keeps of its reply for the comparison.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// The status and the normalised body.
    Body,
    /// An operations list without the `success`/`failure` buckets, where the real daemon's
    /// short-lived start-up and sweep tasks land (token operations never do); each bucket in
    /// a fixed order, since the daemon lists its operations in Go's random map order.
    WithoutTasks,
    /// A list whose order is not the point: its items sorted after normalising.
    Unordered,
    /// The status and the normalised `Location` header.
    Location,
    /// Only the status (the body holds what the fake does not imitate, e.g. the kernel).
    Status,
}

/// A condition a step is repeated until, while the daemon's clock moves on.
#[derive(Clone, Copy)]
enum Until {
    /// The server's `Date` is past the `expiresAt` of the saved token operation.
    Expired(&'static str),
    /// The operation in the reply has this `status_code`.
    OpStatus(u16),
}

/// One request of the table. `path` and `body` are templates: `{https}` is the daemon's
/// HTTPS address, `{id:N}`, `{token:N}` and `{secret:N}` come from the token operation saved
/// as `N`, `{fp:C}` is the fingerprint of client certificate `C` (`{fp12:C}` its first 12
/// hex digits), and `{consume:N}` is the body that redeems token `N` in the field the daemon
/// reads (`password` on LXD 5.0, `trust_token` on Incus).
#[derive(Clone, Copy)]
struct Step {
    label: &'static str,
    via: Via,
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    keep: Keep,
    /// Saves the reply's operation under this name.
    save: Option<&'static str>,
    until: Option<Until>,
}

const fn step(label: &'static str, via: Via, method: &'static str, path: &'static str) -> Step {
    Step {
        label,
        via,
        method,
        path,
        body: None,
        keep: Keep::Body,
        save: None,
        until: None,
    }
}

impl Step {
    const fn body(mut self, body: &'static str) -> Step {
        self.body = Some(body);
        self
    }

    const fn keep(mut self, keep: Keep) -> Step {
        self.keep = keep;
        self
    }

    const fn save(mut self, name: &'static str) -> Step {
        self.save = Some(name);
        self
    }

    const fn until(mut self, until: Until) -> Step {
        self.until = Some(until);
        self
    }
}

const UNIX: Via = Via::Unix;
const NO_CERT: Via = Via::Https(None);
const fn cert(name: &'static str) -> Via {
    Via::Https(Some(name))
}

const CREATE: &str = "/1.0/certificates";
const UNKNOWN_OP: &str = "/1.0/operations/38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1";

/// The table: every step is sent to both daemons and to both fake profiles.
const STEPS: &[Step] = &[
    step("patch https address", UNIX, "PATCH", "/1.0")
        .body(r#"{"config":{"core.https_address":"{https}"}}"#),
    // Untrusted views over HTTPS (the fake's extension list must be the real one).
    step("untrusted GET /1.0", cert("stranger"), "GET", "/1.0"),
    step("untrusted GET /1.0 without cert", NO_CERT, "GET", "/1.0"),
    step("untrusted list operations", cert("stranger"), "GET", "/1.0/operations"),
    step("untrusted list operations recursion", cert("stranger"), "GET", "/1.0/operations?recursion=1"),
    step("untrusted list certificates", cert("stranger"), "GET", "/1.0/certificates"),
    step("untrusted create token", cert("stranger"), "POST", CREATE)
        .body(r#"{"name":"x","type":"client","token":true}"#),
    step("untrusted PATCH /1.0", cert("stranger"), "PATCH", "/1.0").body(r#"{"config":{}}"#),
    step("untrusted PUT /1.0", cert("stranger"), "PUT", "/1.0").body(r#"{"config":{}}"#),
    step("untrusted get certificate", cert("stranger"), "GET", "/1.0/certificates/{fp:stranger}"),
    step("untrusted delete certificate", cert("stranger"), "DELETE", "/1.0/certificates/{fp:stranger}"),
    step("untrusted get operation", cert("stranger"), "GET", UNKNOWN_OP),
    step("untrusted wait", cert("stranger"), "GET", "/1.0/operations/38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1/wait?timeout=0"),
    step("untrusted revoke", cert("stranger"), "DELETE", UNKNOWN_OP),
    step("untrusted events", cert("stranger"), "GET", "/1.0/events"),
    step("untrusted projects", cert("stranger"), "GET", "/1.0/projects"),
    step("untrusted default project", cert("stranger"), "GET", "/1.0/projects/default"),
    step("trusted GET /1.0", UNIX, "GET", "/1.0").keep(Keep::Status),
    // Creation, listing, reading.
    step("create plain", UNIX, "POST", CREATE)
        .body(r#"{"name":"t-plain","type":"client","token":true}"#)
        .save("plain"),
    step("create plain location", UNIX, "POST", CREATE)
        .body(r#"{"name":"t-plain-2","type":"client","token":true}"#)
        .keep(Keep::Location),
    step("list", UNIX, "GET", "/1.0/operations").keep(Keep::WithoutTasks),
    step("list recursion=1", UNIX, "GET", "/1.0/operations?recursion=1").keep(Keep::WithoutTasks),
    step("list recursion=0", UNIX, "GET", "/1.0/operations?recursion=0").keep(Keep::WithoutTasks),
    step("list project=default recursion=1", UNIX, "GET", "/1.0/operations?project=default&recursion=1")
        .keep(Keep::WithoutTasks),
    step("get plain", UNIX, "GET", "/1.0/operations/{id:plain}"),
    step("wait timeout=0 on a running token", UNIX, "GET", "/1.0/operations/{id:plain}/wait?timeout=0"),
    step("create restricted", UNIX, "POST", "/1.0/certificates?project=default")
        .body(r#"{"name":"t-restr","type":"client","token":true,"restricted":true,"projects":["default"]}"#)
        .save("restricted"),
    step("create projects null", UNIX, "POST", CREATE)
        .body(r#"{"name":"t-null","type":"client","restricted":false,"projects":null,"token":true}"#),
    step("create with a password field", UNIX, "POST", CREATE)
        .body(r#"{"name":"t-pw","type":"client","password":"x","token":true}"#),
    step("create with a trust_token field", UNIX, "POST", CREATE)
        .body(r#"{"name":"t-tt","type":"client","trust_token":"x","token":true}"#),
    step("create with a certificate", UNIX, "POST", CREATE)
        .body(r#"{"name":"t-cert","type":"client","certificate":"abc","token":true}"#),
    step("create without a name", UNIX, "POST", CREATE)
        .body(r#"{"type":"client","token":true}"#)
        .save("nameless"),
    // Revocation.
    step("revoke plain", UNIX, "DELETE", "/1.0/operations/{id:plain}"),
    step("get revoked", UNIX, "GET", "/1.0/operations/{id:plain}"),
    // With `timeout=0` Incus sometimes answers a finished operation with the timeout too (its
    // context may expire first), so a finished operation is waited for with a timeout.
    step("wait on a revoked token", UNIX, "GET", "/1.0/operations/{id:plain}/wait?timeout=1"),
    step("revoke twice", UNIX, "DELETE", "/1.0/operations/{id:plain}"),
    step("get unknown operation", UNIX, "GET", UNKNOWN_OP),
    step("wait on an unknown operation", UNIX, "GET", "/1.0/operations/38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1/wait?timeout=0"),
    step("revoke unknown operation", UNIX, "DELETE", UNKNOWN_OP),
    step("get non-uuid operation", UNIX, "GET", "/1.0/operations/nope"),
    // Bad bodies.
    step("bad json", UNIX, "POST", CREATE).body("{bad json"),
    step("array body", UNIX, "POST", CREATE).body("[]"),
    step("number name", UNIX, "POST", CREATE).body(r#"{"name":5,"type":"client","token":true}"#),
    step("string token", UNIX, "POST", CREATE).body(r#"{"name":"x","type":"client","token":"yes"}"#),
    step("string projects", UNIX, "POST", CREATE)
        .body(r#"{"name":"x","type":"client","token":true,"projects":"default"}"#),
    step("empty body", UNIX, "POST", CREATE).body(""),
    step("a number among the projects", UNIX, "POST", CREATE)
        .body(r#"{"name":"x","type":"client","token":true,"projects":["default",1]}"#),
    step("string restricted", UNIX, "POST", CREATE)
        .body(r#"{"name":"x","type":"client","token":true,"restricted":"yes"}"#),
    step("number certificate", UNIX, "POST", CREATE)
        .body(r#"{"name":"x","type":"client","token":true,"certificate":7}"#),
    step("object type", UNIX, "POST", CREATE).body(r#"{"name":"x","type":{},"token":true}"#),
    step("number object key", UNIX, "POST", CREATE).body("{1:2}"),
    step("space before a bad key", UNIX, "POST", CREATE).body("{ \n x}"),
    step("unterminated object", UNIX, "POST", CREATE).body(r#"{"name":"x""#),
    step("string body", UNIX, "POST", CREATE).body(r#""x""#),
    step("config as a list", UNIX, "PATCH", "/1.0").body(r#"{"config":[]}"#),
    step("config body as a list", UNIX, "PUT", "/1.0").body("[]"),
    step("metrics type", UNIX, "POST", CREATE).body(r#"{"name":"x","type":"metrics","token":true}"#),
    step("missing type", UNIX, "POST", CREATE).body(r#"{"name":"x","token":true}"#),
    step("bogus expiry", UNIX, "PATCH", "/1.0").body(r#"{"config":{"core.remote_token_expiry":"bogus","core.https_address":"{https}"}}"#),
    step("lower-case expiry unit", UNIX, "PATCH", "/1.0")
        .body(r#"{"config":{"core.remote_token_expiry":"10s","core.https_address":"{https}"}}"#),
    step("unknown config key", UNIX, "PATCH", "/1.0")
        .body(r#"{"config":{"core.remote_token_expirx":"20M","core.https_address":"{https}"}}"#),
    step("bad config json", UNIX, "PATCH", "/1.0").body("{bad"),
    step("unknown path", UNIX, "GET", "/1.0/nosuch"),
    step("versions", UNIX, "GET", "/"),
    step("projects", UNIX, "GET", "/1.0/projects"),
    step("projects recursion=1", UNIX, "GET", "/1.0/projects?recursion=1"),
    step("projects recursion=0", UNIX, "GET", "/1.0/projects?recursion=0"),
    step("projects with another parameter", UNIX, "GET", "/1.0/projects?all-projects=true&recursion=1"),
    step("default project", UNIX, "GET", "/1.0/projects/default"),
    step("unknown project", UNIX, "GET", "/1.0/projects/nope"),
    step("POST operations", UNIX, "POST", "/1.0/operations").body("{}"),
    step("events without upgrade", UNIX, "GET", "/1.0/events?project=default"),
    // Consumption over HTTPS, and the trust store it fills.
    step("consume in the wrong field", cert("alice"), "POST", CREATE)
        .body(r#"{"type":"client","{wrong-field}":"{token:restricted}"}"#),
    step("token kept after the wrong field", UNIX, "GET", "/1.0/operations/{id:restricted}"),
    step("consume", cert("alice"), "POST", CREATE)
        .body("{consume:restricted}")
        .keep(Keep::Location),
    step("consume twice, other cert", cert("bob"), "POST", CREATE).body("{consume:restricted}"),
    step("consume twice, same cert", cert("alice"), "POST", CREATE).body("{consume:restricted}"),
    step("restricted client creates a token", cert("alice"), "POST", CREATE)
        .body(r#"{"name":"y","type":"client","token":true}"#),
    step("trusted client GET /1.0", cert("alice"), "GET", "/1.0").keep(Keep::Status),
    step("certificates recursion=1", UNIX, "GET", "/1.0/certificates?recursion=1").keep(Keep::Unordered),
    step("certificates", UNIX, "GET", "/1.0/certificates").keep(Keep::Unordered),
    step("certificates recursion=0", UNIX, "GET", "/1.0/certificates?recursion=0").keep(Keep::Unordered),
    step("get certificate", UNIX, "GET", "/1.0/certificates/{fp:alice}"),
    step("get certificate by prefix", UNIX, "GET", "/1.0/certificates/{fp12:alice}"),
    step("get unknown certificate", UNIX, "GET", "/1.0/certificates/0000000000000000"),
    step("nameless token cannot be consumed", cert("frank"), "POST", CREATE).body("{consume:nameless}"),
    // The trusted client presents a fresh token.
    step("create for the trusted client", UNIX, "POST", CREATE)
        .body(r#"{"name":"t-again","type":"client","token":true}"#)
        .save("again"),
    step("trusted client presents a fresh token", cert("alice"), "POST", CREATE).body("{consume:again}"),
    step("fresh token after the trusted client", UNIX, "GET", "/1.0/operations/{id:again}"),
    // What a restricted client may do with other clients' tokens.
    step("create a token for the restricted client to see", UNIX, "POST", CREATE)
        .body(r#"{"name":"t-victim","type":"client","token":true}"#)
        .save("victim"),
    step("restricted client reads a token", cert("alice"), "GET", "/1.0/operations/{id:victim}"),
    step("restricted client revokes a token", cert("alice"), "DELETE", "/1.0/operations/{id:victim}"),
    step("token revoked by the restricted client", UNIX, "GET", "/1.0/operations/{id:victim}"),
    // Two tokens of one name, consumed by two clients.
    step("create dup 1", UNIX, "POST", CREATE)
        .body(r#"{"name":"dup","type":"client","token":true}"#)
        .save("dup1"),
    step("create dup 2", UNIX, "POST", CREATE)
        .body(r#"{"name":"dup","type":"client","token":true}"#)
        .save("dup2"),
    step("consume dup 1", cert("gina"), "POST", CREATE).body("{consume:dup1}"),
    step("consume dup 2", cert("hugo"), "POST", CREATE).body("{consume:dup2}"),
    step("trust store after consumption", UNIX, "GET", "/1.0/certificates?recursion=1").keep(Keep::Unordered),
    step("restricted client lists certificates", cert("alice"), "GET", "/1.0/certificates?recursion=1").keep(Keep::Unordered),
    step("unrestricted client lists certificates", cert("gina"), "GET", "/1.0/certificates").keep(Keep::Unordered),
    step("delete a certificate", UNIX, "DELETE", "/1.0/certificates/{fp:hugo}"),
    step("delete it again", UNIX, "DELETE", "/1.0/certificates/{fp:hugo}"),
    // Tokens that cannot be consumed.
    step("create raw", UNIX, "POST", CREATE)
        .body(r#"{"name":"t-raw","type":"client","token":true}"#)
        .save("raw"),
    step("consume raw secret", cert("carol"), "POST", CREATE)
        .body(r#"{"type":"client","password":"{secret:raw}","trust_token":"{secret:raw}"}"#),
    step("consume without a client certificate", NO_CERT, "POST", CREATE).body("{consume:raw}"),
    step("token burnt by the certificate-less attempt", UNIX, "GET", "/1.0/operations/{id:raw}"),
    // Expiry at consumption: "0M" makes tokens that are expired at once.
    step("set expiry 0M", UNIX, "PATCH", "/1.0").body(r#"{"config":{"core.remote_token_expiry":"0M"}}"#),
    step("create with expiry", UNIX, "POST", CREATE)
        .body(r#"{"name":"t-exp","type":"client","token":true}"#)
        .save("expired"),
    step("consume expired", cert("dave"), "POST", CREATE).body("{consume:expired}"),
    step("consume expired again", cert("dave"), "POST", CREATE).body("{consume:expired}"),
    step("expired token cancelled", UNIX, "GET", "/1.0/operations/{id:expired}"),
    step("set expiry 10S", UNIX, "PATCH", "/1.0").body(r#"{"config":{"core.remote_token_expiry":"10S"}}"#),
    step("create with 10S expiry", UNIX, "POST", CREATE)
        .body(r#"{"name":"t-10s","type":"client","token":true}"#)
        .save("ten"),
    step("consume before expiry", cert("erin"), "POST", CREATE).body("{consume:ten}"),
    // Expiry as time passes: a token used after its expiry, and the sweep that cancels
    // another one while it is still listed as running.
    step("set expiry 2S", UNIX, "PATCH", "/1.0").body(r#"{"config":{"core.remote_token_expiry":"2S"}}"#),
    step("create 2S token", UNIX, "POST", CREATE)
        .body(r#"{"name":"t-2s","type":"client","token":true}"#)
        .save("short"),
    step("create 2S token for the sweep", UNIX, "POST", CREATE)
        .body(r#"{"name":"t-sweep","type":"client","token":true}"#)
        .save("sweep"),
    step("wait until the 2S token expired", UNIX, "GET", "/1.0")
        .keep(Keep::Status)
        .until(Until::Expired("short")),
    step("expired token still listed as running", UNIX, "GET", "/1.0/operations/{id:sweep}"),
    step("consume after expiry", cert("ivan"), "POST", CREATE).body("{consume:short}"),
    step("consumed-after-expiry token cancelled", UNIX, "GET", "/1.0/operations/{id:short}"),
    step("unset expiry", UNIX, "PATCH", "/1.0").body(r#"{"config":{"core.remote_token_expiry":""}}"#),
    step("the sweep cancels the expired token", UNIX, "GET", "/1.0/operations/{id:sweep}")
        .until(Until::OpStatus(401)),
    step("after the sweep", UNIX, "GET", "/1.0/operations?recursion=1").keep(Keep::WithoutTasks),
    step("trust store at the end", UNIX, "GET", "/1.0/certificates?recursion=1").keep(Keep::Unordered),
    // PUT replaces the whole configuration where PATCH merges: the expiry set here is gone
    // after a PUT that leaves it out, so the next token has none.
    step("set expiry 1H", UNIX, "PATCH", "/1.0").body(r#"{"config":{"core.remote_token_expiry":"1H"}}"#),
    step("put without the expiry", UNIX, "PUT", "/1.0").body(r#"{"config":{"core.https_address":"{https}"}}"#),
    step("create after the put", UNIX, "POST", CREATE)
        .body(r#"{"name":"t-after-put","type":"client","token":true}"#),
];

/// Where the table is sent.
struct Target {
    daemon: Daemon,
    socket: PathBuf,
    https: String,
    /// The fake's control, whose clock is advanced instead of waiting; `None` for a daemon.
    fake: Option<Control>,
}

/// What a step leaves to compare: its label, status and normalised body.
type Outcome = (String, u16, String);

/// The state of one run: saved operations and client certificates.
struct Run<'a> {
    target: &'a Target,
    ops: HashMap<&'static str, serde_json::Value>,
    certs: HashMap<String, ClientCert>,
}

impl Run<'_> {
    fn cert(&mut self, name: &str) -> &ClientCert {
        self.certs
            .entry(name.to_owned())
            .or_insert_with(|| ClientCert::generate(name))
    }

    fn op(&self, name: &str) -> &serde_json::Value {
        self.ops
            .get(name)
            .unwrap_or_else(|| panic!("no operation saved as {name}"))
    }

    /// Fills in a template (see [`Step`]).
    fn fill(&mut self, template: &str) -> String {
        let field = match self.target.daemon {
            Daemon::Lxd => ("password", "trust_token"),
            Daemon::Incus => ("trust_token", "password"),
        };
        let mut out = template
            .replace("{https}", &self.target.https)
            .replace("{wrong-field}", field.1);
        let pattern = regex::Regex::new(r"\{(id|token|secret|fp|fp12|consume):([a-z0-9]+)\}")
            .expect("pattern");
        while let Some(found) = pattern.captures(&out.clone()) {
            let (kind, name) = (&found[1], found[2].to_owned());
            let value = match kind {
                "id" => self.op(&name)["id"].as_str().unwrap_or_default().to_owned(),
                "token" => token_from_op(self.op(&name)),
                "secret" => self.op(&name)["metadata"]["secret"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                "consume" => format!(
                    r#"{{"type":"client","{}":"{}"}}"#,
                    field.0,
                    token_from_op(self.op(&name))
                ),
                "fp" | "fp12" => {
                    let fingerprint = self.cert(&name).fingerprint.clone();
                    if kind == "fp12" {
                        fingerprint[..12].to_owned()
                    } else {
                        fingerprint
                    }
                }
                _ => unreachable!("the pattern lists the kinds"),
            };
            out = out.replacen(&found[0], &value, 1);
        }
        out
    }

    async fn send(&mut self, step: &Step) -> Reply {
        let path = self.fill(step.path);
        let body = step.body.map(|b| self.fill(b));
        match step.via {
            Via::Unix => {
                unix_request(&self.target.socket, step.method, &path, body.as_deref()).await
            }
            Via::Https(who) => {
                let cert = who.map(|name| self.cert(name).clone());
                let client = https_client(
                    cert.as_ref()
                        .map(|c| common::Cert {
                            cert_pem: c.cert_pem.clone(),
                            key_pem: c.key_pem.clone(),
                        })
                        .as_ref(),
                );
                https_request(
                    &client,
                    &self.target.https,
                    step.method,
                    &path,
                    body.as_deref(),
                )
                .await
            }
        }
    }

    /// Lets a moment pass on the target's clock, and says how long: the real daemon's clock
    /// passes by itself, the fake's is advanced.
    async fn pass(&self) -> Duration {
        match &self.target.fake {
            Some(control) => {
                control.advance(FAKE_POLL);
                FAKE_POLL
            }
            None => {
                tokio::time::sleep(POLL).await;
                POLL
            }
        }
    }

    fn holds(&self, until: Until, reply: &Reply) -> bool {
        match until {
            Until::Expired(name) => {
                let expires = self.op(name)["metadata"]["expiresAt"]
                    .as_str()
                    .and_then(|t| {
                        time::OffsetDateTime::parse(
                            t,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok()
                    })
                    .unwrap_or_else(|| panic!("token {name} has no expiry"));
                let date = reply
                    .header("date")
                    .and_then(lxd_date)
                    .expect("a Date header");
                // `Date` has whole seconds: past the expiry once its second is over.
                date > expires
            }
            Until::OpStatus(code) => reply.json()["metadata"]["status_code"] == code,
        }
    }
}

fn lxd_date(text: &str) -> Option<time::OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(text.trim(), format)
        .ok()
        .map(|t| t.assume_utc())
}

/// How long a step may wait for the target's clock (the sweep runs once a minute).
const DEADLINE: Duration = Duration::from_secs(80);
/// How often the real daemon is asked again; the fake's clock moves by [`FAKE_POLL`] each time,
/// still well within the five seconds a finished operation stays visible.
const POLL: Duration = Duration::from_millis(200);
const FAKE_POLL: Duration = Duration::from_secs(1);

/// The one runner: sends the table to `target` and returns what to compare.
async fn run(target: &Target) -> Vec<Outcome> {
    let mut run = Run {
        target,
        ops: HashMap::new(),
        certs: HashMap::new(),
    };
    let mut log = Vec::new();
    for step in STEPS {
        let mut reply = run.send(step).await;
        if let Some(until) = step.until {
            let mut waited = Duration::ZERO;
            while !run.holds(until, &reply) {
                assert!(
                    waited < DEADLINE,
                    "{:?}: step {:?} did not come true within {DEADLINE:?}; last reply {} {}",
                    target.daemon,
                    step.label,
                    reply.status,
                    reply.body
                );
                waited += run.pass().await;
                reply = run.send(step).await;
            }
        }
        if let Some(name) = step.save {
            run.ops.insert(name, reply.json()["metadata"].clone());
        }
        let kept = match step.keep {
            Keep::Body => normalise(&reply.body),
            Keep::WithoutTasks => without_tasks(&reply),
            Keep::Unordered => unordered(&reply),
            Keep::Location => normalise(reply.header("location").unwrap_or("<none>")),
            Keep::Status => String::new(),
        };
        log.push((step.label.to_owned(), reply.status, kept));
    }
    log
}

fn without_tasks(reply: &Reply) -> String {
    let mut v = reply.json();
    if let Some(buckets) = v["metadata"].as_object_mut() {
        buckets.remove("success");
        buckets.remove("failure");
        for items in buckets.values_mut() {
            *items = sorted(items);
        }
    }
    normalise(&v.to_string())
}

fn unordered(reply: &Reply) -> String {
    let mut v = reply.json();
    v["metadata"] = sorted(&v["metadata"]);
    normalise(&v.to_string())
}

/// The items of a JSON array in the order of their normalised text (each item normalised).
fn sorted(items: &serde_json::Value) -> serde_json::Value {
    let Some(items) = items.as_array() else {
        return items.clone();
    };
    let mut texts: Vec<String> = items.iter().map(|i| normalise(&i.to_string())).collect();
    texts.sort();
    serde_json::Value::Array(
        texts
            .iter()
            .map(|t| serde_json::from_str(t).unwrap_or(serde_json::Value::String(t.clone())))
            .collect(),
    )
}

/// A fake of `profile` as a daemon starts: no HTTPS address set yet.
async fn fresh_fake(profile: Profile) -> FakeLxd {
    FakeLxd::start(Config {
        profile,
        https_address_set: false,
        ..Config::for_testing()
    })
    .await
    .expect("fake starts")
}

/// Runs the table against the real daemon and against a fresh fake with `profile`, and
/// fails with every step that differs.
async fn compare(real: RealDaemon, profile: Profile) {
    let fake = fresh_fake(profile).await;
    let real_target = Target {
        daemon: real.daemon,
        socket: real.socket(),
        https: real.https.clone(),
        fake: None,
    };
    let fake_target = Target {
        daemon: real.daemon,
        socket: fake.unix_socket().to_owned(),
        https: fake.https_addr().to_string(),
        fake: Some(fake.control()),
    };
    let started = std::time::Instant::now();
    let expected = run(&real_target).await;
    let real_time = started.elapsed();
    let actual = run(&fake_target).await;
    eprintln!(
        "{:?}: {} steps, real daemon {real_time:?}, fake {:?}",
        real.daemon,
        expected.len(),
        started.elapsed() - real_time
    );
    assert_eq!(expected.len(), actual.len());
    let differences: Vec<String> = expected
        .iter()
        .zip(&actual)
        .filter(|(want, got)| want != got)
        .map(|(want, got)| {
            format!(
                "step {:?}\n  real: {} {}\n  fake: {} {}",
                want.0, want.1, want.2, got.1, got.2
            )
        })
        .collect();
    assert!(
        differences.is_empty(),
        "{:?}: {} of {} steps differ:\n{}",
        real.daemon,
        differences.len(),
        expected.len(),
        differences.join("\n")
    );
    assert_transcript(real.daemon, &expected);
}

/// The outcomes as text: a `=== label` line, then the status and what was kept.
fn transcript(outcomes: &[Outcome]) -> String {
    let mut text = String::new();
    for (label, status, kept) in outcomes {
        text.push_str(&format!("=== {label}\n{status} {kept}\n"));
    }
    text
}

/// Checks a run's outcomes against the recorded transcript of `daemon`.
fn assert_transcript(daemon: Daemon, outcomes: &[Outcome]) {
    let name = match daemon {
        Daemon::Lxd => "lxd_5_0_2",
        Daemon::Incus => "incus_6_0",
    };
    insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!(name, transcript(outcomes));
    });
}

/// Runs the table against a fresh fake alone and checks it against the transcript recorded
/// from `daemon` (no daemon needed: the fake's clock is advanced).
async fn replay(daemon: Daemon, profile: Profile) {
    let fake = fresh_fake(profile).await;
    let target = Target {
        daemon,
        socket: fake.unix_socket().to_owned(),
        https: fake.https_addr().to_string(),
        fake: Some(fake.control()),
    };
    assert_transcript(daemon, &run(&target).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_5_0_answers_as_lxd_5_0_2_was_recorded() {
    replay(Daemon::Lxd, Profile::V5_0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_incus_6_0_answers_as_incus_6_0_was_recorded() {
    replay(Daemon::Incus, Profile::Incus6_0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_5_0_answers_like_the_real_lxd_5_0_2() {
    let Some(lxd) = tool("XTASK_LXD") else { return };
    let real = tokio::task::spawn_blocking(move || RealDaemon::start(&lxd))
        .await
        .expect("lxd starts");
    compare(real, Profile::V5_0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_incus_6_0_answers_like_the_real_incus_6_0() {
    let Some(incusd) = tool("XTASK_INCUSD") else {
        return;
    };
    let real = tokio::task::spawn_blocking(move || RealDaemon::start_incus(&incusd))
        .await
        .expect("incusd starts");
    compare(real, Profile::Incus6_0).await;
}
