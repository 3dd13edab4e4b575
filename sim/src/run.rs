//! `sim run FILE [--invoke NAME [ARGS...]]`: load one module, instantiate
//! it on the hosted kernel and call one export.
//!
//! Output contract: each result on its own line on standard output (i32 and
//! i64 as signed decimal, f32 and f64 in Rust's `{:?}` form, NaN as `nan`);
//! a trap prints `trap: <kind>` and the wasm backtrace instead and exits 1;
//! bad input (unreadable file, malformed or invalid module, unknown import,
//! missing export, bad argument) is one line on standard error and exit 2.

use std::fmt;
use std::path::Path;

use hal_hosted::{Config, Hosted};
use kernel_core::exit;
use kernel_core::wasm::module::ValType;
use kernel_core::wasm::vm::{CallError, Extern, Store, Val};

/// Bytes of the CPU stack that wasm may use before it traps with stack
/// exhaustion (the hosted CPU threads have more than this).
const STACK_BUDGET: usize = 8 << 20;

/// Why `sim run` could not do what it was asked.
#[derive(Debug)]
pub enum RunError {
    /// The file could not be read.
    Read(String, std::io::Error),
    /// The text format did not parse.
    Text(String),
    /// The machine could not start.
    Machine(hal_hosted::HostError),
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
            Self::Read(path, e) => write!(f, "cannot read {path}: {e}"),
            Self::Text(e) => write!(f, "{}", e.lines().next().unwrap_or("bad text module")),
            Self::Machine(e) => write!(f, "cannot start the machine: {e}"),
            Self::Module(e) => f.write_str(e),
            Self::NoExport(name, have) => {
                write!(
                    f,
                    "no exported function `{name}` (exported functions: {})",
                    have.join(", ")
                )
            }
            Self::ArgCount { name, want, got } => {
                write!(f, "`{name}` takes {want} argument(s), {got} given")
            }
            Self::BadArg { index, text, ty } => {
                write!(
                    f,
                    "argument {} (`{text}`) is not a valid {}",
                    index + 1,
                    type_name(*ty)
                )
            }
        }
    }
}

fn type_name(ty: ValType) -> &'static str {
    match ty {
        ValType::I32 => "i32",
        ValType::I64 => "i64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        ValType::FuncRef => "funcref",
        ValType::ExternRef => "externref",
        ValType::V128 => "v128",
    }
}

/// Load `path`: binary as is, anything else through the text parser.
fn load(path: &Path) -> Result<Vec<u8>, RunError> {
    let bytes = std::fs::read(path).map_err(|e| RunError::Read(path.display().to_string(), e))?;
    if bytes.starts_with(b"\0asm") {
        return Ok(bytes);
    }
    wat::parse_bytes(&bytes)
        .map(|b| b.into_owned())
        .map_err(|e| RunError::Text(format!("{}: {e}", path.display())))
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
        ValType::FuncRef => (text == "null").then_some(Val::FuncRef(None)),
        ValType::ExternRef => (text == "null").then_some(Val::ExternRef(None)),
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
        Val::FuncRef(None) | Val::ExternRef(None) => "null".into(),
        Val::FuncRef(Some(_)) => "funcref".into(),
        Val::ExternRef(Some(n)) => format!("externref:{n}"),
        Val::V128(v) => format!("{v:#034x}"),
    }
}

/// Run `path`'s export `invoke` (default `_start`, else `main`) with `args`
/// on a hosted machine shaped by `config`. Returns the exit status; prints
/// results, traps and errors as the module doc says.
pub fn run(config: &Config, path: &Path, invoke: Option<&str>, args: &[String]) -> u8 {
    match try_run(config, path, invoke, args) {
        Ok(Ok(results)) => {
            for v in results {
                println!("{}", format_val(v));
            }
            exit::SUCCESS
        }
        Ok(Err(trap)) => {
            println!("{trap}");
            exit::FAILED
        }
        Err(e) => {
            eprintln!("sim: {e}");
            exit::USAGE
        }
    }
}

/// The results, or the trap text, or why nothing ran.
fn try_run(
    config: &Config,
    path: &Path,
    invoke: Option<&str>,
    args: &[String],
) -> Result<Result<Vec<Val>, String>, RunError> {
    let bytes = load(path)?;
    let hosted = Hosted::new(config).map_err(RunError::Machine)?;
    hal_hosted::run_on_cpu(&hosted, 0, || {
        kernel_core::boot::with_kernel(&hosted, |kernel| {
            let mut store =
                Store::new(kernel, STACK_BUDGET).map_err(|e| RunError::Module(e.to_string()))?;
            // Debuggers and profilers see `<file stem>!<function>`.
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                store.set_module_name(stem);
            }
            let module = store
                .compile(&bytes)
                .map_err(|e| RunError::Module(e.to_string()))?;
            let instance = match store.instantiate(&module, &|_, _| None) {
                Ok(i) => i,
                Err(kernel_core::wasm::vm::InstantiateError::Start(CallError::Trap(t))) => {
                    return Ok(Err(format!("trap: {t}")));
                }
                Err(e) => return Err(RunError::Module(e.to_string())),
            };
            let funcs: Vec<String> = store
                .exports(instance)
                .into_iter()
                .filter(|(_, e)| matches!(e, Extern::Func(_)))
                .map(|(n, _)| n)
                .collect();
            let name = match invoke {
                Some(n) => n.to_owned(),
                None => ["_start", "main"]
                    .into_iter()
                    .find(|n| funcs.iter().any(|f| f == n))
                    .unwrap_or("_start")
                    .to_owned(),
            };
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
                Ok(results) => Ok(Ok(results)),
                Err(CallError::Trap(t)) => Ok(Err(format!("trap: {t}"))),
                Err(e) => Err(RunError::Module(e.to_string())),
            }
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
