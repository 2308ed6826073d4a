//! A full disk (issue "Nobody gets in where they don't belong", finding 5): with the log's or the
//! state's filesystem full, `ledger serve` stays up, answers intake with 507/503 and
//! `Retry-After` (log full) or keeps taking webhooks and says "not ready" (state full), and
//! recovers by itself once space returns, with every acknowledged event in the log once and
//! projected.
//!
//! The full disk is a small tmpfs mounted over the log's or the state's directory, so this needs
//! the right to mount (root, as in CI). Where mounting is refused the test says so and passes
//! without checking anything else: there is no other honest way to fill one directory's disk.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// tmpfs mounted at a directory for the test's lifetime.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size_mib: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Tmpfs(at.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the filesystem of `dir` with one file, until the write fails for want of space.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    let block = vec![0u8; 1 << 20];
    while file.write_all(&block).is_ok() {}
    // Whatever partial block fit: the disk is now full to the byte.
    let _ = file.write_all(&block[..4096]);
    let _ = file.sync_all();
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(data: &Path) -> Server {
        let port = free_port();
        let child = Command::new(assert_cmd::cargo::cargo_bin("ledger"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ledger serve");
        let server = Server { child, base: format!("http://127.0.0.1:{port}") };
        server.wait_until(Duration::from_secs(30), "ready", |s| s.get("/readyz").0 == 200);
        server
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into()
    }

    fn get(&self, path: &str) -> (u16, String) {
        match Self::agent().get(format!("{}{path}", self.base)).call() {
            Ok(mut response) => {
                (response.status().as_u16(), response.body_mut().read_to_string().unwrap_or_default())
            }
            Err(error) => (0, error.to_string()),
        }
    }

    /// Posts a webhook; answers the status and the `Retry-After` header.
    fn post(&self, body: &str) -> (u16, Option<String>) {
        let (status, retry_after, _) = self.post_counting(body);
        (status, retry_after)
    }

    /// As [`Server::post`], with how many events the log newly took.
    fn post_counting(&self, body: &str) -> (u16, Option<String>, u64) {
        let response = Self::agent()
            .post(format!("{}/v1/webhooks/meta_cloud", self.base))
            .header("content-type", "application/json")
            .send(body);
        match response {
            Ok(mut response) => {
                let retry_after =
                    response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let answer: serde_json::Value =
                    serde_json::from_str(&response.body_mut().read_to_string().unwrap_or_default())
                        .unwrap_or_default();
                (response.status().as_u16(), retry_after, answer["new"].as_u64().unwrap_or(0))
            }
            Err(_) => (0, None, 0),
        }
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None)) && self.get("/healthz").0 == 200
    }

    fn wait_until(&self, within: Duration, what: &str, done: impl Fn(&Server) -> bool) {
        let deadline = Instant::now() + within;
        while !done(self) {
            assert!(Instant::now() < deadline, "not {what} within {within:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// A Meta webhook of 4,000 user messages (about 1 MB in the log), distinct for each `n`.
fn large_webhook(n: usize) -> String {
    let messages: Vec<serde_json::Value> = (0..4000)
        .map(|i| {
            serde_json::json!({
                "from": format!("1650555{:07}", i),
                "id": format!("wamid.disk-full-{n}-{i}"),
                "timestamp": (1_796_083_200 + i).to_string(),
                "type": "text",
                "text": {"body": "Does it come in another color? And in another size, please?"}
            })
        })
        .collect();
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "messages": messages
        }}]}]
    })
    .to_string()
}

fn traffic() -> Vec<String> {
    ledger_bench::traffic(5, 60, 1_796_083_200).into_iter().map(|w| w.body).collect()
}

