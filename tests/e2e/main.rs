//! End-to-end tests: the tools run together, as a user would, against real components.
//! Each test is a module; add yours with one `mod` line.
mod day_two_costs;
mod etcd_snapshot;
mod etcd_sync;
mod hypervisor_egress;
mod inventory_to_addresses;
mod k8s_versions;
mod lab_live;
mod mkcerts_etcd;
mod mkunits_etcd;
mod pictures;
mod pod_network;
mod rolling_restart;
mod scripts_lint;
