//! Incident-triage agent: event → prompt → LLM → structured answer, cached by event fingerprint.
