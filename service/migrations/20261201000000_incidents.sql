-- Incidents: the triage agent's verdict on one event. Portable SQL: the same migration runs on
-- SQLite and PostgreSQL (timestamps are unix milliseconds in BIGINT columns).
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_severity TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    suggested_action TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    url TEXT,
    event_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Newest first (GET /api/v1/incidents), with the id as the tie-breaker of the page cursor.
CREATE INDEX IF NOT EXISTS incidents_created_at ON incidents (created_at, id);
CREATE INDEX IF NOT EXISTS incidents_fingerprint ON incidents (fingerprint, created_at);
CREATE INDEX IF NOT EXISTS incidents_source_created_at ON incidents (source, created_at);
CREATE INDEX IF NOT EXISTS incidents_severity_created_at ON incidents (severity, created_at);
