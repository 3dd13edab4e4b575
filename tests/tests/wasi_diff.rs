//! Differential test of the WASI programs of `tests/wasi-programs`: each
//! runs on Vessel (a hosted machine, with a host directory mounted at `/`)
//! and on wasmtime 48 with wasmtime-wasi (the same directory's twin
//! preopened at `/`), with the same arguments, environment and standard
//! input, and the two must agree on the exit code, standard output,
//! standard error and the directory tree left behind.
//!
//! Programs whose work differs run to run (clocks, random bytes) print
//! only whether their checks held, so their output is comparable too.
//! `spawner` is the one program not compared: it imports Vessel's own
//! `vessel` interface (`spawn_program`, `wait`), which wasmtime does not
//! provide, so it cannot be instantiated there at all.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kernel_core::proc::{ExitStatus, Mount, Program};
use tests::machine::{With, run_program_with};
use tests::wasi_programs::{PROGRAMS, module};
use tests::wasmtime_wasi::{Entry, Outcome, TRAPPED, run_on_wasmtime, tree};

/// One program's run: its arguments after its name, environment, standard
/// input, and the exit code it must end with (on both sides, so that two
/// runs broken the same way do not pass).
struct Case {
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    stdin: &'static [u8],
    code: i32,
}

/// The programs that are not compared, each with why. `spawner` imports
/// Vessel's own `vessel` interface (`spawn_program`, `wait`): wasmtime has
/// no such module, so it refuses to instantiate the program at all
/// ("unknown import: `vessel::spawn_program` has not been defined"). That
/// is not a failure hidden: there is nothing on wasmtime to compare with.
/// `tests/tests/wasi_programs.rs` tests it on Vessel.
const NOT_COMPARED: &[(&str, &str)] = &[(
    "spawner",
    "imports Vessel's `vessel` interface, which wasmtime does not have",
)];

/// How `name` is run; `None` for a program with no case yet.
fn case(name: &str) -> Option<Case> {
    let plain = |code| Case {
        args: &[],
        env: &[],
        stdin: b"",
        code,
    };
    Some(match name {
        "hello" | "clocks" | "random" => plain(0),
        "exit7" => plain(7),
        "panic" => plain(TRAPPED),
        "echo" => Case {
            args: &["a", "b c", "-x", ""],
            env: &[("B", "2"), ("A", "one=1"), ("EMPTY", "")],
            ..plain(0)
        },
        "cat" => Case {
            stdin: b"one\ntwo\n\xff three",
            ..plain(0)
        },
        // As `tests/tests/wasi_programs.rs` runs it: under the preopened `/`.
        "files" => Case {
            args: &["/"],
            ..plain(0)
        },
        "bigfile" => Case {
            args: &["/", "2"],
            ..plain(0)
        },
        _ => return None,
    })
}

/// The seed directory every run starts from: a file at the top, one in a
/// subdirectory, an empty subdirectory.
fn seed(root: &Path) {
    let sub = root.join("sub");
    std::fs::create_dir_all(sub.join("empty")).expect("seed directories");
    std::fs::write(root.join("readme.txt"), b"a seed file\n").expect("seed file");
    std::fs::write(sub.join("data.bin"), [0u8, 1, 2, 0xff, b'\n']).expect("seed file");
}

/// Two fresh seeded directories under the system's temporary directory,
/// removed when this is dropped (also when the test fails).
struct Dirs {
    vessel: PathBuf,
    wasmtime: PathBuf,
}