#[test]
fn a_full_log_disk_is_answered_507_and_recovers_when_space_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // RocksDB resumes writes after a full disk only once a write buffer's worth (64 MiB) is free.
    let Some(mount) = Tmpfs::mount(&data.join("log"), 256) else {
        eprintln!("skipped: mounting a tmpfs was refused (needs root); the full-disk test did not run");
        return;
    };
    let mut server = Server::start(&data);
    let webhooks = traffic();
    // Events the log acknowledged as new, to compare with what it holds at the end.
    let mut acknowledged = 0;
    for body in &webhooks {
        let (status, _, new) = server.post_counting(body);
        assert_eq!(status, 200);
        acknowledged += new;
    }
    let filler = fill(&mount.0);
    // The WAL's preallocated space (reserved before the disk filled) takes some appends still:
    // post large bodies until the log refuses, then a few more.
    let mut refused = Vec::new();
    for n in 0..400 {
        if refused.len() >= 3 {
            break;
        }
        let body = large_webhook(n);
        let (status, retry_after, new) = server.post_counting(&body);
        match status {
            200 => acknowledged += new,
            _ => {
                assert!(matches!(status, 503 | 507), "a full log is answered 507/503, not {status}");
                assert!(retry_after.is_some(), "with Retry-After");
                refused.push(body);
            }
        }
    }
    assert!(!refused.is_empty(), "the full disk refused some webhooks");
    assert!(server.alive(), "the process stays up with its log disk full");

    std::fs::remove_file(filler).expect("free the space");
    // The sender retries what was refused: once there is room it is taken.
    for body in &refused {
        let started = Instant::now();
        loop {
            let (status, _, new) = server.post_counting(body);
            if status == 200 {
                acknowledged += new;
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "intake never recovered after space returned"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    server.wait_until(Duration::from_secs(60), "ready after recovery", |s| s.get("/readyz").0 == 200);
    server.stop();
    let log_end = {
        use ledger_log::EventLog;
        ledger_log::EmbeddedLog::open_read_only(&data.join("log")).expect("log").end_offset()
    };
    assert_eq!(log_end, acknowledged, "the log holds every acknowledged event, once");
    drop(mount);
}

#[test]
fn a_full_state_disk_keeps_intake_open_says_not_ready_and_catches_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // Room for the state of everything posted below once the filler goes: the loop posts large
    // webhooks until a write fails, as many as the WAL's preallocated block takes (hundreds of
    // thousands of events when the machine is busy), and all of them must then fit.
    let Some(mount) = Tmpfs::mount(&data.join("state"), 1024) else {
        eprintln!("skipped: mounting a tmpfs was refused (needs root); the full-disk test did not run");
        return;
    };
    let mut server = Server::start(&data);
    let webhooks = traffic();
    let filler = fill(&mount.0);
    for body in &webhooks {
        // The log has room: every webhook is durable and acknowledged.
        assert_eq!(server.post(body).0, 200);
    }
    // Where the filesystem lets RocksDB reserve its write-ahead log's next block ahead (tmpfs
    // does on some kernels), writes fill that block before one fails: keep posting until then.
    let failing = |s: &Server| {
        let (status, body) = s.get("/readyz");
        status == 503 && body.contains("store write failing")
    };
    for n in 0..300 {
        if failing(&server) {
            break;
        }
        assert_eq!(server.post(&large_webhook(n)).0, 200, "the log has room");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.wait_until(Duration::from_secs(30), "reporting the failing write", failing);
    assert!(server.alive(), "the process stays up with its state disk full");

    std::fs::remove_file(filler).expect("free the space");
    server.wait_until(Duration::from_secs(60), "ready after recovery", |s| s.get("/readyz").0 == 200);
    // Ready once it moves again; caught up once the projector's lag is nothing.
    server.wait_until(Duration::from_secs(120), "caught up after recovery", |s| {
        s.get("/metrics").1.lines().any(|line| line.trim() == "ledger_log_lag_records 0")
    });
    server.stop();

    // Everything acknowledged was projected: the stored offset is the log's end, and catching up
    // finds nothing left to do.
    let log_end = {
        use ledger_log::EventLog;
        ledger_log::EmbeddedLog::open_read_only(&data.join("log")).expect("log").end_offset()
    };
    let (store, report) = common::catch_up(&data);
    assert_eq!(store.offset(ledger_store::PROJECTOR).expect("offset"), log_end, "all of the log projected");
    assert_eq!(report.records, 0, "nothing was left for a restart to project");
    drop(store);
    drop(mount);
}
