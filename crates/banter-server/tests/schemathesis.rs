//! API fuzzing against the published contract: Schemathesis (from PyPI; `.ci/run` installs
//! it) reads `/api/v1/openapi.json` of the real `banter` binary and sends generated
//! requests, valid and invalid, to every documented operation, as a logged-in user of a
//! server seeded with friends, a direct conversation, a group and a pending request. It
//! fails on any server error (5xx), any status the document does not list for the
//! operation, any response body or header that does not match the document, and any
//! schema-invalid request the server accepts.
//!
//! Bounded: `EXAMPLES_PER_OPERATION` cases per operation and phase, and each run is
//! stopped after `RUN_SECS_MAX`. The seed is fixed so that a CI failure reproduces;
//! set `BANTER_TEST_SCHEMATHESIS_SEED` to explore others. Without Schemathesis the test says so
//! and passes; under CI (`CI=true`) that is a failure.
//!
//! The user API and the admin API are run separately, each with its own token.
//! `DELETE /sessions/current` is left out: it would revoke the very token the run uses,
//! and every later request would then only test the 401 path. It has its own tests.

use banter_client::Client;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Test cases per operation in each generating phase.
const EXAMPLES_PER_OPERATION: u32 = 100;
/// The run is killed (and the test fails) if it takes longer than this.
const RUN_SECS_MAX: u64 = 240;
const SEED: &str = "20261205";
const PASSWORD: &str = "a long enough password";
/// The admin API is fuzzed too, in a run of its own with this token.
const ADMIN_TOKEN: &str = "fuzzing-admin-token-of-at-least-32-characters";

/// The Schemathesis command line, if installed: `st`, its long name, or the module through
/// `python3` (when pip put the scripts somewhere off the `PATH`).
fn schemathesis() -> Option<(&'static str, &'static [&'static str])> {
    let candidates: [(&str, &[&str]); 3] = [
        ("st", &[]),
        ("schemathesis", &[]),
        ("python3", &["-m", "schemathesis.cli"]),
    ];
    candidates.into_iter().find(|(program, prefix)| {
        Command::new(program)
            .args(*prefix)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Kills the server when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn user(url: &str, name: &str) -> Client {
    let mut client = Client::new(url).unwrap();
    client.register(name, PASSWORD).await.expect("register");
    client.login(name, PASSWORD, "fuzz").await.expect("login");
    client
}

async fn befriend(a: &Client, b: &Client) {
    let b_id = b.me().await.unwrap().id;
    let request = a.send_friend_request(b_id, None).await.unwrap();
    b.accept_friend_request(request.id).await.unwrap();
}

#[tokio::test]
async fn the_api_keeps_its_openapi_contract_under_fuzzing() {
    let Some((program, prefix)) = schemathesis() else {
        let missing = "schemathesis NOT RUN: neither `st` nor `schemathesis` is installed (pip install schemathesis)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{missing}");
        eprintln!("{missing}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_banter"))
        .env("BANTER_LISTEN", "127.0.0.1:0")
        .env("BANTER_DATA_DIR", dir.path().join("data"))
        .env("BANTER_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("banter starts");
    let stdout = child.stdout.take().unwrap();
    let _server = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("the stdout line names the address")
        .to_string();

    // Something for the generated ids to find: users 1–4, two friendships, a direct
    // conversation, a group, and a pending friend request to the fuzzing user.
    let fuzzer = user(&url, "fuzzer").await;
    let bob = user(&url, "bob").await;
    let carol = user(&url, "carol").await;
    let dave = user(&url, "dave").await;
    befriend(&fuzzer, &bob).await;
    befriend(&fuzzer, &carol).await;
    let bob_id = bob.me().await.unwrap().id;
    let carol_id = carol.me().await.unwrap().id;
    fuzzer.open_direct(bob_id).await.unwrap();
    fuzzer
        .create_group("climbing", &[bob_id, carol_id])
        .await
        .unwrap();
    let fuzzer_id = fuzzer.me().await.unwrap().id;
    dave.send_friend_request(fuzzer_id, Some("hello"))
        .await
        .unwrap();

    let seed = std::env::var("BANTER_TEST_SCHEMATHESIS_SEED").unwrap_or_else(|_| SEED.into());
    let schemathesis = Schemathesis {
        program,
        prefix,
        schema: format!("{url}/api/v1/openapi.json"),
        seed,
        dir: dir.path().to_path_buf(),
    };
    let token = fuzzer.token().unwrap().to_string();
    schemathesis
        .run(
            "the user API",
            &token,
            &[
                "--exclude-path-regex",
                "^/api/v1/(admin/|sessions/current$)",
            ],
        )
        .await;
    schemathesis
        .run(
            "the admin API",
            ADMIN_TOKEN,
            &["--include-path-regex", "^/api/v1/admin/"],
        )
        .await;
}

struct Schemathesis {
    program: &'static str,
    prefix: &'static [&'static str],
    schema: String,
    seed: String,
    dir: std::path::PathBuf,
}

impl Schemathesis {
    /// One bounded run over the operations `filter` selects, as the holder of `token`;
    /// panics with the whole report on any finding.
    async fn run(&self, what: &str, token: &str, filter: &[&str]) {
        let mut run = tokio::process::Command::new(self.program);
        run.args(self.prefix)
            .arg("run")
            .arg(&self.schema)
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(filter)
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_schema_conformance,response_headers_conformance,negative_data_rejection",
            ])
            .args(["--max-examples", &EXAMPLES_PER_OPERATION.to_string()])
            .args(["--seed", &self.seed])
            .args(["--workers", "1", "--no-color", "--output-truncate", "false"])
            // Hypothesis keeps its example database in the working folder.
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(Duration::from_secs(RUN_SECS_MAX), run.output())
            .await
            .unwrap_or_else(|_| panic!("schemathesis on {what} ran longer than {RUN_SECS_MAX} s"))
            .expect("schemathesis runs");
        let report = String::from_utf8_lossy(&output.stdout);
        // The summary is worth seeing in the test log either way; all of it on failure.
        eprintln!("---- schemathesis on {what} ----");
        if output.status.success() {
            let summary: Vec<&str> = report.lines().rev().take(12).collect();
            for line in summary.into_iter().rev() {
                eprintln!("{line}");
            }
        } else {
            eprintln!("{report}\n{}", String::from_utf8_lossy(&output.stderr));
        }
        assert!(
            output.status.success(),
            "schemathesis found contract violations or server errors in {what} (seed {}); see above",
            self.seed
        );
    }
}
