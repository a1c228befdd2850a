//! The store of unmodelled deliveries: well-formed JSON the parsers could not map to an event
//! (an event type they do not model, a payload without the fields that identify it). Nothing is
//! dropped silently: each is answered 200 `ignored`, counted per source and kind, and its JSON
//! kept here, bounded in count and bytes (oldest evicted first, evictions counted), for
//! `GET /api/v1/webhooks/unmodelled`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::webhook::Source;

/// Unmodelled deliveries kept at most.
pub const DEFAULT_UNMODELLED_CAPACITY: usize = 256;
/// Bytes of unmodelled JSON kept at most (16 MiB).
pub const DEFAULT_UNMODELLED_BYTES: usize = 16 * 1024 * 1024;
/// Distinct kinds counted per source; further kinds are counted as [`OTHER_KIND`] (the kind comes
/// from the sender, so its label values must stay bounded).
pub const MAX_KINDS_PER_SOURCE: usize = 64;
/// Kind label of kinds beyond [`MAX_KINDS_PER_SOURCE`].
pub const OTHER_KIND: &str = "other";

/// One kept unmodelled delivery, as served by `GET /api/v1/webhooks/unmodelled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnmodelledEvent {
    /// `github`, `gitlab`...
    pub source: String,
    /// What the sender says the event is (`star`, `Issue Hook`, `incident.task.created`...),
    /// `unknown` when it does not say.
    pub kind: String,
    /// The delivery id (sender's, else the body's SHA-256).
    pub delivery_id: String,
    /// When the service received it.
    pub received_at: DateTime<Utc>,
    /// Why it could not be mapped to an event.
    pub reason: String,
    /// The delivery's JSON, unchanged (a form-encoded GitHub delivery: its `payload`).
    pub body: serde_json::Value,
}

/// Summary of the store, part of `GET /api/v1/webhooks/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnmodelledStatus {
    /// Unmodelled deliveries received since start, every source.
    pub received: u64,
    /// Kept now.
    pub kept: usize,
    /// Kept at most ([`DEFAULT_UNMODELLED_CAPACITY`]).
    pub capacity: usize,
    /// Bytes of JSON kept now.
    pub kept_bytes: usize,
    /// Bytes kept at most ([`DEFAULT_UNMODELLED_BYTES`]).
    pub byte_capacity: usize,
    /// Evicted (oldest first) to stay within the bounds.
    pub evicted: u64,
    /// Count per source, then per kind.
    pub kinds: BTreeMap<String, BTreeMap<String, u64>>,
}

struct Kept {
    source: Source,
    kind: String,
    delivery_id: String,
    received_at: DateTime<Utc>,
    reason: String,
    body: Vec<u8>,
}

#[derive(Default)]
struct Inner {
    kept: VecDeque<Kept>,
    kept_bytes: usize,
    received: u64,
    evicted: u64,
    kinds: BTreeMap<Source, BTreeMap<String, u64>>,
}

/// Bounded in-memory store of unmodelled deliveries.
pub struct UnmodelledStore {
    capacity: usize,
    byte_capacity: usize,
    inner: Mutex<Inner>,
}

/// A kind as a bounded, printable label value: at most 64 characters, control characters as `_`,
/// empty as `unknown`.
pub fn kind_label(kind: &str) -> String {
    let clean: String = kind
        .trim()
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '_' } else { c })
        .collect();
    if clean.is_empty() {
        crate::webhook::UNKNOWN.to_owned()
    } else {
        clean
    }
}

