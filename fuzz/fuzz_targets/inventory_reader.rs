//! The CSV and machines.txt readers on arbitrary bytes: they may refuse, never panic; a document
//! they make is valid and goes through cidr-alloc without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [mkcluster::Format::Csv, mkcluster::Format::Machines] {
        let options = mkcluster::Options {
            format,
            ..mkcluster::Options::default()
        };
        if let Ok(document) = mkcluster::build(text, "fuzz", &options) {
            document.validate().expect("mkcluster makes valid documents");
            let _ = cidr_alloc::allocate(document, None, &cidr_alloc::Options::default());
        }
    }
});
