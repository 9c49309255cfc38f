//! Dual-stack sessions over HTTP against the local runner serving 127.0.0.1 and [::1] at once:
//! address proofs from `GET /api/address` on each family, a start request that carries them,
//! one rule per resource × address, and every way a proof is refused (nothing created).

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{json, Value};

use entryguard_local::Backend;
use entryguard_tests::server::{TestServer, ADMIN, DEMO_GROUPS, MEMBER};

type Firewall = BTreeMap<String, Vec<(String, u64, u64, String)>>;

const PORTS: [u64; 3] = [22, 5432, 443];

/// `GET /api/address` over the given base URL (one per family).
async fn address(s: &TestServer, base: &str, token: &str) -> Value {
    let request = s
        .client
        .get(format!("{base}/api/address"))
        .bearer_auth(token);
    s.send("GET /api/address", request).await.ok(200).clone()
}

async fn proofs(s: &TestServer, token: &str) -> (Value, Value) {
    let v6 = s.base_v6.clone().expect("a dual-stack server");
    (
        address(s, &s.base, token).await,
        address(s, &v6, token).await,
    )
}

fn start_body(proofs: &[&Value]) -> Value {
    json!({"durationHours": 2, "addressProofs": proofs.iter().map(|p| p["proof"].clone()).collect::<Vec<_>>()})
}

/// Each demo group with a rule for each of `cidrs`.
fn opened(baseline: &Firewall, cidrs: &[&str]) -> Firewall {
    let mut expected = baseline.clone();
    for (sg, port) in DEMO_GROUPS.iter().zip(PORTS) {
        let rules = expected.get_mut(*sg).unwrap();
        for cidr in cidrs {
            rules.push(("tcp".into(), port, port, (*cidr).into()));
        }
        rules.sort();
    }
    expected
}

fn sorted(mut f: Firewall) -> Firewall {
    f.values_mut().for_each(|rules| rules.sort());
    f
}

