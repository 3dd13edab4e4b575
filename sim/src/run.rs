//! `sim run FILE --invoke NAME [ARGS...] [--timeout DURATION]`: load one
//! module, instantiate it on the hosted kernel and call one export, outside
//! the process model (without `--invoke`, `sim run` runs a program:
//! `program`).
//!
//! Output contract: each result on its own line on standard output (i32 and
//! i64 as signed decimal, f32 and f64 in Rust's `{:?}` form, NaN as `nan`);
//! a trap prints `trap: <kind>` and the wasm backtrace instead and exits 1;
//! bad input (unreadable, oversized, malformed or invalid module, unknown
//! import, missing export, bad argument) is one line on standard error and
//! exit 2; a run (start function included) still going when `--timeout` is
//! up is interrupted, `sim: timed out after <limit>` on standard error and
//! exit 5; standard output that cannot be written is one line on standard
//! error and exit 6. Names from the module are escaped
//! (`kernel_core::escape`).

use std::fmt;
use std::path::Path;

use hal_hosted::{Config, Hosted};
use kernel_core::escape;
use kernel_core::exit;
use kernel_core::wasm::TrapKind;
use kernel_core::wasm::module::ValType;
use kernel_core::wasm::vm::{CallError, Extern, InstantiateError, Store, Val};
use sim::input::{self, InputError};
use sim::timeout::{Limit, with_watchdog};

use crate::out;

/// Bytes of the CPU stack that wasm may use before it traps with stack
/// exhaustion (the hosted CPU threads have more than this).
const STACK_BUDGET: usize = 8 << 20;

/// Exported functions a "no such export" message lists before it says how
/// many more there are.
const LISTED_EXPORTS: usize = 16;

/// Why `sim run` could not do what it was asked.
#[derive(Debug)]
pub enum RunError {
    /// The file gave no module.
    Input(InputError),
    /// The machine could not start.
    Machine(hal_hosted::HostError),
    /// The timeout watcher could not start.
    Watcher(std::io::Error),
    /// The module did not compile or instantiate.
    Module(String),
    /// No such exported function.
    NoExport(String, Vec<String>),
    /// The argument count does not match the parameters.
    ArgCount {
        name: String,
        want: usize,
        got: usize,
    },
    /// An argument does not parse as its parameter's type.
    BadArg {
        index: usize,
        text: String,
        ty: ValType,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Input(e) => e.fmt(f),
            Self::Machine(e) => write!(f, "cannot start the machine: {e}"),
            Self::Watcher(e) => write!(f, "cannot start the timeout watcher: {e}"),
            Self::Module(e) => f.write_str(e),
            Self::NoExport(name, have) => {
                write!(
                    f,
                    "no exported function `{}` (exported functions: ",
                    escape::name(name)
                )?;
                for (i, n) in have.iter().take(LISTED_EXPORTS).enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{}", escape::name(n))?;
                }
                if have.len() > LISTED_EXPORTS {
                    write!(f, " and {} more", have.len() - LISTED_EXPORTS)?;
                }
                f.write_str(")")
            }
            Self::ArgCount { name, want, got } => {
                write!(
                    f,
                    "`{}` takes {want} argument(s), {got} given",
                    escape::name(name)
                )
            }
            Self::BadArg { index, text, ty } => {
                write!(
                    f,
                    "argument {} (`{}`) is not a valid {}",
                    index + 1,
                    escape::name(text),
                    ty
                )
            }
        }
    }
}

