//! `sim run`: results, traps with backtraces, argument parsing and errors.

mod common;

use std::process::Output;

use common::{data, scratch, sim, sim_command, stderr as err, stdout as out};

fn sim_run(args: &[&str]) -> Output {
    let mut full = vec!["--cpus".to_owned(), "1".to_owned(), "run".to_owned()];
    for (i, a) in args.iter().enumerate() {
        full.push(if i == 0 { data(a) } else { (*a).to_owned() });
    }
    sim(&full)
}

#[test]
fn fib_30_through_invoke() {
    let o = sim_run(&["fib.wat", "--invoke", "main"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), "832040\n");
}

#[test]
fn divide_by_zero_traps_with_backtrace() {
    let o = sim_run(&["divzero.wat", "--invoke", "outer", "0"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let text = out(&o);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("trap: integer divide by zero"));
    let bt: Vec<&str> = lines.collect();
    assert!(bt[0].contains("(inner)"), "{text}");
    assert!(bt[1].contains("(outer)"), "{text}");
}

#[test]
fn negative_and_unsigned_arguments() {
    let o = sim_run(&[
        "args.wat",
        "--invoke",
        "add64",
        "-1",
        "18446744073709551615",
    ]);
    assert_eq!(out(&o), "-2\n", "{}", err(&o));
    let o = sim_run(&["args.wat", "--invoke", "neg", "-0.0"]);
    assert_eq!(out(&o), "0.0\n", "{}", err(&o));
    let o = sim_run(&["args.wat", "--invoke", "neg", "inf"]);
    assert_eq!(out(&o), "-inf\n", "{}", err(&o));
    let o = sim_run(&["args.wat", "--invoke", "neg", "nan"]);
    assert_eq!(out(&o), "nan\n", "{}", err(&o));
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    for args in [
        &["args.wat", "--invoke", "neg", "x"][..],
        &["args.wat", "--invoke", "neg"],
        &["args.wat", "--invoke", "missing"],
        &["no-such-file.wasm"],
        &["invalid.wat"],
    ] {
        let o = sim_run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}{}", out(&o), err(&o));
        let e = err(&o);
        assert_eq!(e.lines().count(), 1, "{args:?}: {e}");
        assert!(e.starts_with("sim: "), "{args:?}: {e}");
    }
}

/// Growing to 1 GiB and writing every 4 KiB page must fit in 2 GiB of
/// memory without running into Linux's 65,530 mappings per process: the
/// memory is committed in 64 KiB granules, one host mapping each.
#[test]
fn one_gib_memory_touched_page_by_page() {
    let data = data("grow1g.wat");
    let data = data.as_str();
    let o = sim(&[
        "--cpus", "1", "--memory", "2G", "run", data, "--invoke", "main",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), "262144\n");
    // With 512 MiB the growth is refused up front: memory.grow gives -1.
    let o = sim(&[
        "--cpus", "1", "--memory", "512M", "run", data, "--invoke", "main",
    ]);
    assert_eq!(out(&o), "-1\n", "{}", err(&o));
}

/// Without `--invoke`, `sim run` runs a program as a WASI process: its
/// arguments after its name, exactly the given environment, its standard
/// output alone on `sim`'s, and its exit code as `sim`'s.
#[test]
fn a_program_runs_as_a_process_with_its_arguments_and_environment() {
    let o = sim_run(&["wasi_echo.wat", "--env", "K=v 1", "a", "-b", "c d"]);
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert_eq!(out(&o), "a\n-b\nc d\nK=v 1\n");
    assert_eq!(err(&o), "");
}

/// A program that traps prints `trap: <kind>` and its backtrace on
/// standard error and exits 134, as wasmtime does; a bad `--env` is one
/// line and exit 2.
#[test]
fn a_program_that_traps_exits_134_and_a_bad_env_is_a_usage_error() {
    let o = sim_run(&["wasi_echo.wat", "trap"]);
    assert_eq!(o.status.code(), Some(134), "{}", err(&o));
    assert_eq!(out(&o), "");
    let e = err(&o);
    assert!(
        e.starts_with("trap: integer divide by zero\n  at func "),
        "{e}"
    );
    let o = sim_run(&["wasi_echo.wat", "--env", "NOEQUALS"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(err(&o).lines().count(), 1, "{}", err(&o));
}

/// The compiled-module entries (`*.vslc`) in `dir`.
fn entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "vslc"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `sim run` keeps compiled programs: in `--cache DIR`, by default in
/// `$XDG_CACHE_HOME/vessel`, nowhere with `--no-cache`; a damaged entry
/// is compiled again and rewritten, and the program runs the same.
#[test]
fn compiled_programs_are_kept_in_the_cache_directory() {
    let dir = scratch("cache");
    let cache = dir.join("modules");
    let cache_arg = cache.to_string_lossy().into_owned();
    let echo = data("wasi_echo.wat");
    let want = sim_run(&["wasi_echo.wat", "--no-cache", "x"]);
    assert_eq!(out(&want), "x\n", "{}", err(&want));
    let run = |extra: &[&str]| {
        let mut args = vec!["--cpus", "1", "run"];
        args.extend_from_slice(extra);
        args.extend([echo.as_str(), "x"]);
        sim(&args)
    };
    let same = |o: &Output| {
        assert_eq!(o.status.code(), want.status.code(), "{}", err(o));
        assert_eq!(out(o), out(&want));
    };
    same(&run(&["--cache", &cache_arg]));
    let kept = entries(&cache);
    assert_eq!(kept.len(), 1, "{kept:?}");
    let good = std::fs::read(&kept[0]).expect("entry");
    // Loaded the second time: the entry is left as it is.
    same(&run(&["--cache", &cache_arg]));
    assert_eq!(std::fs::read(&kept[0]).expect("entry"), good);
    // Damaged: compiled again and rewritten.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x80;
    std::fs::write(&kept[0], &bad).expect("damage the entry");
    same(&run(&["--cache", &cache_arg]));
    assert_eq!(std::fs::read(&kept[0]).expect("entry"), good);
    // The default directory, under XDG_CACHE_HOME.
    let home = dir.join("home");
    let o = sim_command()
        .env("XDG_CACHE_HOME", &home)
        .args(["--cpus", "1", "run", echo.as_str(), "x"])
        .output()
        .expect("sim runs");
    same(&o);
    assert_eq!(entries(&home.join("vessel")).len(), 1);
    // --no-cache writes nothing.
    let none = dir.join("none");
    let o = sim_command()
        .env("XDG_CACHE_HOME", &none)
        .args(["--cpus", "1", "run", "--no-cache", echo.as_str(), "x"])
        .output()
        .expect("sim runs");
    same(&o);
    assert!(!none.exists());
    // Both at once: one line, exit 2.
    let o = run(&["--cache", &cache_arg, "--no-cache"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(err(&o).lines().count(), 1, "{}", err(&o));
    let _ = std::fs::remove_dir_all(&dir);
}