async fn dual_stack_session_opens_and_closes_both_families(s: &TestServer) {
    let baseline = s.firewall().await;
    let member = s.login(MEMBER).await;
    let (v4, v6) = proofs(s, &member).await;
    assert_eq!(v4["address"], "127.0.0.1");
    assert_eq!(v4["version"], "v4");
    assert_eq!(v6["address"], "::1");
    assert_eq!(v6["version"], "v6");
    assert_ne!(v4["proof"], v6["proof"]);

    let started = s
        .post(&member, "/api/sessions", start_body(&[&v4, &v6]))
        .await;
    let started = started.ok(202);
    assert_eq!(
        started["ipAddresses"],
        json!([{"address": "127.0.0.1", "version": "v4"}, {"address": "::1", "version": "v6"}])
    );
    assert_eq!(started["resourceCount"], 3);
    let id = started["id"].as_str().unwrap().to_owned();
    let active = s.wait_status(&member, &id, "ACTIVE").await;
    let rows: Vec<(&str, &str)> = active["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["resourceName"].as_str().unwrap(),
                e["ip"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows.len(), 6, "{active}");
    for name in rows.iter().map(|(n, _)| n) {
        let ips: Vec<&str> = rows
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, ip)| *ip)
            .collect();
        assert_eq!(ips, vec!["127.0.0.1", "::1"], "{name}");
    }
    assert_eq!(
        sorted(s.firewall().await),
        opened(&baseline, &["127.0.0.1/32", "::1/128"])
    );

    // A second session of the IPv4 address only: stopping the dual-stack one keeps the IPv4
    // rules (still held) and removes the IPv6 ones.
    let v4_only = s.settled_session(&member, 4, "ACTIVE").await;
    s.stop_and_wait(&member, &id).await;
    assert_eq!(
        sorted(s.firewall().await),
        opened(&baseline, &["127.0.0.1/32"])
    );
    s.stop_and_wait(&member, v4_only["id"].as_str().unwrap())
        .await;
    s.wait_firewall("every rule removed", &baseline).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dual_stack_session_opens_and_closes_both_families() {
    let s = TestServer::start_dual_stack(Backend::Embedded).await;
    dual_stack_session_opens_and_closes_both_families(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dual_stack_session_on_dynamodb_and_sqs() {
    let moto = entryguard_tests::moto::Moto::start();
    let s = TestServer::start_dual_stack(Backend::Aws(entryguard_local::AwsConfig {
        sdk: moto.options(),
        names: entryguard_aws::ResourceNames::with_prefix("eg-dualstack"),
        provision: true,
        bootstrap_admin: None,
        seed_demo: true,
    }))
    .await;
    dual_stack_session_opens_and_closes_both_families(&s).await;
    // One rejection through the stored key ring as well.
    let member = s.login(MEMBER).await;
    let admin = s.login(ADMIN).await;
    let (_, admins) = proofs(&s, &admin).await;
    s.post(&member, "/api/sessions", start_body(&[&admins]))
        .await
        .err(400, "ADDRESS_PROOF_OTHER_USER");
}

/// Whatever the member can see and the firewall: a refused start must change neither.
async fn everything(s: &TestServer, member: &str) -> (Value, Firewall) {
    (
        s.get(Some(member), "/api/sessions").await.ok(200).clone(),
        s.firewall().await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_proofs_are_refused_each_with_its_code_and_nothing_is_created() {
    let s = TestServer::start_dual_stack(Backend::Embedded).await;
    bad_proofs_are_refused(&s).await;
}

/// The same on DynamoDB and SQS, with the key ring sealed by KMS.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_proofs_are_refused_on_dynamodb_and_sqs() {
    let moto = entryguard_tests::moto::Moto::start();
    let s = TestServer::start_dual_stack(Backend::Aws(entryguard_local::AwsConfig {
        sdk: moto.options(),
        names: entryguard_aws::ResourceNames::with_prefix("eg-badproofs"),
        provision: true,
        bootstrap_admin: None,
        seed_demo: true,
    }))
    .await;
    bad_proofs_are_refused(&s).await;
}

async fn bad_proofs_are_refused(s: &TestServer) {
    let member = s.login(MEMBER).await;
    let admin = s.login(ADMIN).await;
    let before = everything(s, &member).await;
    let start = |body: Value| s.post(&member, "/api/sessions", body);

    let (v4, v6) = proofs(s, &member).await;
    // Forged: the tag of one proof under the payload of another, a made-up key, garbage.
    let (payload4, _) = v4["proof"].as_str().unwrap().split_once('.').unwrap();
    let (_, tag6) = v6["proof"].as_str().unwrap().split_once('.').unwrap();
    let mut altered = v6["proof"].as_str().unwrap().to_owned();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    for forged in [
        format!("{payload4}.{tag6}"),
        altered,
        "bm90IGEgcHJvb2Y.AAAA".into(),
        String::new(),
    ] {
        let r = start(json!({"durationHours": 2, "addressProofs": [forged]})).await;
        let body = r.err(400, "ADDRESS_PROOF_INVALID");
        assert!(
            body["message"].as_str().unwrap().contains("not valid"),
            "{body}"
        );
    }

    // Another user's.
    let (admins_v4, admins_v6) = proofs(s, &admin).await;
    for theirs in [&admins_v4, &admins_v6] {
        start(start_body(&[theirs]))
            .await
            .err(400, "ADDRESS_PROOF_OTHER_USER");
    }
    // One valid proof does not carry a bad one.
    start(start_body(&[&v6, &admins_v4]))
        .await
        .err(400, "ADDRESS_PROOF_OTHER_USER");

    // Two of one family.
    let (another_v4, another_v6) = proofs(s, &member).await;
    start(start_body(&[&v4, &another_v4]))
        .await
        .err(400, "ADDRESS_PROOF_SAME_FAMILY");
    start(start_body(&[&v6, &another_v6]))
        .await
        .err(400, "ADDRESS_PROOF_SAME_FAMILY");

    // Expired: two minutes and a second later.
    s.advance_clock(121).await;
    start(start_body(&[&v6]))
        .await
        .err(400, "ADDRESS_PROOF_EXPIRED");
    start(start_body(&[&v4, &v6]))
        .await
        .err(400, "ADDRESS_PROOF_EXPIRED");

    assert_eq!(
        everything(s, &member).await,
        before,
        "a refused start created something"
    );

    // A fresh proof still works after all that.
    let (_, fresh) = proofs(s, &member).await;
    let started = start(start_body(&[&fresh])).await;
    assert_eq!(started.ok(202)["ipAddresses"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_proof_of_the_requests_own_family_adds_nothing() {
    let s = TestServer::start_dual_stack(Backend::Embedded).await;
    let member = s.login(MEMBER).await;
    let (v4, _) = proofs(&s, &member).await;
    let started = s.post(&member, "/api/sessions", start_body(&[&v4])).await;
    assert_eq!(
        started.ok(202)["ipAddresses"],
        json!([{"address": "127.0.0.1", "version": "v4"}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_address_route_needs_a_caller() {
    let s = TestServer::start_dual_stack(Backend::Embedded).await;
    s.get(None, "/api/address")
        .await
        .err(401, "UNAUTHENTICATED");
    let r = s
        .call(
            Method::POST,
            Some(&s.login(MEMBER).await),
            "/api/address",
            None,
        )
        .await;
    r.err(405, "METHOD_NOT_ALLOWED");
}

/// The key ring replaces its key after 30 days; a proof signed just before still starts a
/// session just after (its key is kept as the previous one), and the key is stored sealed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_rotation_breaks_no_proof_in_flight() {
    use entryguard::app::address_proofs::AddressKeyRing;
    let s = TestServer::start_dual_stack(Backend::Embedded).await;
    let member = s.login(MEMBER).await;
    let v6 = s.base_v6.clone().unwrap();
    address(&s, &s.base, &member).await;
    let org = s.app.store.list_orgs().await.unwrap()[0].id;
    let ring = |s: &TestServer| {
        let app = s.app.clone();
        async move {
            app.get_doc::<AddressKeyRing>(org, *org.as_uuid())
                .await
                .unwrap()
                .expect("a key ring")
        }
    };
    let first = ring(&s).await;
    assert!(first.previous.is_none());
    let stored = serde_json::to_string(&first).unwrap();
    assert!(stored.contains("ciphertext"), "{stored}");

    s.advance_clock(30 * 86_400 - 30).await;
    let member = s.login(MEMBER).await;
    let before_rotation = address(&s, &s.base, &member).await;
    assert_eq!(ring(&s).await, first, "not due yet");
    s.advance_clock(60).await;
    let after_rotation = address(&s, &v6, &member).await;
    let second = ring(&s).await;
    assert_ne!(second.current.id, first.current.id);
    assert_eq!(second.previous.as_ref(), Some(&first.current));

    let started = s
        .post(
            &member,
            "/api/sessions",
            start_body(&[&before_rotation, &after_rotation]),
        )
        .await;
    assert_eq!(started.ok(202)["ipAddresses"].as_array().unwrap().len(), 2);
}

/// The web app probes both families at once, so the organization's first two proofs are
/// signed concurrently: they must agree on one key ring.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_probes_agree_on_one_key() {
    let s = TestServer::start_dual_stack(Backend::Embedded).await;
    let member = s.login(MEMBER).await;
    let v6 = s.base_v6.clone().unwrap();
    let (a, b, c, d) = tokio::join!(
        address(&s, &s.base, &member),
        address(&s, &v6, &member),
        address(&s, &s.base, &member),
        address(&s, &v6, &member),
    );
    for (v4, v6) in [(&a, &b), (&c, &d), (&a, &d), (&c, &b)] {
        let started = s
            .post(&member, "/api/sessions", start_body(&[v4, v6]))
            .await;
        let id = started.ok(202)["id"].as_str().unwrap().to_owned();
        s.stop_and_wait(&member, &id).await;
    }
}

/// The runner tells the web app where to probe (`/config.json`), lets the page served on one
/// family call the other (CORS, its own origins only) and allows it in the CSP.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_web_app_learns_where_to_probe_and_may_call_there() {
    let s = TestServer::start_dual_stack(Backend::Embedded).await;
    let v6 = s.base_v6.clone().unwrap();
    let config = s.get(None, "/config.json").await;
    assert_eq!(
        config.ok(200)["addressProbes"],
        json!({"v4": s.base, "v6": v6})
    );
    assert_eq!(config.json["auth"]["mode"], "dev");

    let preflight = |origin: &str| {
        s.client
            .request(Method::OPTIONS, format!("{v6}/api/address"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "authorization")
            .send()
    };
    let allowed = preflight(&s.base).await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        s.base.as_str()
    );
    let refused = preflight("https://evil.example.com").await.unwrap();
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());

    let member = s.login(MEMBER).await;
    let cross = s
        .client
        .get(format!("{v6}/api/address"))
        .bearer_auth(&member)
        .header("Origin", &s.base)
        .send()
        .await
        .unwrap();
    assert_eq!(
        cross.headers()["access-control-allow-origin"],
        s.base.as_str()
    );
    assert_eq!(cross.json::<Value>().await.unwrap()["version"], "v6");

    let page = s.client.get(s.url("/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    // CSP cannot name an IPv6 literal host: the [::1] origin is allowed by its port.
    let port = v6.rsplit(':').next().unwrap();
    assert!(csp.contains(&format!("http://*:{port}")), "{csp}");
}

/// An admin chooses /64 for IPv6 rules: sessions started afterwards open the caller's IPv6
/// network and say so, sessions already running keep what they opened, and stopping each
/// removes exactly its own rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_organization_may_open_ipv6_networks_instead_of_addresses() {
    let s = TestServer::start_dual_stack(Backend::Embedded).await;
    let baseline = s.firewall().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    let org = s.get(Some(&admin), "/api/admin/organization").await;
    assert_eq!(org.ok(200)["ipv6Prefix"], 128);

    let (v4, v6) = proofs(&s, &member).await;
    let host = s
        .post(&member, "/api/sessions", start_body(&[&v4, &v6]))
        .await;
    let host_id = host.ok(202)["id"].as_str().unwrap().to_owned();
    s.wait_status(&member, &host_id, "ACTIVE").await;

    let set = s
        .put(
            &admin,
            "/api/admin/organization",
            json!({"name": "Demo Org", "ipv6Prefix": 64}),
        )
        .await;
    assert_eq!(set.ok(200)["ipv6Prefix"], 64);
    s.put(
        &admin,
        "/api/admin/organization",
        json!({"name": "Demo Org", "ipv6Prefix": 96}),
    )
    .await
    .field_err("ipv6Prefix");
    // Newest first, after the seed's creation of the organization.
    let audit = s.wait_audit(&admin, "?type=admin.change", 2).await;
    assert_eq!(
        audit[0]["message"],
        "IPv6 rules of new sessions now open a /64 (was /128)"
    );

    let (v4, v6) = proofs(&s, &member).await;
    let net = s
        .post(&member, "/api/sessions", start_body(&[&v4, &v6]))
        .await;
    let net_id = net.ok(202)["id"].as_str().unwrap().to_owned();
    let active = s.wait_status(&member, &net_id, "ACTIVE").await;
    let cidrs: Vec<&str> = active["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cidr"].as_str().unwrap())
        .collect();
    assert_eq!(cidrs, ["127.0.0.1/32", "::/64"].repeat(3));
    assert_eq!(
        sorted(s.firewall().await),
        opened(&baseline, &["127.0.0.1/32", "::/64", "::1/128"])
    );

    s.stop_and_wait(&member, &host_id).await;
    assert_eq!(
        sorted(s.firewall().await),
        opened(&baseline, &["127.0.0.1/32", "::/64"])
    );
    s.stop_and_wait(&member, &net_id).await;
    s.wait_firewall("every rule removed", &baseline).await;
}
