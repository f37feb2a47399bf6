//! An independent Kafka consumer and producer for the tests (rdkafka, not the operator's code).

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;

/// A consumer in a fresh group reading `topics` from the beginning.
pub fn consumer(brokers: &str, topics: &[&str]) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("e2e-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create()
        .expect("creating a Kafka consumer");
    consumer.subscribe(topics).expect("subscribing");
    consumer
}

/// A plain producer.
pub fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "message.timeout.ms",
            Duration::from_secs(30).as_millis().to_string(),
        )
        .create()
        .expect("creating a Kafka producer")
}
