//! The `banter` binary itself: environment configuration, the one stdout line scripts read
//! the port from, the data folder created on first start, and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn the_binary_serves_on_the_configured_address_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("fresh-data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_banter"))
        .env("BANTER_LISTEN", "127.0.0.1:0")
        .env("BANTER_DATA_DIR", &data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("banter starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("the stdout line names the address");

    let client = banter_client::Client::new(url).unwrap();
    client.health().await.expect("healthz answers");
    client
        .register("first_user", "a long enough password")
        .await
        .expect("register");
    assert!(
        data_dir.join("banter.db").exists(),
        "the data folder and database were created"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "graceful shutdown exits with 0, got {status}"
    );
}

#[test]
fn an_unknown_setting_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_banter"))
        .env("BANTER_LISTEN", "127.0.0.1:0")
        .env("BANTER_LIMITS__NO_SUCH_LIMIT", "5")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no_such_limit"),
        "the error names the bad key: {stderr}"
    );
}
