//! Criterion 0.8 importer (pinned `=0.8.2`): reads `target/criterion/**/{new,<baseline>}/`
//! `{benchmark,estimates}.json` and merges the HDR latency sidecars.