/// Parse one argument as a value of `ty`. Integers take the signed or the
/// unsigned spelling; floats take anything Rust's float parser does (`3e10`,
/// `inf`, `-0.0`, `nan`).
pub fn parse_arg(text: &str, ty: ValType) -> Option<Val> {
    match ty {
        ValType::I32 => text
            .parse::<i32>()
            .ok()
            .or_else(|| text.parse::<u32>().ok().map(|u| u as i32))
            .map(Val::I32),
        ValType::I64 => text
            .parse::<i64>()
            .ok()
            .or_else(|| text.parse::<u64>().ok().map(|u| u as i64))
            .map(Val::I64),
        ValType::F32 => text.parse::<f32>().ok().map(|f| Val::F32(f.to_bits())),
        ValType::F64 => text.parse::<f64>().ok().map(|f| Val::F64(f.to_bits())),
        // Only null references can be spelled on a command line.
        ValType::Ref(r) => (text == "null" && r.nullable).then_some(Val::null(r)),
        // A v128 is spelled as one hexadecimal integer: `0x` and up to 32
        // digits, lane 0 in the lowest bits.
        ValType::V128 => text
            .strip_prefix("0x")
            .and_then(|h| u128::from_str_radix(h, 16).ok())
            .map(Val::V128),
    }
}

/// Format one result as the output contract says.
pub fn format_val(v: Val) -> String {
    match v {
        Val::I32(i) => i.to_string(),
        Val::I64(i) => i.to_string(),
        Val::F32(bits) => {
            let f = f32::from_bits(bits);
            if f.is_nan() {
                "nan".into()
            } else {
                format!("{f:?}")
            }
        }
        Val::F64(bits) => {
            let f = f64::from_bits(bits);
            if f.is_nan() {
                "nan".into()
            } else {
                format!("{f:?}")
            }
        }
        Val::FuncRef(None) | Val::ExternRef(None) | Val::ExnRef(None) => "null".into(),
        Val::FuncRef(Some(_)) => "funcref".into(),
        Val::ExnRef(Some(_)) => "exnref".into(),
        Val::ExternRef(Some(n)) => format!("externref:{n}"),
        Val::V128(v) => format!("{v:#034x}"),
    }
}

/// How a run ended, when it ran.
enum Outcome {
    /// The call returned these.
    Results(Vec<Val>),
    /// The start function or the call trapped: `trap: ...` and the
    /// backtrace.
    Trap(String),
    /// The time limit was up; the running code was interrupted.
    TimedOut(Limit),
}

/// Run `path`'s export `invoke` with `args`
/// on a hosted machine shaped by `config`, within `limit`. Returns the exit
/// status; prints results, traps and errors as the module doc says.
pub fn run(
    config: &Config,
    path: &Path,
    invoke: &str,
    args: &[String],
    limit: Option<Limit>,
) -> u8 {
    match try_run(config, path, invoke, args, limit) {
        Ok(Outcome::Results(results)) => {
            let mut text = String::new();
            for v in results {
                text.push_str(&format_val(v));
                text.push('\n');
            }
            match out::print(&text) {
                Ok(()) => exit::SUCCESS,
                Err(e) => out::lost(&e),
            }
        }
        Ok(Outcome::Trap(trap)) => match out::print(&format!("{trap}\n")) {
            Ok(()) => exit::FAILED,
            Err(e) => out::lost(&e),
        },
        Ok(Outcome::TimedOut(limit)) => {
            out::error(format_args!("timed out after {limit}"));
            exit::TIMEOUT
        }
        Err(e) => {
            out::error(format_args!("{e}"));
            exit::USAGE
        }
    }
}

