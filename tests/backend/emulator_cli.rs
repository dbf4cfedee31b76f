//! `ossgate emulator` as a process: the one stdout line, refusals, SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ossgate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ossgate"));
    c.env_remove("OSS_ACCESS_KEY_ID")
        .env_remove("OSS_ACCESS_KEY_SECRET")
        .env_remove("OSS_SESSION_TOKEN")
        .env("RUST_LOG", "warn");
    c
}

#[test]
fn refuses_to_start_without_credentials() {
    let out = ossgate()
        .args(["emulator", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("credentials"));
}

#[test]
fn refuses_a_non_loopback_address_without_allow_remote() {
    let out = ossgate()
        .args([
            "emulator",
            "--listen",
            "0.0.0.0:0",
            "--access-key-id",
            "a",
            "--access-key-secret",
            "b",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));
}

/// Kills the child if the test fails before it stopped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(unix)]
#[test]
fn prints_one_line_serves_and_stops_on_sigterm() {
    let child = ossgate()
        .args(["emulator", "--listen", "127.0.0.1:0", "--in-memory"])
        .args([
            "--bucket",
            "cli-bucket",
            "--bucket",
            "cli-versioned:versioned",
        ])
        .env("OSS_ACCESS_KEY_ID", "cli-ak")
        .env("OSS_ACCESS_KEY_SECRET", "cli-sk")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = KillOnDrop(child);
    let child = &mut guard.0;
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let endpoint = line
        .trim_end()
        .strip_prefix("ossgate emulator listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");

    // It answers like OSS (anonymous: AccessDenied).
    let addr = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(
        &mut s,
        b"GET /cli-bucket/k HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
    assert!(reply.contains("<Code>AccessDenied</Code>"));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "the emulator ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "exactly one stdout line");
}

/// Text logs written to a pipe (a container log, a file) carry no terminal colour codes.
#[test]
fn text_logs_to_a_pipe_are_plain() {
    let child = Command::new(env!("CARGO_BIN_EXE_ossgate"))
        .env_clear()
        .env("OSSGATE_LISTEN", "127.0.0.1:0")
        .env("OSSGATE_LOG__FORMAT", "text")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = KillOnDrop(child);
    let stderr = BufReader::new(guard.0.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let serving = line.contains("serving gRPC");
        seen.push(line);
        if serving {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|l| l.contains("serving gRPC")),
        "{seen:#?}"
    );
    for line in &seen {
        assert!(!line.contains('\u{1b}'), "escape code in {line:?}");
        assert!(
            line.contains(" INFO ") || line.contains(" WARN "),
            "{line:?}"
        );
    }
}
