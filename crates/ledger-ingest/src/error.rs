//! Why a webhook body was refused. Each variant maps to an HTTP 4xx at the edge; the body and
//! this reason are kept as a dead letter.

/// A refused webhook body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("body is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("JSON nests deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("body yields {count} events; the limit is {limit}")]
    TooManyEvents { count: usize, limit: usize },
    /// The JSON is malformed or a field does not have the shape the provider documents.
    #[error("{path}: {reason}")]
    Malformed { path: String, reason: String },
    #[error("unknown provider {0:?}")]
    UnknownProvider(String),
}

impl IngestError {
    pub(crate) fn malformed(path: impl Into<String>, reason: impl Into<String>) -> Self {
        IngestError::Malformed { path: path.into(), reason: reason.into() }
    }

    /// Wraps a typed-deserialization error, prefixing the path of the part being parsed.
    pub(crate) fn from_serde(prefix: &str, error: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let inner = error.path().to_string();
        let path = match (prefix.is_empty(), inner.as_str()) {
            (true, _) => inner,
            (false, ".") => prefix.to_owned(),
            (false, _) => format!("{prefix}.{inner}"),
        };
        IngestError::Malformed { path, reason: error.into_inner().to_string() }
    }
}

/// Parses JSON without path tracking (the common, valid case); only a failure is parsed again
/// with tracking, to name the JSON path — under `prefix` — in the error.
pub(crate) fn parse_json<'a, T: serde::Deserialize<'a>>(
    bytes: &'a [u8],
    prefix: &dyn Fn() -> String,
) -> Result<T, IngestError> {
    serde_json::from_slice(bytes).or_else(|_| {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| IngestError::from_serde(&prefix(), e))
    })
}
