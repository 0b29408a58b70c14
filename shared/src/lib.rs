//! hardway's common crate: the cluster document, reading and writing it, errors and exit codes,
//! atomic file writes, validation of names and ranges, and report tables. No tool logic lives here.

pub mod doc;
mod doc_check;
pub mod dot;
pub mod duration;
pub mod error;
pub mod fsutil;
pub mod io;
pub mod json;
pub mod k8s;
pub mod paths;
pub mod table;
pub mod tool;
pub mod uri;
pub mod validate;
pub mod vip;

pub use doc::{Document, Node, Role};
pub use error::{Error, Exit, Failure};
