//! Runs the browser end-to-end tests (`web-tests/`: Node's test runner, playwright-core and
//! Debian's Chromium) against the `banter` binary of this build, so that `cargo test`
//! is the one test command. Without Node, Chromium or the npm packages the test says so
//! and passes; under CI (`CI=true`) their absence is a failure.

use std::path::Path;
use std::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";

#[test]
fn browser_end_to_end() {
    let web_tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web-tests");
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let chromium_ok = Path::new(CHROMIUM).exists();
    let packages_ok = web_tests.join("node_modules/playwright-core").exists();
    if !(node_ok && chromium_ok && packages_ok) {
        let missing = format!(
            "browser tests NOT RUN: node {}, {CHROMIUM} {}, web-tests/node_modules {} (run `npm ci` in web-tests/)",
            if node_ok { "found" } else { "missing" },
            if chromium_ok { "found" } else { "missing" },
            if packages_ok { "found" } else { "missing" },
        );
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{missing}");
        eprintln!("{missing}");
        return;
    }
    let status = Command::new("node")
        .args(["--test", "--test-concurrency=1"])
        .current_dir(&web_tests)
        .env("BANTER_BIN", env!("CARGO_BIN_EXE_banter"))
        .status()
        .expect("node runs");
    assert!(status.success(), "browser tests failed");
}
