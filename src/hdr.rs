//! HDR histograms as text, the one way this crate stores a distribution: hdrhistogram's V2
//! encoding with DEFLATE compression (`V2DeflateSerializer`, the format HdrHistogram's Java, Go
//! and C libraries read), then standard base64. Result files keep each benchmark's per-operation
//! histogram in this form so that baselines merge distributions, not percentiles of percentiles.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// Why a stored histogram could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HdrError {
    /// The text is not base64.
    #[error("histogram is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The bytes are not a V2 (deflate) HDR histogram.
    #[error("histogram is not a V2 HDR encoding: {0:?}")]
    Decode(hdrhistogram::serialization::DeserializeError),
    /// The histogram could not be serialized.
    #[error("histogram could not be serialized: {0:?}")]
    Encode(hdrhistogram::serialization::V2DeflateSerializeError),
}

/// `h` as base64 text of its compressed V2 encoding.
pub fn encode(h: &Histogram<u64>) -> Result<String, HdrError> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(HdrError::Encode)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The histogram stored by [`encode`].
pub fn decode(text: &str) -> Result<Histogram<u64>, HdrError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim())?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(HdrError::Decode)
}

/// The value at `quantile` (0–1), or `None` for an empty histogram. The one percentile
/// definition of this crate: hdrhistogram's (the smallest recorded value, within the histogram's
/// precision, at or below which `quantile` of all values fall).
pub fn quantile(h: &Histogram<u64>, quantile: f64) -> Option<u64> {
    (!h.is_empty()).then(|| h.value_at_quantile(quantile))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_counts_and_quantiles() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
        for v in 1..=10_000u64 {
            h.record(v * 37).unwrap();
        }
        let text = encode(&h).unwrap();
        let back = decode(&text).unwrap();
        assert_eq!(back.len(), h.len());
        for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
            assert_eq!(back.value_at_quantile(q), h.value_at_quantile(q));
        }
        assert!(text.len() < 10_000, "compressed: {} bytes", text.len());
    }

    #[test]
    fn refuses_garbage() {
        assert!(matches!(decode("not base64 !!"), Err(HdrError::Base64(_))));
        assert!(matches!(decode("aGVsbG8="), Err(HdrError::Decode(_))));
        assert_eq!(quantile(&Histogram::<u64>::new(3).unwrap(), 0.5), None);
    }
}
