//! The document reader on arbitrary bytes: it may refuse, never panic; what it accepts it prints
//! back in a form that reads again to the same text (unknown fields included).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(document) = hardway::doc::from_str(text, "fuzz") else {
        return;
    };
    let _ = document.validate();
    let printed = hardway::doc::to_string(&document);
    let again = hardway::doc::from_str(&printed, "printed").expect("a printed document reads back");
    assert_eq!(hardway::doc::to_string(&again), printed, "a second round trip changed the text");
    // The allocator takes any valid document without panicking.
    if document.validate().is_ok() {
        let _ = cidr_alloc::allocate(document, None, &cidr_alloc::Options::default());
    }
});