impl Dirs {
    fn new(test: &str) -> Self {
        let base = std::env::temp_dir();
        let pid = std::process::id();
        let dirs = Self {
            vessel: base.join(format!("vessel-wasi-diff-{pid}-{test}-vessel")),
            wasmtime: base.join(format!("vessel-wasi-diff-{pid}-{test}-wasmtime")),
        };
        for dir in [&dirs.vessel, &dirs.wasmtime] {
            // Left over from an earlier process with the same pid.
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
            seed(dir);
        }
        dirs
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        for dir in [&self.vessel, &self.wasmtime] {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Run `name` on Vessel with `case`, `dir` mounted at `/`.
fn run_on_vessel(name: &str, case: &Case, dir: &Path) -> Outcome {
    let program = Program {
        args: std::iter::once(name)
            .chain(case.args.iter().copied())
            .map(|a| a.as_bytes().to_vec())
            .collect(),
        env: case
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}").into_bytes())
            .collect(),
        no_files: false,
        mounts: vec![Mount {
            guest: b"/".to_vec(),
            host: 0,
        }],
    };
    let ran = run_program_with(
        module(name).into(),
        program,
        With {
            dirs: vec![dir.to_path_buf()],
            stdin: case.stdin.to_vec(),
            ..With::default()
        },
    );
    let code = match ran.status {
        Some(ExitStatus::Exited(n)) => n,
        Some(ExitStatus::Trapped(_)) => TRAPPED,
        other => panic!(
            "{name} on Vessel ended {other:?} (None: the hang guard ran out)\n\
             stdout:\n{}\nstderr:\n{}",
            ran.stdout, ran.stderr
        ),
    };
    Outcome {
        code,
        stdout: ran.stdout.into_bytes(),
        stderr: ran.stderr.into_bytes(),
    }
}

/// Run `name` on both sides and check that they agree, and that they ended
/// with the case's exit code.
fn compare(name: &str) {
    let case = case(name).unwrap_or_else(|| panic!("no case for {name}"));
    let dirs = Dirs::new(name);
    // Vessel first: its machine installs the process's fault handlers.
    let ours = run_on_vessel(name, &case, &dirs.vessel);
    let args: Vec<&str> = std::iter::once(name)
        .chain(case.args.iter().copied())
        .collect();
    let theirs = run_on_wasmtime(
        module(name),
        &args,
        case.env,
        Some((&dirs.wasmtime, "/")),
        case.stdin,
    );
    // Vessel's console is text: compare wasmtime's output as the same
    // (lossy) text.
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (ours_out, theirs_out) = (text(&ours.stdout), text(&theirs.stdout));
    let (ours_err, theirs_err) = (text(&ours.stderr), text(&theirs.stderr));
    let report = format!(
        "{name}: Vessel exited {}, wasmtime {}\n\
         --- Vessel stdout:\n{ours_out}\n--- wasmtime stdout:\n{theirs_out}\n\
         --- Vessel stderr:\n{ours_err}\n--- wasmtime stderr:\n{theirs_err}",
        ours.code, theirs.code
    );
    assert_eq!(ours.code, theirs.code, "exit codes differ\n{report}");
    assert_eq!(ours_out, theirs_out, "standard output differs\n{report}");
    assert_eq!(ours_err, theirs_err, "standard error differs\n{report}");
    assert_eq!(
        tree(&dirs.vessel),
        tree(&dirs.wasmtime),
        "{name}: the directory trees left behind differ"
    );
    assert_eq!(
        theirs.code, case.code,
        "{name} did not end as its case expects\n{report}"
    );
}

/// Every program is compared here, or listed in [`NOT_COMPARED`] with the
/// reason, and each test below names a program that exists.
#[test]
fn every_program_has_a_case() {
    let tested: BTreeSet<&str> = TESTED.iter().copied().collect();
    for (name, _) in PROGRAMS {
        let skipped = NOT_COMPARED.iter().find(|(n, _)| n == name);
        if let Some((_, why)) = skipped {
            println!("{name} is not compared: it {why}");
        }
        assert!(
            skipped.is_some() || (case(name).is_some() && tested.contains(name)),
            "WASI program {name} is neither compared nor listed as not comparable"
        );
    }
    for name in tested {
        assert!(
            PROGRAMS.iter().any(|(n, _)| *n == name),
            "{name} has a test but no program"
        );
    }
}

/// A seeded directory's tree is what [`seed`] made, so that the tree
/// comparisons above compare something.
#[test]
fn the_seed_tree_is_listed() {
    let dirs = Dirs::new("seed");
    let listed = tree(&dirs.vessel);
    let names: Vec<&str> = listed.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["readme.txt", "sub", "sub/data.bin", "sub/empty"],
        "{listed:?}"
    );
    assert_eq!(listed["sub"], Entry::Dir);
    assert_eq!(listed["readme.txt"], Entry::File(b"a seed file\n".to_vec()));
}

/// One test per compared program, named after it, and [`TESTED`], their
/// names.
macro_rules! compared {
    ($($name:ident),* $(,)?) => {
        /// The programs with a test of their own.
        const TESTED: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                compare(stringify!($name));
            }
        )*
    };
}

compared!(
    hello, echo, exit7, panic, clocks, random, cat, files, bigfile
);
