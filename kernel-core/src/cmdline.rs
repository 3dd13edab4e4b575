//! The kernel command line: `key=value` words separated by spaces.
//!
//! The same words reach the kernel from QEMU's `-append` (the device tree's
//! `/chosen/bootargs`) and from `sim`'s trailing arguments.
//!
//! | word | meaning |
//! |---|---|
//! | `test=all` | the self-tests, then the demo (the default) |
//! | `test=self` | run the kernel self-tests, ending with `N passed, M failed` |
//! | `test=demo` | run the demo processes on every CPU and print their summary table |
//! | `test=spec` | run the WebAssembly spec scripts the platform provides, ending with `N passed, M failed` |
//! | `test=diff` | replay the differential-oracle bundle passed as the boot image (modules and wasmtime's outcomes, [`crate::diff`]), ending with `N passed, M failed` |
//! | `test=wasi` | run the embedded Rust WASI programs as processes, ending with `N passed, M failed` |
//! | `test=input` | run a process that reads one line of console input and prints it, then how many slices it ran while it waited |
//! | `test=fault` | touch an unmapped kernel address on purpose, to show the fatal-fault report |
//! | `test=lockfault` | touch a demand-paged page while holding the address-space write lock, to show that the fault is reported, not a hang |
//! | `test=overflow` | recurse on the kernel stack until it overflows, to show that the guard page below it turns the overflow into the fatal-fault report |
//! | `test=bigmem` | grow a wasm memory to 1 GiB and touch every 4 KiB page, with guard-page bounds ([`crate::bigmem`]; needs more than 1 GiB of RAM) |
//! | `test=init` | unpack the boot image into the root tmpfs and run init from it ([`crate::init`]); the default when the platform passed a boot image |
//! | `init=PATH` | the program `test=init` runs (default `/bin/init`); implies `test=init` |
//! | `-- ARGS` | every word after `--` is an argument of init, after its name |
//! | `log=LEVEL` | `off`, `error`, `warn` (default), `info`, `debug` or `trace`, for platforms without their own filter |
//! | `debug=jit` | announce JIT code to gdb's JIT interface ([`crate::gdb_jit`]) on platforms where it is off by default (riscv: each module's code then costs an in-memory ELF object, within a share of the heap); hosted always announces it |

use core::fmt;

/// What the kernel runs after boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// The self-tests, then the demo.
    All,
    /// The kernel self-tests, ending with `N passed, M failed`.
    SelfTest,
    /// The demo processes ([`crate::demo`]).
    Demo,
    /// The embedded WASI programs ([`crate::wasi_check`]).
    Wasi,
    /// One line of console input, read by a process
    /// ([`crate::wasi_check::read_line`]).
    Input,
    /// A deliberate unresolvable kernel fault.
    Fault,
    /// A deliberate fault under the address-space write lock.
    LockFault,
    /// A deliberate kernel stack overflow.
    Overflow,
    /// A 1 GiB wasm memory, every page touched ([`crate::bigmem`]).
    BigMemory,
    /// The WebAssembly spec scripts the platform provides
    /// ([`crate::boot::BootInfo::spec`]).
    Spec,
    /// The differential-oracle bundle passed as the boot image
    /// ([`crate::diff::replay`]).
    Diff,
    /// Init from the boot image ([`crate::init`]).
    Init,
}

/// A log level from `log=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Nothing.
    Off,
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Informational messages and above.
    Info,
    /// Debug messages and above.
    Debug,
    /// Everything.
    Trace,
}

/// A parsed command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cmdline<'a> {
    /// What to run; `None` when no word chose (the platform's default:
    /// [`Cmdline::workload_or`]).
    pub workload: Option<Workload>,
    /// The log level asked for.
    pub log: LogLevel,
    /// `init=`: the program init runs.
    pub init: Option<&'a str>,
    /// `debug=jit`: announce JIT code to gdb where that is optional.
    pub jit_debug: bool,
    /// The words after `--`: init's arguments, in order (a slice of the
    /// command line, split on whitespace).
    pub init_args: &'a str,
}

impl Default for Cmdline<'_> {
    fn default() -> Self {
        Self {
            workload: None,
            log: LogLevel::Warn,
            init: None,
            jit_debug: false,
            init_args: "",
        }
    }
}

/// A command-line word the kernel does not understand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineError<'a> {
    /// A word that is not `key=value` or whose key is unknown.
    UnknownWord(&'a str),
    /// A known key with a value it does not take.
    BadValue {
        /// The key.
        key: &'a str,
        /// The value given.
        value: &'a str,
    },
}

impl fmt::Display for CmdlineError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownWord(w) => {
                write!(
                    f,
                    "unknown command-line word `{}` (known: test=all|self|demo|spec|diff|wasi|input|init|fault|lockfault|overflow|bigmem, init=PATH, log=LEVEL, debug=jit, -- ARGS)",
                    crate::escape::name(w)
                )
            }
            Self::BadValue { key, value } => write!(
                f,
                "bad value `{}` for `{}`",
                crate::escape::name(value),
                crate::escape::name(key)
            ),
        }
    }
}

impl<'a> Cmdline<'a> {
    /// What to run: the workload a word chose, else `default`.
    pub fn workload_or(&self, default: Workload) -> Workload {
        self.workload.unwrap_or(default)
    }

