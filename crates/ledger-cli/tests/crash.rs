//! Crash test (issue "embedded ledger", reliability): the server is killed with SIGKILL at
//! random moments while webhooks stream in, restarted, and killed again, 20 times. Afterwards
//! every acknowledged webhook's events are in the log exactly once, and the state equals
//! that of a clean single run over the same webhooks.
//!
//! Seeded: `CRASH_SEED` picks the traffic and the kill schedule (default 20261121).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ledger_core::Timestamp;
use ledger_ingest::{Limits, Provider};
use ledger_log::{EmbeddedLog, EmbeddedLogOptions, EventLog};

const ROUNDS: usize = 20;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
}

fn start_server(data: &Path, port: u16) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("ledger"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ledger serve")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into()
}

fn wait_until_up(agent: &ureq::Agent, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if agent.get(format!("http://127.0.0.1:{port}/healthz")).call().is_ok_and(|r| r.status() == 200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("server did not come up");
}

fn event_ids_in_log(data: &Path) -> Vec<String> {
    let log = EmbeddedLog::open(&data.join("log"), EmbeddedLogOptions::default()).expect("log");
    let mut records = Vec::new();
    log.read(0, usize::MAX, &mut records).expect("read");
    records
        .iter()
        .map(|r| ledger_proto::decode_event(&r.payload).expect("decodable").event_id.to_string())
        .collect()
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let seed: u64 = std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_121);
    let webhooks = ledger_bench::traffic(seed, 80, 1_756_684_800);
    let mut schedule = fastrand::Rng::with_seed(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("crashed");
    let agent = agent();

    let mut next = 0;
    let mut killed_mid_stream = 0;
    let mut acknowledged = vec![false; webhooks.len()];
    for round in 0..ROUNDS {
        let port = free_port();
        let mut server = start_server(&data, port);
        wait_until_up(&agent, port);
        // The last round posts everything left, then is killed after it finished; the others
        // are killed after a random delay, from another thread, wherever the server is then.
        let last = round == ROUNDS - 1;
        let pid = server.id();
        let delay = Duration::from_millis(schedule.u64(20..200));
        let killer = (!last).then(|| {
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            })
        });
        let url = format!("http://127.0.0.1:{port}/v1/webhooks/meta_cloud");
        while next < webhooks.len() {
            let sent = agent
                .post(&url)
                .header("content-type", "application/json")
                .send(webhooks[next].body.as_str());
            match sent {
                Ok(response) if response.status() == 200 => {
                    acknowledged[next] = true;
                    next += 1;
                }
                Ok(response) => panic!("webhook {next} answered {}", response.status()),
                // Killed mid-request: the provider retries the same body after the restart.
                Err(_) if !last => {
                    killed_mid_stream += 1;
                    break;
                }
                Err(e) => panic!("webhook {next} failed in the last round: {e}"),
            }
        }
        if let Some(killer) = killer {
            killer.join().expect("killer");
        }
        let _ = server.kill();
        let _ = server.wait();
    }
    assert!(acknowledged.iter().all(|a| *a), "every webhook was eventually acknowledged");
    eprintln!("{} webhooks, {ROUNDS} server runs, {killed_mid_stream} killed while posting", webhooks.len());

    // Every acknowledged webhook's events are in the log exactly once.
    let mut expected: Vec<String> = Vec::new();
    for webhook in &webhooks {
        let normalized = ledger_ingest::normalize(
            Provider::MetaCloud,
            webhook.body.as_bytes(),
            Timestamp(0),
            &Limits::default(),
        )
        .expect("normalizes");
        expected.extend(normalized.events.iter().map(|e| e.event_id.to_string()));
    }
    let logged = event_ids_in_log(&data);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &logged {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    assert!(killed_mid_stream >= ROUNDS / 2, "most kills landed mid-stream: {killed_mid_stream}");
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "events logged more than once: {twice:?}");
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    let mut logged_sorted = logged.clone();
    logged_sorted.sort();
    assert_eq!(logged_sorted, expected_sorted, "the log holds exactly the acknowledged events");

    // The state after catching up equals a clean single run over the same webhooks.
    let crashed = common::catch_up(&data).0.digest().expect("digest");
    let clean = common::embedded_run(&dir.path().join("clean"), &webhooks).0.digest().expect("digest");
    assert!(crashed.events > 0 && crashed.live_entries > 0, "the run produced state: {crashed:?}");
    assert_eq!(crashed, clean, "differences: {:?}", crashed.differences(&clean));
}
