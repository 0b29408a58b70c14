//! Cross-tool tests live in e2e/; this crate has no library code.
