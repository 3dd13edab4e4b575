//! Booting from a boot image (`kernel_core::init`): the cpio archive
//! unpacked into the root tmpfs, init run from it on the console with the
//! arguments after `--`, and the machine's exit status init's
//! (INV-INIT-1); a missing program, a damaged image and a trapping init
//! each end the boot with one line and their status.

use kernel_core::exit;
use kernel_core::fs::cpio::{self, Item, Kind};
use tests::wasi_programs::PROGRAMS;

fn program(name: &str) -> &'static [u8] {
    PROGRAMS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, m)| *m)
        .unwrap_or_else(|| panic!("no WASI program {name}"))
}

/// An image with `bin/` holding the named programs, and `etc/motd`.
fn image(bins: &[(&str, &str)]) -> Vec<u8> {
    let names: Vec<String> = bins.iter().map(|(at, _)| format!("bin/{at}")).collect();
    let mut items = vec![Item {
        name: b"bin",
        kind: Kind::Directory,
        perms: 0o755,
        data: b"",
    }];
    for (name, (_, prog)) in names.iter().zip(bins) {
        items.push(Item {
            name: name.as_bytes(),
            kind: Kind::Regular,
            perms: 0o755,
            data: program(prog),
        });
    }
    items.push(Item {
        name: b"etc/motd",
        kind: Kind::Regular,
        perms: 0o644,
        data: b"welcome\n",
    });
    cpio::write(&items).expect("an image")
}

/// Boot a 2-CPU machine with `image` and `cmdline`: its exit status and
/// console.
fn boot(image: &[u8], cmdline: &str) -> (u8, String) {
    let config = hal_hosted::Config {
        capture_console: true,
        ..tests::machine::machine(2)
    };
    let hosted = hal_hosted::Hosted::new(&config).expect("machine");
    let info = kernel_core::boot::BootInfo {
        cmdline,
        initrd: image,
        ..kernel_core::boot::BootInfo::default()
    };
    let code = hal_hosted::boot_on(&hosted, info).expect("boot");
    let console =
        String::from_utf8_lossy(&hosted.captured_console().unwrap_or_default()).into_owned();
    (code, console)
}

#[test]
fn init_runs_from_the_image_and_its_exit_status_is_the_machines() {
    // With an image and no word, /bin/init runs.
    let (code, console) = boot(&image(&[("init", "exit7")]), "");
    assert_eq!(code, 7, "{console}");
}

#[test]
fn init_gets_the_words_after_the_double_dash() {
    let img = image(&[("init", "exit7"), ("echo", "echo")]);
    let (code, console) = boot(&img, "init=/bin/echo -- first --second third");
    assert_eq!(code, exit::SUCCESS, "{console}");
    assert!(
        console.contains("first\n--second\nthird\n"),
        "init's arguments: {console}"
    );
}

#[test]
fn a_missing_init_a_damaged_image_and_a_trap_end_the_boot_with_one_line() {
    let img = image(&[("echo", "echo"), ("boom", "panic")]);
    let (code, console) = boot(&img, "");
    assert_eq!(code, exit::USAGE, "{console}");
    assert!(console.contains("init: /bin/init: "), "{console}");

    let mut damaged = img.clone();
    damaged.truncate(damaged.len() - 200);
    let (code, console) = boot(&damaged, "init=/bin/echo");
    assert_eq!(code, exit::USAGE, "{console}");
    assert!(console.contains("init: boot image: cpio: "), "{console}");

    let (code, console) = boot(&img, "init=/bin/boom");
    assert_eq!(code, exit::FAILED, "{console}");
    assert!(console.contains("init: trapped: "), "{console}");

    // A path that is a directory is no program either.
    let (code, console) = boot(&img, "init=/bin");
    assert_eq!(code, exit::USAGE, "{console}");
    assert!(console.contains("init: /bin: "), "{console}");

    // A path with control characters is printed escaped.
    let (code, console) = boot(&img, "init=/bin/\u{1b}[31m\u{7}");
    assert_eq!(code, exit::USAGE, "{console}");
    assert!(
        !console.contains('\u{1b}') && !console.contains('\u{7}'),
        "{console:?}"
    );
    assert!(
        console.contains("init: /bin/\\x1b[31m\\x07: "),
        "{console:?}"
    );

    // A link loop where init should be ends the boot as a missing one.
    let looped = cpio::write(&[
        Item {
            name: b"bin/init",
            kind: Kind::Symlink,
            perms: 0o777,
            data: b"sh",
        },
        Item {
            name: b"bin/sh",
            kind: Kind::Symlink,
            perms: 0o777,
            data: b"init",
        },
    ])
    .expect("an image");
    let (code, console) = boot(&looped, "");
    assert_eq!(code, exit::USAGE, "{console}");
    assert!(console.contains("init: /bin/init: "), "{console}");
}

#[test]
fn test_init_without_an_image_says_so() {
    let (code, console) = boot(&[], "test=init");
    assert_eq!(code, exit::USAGE, "{console}");
    assert!(console.contains("init: no boot image"), "{console}");
}
