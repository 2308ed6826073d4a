//! The Kafka log against librdkafka's mock cluster, for the faults a real broker cannot be made to
//! produce on demand: a broker down while producing, request errors, slow acknowledgements. Each
//! test checks the log's promise: an append resolves Ok only once every record is in the topic, a
//! failed append says so, and retried produce requests do not duplicate records.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ledger_log::rdkafka::consumer::{BaseConsumer, Consumer};
use ledger_log::rdkafka::message::Message;
use ledger_log::rdkafka::mocking::MockCluster;
use ledger_log::rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use ledger_log::rdkafka::{ClientConfig, Offset, TopicPartitionList};
use ledger_log::{partition_for, Appended, EventLog, KafkaLog, KafkaOptions, LogError, LogRecord};

const TOPIC: &str = "ledger.events.v1";

fn cluster(
    brokers: i32,
    partitions: i32,
) -> MockCluster<'static, ledger_log::rdkafka::producer::DefaultProducerContext> {
    let cluster = MockCluster::new(brokers).expect("mock cluster");
    cluster.create_topic(TOPIC, partitions, brokers).expect("topic");
    cluster
}

fn options(bootstrap: String, delivery_timeout: Duration) -> KafkaOptions {
    let mut options = KafkaOptions::new(bootstrap);
    options.delivery_timeout = delivery_timeout;
    options
}

fn record(key: &str, n: u32) -> LogRecord {
    LogRecord {
        key: key.as_bytes().to_vec(),
        dedupe: [0; 16],
        identity: None,
        payload: format!("{key}#{n}").into_bytes(),
        broadcast: false,
    }
}

/// Every record in the topic by partition, in offset order (waits until `expected` are read).
fn read_all(bootstrap: &str, partitions: i32, expected: usize) -> HashMap<i32, Vec<(String, String)>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.auto.commit", "false")
        // Assigned partitions, no group membership; librdkafka still wants a group id.
        .set("group.id", "kafka-faults-reader")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(TOPIC, p, Offset::Beginning).expect("partition");
    }
    consumer.assign(&assignment).expect("assign");
    let mut out: HashMap<i32, Vec<(String, String)>> = HashMap::new();
    let mut read = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    // Read past `expected` for a moment too, so duplicates would be seen.
    let mut quiet_since: Option<Instant> = None;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                let payload = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                out.entry(m.partition()).or_default().push((key, payload));
                read += 1;
                quiet_since = None;
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None if read >= expected => {
                let since = *quiet_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(500) {
                    break;
                }
            }
            None => {}
        }
    }
    out
}

#[test]
fn records_land_in_the_java_clients_partition_in_order() {
    let cluster = cluster(1, 4);
    let log = KafkaLog::connect(&options(cluster.bootstrap_servers(), Duration::from_secs(10))).expect("log");
    assert_eq!(log.partitions(), 4);
    let keys: Vec<String> = (0..20).map(|i| format!("106540352242922/1555{i:07}")).collect();
    let records: Vec<LogRecord> = (0..5).flat_map(|n| keys.iter().map(move |k| record(k, n))).collect();
    let answers = log.append(records).wait_blocking().expect("append");
    assert_eq!(answers.len(), 100);
    assert!(answers.iter().all(|a| matches!(a, Appended::New(_))));

    let topic = read_all(&cluster.bootstrap_servers(), 4, 100);
    assert_eq!(topic.values().map(Vec::len).sum::<usize>(), 100);
    for (partition, records) in &topic {
        for (key, _) in records {
            assert_eq!(*partition, partition_for(key.as_bytes(), 4), "{key} in partition {partition}");
        }
        // A contact's records keep the order they were appended in.
        for key in &keys {
            let order: Vec<&String> = records.iter().filter(|(k, _)| k == key).map(|(_, p)| p).collect();
            let expected: Vec<String> = (0..order.len()).map(|n| format!("{key}#{n}")).collect();
            assert_eq!(order, expected.iter().collect::<Vec<_>>());
        }
    }
}

#[test]
fn account_records_reach_every_partition() {
    let cluster = cluster(1, 3);
    let log = KafkaLog::connect(&options(cluster.bootstrap_servers(), Duration::from_secs(10))).expect("log");
    let mut settings = record("102290129340398", 0);
    settings.broadcast = true;
    let answers = log.append(vec![settings]).wait_blocking().expect("append");
    assert_eq!(answers.len(), 1, "one answer for the record, whatever its copies");
    let topic = read_all(&cluster.bootstrap_servers(), 3, 3);
    for p in 0..3 {
        assert_eq!(topic.get(&p).map(Vec::len), Some(1), "partition {p}");
    }
}

#[test]
fn a_broker_down_fails_the_append_and_a_retry_after_it_is_back_lands() {
    let cluster = cluster(1, 1);
    let log =
        KafkaLog::connect(&options(cluster.bootstrap_servers(), Duration::from_millis(1500))).expect("log");
    log.append(vec![record("a", 0)]).wait_blocking().expect("append while up");

    cluster.broker_down(1).expect("down");
    let failed = log.append(vec![record("a", 1)]).wait_blocking();
    assert!(matches!(failed, Err(LogError::Unavailable(_))), "{failed:?}");

    cluster.broker_up(1).expect("up");
    // The provider retries the webhook: the same record again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match log.append(vec![record("a", 1)]).wait_blocking() {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                eprintln!("retrying: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("broker back but append still failing: {e}"),
        }
    }
    let topic = read_all(&cluster.bootstrap_servers(), 1, 2);
    let payloads: Vec<&str> = topic[&0].iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(payloads.first(), Some(&"a#0"));
    // Acknowledged records are there; a record whose append failed may be there (it can have
    // reached the broker without its acknowledgement coming back) — the projector's event-id
    // dedupe absorbs that copy.
    assert!(payloads.contains(&"a#1"), "{payloads:?}");
}

#[test]
fn retried_produce_requests_do_not_duplicate_records() {
    let cluster = cluster(1, 2);
    let log = KafkaLog::connect(&options(cluster.bootstrap_servers(), Duration::from_secs(20))).expect("log");
    log.append(vec![record("warm", 0)]).wait_blocking().expect("append");
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        ],
    );
    let records: Vec<LogRecord> = (0..50).map(|n| record(&format!("contact-{}", n % 7), n)).collect();
    log.append(records).wait_blocking().expect("append succeeds through the retries");

    let topic = read_all(&cluster.bootstrap_servers(), 2, 51);
    let mut payloads: Vec<&str> = topic.values().flatten().map(|(_, p)| p.as_str()).collect();
    let total = payloads.len();
    payloads.sort_unstable();
    payloads.dedup();
    assert_eq!(total, payloads.len(), "duplicated records");
    assert_eq!(total, 51);
}

#[test]
fn slow_acknowledgements_delay_but_do_not_fail_appends() {
    let cluster = cluster(1, 1);
    let log = KafkaLog::connect(&options(cluster.bootstrap_servers(), Duration::from_secs(20))).expect("log");
    cluster.broker_round_trip_time(1, Duration::from_millis(400)).expect("rtt");
    let tickets: Vec<_> = (0..10).map(|n| log.append(vec![record("slow", n)])).collect();
    for ticket in tickets {
        ticket.wait_blocking().expect("append");
    }
    let topic = read_all(&cluster.bootstrap_servers(), 1, 10);
    let payloads: Vec<String> = topic[&0].iter().map(|(_, p)| p.clone()).collect();
    let expected: Vec<String> = (0..10).map(|n| format!("slow#{n}")).collect();
    assert_eq!(payloads, expected);
}
