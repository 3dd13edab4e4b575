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

/// The console reads this process's own standard input, so the program
/// runs in a child of the test with input piped in; the child prints what
/// the program wrote (the console is not captured there) and exits with
/// its status.
#[test]
fn standard_input_is_copied_to_standard_output() {
    const TEST: &str = "standard_input_is_copied_to_standard_output";
    if tests::child_scenario().as_deref() == Some("cat") {
        let hosted = hal_hosted::Hosted::new(&tests::machine::machine(2)).expect("machine");
        let code = hal_hosted::boot_quiet_into(&hosted, |kernel| {
            let status = kernel_core::boot::with_executor(kernel, |exec| {
                kernel_core::proc::run(
                    kernel,
                    exec,
                    kernel_core::proc::SpawnOptions::default(),
                    |procs| async move {
                        let pid = procs
                            .spawn("cat", module("cat").into(), Vec::new(), procs.defaults())
                            .ok()?;
                        tests::machine::wait(&procs, pid).await
                    },
                )
                .ok()
                .flatten()
            });
            match status {
                Some(ExitStatus::Exited(0)) => 0,
                _ => 1,
            }
        });
        std::process::exit(code.map_or(2, i32::from));
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

/// The kernel's own `test=wasi` workload (what the riscv image runs in
/// QEMU) passes on a hosted kernel given the same programs.
#[test]
fn the_wasi_workload_passes_on_a_hosted_kernel() {
    let config = hal_hosted::Config {
        capture_console: true,
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
        Some("8 passed, 0 failed"),
        "{console}"
    );
}
