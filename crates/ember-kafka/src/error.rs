//! The connector's own error type.

use rdkafka::error::KafkaError;

/// What stops a Kafka stream or sink. It reaches the program as
/// [`ember_core::Error::Connector`]; [`ember_core::Error::downcast_ref`]
/// gives it back, with the client's error as its source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaFailure {
    /// The sink could not hand records to the broker, or the broker did not
    /// confirm them.
    #[error("kafka sink {topic}: {message}")]
    Sink {
        /// The sink's topic.
        topic: String,
        /// What happened and what to do about it.
        message: String,
        /// The client's error, when there is one.
        #[source]
        cause: Option<Box<KafkaError>>,
    },

    /// A batch's offset ranges could not be read.
    #[error("kafka: {message}")]
    Read {
        /// What happened and what to do about it.
        message: String,
        /// The client's error, when there is one.
        #[source]
        cause: Option<Box<KafkaError>>,
    },
}
