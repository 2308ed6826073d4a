//! The ingest worker's HTTP contract in Kafka mode, with librdkafka's mock cluster as the broker:
//! a webhook is answered 200 only once Kafka has it; with the broker down it is answered 503 with
//! `Retry-After` (the provider retries), and the retry after recovery is taken. Refused bodies are
//! answered 4xx and kept.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_log::rdkafka::mocking::MockCluster;
use ledger_log::{KafkaLog, KafkaOptions};

fn fixture(relative: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/webhooks").join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn post(base: &str, body: &[u8]) -> (u16, Option<String>, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let response = agent
        .post(format!("{base}/v1/webhooks/meta_cloud"))
        .header("content-type", "application/json")
        .send(body)
        .expect("post");
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.into_body().read_to_string().unwrap_or_default();
    (status, retry_after, body)
}

#[test]
fn broker_down_answers_503_with_retry_after_and_the_retry_lands() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(ledger_log::EVENTS_TOPIC, 2, 1).expect("topic");
    let mut options = KafkaOptions::new(cluster.bootstrap_servers());
    options.delivery_timeout = Duration::from_millis(1500);
    let log = Arc::new(KafkaLog::connect(&options).expect("kafka log"));

    let dir = tempfile::tempdir().expect("tempdir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    listener.set_nonblocking(true).expect("nonblocking");
    let config = ledger_server::ServeConfig {
        batch_size: 1024,
        ..ledger_server::ServeConfig::new(listener.local_addr().expect("addr"), dir.path().to_owned())
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = {
        let log = log.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                ledger_server::server::serve_ingest_on(listener, config, log, async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
            });
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while ureq::get(format!("{base}/healthz")).call().is_err() {
        assert!(Instant::now() < deadline, "ingest worker did not start");
        std::thread::sleep(Duration::from_millis(20));
    }

    let text = fixture("meta-cloud/meta-doc-text-plain.json");
    let (status, _, body) = post(&base, &text);
    assert_eq!(status, 200, "{body}");

    cluster.broker_down(1).expect("down");
    let status_webhook = fixture("meta-cloud/meta-doc-status-failed-131049.json");
    let (status, retry_after, body) = post(&base, &status_webhook);
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"));

    cluster.broker_up(1).expect("up");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, body) = post(&base, &status_webhook);
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(Instant::now() < deadline, "still refused after the broker came back");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Bad input: answered 4xx with the reason and kept, Kafka or not.
    let (status, _, body) = post(&base, b"{\"object\": \"whatsapp_business_account\", \"entry\": 7}");
    assert_eq!(status, 400, "{body}");
    let letters: serde_json::Value = ureq::get(format!("{base}/v1/dead-letters"))
        .call()
        .expect("dead letters")
        .into_body()
        .read_json()
        .expect("json");
    assert_eq!(letters["letters"].as_array().map(Vec::len), Some(1), "{letters}");

    let _ = stop.send(());
    server.join().expect("server");
}