impl UnmodelledStore {
    /// A store keeping at most `capacity` deliveries and `byte_capacity` bytes.
    pub fn new(capacity: usize, byte_capacity: usize) -> Self {
        UnmodelledStore {
            capacity,
            byte_capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the store inconsistent in a harmful way.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts and keeps one delivery; returns the kind label it was counted under (the kind, or
    /// [`OTHER_KIND`] beyond [`MAX_KINDS_PER_SOURCE`] distinct kinds of that source).
    pub fn keep(
        &self,
        source: Source,
        kind: &str,
        delivery_id: &str,
        reason: &str,
        body: &[u8],
    ) -> String {
        let kind = kind_label(kind);
        let mut inner = self.lock();
        inner.received += 1;
        let kinds = inner.kinds.entry(source).or_default();
        let label = if kinds.contains_key(&kind) || kinds.len() < MAX_KINDS_PER_SOURCE {
            kind.clone()
        } else {
            OTHER_KIND.to_owned()
        };
        *kinds.entry(label.clone()).or_insert(0) += 1;
        if body.len() <= self.byte_capacity && self.capacity > 0 {
            while inner.kept.len() >= self.capacity
                || inner.kept_bytes + body.len() > self.byte_capacity
            {
                let Some(old) = inner.kept.pop_front() else {
                    break;
                };
                inner.kept_bytes -= old.body.len();
                inner.evicted += 1;
            }
            inner.kept_bytes += body.len();
            inner.kept.push_back(Kept {
                source,
                kind,
                delivery_id: delivery_id.to_owned(),
                received_at: Utc::now(),
                reason: reason.to_owned(),
                body: body.to_vec(),
            });
        } else {
            inner.evicted += 1;
        }
        label
    }

    /// Summary for `GET /api/v1/webhooks/status`.
    pub fn status(&self) -> UnmodelledStatus {
        let inner = self.lock();
        UnmodelledStatus {
            received: inner.received,
            kept: inner.kept.len(),
            capacity: self.capacity,
            kept_bytes: inner.kept_bytes,
            byte_capacity: self.byte_capacity,
            evicted: inner.evicted,
            kinds: inner
                .kinds
                .iter()
                .map(|(s, k)| (s.as_str().to_owned(), k.clone()))
                .collect(),
        }
    }

    /// The kept deliveries, newest first.
    pub fn list(&self) -> Vec<UnmodelledEvent> {
        let inner = self.lock();
        inner
            .kept
            .iter()
            .rev()
            .map(|k| UnmodelledEvent {
                source: k.source.as_str().to_owned(),
                kind: k.kind.clone(),
                delivery_id: k.delivery_id.clone(),
                received_at: k.received_at,
                reason: k.reason.clone(),
                // Kept bodies were checked to be JSON by the parser.
                body: serde_json::from_slice(&k.body)
                    .unwrap_or_else(|e| serde_json::Value::String(format!("unreadable: {e}"))),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_count_and_bytes_oldest_evicted_first() {
        let store = UnmodelledStore::new(3, 40);
        for i in 0..5 {
            store.keep(Source::Github, "star", &format!("d{i}"), "r", b"{\"n\":1}");
        }
        let s = store.status();
        assert_eq!((s.received, s.kept, s.evicted), (5, 3, 2));
        assert_eq!(s.kinds["github"]["star"], 5);
        let ids: Vec<_> = store.list().into_iter().map(|e| e.delivery_id).collect();
        assert_eq!(ids, ["d4", "d3", "d2"]);
        // 30 bytes: evicts until it fits in 40.
        store.keep(Source::Gitlab, "Note Hook", "big", "r", &[b' '; 30]);
        let s = store.status();
        assert_eq!(s.kept, 2);
        assert!(s.kept_bytes <= 40);
        // Bigger than the whole store: counted, not kept.
        store.keep(Source::Gitlab, "Note Hook", "huge", "r", &[b' '; 41]);
        let s = store.status();
        assert_eq!((s.received, s.kinds["gitlab"]["Note Hook"]), (7, 2));
        assert!(store.list().iter().all(|e| e.delivery_id != "huge"));
    }

    #[test]
    fn kinds_are_bounded_per_source() {
        let store = UnmodelledStore::new(1, 1024);
        for i in 0..(MAX_KINDS_PER_SOURCE + 10) {
            store.keep(Source::Pagerduty, &format!("k{i}"), "d", "r", b"{}");
        }
        assert_eq!(store.keep(Source::Pagerduty, "k0", "d", "r", b"{}"), "k0");
        assert_eq!(
            store.keep(Source::Pagerduty, "new", "d", "r", b"{}"),
            OTHER_KIND
        );
        let kinds = &store.status().kinds["pagerduty"];
        assert_eq!(kinds.len(), MAX_KINDS_PER_SOURCE + 1);
        assert_eq!(kinds[OTHER_KIND], 11);
        assert_eq!(kind_label(" \n"), "unknown");
        assert_eq!(kind_label("a\nb"), "a_b");
        assert_eq!(kind_label(&"x".repeat(100)).len(), 64);
    }
}
