//! Rust programs with std, built for `wasm32-wasip1` (`tests/wasi-programs`,
//! by `tests/build.rs`), run unmodified as Vessel processes: standard
//! output and error, arguments and environment, exit codes, a panic,
//! clocks and sleeping, random bytes, and standard input copied to
//! standard output.

use kernel_core::proc::{ExitStatus, Program};
use kernel_core::wasm::TrapKind;
use tests::machine::{Ran, run_program};
use tests::wasi_programs::module;

fn run(name: &str, args: &[&str], env: &[&str]) -> Ran {
    let program = Program {
        args: std::iter::once(name)
            .chain(args.iter().copied())
            .map(|a| a.as_bytes().to_vec())
            .collect(),
        env: env.iter().map(|e| e.as_bytes().to_vec()).collect(),
        no_files: false,
        mounts: Vec::new(),
    };
    run_program(module(name).into(), program)
}

#[test]
fn hello_world() {
    let r = run("hello", &[], &[]);
    assert_eq!(r.status, Some(ExitStatus::Exited(0)));
    assert_eq!(r.stdout, "hello, world\n");
}

#[test]
fn arguments_and_environment_echo() {
    let r = run("echo", &["a", "b c", "-x"], &["B=2", "A=one=1"]);
    assert_eq!(r.status, Some(ExitStatus::Exited(0)));
    assert_eq!(r.stdout, "a\nb c\n-x\nA=one=1\nB=2\n");
}

#[test]
fn process_exit_gives_its_code() {
    let r = run("exit7", &[], &[]);
    assert_eq!(r.status, Some(ExitStatus::Exited(7)));
}

#[test]
fn a_panic_is_a_trap() {
    let r = run("panic", &[], &[]);
    assert_eq!(r.status, Some(ExitStatus::Trapped(TrapKind::Unreachable)));
    assert_eq!(r.stdout, "about to index 4\n");
}

#[test]
fn clocks_and_sleep() {
    let r = run("clocks", &[], &[]);
    assert_eq!(r.status, Some(ExitStatus::Exited(0)), "{}", r.stdout);
    assert_eq!(r.stdout, "monotonic: ok\nsleep: ok\nwall clock: ok\n");
}

#[test]
fn a_file_round_trip_on_the_tmpfs() {
    let r = run("files", &["/"], &[]);
    assert_eq!(r.status, Some(ExitStatus::Exited(0)), "{}", r.stdout);
    assert_eq!(
        r.stdout,
        "mkdir: ok\nwrite: ok\nread at 7: \"FILES\\n\"\nlisting: [\"renamed.txt\"]\n\
         size: 13, file: true\ngone: true\nrmdir: ok\nmissing: not found\n"
    );
}

/// A program reads another's module from the tmpfs and starts it through
/// `vessel`'s `spawn_program` with arguments and its own environment; the
/// child's output and exit code come through.
#[test]
fn a_program_spawns_another_through_vessel() {
    use kernel_core::fs::tmpfs::{OpenFlags, ROOT};
    let (status, stdout) = {
        let config = hal_hosted::Config {
            capture_console: true,
            ..tests::machine::machine(2)
        };
        let hosted = hal_hosted::Hosted::new(&config).expect("machine");
        let status = std::sync::Mutex::new(None);
        hal_hosted::boot_quiet_into(&hosted, |kernel| {
            let s = kernel_core::boot::with_executor(kernel, |exec| {
                kernel_core::proc::run(
                    kernel,
                    exec,
                    kernel_core::proc::SpawnOptions::default(),
                    |procs| async move {
                        let create = OpenFlags {
                            create: true,
                            ..OpenFlags::default()
                        };
                        let fs = procs.fs();
                        let ino = fs.open(ROOT, b"echo.wasm", create, 0).expect("create");
                        fs.write(ino, 0, module("echo"), 0).expect("write");
                        fs.close(ino);
                        let program = Program {
                            args: ["spawner", "/echo.wasm", "echo", "hi", "there"]
                                .iter()
                                .map(|a| a.as_bytes().to_vec())
                                .collect(),
                            env: vec![b"K=v".to_vec()],
                            no_files: false,
                            mounts: Vec::new(),
                        };
                        let defaults = procs.defaults();
                        let pid = procs
                            .spawn_program(
                                "spawner",
                                module("spawner").into(),
                                Vec::new(),
                                defaults,
                                program,
                            )
                            .expect("spawn");
                        tests::machine::wait(&procs, pid).await
                    },
                )
                .expect("scope")
            });
            *status.lock().expect("status") = s;
            0
        })
        .expect("boot");
        let out = hosted.captured_console().unwrap_or_default();
        (
            status.into_inner().expect("status"),
            String::from_utf8_lossy(&out).into_owned(),
        )
    };
    assert_eq!(status, Some(ExitStatus::Exited(0)), "{stdout}");
    assert_eq!(stdout, "hi\nthere\nK=v\nchild exited 0\n");
}

