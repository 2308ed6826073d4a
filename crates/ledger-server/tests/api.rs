//! The HTTP API end to end against an in-process server on a loopback port, with real
//! fixtures from `../shared/fixtures/webhooks/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ledger_ingest::Limits;
use ledger_server::ingest::Secrets;
use serde_json::{json, Value};

const APP_SECRET: &str = "app-secret-0123456789abcdef";

/// `X-Hub-Signature-256` of `body` under [`APP_SECRET`].
fn meta_signature(body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(APP_SECRET.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn fixture(relative: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/webhooks").join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Server {
    base: String,
    data: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(secrets: Secrets) -> Server {
        Server::start_with(|config| config.secrets = secrets)
    }

    /// A server with the test defaults, then `configure`'s changes.
    fn start_with(configure: impl FnOnce(&mut ledger_server::ServeConfig)) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().to_owned();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = std_listener.local_addr().expect("addr");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let mut config = ledger_server::ServeConfig {
            limits: Limits { body_bytes_max: 64 * 1024, ..Limits::default() },
            batch_size: 1024,
            ..ledger_server::ServeConfig::new(addr, data.clone())
        };
        configure(&mut config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
                ledger_server::server::serve_on(listener, config, async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
            });
        });
        let server = Server {
            base: format!("http://{addr}"),
            data,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.get("/readyz").0 != 200 {
            assert!(Instant::now() < deadline, "server not ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder().http_status_as_error(false).build().into()
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.get_as(path, None)
    }

    /// A GET with `Authorization: Bearer <token>` when a token is given.
    fn get_as(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = Self::agent().get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        match request.call() {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let text = response.body_mut().read_to_string().unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
            }
            Err(_) => (0, Value::Null),
        }
    }

    fn post(&self, path: &str, content_type: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
        let mut request =
            Self::agent().post(format!("{}{path}", self.base)).header("content-type", content_type);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request.send(body).expect("response");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn log_end(&self) -> u64 {
        // The server holds the log open; a read-only view sees what is durable.
        use ledger_log::EventLog;
        ledger_log::EmbeddedLog::open_read_only(&self.data.join("log")).expect("log view").end_offset()
    }

    /// Waits until the projector has written what the log holds (timeline visible).
    fn wait_for(&self, path: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.get(path);
            if status == 200 {
                return body;
            }
            assert!(Instant::now() < deadline, "{path} never answered 200: {status} {body}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn webhook_to_eligibility_usage_entries_and_explain() {
    let server = Server::start(Secrets::default());
    let inbound = fixture("meta-cloud/meta-doc-text-ctwa-referral.json");
    let (status, body) = server.post("/v1/webhooks/meta_cloud", "application/json", &[], &inbound);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["new"], 1);
    // A retry of the same webhook is acknowledged and not appended again.
    let (status, body) = server.post("/v1/webhooks/meta_cloud", "application/json", &[], &inbound);
    assert_eq!((status, body["new"].as_u64(), body["duplicates"].as_u64()), (200, Some(0), Some(1)));
    assert_eq!(server.log_end(), 1);

    let event: Value = {
        let v: Value = serde_json::from_slice(&inbound).expect("json");
        v["entry"][0]["changes"][0]["value"].clone()
    };
    let phone = event["metadata"]["phone_number_id"].as_str().expect("phone").to_owned();
    let user = event["messages"][0]["from"].as_str().expect("from").to_owned();
    let sent_at: i64 = event["messages"][0]["timestamp"].as_str().expect("ts").parse().expect("int");

    let timeline = server.wait_for(&format!("/v1/contacts/{phone}/{user}/timeline"));
    assert_eq!(timeline["events"].as_array().map(Vec::len), Some(1));

    // R1: the user's message opens a 24-hour customer service window.
    let (status, eligibility) =
        server.get(&format!("/v1/contacts/{phone}/{user}/eligibility?at={}", sent_at + 60));
    assert_eq!(status, 200, "{eligibility}");
    assert_eq!(eligibility["customer_service_window_until"], sent_at + 24 * 3600);
    assert_eq!(eligibility["free_form"]["allowed"], true);
    let (_, later) =
        server.get(&format!("/v1/contacts/{phone}/{user}/eligibility?at={}", sent_at + 25 * 3600));
    assert_eq!(later["free_form"]["allowed"], false, "R2: free-form outside the window is refused");

    let (status, error) = server.get(&format!("/v1/contacts/{phone}/{user}/eligibility?at=yesterday"));
    assert_eq!(status, 400, "{error}");
    assert!(error["reason"].as_str().is_some_and(|r| r.contains("RFC 3339")));

    let (status, usage) = server.get("/v1/accounts/102290129340398/usage?month=2025-06");
    assert_eq!(status, 200, "{usage}");
    let (status, _) = server.get("/v1/accounts/102290129340398/usage?month=June");
    assert_eq!(status, 400);

    let (status, openapi) = server.get("/openapi.json");
    assert_eq!(status, 200);
    for path in
        ["/v1/webhooks/{provider}", "/v1/sends", "/v1/entries/{id}/explain", "/v1/accounts/{waba_id}/usage"]
    {
        assert!(openapi["paths"].get(path).is_some(), "{path} documented");
    }
    let (status, _) = server.get("/v1/entries/00000000000000000000000000000000/explain");
    assert_eq!(status, 404);
}

#[test]
fn a_delivered_template_is_billed_counted_and_explained() {
    let server = Server::start(Secrets::default());
    let delivered = fixture("meta-cloud/pywa-status-delivered-bsuid-pmp.json");
    let (status, body) = server.post("/v1/webhooks/meta", "application/json", &[], &delivered);
    assert_eq!(status, 200, "{body}");
    let value: Value = serde_json::from_slice(&delivered).expect("json");
    let waba = value["entry"][0]["id"].as_str().expect("waba").to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    let entries = loop {
        let (status, entries) = server.get(&format!("/v1/entries?waba_id={waba}"));
        assert_eq!(status, 200, "{entries}");
        if entries.as_array().is_some_and(|e| e.len() >= 2) {
            break entries;
        }
        assert!(Instant::now() < deadline, "no entries projected");
        std::thread::sleep(Duration::from_millis(20));
    };
    // The status is dated 2025-06-15, before per-message pricing: the delivered marketing
    // template opens a billable marketing conversation and is counted inside it.
    let entries = entries.as_array().expect("entries");
    assert_eq!(entries.len(), 2, "{entries:?}");
    let entry = entries.iter().find(|e| e["kind"] == "conversation_opened").expect("a conversation");
    assert_eq!(entry["category"], "marketing");
    assert_eq!(entry["billable"], true);
    assert!(entries.iter().any(|e| e["kind"] == "message_billed" && e["pricing_type"].is_null()));
    let month = entry["local_month"].as_str().expect("month");
    let (_, usage) = server.get(&format!("/v1/accounts/{waba}/usage?month={month}"));
    assert_eq!((usage["conversations"].as_i64(), usage["messages"].as_i64()), (Some(1), Some(1)), "{usage}");
    let marketing =
        usage["rows"].as_array().expect("rows").iter().find(|r| r["unit"] == "conversation").expect("row");
    assert_eq!(
        (marketing["category"].as_str(), marketing["pricing_type"].as_str()),
        (Some("marketing"), Some("regular"))
    );
    let (status, explanation) =
        server.get(&format!("/v1/entries/{}/explain", entry["id"].as_str().expect("id")));
    assert_eq!(status, 200, "{explanation}");
    assert!(explanation["summary"].as_str().is_some_and(|s| s.contains("billable")), "{explanation}");
    assert!(!explanation["rule_path"].as_array().expect("rules").is_empty());
}

#[test]
fn bad_input_gets_its_status_is_kept_and_nothing_is_appended() {
    let secrets = Secrets {
        meta_app_secret: Some(APP_SECRET.into()),
        meta_verify_token: Some("verify-token-0123456789".into()),
        ..Secrets::default()
    };
    let server = Server::start(secrets);
    let body = fixture("meta-cloud/meta-doc-text-plain.json");
    let signature = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(APP_SECRET.as_bytes()).expect("key");
        mac.update(&body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    // (path, content type, headers, body, expected status)
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16);
    let cases: Vec<Case> = vec![
        (
            "/v1/webhooks/meta_cloud",
            "application/json",
            vec![("x-hub-signature-256", &signature)],
            b"{\"object\": ".to_vec(),
            401,
        ),
        (
            "/v1/webhooks/meta_cloud",
            "application/json",
            vec![("x-hub-signature-256", "sha256=00")],
            body.clone(),
            401,
        ),
        ("/v1/webhooks/meta_cloud", "application/json", vec![], body.clone(), 401),
        ("/v1/webhooks/whatsapp_web", "application/json", vec![], body.clone(), 404),
        (
            "/v1/webhooks/meta_cloud",
            "text/plain",
            vec![("x-hub-signature-256", &signature)],
            body.clone(),
            415,
        ),
        ("/v1/webhooks/meta_cloud", "application/json", vec![], vec![b' '; 70 * 1024], 413),
        ("/v1/sends", "application/json", vec![], b"{not json".to_vec(), 400),
        // A send dated in the year 294,000 is refused, not billed in January 1970.
        (
            "/v1/sends",
            "application/json",
            vec![],
            br#"{"message_id":"m","waba_id":"w","phone_number_id":"p","recipient":"5511987650001","sent_at":9215000000000,"non_template":"text"}"#.to_vec(),
            422,
        ),
    ];
    for (n, (path, content_type, headers, body, expected)) in cases.iter().enumerate() {
        let (status, answer) = server.post(path, content_type, headers, body);
        assert_eq!(status, *expected, "case {n}: {answer}");
        assert!(answer["reason"].as_str().is_some_and(|r| !r.is_empty()), "case {n} gives a reason");
        let (_, letters) = server.get("/v1/dead-letters");
        let letters = &letters["letters"];
        assert_eq!(letters.as_array().map(Vec::len), Some(n + 1), "case {n} kept as a dead letter");
        assert_eq!(letters[0]["status"], *expected);
        // A body refused for its authenticity is not kept, only that it came and its length.
        let withheld = letters[0]["body_withheld"].as_str();
        assert_eq!(withheld.is_some(), *expected == 401, "case {n}: {}", letters[0]);
        assert_eq!(letters[0]["body_base64"].is_string(), *expected != 401, "case {n}");
    }
    assert_eq!(server.log_end(), 0, "nothing refused reached the log");

    // The correctly signed body is accepted.
    let (status, _) = server.post(
        "/v1/webhooks/meta_cloud",
        "application/json",
        &[("x-hub-signature-256", &signature)],
        &body,
    );
    assert_eq!(status, 200);
    assert_eq!(server.log_end(), 1);

    // An unbounded page is refused with its reason; the largest one is served.
    let (status, answer) = server.get("/v1/entries?waba_id=w&limit=100000000");
    assert_eq!(status, 400, "{answer}");
    assert!(answer["reason"].as_str().is_some_and(|r| r.contains("1..=10000")), "{answer}");
    assert_eq!(server.get("/v1/dead-letters?limit=0").0, 400);
    assert_eq!(server.get("/v1/entries?waba_id=w&limit=10000").0, 200);

    // Meta's verification handshake.
    let (status, challenge) = server
        .get("/v1/webhooks/meta_cloud?hub.mode=subscribe&hub.verify_token=verify-token-0123456789&hub.challenge=1158201444");
    assert_eq!((status, challenge), (200, Value::from(1158201444)));
    let (status, _) =
        server.get("/v1/webhooks/meta_cloud?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1");
    assert_eq!(status, 403);
}

/// The billing routes over HTTP: invoice (JSON and CSV), per-message reconciliation against the
/// status webhook's own pricing, attribution, and their bad-request answers.
#[test]
fn invoice_reconcile_and_attribution_routes() {
    let server = Server::start(Secrets::default());
    let delivered = fixture("meta-cloud/pywa-status-delivered-bsuid-pmp.json");
    let (status, body) = server.post("/v1/webhooks/meta_cloud", "application/json", &[], &delivered);
    assert_eq!(status, 200, "{body}");
    let value: Value = serde_json::from_slice(&delivered).expect("json");
    let waba = value["entry"][0]["id"].as_str().expect("waba").to_owned();
    // The entries route answers 200 at once; wait until the projector has written them.
    let deadline = Instant::now() + Duration::from_secs(20);
    let month = loop {
        let (status, entries) = server.get(&format!("/v1/entries?waba_id={waba}"));
        assert_eq!(status, 200, "{entries}");
        let month = entries.as_array().and_then(|e| e.first()).and_then(|e| e["local_month"].as_str());
        if let Some(month) = month {
            break Some(month.to_owned());
        }
        assert!(Instant::now() < deadline, "no entries projected");
        std::thread::sleep(Duration::from_millis(20));
    };
    let month = month.expect("an entry with its month");

    let deadline = Instant::now() + Duration::from_secs(20);
    let invoice = loop {
        let (status, invoice) = server.get(&format!("/v1/accounts/{waba}/invoice?month={month}"));
        assert_eq!(status, 200, "{invoice}");
        if invoice["lines"].as_array().is_some_and(|l| !l.is_empty()) {
            break invoice;
        }
        assert!(Instant::now() < deadline, "no invoice lines: {invoice}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(invoice["waba_id"], waba.as_str());
    assert_eq!(invoice["month"], month.as_str());
    let line = &invoice["lines"][0];
    assert_eq!((line["unit"].as_str(), line["category"].as_str()), (Some("conversation"), Some("marketing")));
    assert_eq!(line["count"], 1);

    let (status, csv) = server.get(&format!("/v1/accounts/{waba}/invoice?month={month}&format=csv"));
    assert_eq!(status, 200);
    let csv = csv.as_str().expect("csv text").to_owned();
    assert!(csv.lines().count() >= 2 && csv.contains("marketing"), "{csv}");

    let (status, body) = server.get(&format!("/v1/accounts/{waba}/invoice?month={month}&format=xml"));
    assert_eq!(status, 400, "{body}");
    assert!(body["reason"].as_str().is_some_and(|r| r.contains("xml")), "{body}");
    let (status, _) = server.get(&format!("/v1/accounts/{waba}/invoice"));
    assert_eq!(status, 400, "month is required");

    // The status webhook carries Meta's own pricing for the message: one message compared.
    let (status, report) =
        server.post(&format!("/v1/accounts/{waba}/reconcile?month={month}"), "application/json", &[], b"");
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["messages"]["compared"], 1, "{report}");
    let (status, body) = server.post(
        &format!("/v1/accounts/{waba}/reconcile?month={month}"),
        "application/json",
        &[],
        b"{not json",
    );
    assert_eq!(status, 400, "an unreadable analytics body is refused: {body}");

    let (status, sources) = server.get(&format!("/v1/accounts/{waba}/attribution?month={month}"));
    assert_eq!(status, 200, "{sources}");
    assert!(sources.is_array(), "{sources}");
}

/// S13 through the service: a send record to a group, then Meta's per-participant statuses (the
/// shape of `meta-cloud/pywa-status-read-group.json`). Usage and the invoice count one charge
/// per participant delivered to, each at its market's rate (R59).
#[test]
fn a_group_message_is_counted_and_invoiced_per_participant() {
    let server = Server::start(Secrets::default());
    let (waba, phone, group) = ("waba-groups", "pn-groups", "120363000000000001");
    let sent_at = 1_756_800_000; // 2025-09-02: per-message pricing, the 2025-07-01 card
    let send = json!({
        "message_id": "wamid.G1", "waba_id": waba, "phone_number_id": phone, "recipient": group,
        "sent_at": sent_at,
        "template": {"name": "promo", "language": "en", "category": "marketing"}
    });
    let (status, body) = server.post("/v1/sends", "application/json", &[], send.to_string().as_bytes());
    assert_eq!(status, 200, "{body}");
    let participants = ["919876543210", "919876543211", "919876543212"];
    for (n, participant) in participants.iter().enumerate() {
        // The third participant's status stops at `sent`: only two are delivered.
        let state = if n < 2 { "delivered" } else { "sent" };
        let webhook = json!({"object": "whatsapp_business_account", "entry": [{"id": waba, "changes": [{
            "field": "messages",
            "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone},
                "statuses": [{
                    "id": "wamid.G1", "status": state, "timestamp": (sent_at + 5).to_string(),
                    "recipient_id": group, "recipient_type": "group",
                    "recipient_participant_id": participant,
                    "pricing": {"billable": true, "pricing_model": "PMP", "type": "regular",
                                "category": "group_marketing"}
                }]
            }
        }]}]});
        let (status, body) =
            server.post("/v1/webhooks/meta_cloud", "application/json", &[], webhook.to_string().as_bytes());
        assert_eq!(status, 200, "{body}");
    }
    let end = server.log_end();
    let deadline = Instant::now() + Duration::from_secs(20);
    let usage = loop {
        let (status, usage) = server.get(&format!("/v1/accounts/{waba}/usage?month=2025-09"));
        assert_eq!(status, 200, "{usage}");
        if usage["messages"].as_i64() == Some(2) {
            break usage;
        }
        assert!(Instant::now() < deadline, "log end {end}, usage {usage}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let row = &usage["rows"][0];
    assert_eq!(
        (row["category"].as_str(), row["market"].as_str(), row["count"].as_i64()),
        (Some("group_marketing"), Some("India"), Some(2)),
        "{usage}"
    );
    // The standing posting names both participants; the one-participant posting was reversed.
    let (_, entries) = server.get(&format!("/v1/entries?waba_id={waba}"));
    let entries = entries.as_array().expect("entries");
    let reversed: Vec<&str> = entries.iter().filter_map(|e| e["reverses"].as_str()).collect();
    let standing: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "post" && !reversed.contains(&e["id"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(standing.len(), 1, "{entries:?}");
    assert_eq!(standing[0]["participants"], json!(["919876543210", "919876543211"]));
    let (status, invoice) = server.get(&format!("/v1/accounts/{waba}/invoice?month=2025-09"));
    assert_eq!(status, 200, "{invoice}");
    let line = &invoice["lines"][0];
    assert_eq!(
        (line["category"].as_str(), line["count"].as_i64(), line["amount"].as_str()),
        (Some("group_marketing"), Some(2), Some("0.0214")),
        "{invoice}"
    );
    // The provider's report agrees with our classification of the group message.
    let (status, report) =
        server.post(&format!("/v1/accounts/{waba}/reconcile?month=2025-09"), "application/json", &[], b"");
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["messages"]["compared"], 1, "{report}");
    assert_eq!(report["messages"]["differences"].as_array().map(Vec::len), Some(0), "{report}");
}

/// R55 through the service: Meta's documented tier webhook lands in the log and reconciliation
/// compares it with the ledger's accrual — here none, so it differs and says why.
#[test]
fn a_tier_webhook_is_reconciled_against_the_accrual() {
    let server = Server::start(Secrets::default());
    let body = fixture("meta-cloud/meta-doc-account-update-volume-tier.json");
    let (status, reply) = server.post("/v1/webhooks/meta_cloud", "application/json", &[], &body);
    assert_eq!(status, 200, "{reply}");
    let waba = "102290129340398";
    let deadline = Instant::now() + Duration::from_secs(20);
    let report = loop {
        let (status, report) = server.post(
            &format!("/v1/accounts/{waba}/reconcile?month=2025-11"),
            "application/json",
            &[],
            b"",
        );
        assert_eq!(status, 200, "{report}");
        if report["tiers"]["rows"].as_array().is_some_and(|rows| !rows.is_empty()) {
            break report;
        }
        assert!(Instant::now() < deadline, "the tier update never reached reconciliation: {report}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let row = &report["tiers"]["rows"][0];
    assert_eq!(
        (row["pricing_category"].as_str(), row["region"].as_str(), row["tier"].as_str()),
        (Some("UTILITY"), Some("India"), Some("25000001:50000000"))
    );
    assert_eq!(row["agrees"], false);
    assert_eq!(
        row["reason"],
        "the ledger counts 0 charged utility messages in India for 2025-11; the tier starts at 25000001"
    );
    assert_eq!(report["within_tolerance"], false);
}

/// Send records reclassify charges (a marketing charge posted as utility): with a sends token
/// configured, `POST /v1/sends` without it is refused (401, kept as a dead letter) and nothing
/// reaches the log.
#[test]
fn send_records_need_the_sends_token_when_one_is_configured() {
    let token = "sender-token-0123456789abcdef";
    let server = Server::start(Secrets { sends_token: Some(token.into()), ..Secrets::default() });
    let send = json!({
        "message_id": "wamid.S1", "waba_id": "waba-s", "phone_number_id": "pn-s", "recipient": "5511987650001",
        "sent_at": 1_796_119_200,
        "template": {"name": "promo", "language": "en", "category": "utility"}
    })
    .to_string();
    let wrong = format!("Bearer {token}x");
    let right = format!("Bearer {token}");
    for headers in [vec![], vec![("authorization", wrong.as_str())], vec![("authorization", token)]] {
        let (status, answer) = server.post("/v1/sends", "application/json", &headers, send.as_bytes());
        assert_eq!(status, 401, "{headers:?}: {answer}");
    }
    assert_eq!(server.log_end(), 0, "no unauthenticated record reached the log");
    let (status, answer) =
        server.post("/v1/sends", "application/json", &[("authorization", right.as_str())], send.as_bytes());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(server.log_end(), 1);
}

#[test]
fn a_meta_format_body_on_another_route_is_refused_unless_relayed_and_authenticated() {
    let body = fixture("meta-cloud/meta-doc-text-plain.json");
    // Forgery through another route: an unsigned Meta-format body on the Gupshup route of a
    // server that checks Meta's signature would create Meta's events unauthenticated.
    let server = Server::start(Secrets { meta_app_secret: Some(APP_SECRET.into()), ..Secrets::default() });
    let (status, answer) = server.post("/v1/webhooks/gupshup", "application/json", &[], &body);
    assert_eq!(status, 422, "{answer}");
    assert!(answer["reason"].as_str().is_some_and(|r| r.contains("meta_format_relays")), "{answer}");
    assert_eq!(server.log_end(), 0);
    // The poisoning order: the forged copy came first and was refused, so the genuine, signed
    // webhook is the one the log keeps.
    let signature = meta_signature(&body);
    let (status, answer) = server.post(
        "/v1/webhooks/meta_cloud",
        "application/json",
        &[("x-hub-signature-256", &signature)],
        &body,
    );
    assert_eq!((status, answer["new"].as_u64()), (200, Some(1)), "{answer}");
    drop(server);

    // A route configured to relay Meta's format takes it, authenticated by its own secret.
    let key = "gupshup-key-0123456789abcdef";
    let server = Server::start(Secrets {
        gupshup_api_key: Some(key.into()),
        meta_format_relays: vec!["gupshup".into()],
        ..Secrets::default()
    });
    let (status, _) = server.post("/v1/webhooks/gupshup", "application/json", &[], &body);
    assert_eq!(status, 401);
    let (status, answer) =
        server.post("/v1/webhooks/gupshup", "application/json", &[("x-api-key", key)], &body);
    assert_eq!((status, answer["new"].as_u64()), (200, Some(1)), "{answer}");
}

#[test]
fn an_event_id_already_in_the_log_with_other_content_is_409_and_the_first_stays() {
    let server = Server::start(Secrets { meta_app_secret: Some(APP_SECRET.into()), ..Secrets::default() });
    let genuine = fixture("meta-cloud/meta-doc-text-plain.json");
    let signature = meta_signature(&genuine);
    let headers = [("x-hub-signature-256", signature.as_str())];
    let (status, answer) = server.post("/v1/webhooks/meta_cloud", "application/json", &headers, &genuine);
    assert_eq!((status, answer["new"].as_u64()), (200, Some(1)), "{answer}");
    // The same message id with another timestamp (and a valid signature over it).
    let mut altered: Value = serde_json::from_slice(&genuine).expect("json");
    let message = &mut altered["entry"][0]["changes"][0]["value"]["messages"][0];
    let timestamp: i64 = message["timestamp"].as_str().expect("timestamp").parse().expect("seconds");
    message["timestamp"] = Value::String((timestamp + 3600).to_string());
    let altered = serde_json::to_vec(&altered).expect("json");
    let signature = meta_signature(&altered);
    let (status, answer) = server.post(
        "/v1/webhooks/meta_cloud",
        "application/json",
        &[("x-hub-signature-256", &signature)],
        &altered,
    );
    assert_eq!(status, 409, "{answer}");
    assert!(answer["reason"].as_str().is_some_and(|r| r.contains("other content")), "{answer}");
    assert_eq!(server.log_end(), 1, "the first copy stays the only one");
    // An exact re-delivery is still a duplicate, not a conflict.
    let (status, answer) = server.post("/v1/webhooks/meta_cloud", "application/json", &headers, &genuine);
    assert_eq!((status, answer["duplicates"].as_u64()), (200, Some(1)), "{answer}");
    let (_, letters) = server.get("/v1/dead-letters");
    assert_eq!(letters["letters"][0]["status"], 409, "{letters}");
}

#[test]
fn query_routes_check_the_token_and_its_scope() {
    use ledger_server::access::{Access, ApiToken, Scope, Wabas};
    // A delivered template: a charge, so an entry to explain.
    let body = fixture("meta-cloud/pywa-status-delivered-bsuid-pmp.json");
    let value: Value = serde_json::from_slice(&body).expect("json");
    let waba = value["entry"][0]["id"].as_str().expect("waba").to_owned();
    let change = &value["entry"][0]["changes"][0]["value"];
    let phone = change["metadata"]["phone_number_id"].as_str().expect("phone").to_owned();
    let user = change["statuses"][0]["recipient_user_id"].as_str().expect("user").to_owned();
    let (finance, ops, other) =
        ("finance-token-0123456789", "ops-token-0123456789abcd", "other-token-0123456789ab");
    let scope = |wabas, dead_letters, dead_letter_bodies, metrics| Scope {
        wabas,
        dead_letters,
        dead_letter_bodies,
        metrics,
    };
    let access = Access::new(vec![
        ApiToken {
            name: "finance".into(),
            secret: finance.into(),
            scope: scope(Wabas::Only([waba.clone()].into()), false, false, false),
        },
        ApiToken { name: "ops".into(), secret: ops.into(), scope: scope(Wabas::All, true, false, true) },
        ApiToken {
            name: "other".into(),
            secret: other.into(),
            scope: scope(Wabas::Only(["999".to_owned()].into()), false, false, false),
        },
    ])
    .expect("tokens");
    let server = Server::start_with(|config| config.access = access);
    let (status, answer) = server.post("/v1/webhooks/meta_cloud", "application/json", &[], &body);
    assert_eq!(status, 200, "{answer}");
    let (status, answer) =
        server.post("/v1/webhooks/meta_cloud", "application/json", &[], b"{\"object\": 1}");
    assert_eq!(status, 400, "{answer}");

    let usage = format!("/v1/accounts/{waba}/usage?month=2026-12");
    let eligibility = format!("/v1/contacts/{phone}/{user}/eligibility");
    let timeline = format!("/v1/contacts/{phone}/{user}/timeline");
    let entries = format!("/v1/entries?waba_id={waba}");
    // No token, or an unknown one: 401 on every query route, loopback or not.
    for path in
        [&usage, &eligibility, &timeline, &entries, &"/v1/dead-letters".to_owned(), &"/metrics".to_owned()]
    {
        let (status, answer) = server.get(path);
        assert_eq!(status, 401, "{path}: {answer}");
        assert!(answer["reason"].is_string(), "{path}: a JSON reason");
        assert_eq!(server.get_as(path, Some("not-a-token-0123456789")).0, 401, "{path}");
    }
    // Health and the contract stay open.
    assert_eq!(server.get("/healthz").0, 200);
    assert_eq!(server.get("/openapi.json").0, 200);

    // The finance token reads its WABA and nothing else.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.get_as(&entries, Some(finance)).1.as_array().is_none_or(Vec::is_empty) {
        assert!(Instant::now() < deadline, "no entry projected");
        std::thread::sleep(Duration::from_millis(20));
    }
    for path in [&usage, &eligibility, &timeline, &entries] {
        let (status, answer) = server.get_as(path, Some(finance));
        assert_eq!(status, 200, "{path}: {answer}");
    }
    let (status, answer) = server.get_as("/v1/accounts/999/usage?month=2026-12", Some(finance));
    assert_eq!(status, 403, "{answer}");
    assert_eq!(server.get_as("/v1/dead-letters", Some(finance)).0, 403);
    assert_eq!(server.get_as("/metrics", Some(finance)).0, 403);
    // A token for another WABA learns nothing of this contact or its entries.
    for path in [&eligibility, &timeline] {
        let (status, answer) = server.get_as(path, Some(other));
        assert_eq!(status, 404, "{path}: {answer}");
    }
    assert_eq!(server.get_as(&usage, Some(other)).0, 403);
    let (_, listed) = server.get_as(&entries, Some(finance));
    let id = listed[0]["id"].as_str().expect("an entry").to_owned();
    assert_eq!(server.get_as(&format!("/v1/entries/{id}/explain"), Some(finance)).0, 200);
    assert_eq!(server.get_as(&format!("/v1/entries/{id}/explain"), Some(other)).0, 404);

    // The ops token reads dead letters with phone numbers masked, and metrics.
    let (status, letters) = server.get_as("/v1/dead-letters", Some(ops));
    assert_eq!(status, 200, "{letters}");
    assert!(letters["letters"][0]["body_base64"].is_null(), "raw bodies need dead_letter_bodies");
    assert!(letters["letters"][0]["body_redacted"].is_string(), "{letters}");
    assert_eq!(server.get_as("/metrics", Some(ops)).0, 200);
}

#[test]
fn refusals_answer_json_and_dead_letters_come_a_page_at_a_time() {
    let server = Server::start(Secrets::default());
    for path in ["/v1/accounts/w/usage?month=2026-11&month=2026-12", "/v1/entries?limit=many", "/nowhere"] {
        let (status, answer) = server.get(path);
        assert!(matches!(status, 400 | 404), "{path}: {status}");
        assert!(answer["reason"].is_string(), "{path}: a JSON error body, not {answer}");
    }
    let (status, answer) = server.post("/v1/accounts/w/usage", "application/json", &[], b"{}");
    assert_eq!(status, 405, "{answer}");
    assert!(answer["reason"].is_string(), "{answer}");

    for n in 0..5 {
        let (status, _) =
            server.post("/v1/webhooks/sinch", "application/json", &[], format!("{{\"n\":{n}").as_bytes());
        assert_eq!(status, 400);
    }
    let mut seen = Vec::new();
    let mut path = "/v1/dead-letters?limit=2".to_owned();
    loop {
        let (status, page) = server.get(&path);
        assert_eq!(status, 200, "{page}");
        let letters = page["letters"].as_array().expect("letters").clone();
        assert!(letters.len() <= 2);
        seen.extend(letters.into_iter().map(|l| l["received_at_micros"].as_i64().expect("time")));
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/dead-letters?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "every letter once");
    assert!(seen.windows(2).all(|w| w[0] >= w[1]), "newest first: {seen:?}");
    assert_eq!(server.get("/v1/dead-letters?after=zz").0, 400);
}

#[test]
fn idle_and_excess_connections_are_closed() {
    use std::io::{Read, Write};
    let server = Server::start_with(|config| {
        config.connections.max_connections = 4;
        // Long enough that a loaded machine does not time the connections out before the
        // excess one is tried.
        config.connections.header_read_timeout = Duration::from_secs(3);
    });
    let addr = server.base.trim_start_matches("http://").to_owned();
    // A connection that sends a request, then idles on keep-alive, and three that send nothing.
    let mut used = std::net::TcpStream::connect(&addr).expect("connect");
    used.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").expect("write");
    let mut answer = [0u8; 256];
    let n = used.read(&mut answer).expect("read");
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..n]));
    let idle: Vec<_> = (0..3).map(|_| std::net::TcpStream::connect(&addr).expect("connect")).collect();
    // Over the cap: answered 503 with a reason at once, not left waiting — once the server has
    // accepted the idle connections, which a loaded machine may take a moment to schedule (well
    // inside their 3 s timeout).
    let deadline = std::time::Instant::now() + Duration::from_millis(1500);
    let (status, answer) = loop {
        std::thread::sleep(Duration::from_millis(100));
        let (status, answer) = server.get("/healthz");
        if status == 503 || std::time::Instant::now() > deadline {
            break (status, answer);
        }
    };
    assert_eq!(status, 503, "{answer}");
    assert!(answer["reason"].as_str().is_some_and(|r| r.contains("connections")), "{answer}");
    // After the timeout the server has closed the idle ones, and answers again.
    std::thread::sleep(Duration::from_millis(3500));
    for mut stream in idle.into_iter().chain([used]) {
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut buf = [0u8; 16];
        assert!(matches!(stream.read(&mut buf), Ok(0) | Err(_)), "an idle connection was closed");
    }
    assert_eq!(server.get("/healthz").0, 200);
}
