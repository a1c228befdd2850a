//! Goose importer: turns the `GooseMetrics` of a finished attack into benchmark entries
//! (per scenario and per request). Written by the load-test engineer.
