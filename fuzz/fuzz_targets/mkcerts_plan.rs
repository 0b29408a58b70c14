//! mkcerts' document-to-files path without I/O: any document the reader accepts (and validates)
//! is planned — leaves, kubeconfigs, what each node installs — or refused, never a panic; and
//! every path the plan would write stays relative inside --dir and every install lands on an
//! absolute, normalized path on the node.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(document) = hardway::doc::from_str(text, "fuzz") else {
        return;
    };
    if document.validate().is_err() {
        return;
    }
    let Ok(plan) = mkcerts::plan::plan(&document, &mkcerts::plan::PlanOptions::default()) else {
        return;
    };
    for (node, installs) in &plan.installs {
        hardway::validate::node_name(node).expect("installs name a valid node");
        for install in installs {
            hardway::validate::relative_path(&install.src).expect("src stays inside --dir");
            hardway::validate::absolute_path(install.dest).expect("dest is a clean absolute path");
        }
    }
});
