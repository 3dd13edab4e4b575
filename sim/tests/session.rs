//! Scripted shell sessions on the booted system: the same script typed on
//! the console of `sim shell` (hosted) and of the riscv kernel in QEMU
//! (`-initrd` with the image of `sim image`), each line sent after the
//! prompt came back, the answers checked in the echoed transcript.
//!
//! The QEMU session is `#[ignore]`d here and run by `scripts/test-all`'s
//! riscv group once the kernel image is built (`cargo test -p sim --test
//! session -- --ignored`); it needs `qemu-system-riscv64`.
//!
//! Each session prints its boot-to-prompt time.

mod common;

use std::io::{Read as _, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Console output so far, shared with the thread that reads it.
type Output = Arc<(Mutex<(Vec<u8>, bool)>, Condvar)>;

/// A booted machine whose console the test types into.
struct Console {
    child: Child,
    input: Option<ChildStdin>,
    output: Output,
    /// How far the transcript has been matched.
    seen: usize,
    /// How long one answer may take.
    patience: Duration,
}

impl Console {
    fn start(mut cmd: Command, patience: Duration) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the machine starts");
        let mut stdout = child.stdout.take().expect("piped");
        let output: Output = Arc::new((Mutex::new((Vec::new(), false)), Condvar::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = stdout.read(&mut buf).unwrap_or(0);
                let (lock, cv) = &*sink;
                let mut out = lock.lock().expect("output lock");
                if n == 0 {
                    out.1 = true;
                    cv.notify_all();
                    return;
                }
                out.0.extend_from_slice(&buf[..n]);
                cv.notify_all();
            }
        });
        Self {
            input: child.stdin.take(),
            child,
            output,
            seen: 0,
            patience,
        }
    }

    /// The whole transcript, as text.
    fn transcript(&self) -> String {
        let out = self.output.0.lock().expect("output lock");
        String::from_utf8_lossy(&out.0).into_owned()
    }

    /// Wait until `text` appears past what was matched; the transcript
    /// between.
    fn expect(&mut self, text: &str) -> String {
        let deadline = Instant::now() + self.patience;
        let (lock, cv) = &*self.output;
        let mut out = lock.lock().expect("output lock");
        loop {
            let hay = &out.0[self.seen..];
            if let Some(at) = hay.windows(text.len()).position(|w| w == text.as_bytes()) {
                let between = String::from_utf8_lossy(&hay[..at + text.len()]).into_owned();
                self.seen += at + text.len();
                return between;
            }
            let now = Instant::now();
            if out.1 || now >= deadline {
                let why = if out.1 {
                    "the console closed"
                } else {
                    "timed out"
                };
                drop(out);
                panic!(
                    "{why} waiting for {text:?}; transcript:\n{}",
                    self.transcript()
                );
            }
            out = cv.wait_timeout(out, deadline - now).expect("output lock").0;
        }
    }

    /// Type `bytes`.
    fn send(&mut self, bytes: &[u8]) {
        let input = self.input.as_mut().expect("input open");
        input.write_all(bytes).expect("typing");
        input.flush().expect("typing");
    }

    /// Type `line` and Enter, then wait for the next prompt; what came
    /// between the echoed line and the prompt.
    fn run(&mut self, line: &str) -> String {
        self.send(format!("{line}\n").as_bytes());
        self.expect(&format!("{line}\n"));
        let out = self.expect(PROMPT);
        out[..out.len() - PROMPT.len()].to_owned()
    }

    /// Wait for the machine to end; its exit status.
    fn wait(mut self) -> Option<i32> {
        drop(self.input.take());
        let deadline = Instant::now() + self.patience;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "the machine did not end; transcript:\n{}",
                    self.transcript()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shell's prompt.
const PROMPT: &str = "$ ";

/// How much the big-pipe step moves.
struct Sizes {
    /// The sparse file `cat` pipes into `wc -c`.
    pipe_file: &'static str,
    /// Its size in bytes, as `wc -c` prints it.
    pipe_bytes: &'static str,
}

/// The script, on a console that has just been started.
fn script(mut c: Console, where_: &str, sizes: &Sizes) {
    let started = Instant::now();
    c.expect(PROMPT);
    println!(
        "{where_}: boot to prompt: {} ms",
        started.elapsed().as_millis()
    );

    let out = c.run("echo hi | wc -c");
    assert_eq!(out.trim(), "3", "echo hi | wc -c");

    let out = c.run("ls /bin");
    for tool in [
        "cat", "cp", "echo", "false", "head", "init", "kill", "ls", "mkdir", "mv", "ps", "rm",
        "sh", "sleep", "true", "wc",
    ] {
        assert!(
            out.lines().any(|l| l.trim() == tool),
            "ls /bin lists {tool}: {out}"
        );
    }

    let out = c.run("echo x > /tmp/a; cat /tmp/a");
    assert_eq!(out.trim(), "x");

    let out = c.run("false; echo $?");
    assert_eq!(out.trim(), "1");

    let out = c.run("for i in $(seq 100); do echo $i; done | wc -l");
    assert_eq!(out.trim(), "100", "a loop of 100 processes");

    let out = c.run("ps");
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert!(names.contains(&"ps") && names.contains(&"sh"), "ps: {out}");

    let out = c.run("sleep 100 &");
    assert!(
        out.trim_start().starts_with("[1]"),
        "a background job: {out}"
    );
    let out = c.run("kill $!; wait $!; echo status $?");
    assert!(out.contains("status 130"), "the killed job's status: {out}");

    // A foreground spinner, ended by Ctrl-C; the shell answers after.
    c.send(b"spin\n");
    c.expect("spinning\n");
    c.send(b"\x03");
    c.expect("^C");
    c.expect(PROMPT);
    let out = c.run("echo still here");
    assert_eq!(out.trim(), "still here");

    // A fork bomb stops at the process limit with an error, and the shell
    // still answers.
    c.run("echo 'sh /tmp/bomb & sh /tmp/bomb' > /tmp/bomb");
    let out = c.run("sh /tmp/bomb");
    assert!(
        out.contains("sh: sh: out of memory or past the process limit"),
        "the fork bomb met the limit: {out}"
    );
    // The bomb's last shells may still be ending (killed with their
    // parents), holding slots for a moment: the shell answers, and once
    // they are gone its commands run again.
    let answered = (0..50).any(|_| {
        let out = c.run("echo still answering");
        let ok = out.lines().any(|l| l == "still answering");
        if !ok {
            std::thread::sleep(Duration::from_millis(100));
        }
        ok
    });
    assert!(answered, "the shell runs commands after the fork bomb");

    // A big transfer through a pipe.
    let out = c.run(&format!(
        "truncate -s {} /tmp/big; cat /tmp/big | wc -c",
        sizes.pipe_file
    ));
    assert_eq!(out.trim(), sizes.pipe_bytes, "bytes through the pipe");

    // `exit 3` from the init shell powers the machine off with status 3.
    c.send(b"exit 3\n");
    assert_eq!(c.wait(), Some(3), "the machine's exit status");
}

#[test]
fn hosted_session_answers_every_step_and_exits_with_the_shells_status() {
    // Standard error joins standard output, as both are the one serial
    // console in QEMU.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "exec \"$0\" \"$@\" 2>&1", env!("CARGO_BIN_EXE_sim")])
        .env("XDG_CACHE_HOME", common::CACHE_HOME);
    cmd.args(["--cpus", "2", "shell"]);
    let c = Console::start(cmd, Duration::from_secs(120));
    script(
        c,
        "hosted",
        &Sizes {
            pipe_file: "1G",
            pipe_bytes: "1073741824",
        },
    );
}

#[test]
#[ignore = "needs the riscv kernel image and QEMU: run by scripts/test-all's riscv group"]
fn qemu_session_answers_every_step_and_exits_with_the_shells_status() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{root}/target"));
    let kernel = format!("{target}/riscv64gc-unknown-none-elf/release/hal-riscv");
    assert!(
        std::path::Path::new(&kernel).exists(),
        "build the kernel first: cargo build --release -p hal-riscv --target riscv64gc-unknown-none-elf"
    );
    let image = common::scratch("qemu-session").join("vessel.img");
    let made = common::sim(&["image".as_ref(), image.as_os_str()]);
    assert!(
        made.status.success(),
        "sim image: {}",
        common::stderr(&made)
    );
    let mut cmd = Command::new(format!("{root}/scripts/qemu-run"));
    cmd.arg(&kernel).args(["-smp", "2", "-initrd"]).arg(&image);
    let c = Console::start(cmd, Duration::from_secs(300));
    // Under TCG every byte is emulated: 64 MiB through the pipe.
    script(
        c,
        "qemu",
        &Sizes {
            pipe_file: "64M",
            pipe_bytes: "67108864",
        },
    );
}

