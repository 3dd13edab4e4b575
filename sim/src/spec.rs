//! Spec suites on hosted through `kernel_core::spec`: the converter and
//! runner the riscv image uses for `test=spec`, so hosted and riscv run
//! the same directives through the same code (`sim boot test=spec` goes
//! through the kernel's boot path instead; this is the test harness's
//! shortcut to the same runner).

use hal_hosted::{Config, HostError, Hosted};
use kernel_core::spec::FileReport;
use kernel_core::spec::convert::{Suite, suite_bundle};

/// Bytes of the CPU stack wasm may use (the hosted CPU stack is 16 MiB).
pub const STACK_BUDGET: usize = hal_hosted::WASM_STACK;

/// Convert `suites` and run them on a hosted machine made from `config`
/// (its window raised to at least [`crate::wast::MIN_WINDOW`], so memories
/// keep their guard pages), on CPU 0, each script in a fresh store.
///
/// # Errors
/// [`HostError`] when the machine cannot be created. A damaged bundle
/// cannot occur (the converter made it); it would count one failure.
pub fn run_suites(config: &Config, suites: &[Suite]) -> Result<Vec<FileReport>, HostError> {
    let mut config = *config;
    config.window = config.window.max(crate::wast::MIN_WINDOW);
    run_suites_as_is(&config, suites)
}

/// [`run_suites`] with `config`'s window as given: a window as small as
/// riscv's Sv39 one (64 GiB) makes the runner bound every memory
/// (`kernel_core::spec::memory_reserve`), as it does on a riscv hart
/// without Sv48.
///
/// # Errors
/// As [`run_suites`].
pub fn run_suites_as_is(config: &Config, suites: &[Suite]) -> Result<Vec<FileReport>, HostError> {
    run_bundle(config, &suite_bundle(suites))
}

/// Run the spec-script `bundle` on a hosted machine made from `config`
/// (its window as given), on CPU 0, each script in a fresh store; a
/// damaged bundle is one failed report named `bundle`.
///
/// # Errors
/// [`HostError`] when the machine cannot be created.
pub fn run_bundle(config: &Config, bundle: &[u8]) -> Result<Vec<FileReport>, HostError> {
    let hosted = Hosted::new(config)?;
    Ok(hal_hosted::run_on_cpu(&hosted, 0, || {
        kernel_core::boot::with_kernel(&hosted, |k| {
            kernel_core::spec::run(k, bundle, STACK_BUDGET, |_| {}).unwrap_or_else(|e| {
                vec![FileReport {
                    name: "bundle".to_owned(),
                    passed: 0,
                    failed: 1,
                    failures: vec![format!("bundle: {e}")],
                }]
            })
        })
    }))
}

/// The per-file table, every failure line and `N passed, M failed`.
#[must_use]
pub fn summary(reports: &[FileReport]) -> String {
    let mut out = kernel_core::spec::header();
    for r in reports {
        out.push_str(&kernel_core::spec::row(r));
    }
    out.push_str(&kernel_core::spec::tail(reports, usize::MAX));
    out
}