    /// Parse `text`.
    ///
    /// # Errors
    /// The first word that is not understood.
    pub fn parse(text: &'a str) -> Result<Self, CmdlineError<'a>> {
        let mut out = Self::default();
        // Everything after the first word `--` is init's.
        let (words, args) =
            text.split_ascii_whitespace()
                .find(|w| *w == "--")
                .map_or((text, ""), |w| {
                    let at = w.as_ptr() as usize - text.as_ptr() as usize;
                    (&text[..at], &text[at + 2..])
                });
        out.init_args = args;
        for word in words.split_ascii_whitespace() {
            let (key, value) = word
                .split_once('=')
                .ok_or(CmdlineError::UnknownWord(word))?;
            let bad = CmdlineError::BadValue { key, value };
            match key {
                "test" => {
                    out.workload = Some(match value {
                        "all" => Workload::All,
                        "self" => Workload::SelfTest,
                        "demo" => Workload::Demo,
                        "wasi" => Workload::Wasi,
                        "input" => Workload::Input,
                        "fault" => Workload::Fault,
                        "lockfault" => Workload::LockFault,
                        "overflow" => Workload::Overflow,
                        "bigmem" => Workload::BigMemory,
                        "spec" => Workload::Spec,
                        "diff" => Workload::Diff,
                        "init" => Workload::Init,
                        _ => return Err(bad),
                    })
                }
                "init" => {
                    if !value.starts_with('/') {
                        return Err(bad);
                    }
                    out.init = Some(value);
                    out.workload.get_or_insert(Workload::Init);
                }
                "log" => {
                    out.log = match value {
                        "off" => LogLevel::Off,
                        "error" => LogLevel::Error,
                        "warn" => LogLevel::Warn,
                        "info" => LogLevel::Info,
                        "debug" => LogLevel::Debug,
                        "trace" => LogLevel::Trace,
                        _ => return Err(bad),
                    }
                }
                "debug" => match value {
                    "jit" => out.jit_debug = true,
                    _ => return Err(bad),
                },
                _ => return Err(CmdlineError::UnknownWord(word)),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;

    #[test]
    fn defaults_and_words() {
        assert_eq!(Cmdline::parse("").unwrap(), Cmdline::default());
        let c = Cmdline::parse("  test=fault log=debug ").unwrap();
        assert_eq!(c.workload, Some(Workload::Fault));
        assert_eq!(c.log, LogLevel::Debug);
        assert_eq!(
            Cmdline::parse("test=spec").unwrap().workload,
            Some(Workload::Spec)
        );
        assert_eq!(
            Cmdline::parse("test=diff").unwrap().workload,
            Some(Workload::Diff)
        );
        // A boot image does not make `test=diff` init.
        assert_eq!(
            Cmdline::parse("test=diff")
                .unwrap()
                .workload_or(Workload::Init),
            Workload::Diff
        );
        assert_eq!(
            Cmdline::parse("").unwrap().workload_or(Workload::All),
            Workload::All
        );
        assert_eq!(
            Cmdline::parse("test=overflow").unwrap().workload,
            Some(Workload::Overflow)
        );
        assert_eq!(
            Cmdline::parse("log=info test=bigmem").unwrap().workload,
            Some(Workload::BigMemory)
        );
    }

    #[test]
    fn init_and_its_arguments() {
        let c = Cmdline::parse("init=/bin/sh log=info -- -c  'echo hi' --").unwrap();
        assert_eq!(c.workload, Some(Workload::Init));
        assert_eq!(c.init, Some("/bin/sh"));
        assert_eq!(c.log, LogLevel::Info);
        assert_eq!(
            c.init_args.split_ascii_whitespace().collect::<Vec<_>>(),
            ["-c", "'echo", "hi'", "--"]
        );
        // A test word wins over init='s implied workload, in any order.
        let c = Cmdline::parse("init=/x test=self").unwrap();
        assert_eq!(c.workload, Some(Workload::SelfTest));
        assert_eq!(
            Cmdline::parse("test=self init=/x").unwrap().workload,
            Some(Workload::SelfTest)
        );
        assert_eq!(Cmdline::parse("log=info --").unwrap().init_args, "");
        assert_eq!(Cmdline::parse("-- a").unwrap().init_args.trim(), "a");
        assert_eq!(
            Cmdline::parse("a--b"),
            Err(CmdlineError::UnknownWord("a--b"))
        );
        assert_eq!(
            Cmdline::parse("init=bin/sh"),
            Err(CmdlineError::BadValue {
                key: "init",
                value: "bin/sh"
            })
        );
    }

    #[test]
    fn debug_jit() {
        assert!(!Cmdline::parse("test=self").unwrap().jit_debug);
        let c = Cmdline::parse("debug=jit init=/sbin/init -- debug=x").unwrap();
        assert!(c.jit_debug);
        assert_eq!(c.workload, Some(Workload::Init));
        // After `--` the word is init's, not the kernel's.
        assert!(!Cmdline::parse("-- debug=jit").unwrap().jit_debug);
        assert_eq!(
            Cmdline::parse("debug=all"),
            Err(CmdlineError::BadValue {
                key: "debug",
                value: "all"
            })
        );
    }

    #[test]
    fn errors_name_the_word() {
        assert_eq!(
            Cmdline::parse("quiet"),
            Err(CmdlineError::UnknownWord("quiet"))
        );
        assert_eq!(Cmdline::parse("x=1"), Err(CmdlineError::UnknownWord("x=1")));
        assert_eq!(
            Cmdline::parse("test=specs"),
            Err(CmdlineError::BadValue {
                key: "test",
                value: "specs"
            })
        );
        assert_eq!(
            Cmdline::parse("test=overflows"),
            Err(CmdlineError::BadValue {
                key: "test",
                value: "overflows"
            })
        );
    }
}
