//! The console: `try_read` from standard input, `write` to standard output,
//! `panic_write` to standard error — checked on a child process whose
//! standard streams are pipes.

// Public so that helpers this binary does not use are not dead code.
pub mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TIMEOUT, small};
use kernel_core::hal::Console;

const CHILD: &str = "HAL_HOSTED_CONSOLE_CHILD";

#[test]
fn console_reads_stdin_writes_stdout_and_stderr() {
    if std::env::var(CHILD).is_ok() {
        let hosted = small(1);
        let mut got = Vec::new();
        let start = Instant::now();
        while got.len() < 6 && start.elapsed() < TIMEOUT {
            match hosted.try_read() {
                Some(byte) => got.push(byte),
                None => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        let mut line = b"echo:".to_vec();
        line.extend_from_slice(&got);
        line.push(b'\n');
        hosted.write(&line);
        // Input exhausted (the parent closed it): nothing more to read.
        assert_eq!(hosted.try_read(), None);
        hosted.panic_write(b"panic:lock-free\n");
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "console_reads_stdin_writes_stdout_and_stderr",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"vessel").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.lines().any(|l| l == "echo:vessel"),
        "stdout: {stdout}"
    );
    assert!(
        stderr.lines().any(|l| l == "panic:lock-free"),
        "stderr: {stderr}"
    );
}

#[test]
fn concurrent_writes_do_not_interleave_within_a_call() {
    if std::env::var(CHILD).as_deref() == Ok("lines") {
        let hosted = small(4);
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let hosted = &hosted;
                s.spawn(move || {
                    let line: Vec<u8> = std::iter::repeat_n(b'a' + t, 3000)
                        .chain(std::iter::once(b'\n'))
                        .collect();
                    for _ in 0..50 {
                        hosted.write(&line);
                    }
                });
            }
        });
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "concurrent_writes_do_not_interleave_within_a_call",
            "--nocapture",
        ])
        .env(CHILD, "lines")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| l.len() == 3000).collect();
    assert_eq!(lines.len(), 200, "whole lines written: {}", lines.len());
    for line in lines {
        let first = line.as_bytes()[0];
        assert!(line.bytes().all(|b| b == first), "interleaved line");
    }
}