#[test]
fn random_bytes() {
    let r = run("random", &[], &[]);
    assert_eq!(r.status, Some(ExitStatus::Exited(0)));
    assert_eq!(r.stdout, "random: ok\n");
}

/// In a child of the test: run `cat` on a 2-CPU machine whose console is
/// this process's own standard input and output; how it ended (`None`:
/// the machine or the process could not start).
fn cat_on_this_stdin() -> Option<kernel_core::proc::ProcInfo> {
    let hosted = hal_hosted::Hosted::new(&tests::machine::machine(2)).ok()?;
    let info = std::sync::Mutex::new(None);
    hal_hosted::boot_quiet_into(&hosted, |kernel| {
        let got = kernel_core::boot::with_executor(kernel, |exec| {
            kernel_core::proc::run(
                kernel,
                exec,
                kernel_core::proc::SpawnOptions::default(),
                |procs| async move {
                    let pid = procs
                        .spawn("cat", module("cat").into(), Vec::new(), procs.defaults())
                        .ok()?;
                    tests::machine::wait(&procs, pid).await?;
                    procs.reap(pid).await
                },
            )
            .ok()
            .flatten()
        });
        *info.lock().expect("info") = got;
        0
    })
    .ok()?;
    info.into_inner().ok().flatten()
}

/// The console reads this process's own standard input, so the program
/// runs in a child of the test with input piped in; the child prints what
/// the program wrote (the console is not captured there) and exits with
/// its status.
#[test]
fn standard_input_is_copied_to_standard_output() {
    const TEST: &str = "standard_input_is_copied_to_standard_output";
    if tests::child_scenario().as_deref() == Some("cat") {
        let code = match cat_on_this_stdin() {
            Some(i) if i.status == ExitStatus::Exited(0) => 0,
            Some(_) => 1,
            None => 2,
        };
        std::process::exit(code);
    }
    let input = b"one\ntwo\n\xff three";
    let out = tests::run_child_with_input(TEST, "cat", input);
    let stdout = out.stdout;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = [&input[..], format!("{} bytes\n", input.len()).as_bytes()].concat();
    assert!(
        stdout.windows(expected.len()).any(|w| w == expected),
        "{}",
        String::from_utf8_lossy(&stdout)
    );
}

/// A program waiting for standard input is not run while it waits: the
/// input's arrival raises an interrupt that wakes it (hosted: a watcher
/// thread and the IPI signal), instead of the program looking every
/// millisecond. The input comes half a second after the start; a
/// program that looked every millisecond would have run hundreds of
/// slices by then. The child reports the program's slices on stderr.
#[test]
fn a_reader_waiting_for_input_is_not_run_meanwhile() {
    const TEST: &str = "a_reader_waiting_for_input_is_not_run_meanwhile";
    if tests::child_scenario().as_deref() == Some("cat-slices") {
        let code = match cat_on_this_stdin() {
            Some(i) if i.status == ExitStatus::Exited(0) => {
                eprintln!("slices={}", i.slices);
                0
            }
            Some(_) => 1,
            None => 2,
        };
        std::process::exit(code);
    }
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(tests::CHILD_ENV, "cat-slices")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("test binary re-runs");
    let mut stdin = child.stdin.take().expect("stdin");
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::io::Write::write_all(&mut stdin, b"late\n").expect("input");
    drop(stdin);
    let out = child.wait_with_output().expect("child");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("late\n5 bytes\n"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let slices: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("slices="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no slice count: {stderr}"));
    assert!(
        slices < 50,
        "the reader ran {slices} slices while it waited"
    );
}

/// The kernel's own `test=wasi` workload (what the riscv image runs in
/// QEMU) passes on a hosted kernel given the same programs and memory as
/// QEMU's machine (512 MiB: the crowd of a thousand processes needs it).
#[test]
fn the_wasi_workload_passes_on_a_hosted_kernel() {
    let config = hal_hosted::Config {
        capture_console: true,
        memory: 512 << 20,
        ..tests::machine::machine(2)
    };
    let hosted = hal_hosted::Hosted::new(&config).expect("machine");
    let info = kernel_core::boot::BootInfo {
        cmdline: "test=wasi",
        wasi: tests::wasi_programs::PROGRAMS,
        ..kernel_core::boot::BootInfo::default()
    };
    let code = hal_hosted::boot_on(&hosted, info).expect("boot");
    let console =
        String::from_utf8_lossy(&hosted.captured_console().unwrap_or_default()).into_owned();
    assert_eq!(code, kernel_core::exit::SUCCESS, "{console}");
    assert_eq!(
        console.lines().last(),
        Some("9 passed, 0 failed"),
        "{console}"
    );
}
