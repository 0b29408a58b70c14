//! End-to-end tests: the tools run together, as a user would, against real components.
//! Each test is a module; add yours with one `mod` line.
mod mkcerts_etcd;
mod mkunits_etcd;
mod scripts_lint;
