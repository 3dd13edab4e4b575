//! Commitment (INV-MEM-2): a module that asks for more memory than RAM can
//! back gets `-1` from `memory.grow` or a clean instantiation error, never
//! a kernel fault (exit status 3), and the host process stays within the
//! machine's memory. Each case runs `sim` as a child and checks its exit
//! status, its output, and the peak resident memory of the children.

mod common;

use std::process::Output;

use common::{data, sim, stderr as err, stdout as out};

const KERNEL_FAULT: i32 = 3;

/// Peak resident set of the largest child this process has waited for,
/// in bytes (nextest runs each test in a process of its own, so: of this
/// test's children).
fn children_peak_rss() -> u64 {
    let mut usage = core::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable rusage; RUSAGE_CHILDREN is a
    // valid `who`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage");
    // SAFETY: getrusage succeeded, so it filled the struct (and it was
    // zeroed before).
    let usage = unsafe { usage.assume_init() };
    u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024
}

/// Run `sim [flags] run <commit/file> --invoke f [args]` and check that the
/// kernel did not fault and the host stayed within `memory` plus the
/// program's own footprint.
fn run(memory_mib: u64, extra: &[&str], file: &str, args: &[&str]) -> Output {
    run_path(memory_mib, extra, &data(&format!("commit/{file}")), args)
}

/// [`run`] of the module at `path`.
fn run_path(memory_mib: u64, extra: &[&str], path: &str, args: &[&str]) -> Output {
    let memory = format!("{memory_mib}M");
    let mut argv = vec!["--cpus", "1", "--memory", &memory];
    argv.extend_from_slice(extra);
    argv.extend_from_slice(&["run", path, "--invoke", "f"]);
    argv.extend_from_slice(args);
    let o = sim(&argv);
    assert_ne!(
        o.status.code(),
        Some(KERNEL_FAULT),
        "kernel fault:\n{}",
        err(&o)
    );
    assert!(
        o.status.code().is_some(),
        "killed by a signal:\n{}",
        err(&o)
    );
    // The guest may use all of `memory`; the sim binary itself (a debug
    // build with Cranelift) stays well under 256 MiB besides.
    let peak = children_peak_rss();
    let bound = (memory_mib + 256) << 20;
    assert!(peak < bound, "peak RSS {peak} bytes, bound {bound}");
    o
}

fn expect_minus_one(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "{}", err(o));
    assert_eq!(out(o), "-1\n", "memory.grow must fail: {}", err(o));
}

#[test]
fn grow_past_ram_then_fill_returns_minus_one() {
    expect_minus_one(&run(64, &[], "grow_fill.wat", &["1024"]));
}

#[test]
fn grow_past_ram_then_copy_returns_minus_one() {
    expect_minus_one(&run(64, &[], "grow_copy.wat", &["1024"]));
}

#[test]
fn grow_past_ram_in_deterministic_mode_returns_minus_one() {
    expect_minus_one(&run(64, &["--deterministic"], "grow_fill.wat", &["1024"]));
}

#[test]
fn grow_all_of_default_ram_returns_minus_one() {
    expect_minus_one(&run(512, &[], "grow_fill.wat", &["8192"]));
}

/// 8192 pages at 512 MiB used to be granted, and a store into each page
/// then trapped as out of bounds though every address was in bounds: the
/// grow must fail, or every store must land.
#[test]
fn grow_then_store_every_page_never_traps_in_bounds() {
    for pages in ["8192", "8191", "4096"] {
        let o = run(512, &[], "grow_store.wat", &[pages]);
        assert_eq!(o.status.code(), Some(0), "{pages}: {}", err(&o));
        let got = out(&o);
        assert!(
            got == "-1\n" || got == format!("{pages}\n"),
            "{pages}: {got} {}",
            err(&o)
        );
    }
}

/// What can be committed can be touched: 900 pages of a 1024-page machine.
#[test]
fn grow_within_ram_then_store_every_page_lands() {
    let o = run(64, &[], "grow_store.wat", &["900"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), "900\n", "{}", err(&o));
}