/// How the run ended, or why nothing ran.
fn try_run(
    config: &Config,
    path: &Path,
    invoke: &str,
    args: &[String],
    limit: Option<Limit>,
) -> Result<Outcome, RunError> {
    let bytes = input::module(path).map_err(RunError::Input)?;
    let hosted = Hosted::new(config).map_err(RunError::Machine)?;
    hal_hosted::run_on_cpu(&hosted, 0, || {
        kernel_core::boot::with_kernel(&hosted, |kernel| {
            with_watchdog(limit, |dog| {
                // A trap of an interrupted call is the limit's doing.
                let trapped = |t: &kernel_core::wasm::vm::Trap| match dog.limit() {
                    Some(limit) if t.kind == TrapKind::Interrupted && dog.expired() => {
                        Outcome::TimedOut(limit)
                    }
                    _ => Outcome::Trap(format!("trap: {t}")),
                };
                let mut store = Store::new(kernel, STACK_BUDGET)
                    .map_err(|e| RunError::Module(e.to_string()))?;
                dog.watch(&store);
                // Debuggers and profilers see `<file stem>!<function>`.
                if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                    store.set_module_name(stem);
                }
                let module = store
                    .compile(&bytes)
                    .map_err(|e| RunError::Module(e.to_string()))?;
                let instance = match store.instantiate(&module, &|_, _| None) {
                    Ok(i) => i,
                    Err(InstantiateError::Start(CallError::Trap(t))) => return Ok(trapped(&t)),
                    Err(e) => return Err(RunError::Module(e.to_string())),
                };
                let funcs: Vec<String> = store
                    .exports(instance)
                    .into_iter()
                    .filter(|(_, e)| matches!(e, Extern::Func(_)))
                    .map(|(n, _)| n)
                    .collect();
                let name = invoke.to_owned();
                let Some(Extern::Func(func)) = store.export(instance, &name) else {
                    return Err(RunError::NoExport(name, funcs));
                };
                let params = func.ty().params.clone();
                if params.len() != args.len() {
                    return Err(RunError::ArgCount {
                        name,
                        want: params.len(),
                        got: args.len(),
                    });
                }
                let vals = args
                    .iter()
                    .zip(&params)
                    .enumerate()
                    .map(|(index, (text, &ty))| {
                        parse_arg(text, ty).ok_or_else(|| RunError::BadArg {
                            index,
                            text: text.clone(),
                            ty,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                match store.invoke(&func, &vals) {
                    Ok(results) => Ok(Outcome::Results(results)),
                    Err(CallError::Trap(t)) => Ok(trapped(&t)),
                    Err(e) => Err(RunError::Module(e.to_string())),
                }
            })
            .map_err(RunError::Watcher)?
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_take_signed_and_unsigned_spellings() {
        assert_eq!(parse_arg("-1", ValType::I32), Some(Val::I32(-1)));
        assert_eq!(parse_arg("4294967295", ValType::I32), Some(Val::I32(-1)));
        assert_eq!(
            parse_arg("18446744073709551615", ValType::I64),
            Some(Val::I64(-1))
        );
        assert_eq!(parse_arg("4294967296", ValType::I32), None);
        assert_eq!(parse_arg("1.5", ValType::I32), None);
    }

    #[test]
    fn floats_take_exponents_infinities_and_nan() {
        assert_eq!(
            parse_arg("3e10", ValType::F64),
            Some(Val::F64(3e10f64.to_bits()))
        );
        assert_eq!(
            parse_arg("-0.0", ValType::F32),
            Some(Val::F32((-0.0f32).to_bits()))
        );
        assert_eq!(
            parse_arg("inf", ValType::F32),
            Some(Val::F32(f32::INFINITY.to_bits()))
        );
        assert!(
            matches!(parse_arg("nan", ValType::F64), Some(Val::F64(b)) if f64::from_bits(b).is_nan())
        );
        assert_eq!(parse_arg("x", ValType::F64), None);
        assert_eq!(parse_arg("0x0102", ValType::V128), Some(Val::V128(0x0102)));
        assert_eq!(parse_arg("258", ValType::V128), None);
        assert_eq!(format_val(Val::V128(1)), format!("0x{:032x}", 1));
    }

    #[test]
    fn results_format_as_specified() {
        assert_eq!(format_val(Val::I32(-5)), "-5");
        assert_eq!(format_val(Val::I64(i64::MIN)), "-9223372036854775808");
        assert_eq!(format_val(Val::F32(1.5f32.to_bits())), "1.5");
        assert_eq!(format_val(Val::F64(f64::NAN.to_bits())), "nan");
        assert_eq!(format_val(Val::F64((-0.0f64).to_bits())), "-0.0");
    }
}