/// Boot `image` with `exit` typed at the prompt and module loading logged:
/// the machine's exit status and its log.
fn boot_to_exit(image: &std::path::Path) -> (Option<i32>, String) {
    let mut child = common::sim_command()
        .args([
            "--cpus",
            "2",
            "--log",
            "kernel_core::wasm::vm=debug",
            "boot",
        ])
        .arg("--initrd")
        .arg(image)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sim starts");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(b"exit\n")
        .expect("typing");
    let out = child.wait_with_output().expect("sim ends");
    (out.status.code(), common::stderr(&out))
}

#[test]
fn the_image_boots_to_the_prompt_without_compiling_and_compiles_what_does_not_match() {
    let dir = common::scratch("precompiled");
    let image = dir.join("vessel.img");
    let made = common::sim(&["image".as_ref(), image.as_os_str()]);
    assert!(
        made.status.success(),
        "sim image: {}",
        common::stderr(&made)
    );
    let (code, log) = boot_to_exit(&image);
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        log.matches("loaded precompiled").count(),
        2,
        "init and sh: {log}"
    );
    assert!(!log.contains("compiled anew"), "nothing compiled: {log}");

    // Every precompiled entry damaged (one byte flipped in its middle):
    // refused, and the programs compiled instead.
    let mut bytes = std::fs::read(&image).expect("the image");
    let entries: Vec<(usize, usize)> = kernel_core::fs::cpio::entries(&bytes)
        .filter_map(Result::ok)
        .filter(|e| e.name.starts_with(b"lib/code/") && !e.data.is_empty())
        .map(|e| {
            let at = e.data.as_ptr() as usize - bytes.as_ptr() as usize;
            (at, e.data.len())
        })
        .collect();
    assert_eq!(entries.len(), 4, "init and sh for two ISAs");
    for (at, len) in entries {
        bytes[at + len / 2] ^= 0x55;
    }
    std::fs::write(&image, &bytes).expect("write the damaged image");
    let (code, log) = boot_to_exit(&image);
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("loaded precompiled"), "{log}");
    assert_eq!(
        log.matches("entry refused").count(),
        2,
        "both refused: {log}"
    );
    assert_eq!(
        log.matches("compiled anew").count(),
        2,
        "init and sh compiled: {log}"
    );
}