/// No grow at all: a 64 MiB initial memory on a 64 MiB machine cannot be
/// committed, and instantiation says so in one line.
#[test]
fn initial_memory_past_ram_is_a_clean_error() {
    let o = run(64, &[], "big_fill.wat", &[]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    let e = err(&o);
    assert!(e.contains("out of memory"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

/// Tables live in owner-charged memory: ten tables of 10M elements do not
/// fit a 64 MiB machine, and instantiation says so in one line.
#[test]
fn tables_past_ram_are_a_clean_error() {
    let o = run(64, &[], "big_tables.wat", &[]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    let e = err(&o);
    assert!(e.contains("out of memory"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

/// `table.grow` past what RAM can back returns -1; within it, the table
/// grows and every element is writable.
#[test]
fn table_grow_is_committed() {
    expect_minus_one(&run(64, &[], "table_grow.wat", &["10000000"]));
    let o = run(64, &[], "table_grow.wat", &["1000000"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), "1000000\n", "{}", err(&o));
}

/// A binary module whose one function `f: () -> i32` has `body` (the
/// instructions, without the final `end`) and no locals.
fn module_with_body(body: &[u8]) -> Vec<u8> {
    let mut func = vec![0]; // no locals
    func.extend_from_slice(body);
    func.push(0x0b);
    let mut code = vec![1];
    leb(func.len(), &mut code);
    code.extend_from_slice(&func);
    module_of(&[
        (1, vec![1, 0x60, 0, 1, 0x7f]), // (func (result i32))
        (3, vec![1, 0]),
        (7, vec![1, 1, b'f', 0, 0]), // export "f" = func 0
        (10, code),
    ])
}

/// Write `bytes` to a fresh file of this test process; its path.
fn temp_file(name: &str, bytes: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("vessel-commit-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).expect("write the file");
    path.to_string_lossy().into_owned()
}

/// Compilation is bounded by its owner's memory: a body that expands into
/// a huge IR is refused in one line naming the function, within the
/// machine's memory, instead of taking gigabytes of host memory.
#[test]
fn compile_bombs_are_clean_errors() {
    let mut chain = vec![0x41, 1]; // i32.const 1
    for _ in 0..1_000_000 {
        chain.extend_from_slice(&[0x41, 1, 0x6a]); // i32.const 1, i32.add
    }
    let mut loops = Vec::new();
    for _ in 0..100_000 {
        loops.extend_from_slice(&[0x03, 0x40, 0x0b]); // loop end
    }
    loops.extend_from_slice(&[0x41, 0]);
    for (name, body) in [("chain.wasm", chain), ("loops.wasm", loops)] {
        refused_in_one_line(
            name,
            &module_with_body(&body),
            &[
                "out of memory compiling function 0",
                "function 0 is too large to compile",
            ],
        );
    }
}

/// `sim run` of `module` (written to file `name`) under 64 MiB exits 2
/// with one line that says one of `why`.
fn refused_in_one_line(name: &str, module: &[u8], why: &[&str]) {
    let path = temp_file(name, module);
    let o = run_path(64, &[], &path, &[]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(o.status.code(), Some(2), "{name}: {}", err(&o));
    let e = err(&o);
    assert!(why.iter().any(|w| e.contains(w)), "{name}: {e}");
    assert_eq!(e.lines().count(), 1, "{name}: {e}");
}

/// A module of `sections` (id, contents) after the header.
fn module_of(sections: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    for (id, content) in sections {
        m.push(*id);
        leb(content.len(), &mut m);
        m.extend_from_slice(content);
    }
    m
}

fn leb(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// `count` then `item` repeated `count` times: a section's contents.
fn vec_of(count: usize, item: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + count * item.len());
    leb(count, &mut v);
    for _ in 0..count {
        v.extend_from_slice(item);
    }
    v
}

/// What a module makes the kernel keep is charged before it is built: a
/// few megabytes of entries that each expand into a kernel structure (an
/// element item, a signature, a function name) are refused in one line
/// naming the section, within the machine's memory; they took 200 MB to
/// 800 MB of host memory under `--memory 64M` before.
#[test]
fn metadata_bombs_are_clean_errors() {
    let one_type = vec_of(1, &[0x60, 0, 0]);
    let one_func = vec_of(1, &[0]);
    let one_body = vec_of(1, &[2, 0, 0x0b]);
    // 10 million `ref.func 0` items in one passive segment.
    let mut elems = vec![1, 1, 0]; // one segment: passive, funcref indices
    elems.extend(vec_of(10_000_000, &[0]));
    let mut names = vec![4];
    names.extend_from_slice(b"name");
    let mut map = Vec::new();
    leb(1_000_000, &mut map);
    for i in 0..1_000_000 {
        leb(i, &mut map);
        map.push(0); // an empty name
    }
    names.push(1); // function names
    leb(map.len(), &mut names);
    names.extend(map);
    let bombs = [
        (
            "elements.wasm",
            vec![
                (1, one_type.clone()),
                (3, one_func.clone()),
                (9, elems),
                (10, one_body.clone()),
            ],
            "element",
        ),
        (
            "types.wasm",
            vec![(1, vec_of(1_000_000, &[0x60, 0, 0]))],
            "type",
        ),
        (
            "names.wasm",
            vec![(1, one_type), (3, one_func), (10, one_body), (0, names)],
            "name",
        ),
    ];
    for (name, sections, section) in bombs {
        let why = format!("out of memory keeping the {section} section");
        refused_in_one_line(name, &module_of(&sections), &[&why]);
    }
}

/// 250 live instances of one-page memories in one script used to run out
/// of the window after 166; the window holds them all now.
#[test]
fn a_script_of_250_memories_fits_the_window() {
    let mut script = String::new();
    for i in 0..250 {
        script.push_str(&format!(
            "(module $m{i} (memory 1) (func (export \"f\") (result i32) (i32.const {i})))\n\
             (assert_return (invoke $m{i} \"f\") (i32.const {i}))\n"
        ));
    }
    let path = temp_file("many.wast", script.as_bytes());
    let o = sim(&["wast", &path]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert!(out(&o).contains(" 0 failed"), "{}", out(&o));
}
