use super::*;
use crate::wasm::budget::Unmetered;
use crate::wasm::compile::{TargetArch, compile_module};

const WAT: &str = r#"(module
  (memory 1)
  (func $f (export "f") (param i32 i32) (result i32)
    local.get 0 local.get 1 i32.div_s)
  (func (export "g") (result i32) i32.const 7 i32.const 1 call $f)
  (func (export "h") (param i64) (result i64 f32)
    local.get 0 i32.wrap_i64 i32.load i64.extend_i32_u local.get 0 f32.convert_i64_s)
  (data (i32.const 8) "hello"))"#;

fn setup() -> (Vec<u8>, Compiler, TranslateConfig, CompiledModule, Vec<u8>) {
    let bytes = wat::parse_str(WAT).unwrap();
    let compiler = Compiler::host().unwrap();
    let config = TranslateConfig::default();
    let module = compile_module(&bytes, &config, &compiler).unwrap();
    let art = encode(&module, &bytes, &compiler, &config).unwrap();
    (bytes, compiler, config, module, art)
}

fn load(
    art: &[u8],
    bytes: &[u8],
    c: &Compiler,
    cfg: &TranslateConfig,
) -> Result<CompiledModule, ArtifactError> {
    load_within(art, bytes, c, cfg, &mut Unmetered)
}

#[test]
fn round_trips_every_function_and_trampoline() {
    let (bytes, c, cfg, module, art) = setup();
    let back = load(&art, &bytes, &c, &cfg).unwrap();
    assert_eq!(back.functions, module.functions);
    assert_eq!(back.trampolines, module.trampolines);
    assert_eq!(back.offsets, module.offsets);
    assert_eq!(back.info.exports.len(), 3);
    assert!(module.functions.iter().any(|f| !f.relocs.is_empty()));
    assert!(module.functions.iter().any(|f| !f.traps.is_empty()));
}

#[test]
fn every_flipped_byte_is_refused() {
    let (bytes, c, cfg, _, art) = setup();
    for i in 0..art.len() {
        let mut bad = art.clone();
        bad[i] ^= 0x40;
        let e = load(&bad, &bytes, &c, &cfg).unwrap_err();
        assert!(
            matches!(
                e,
                ArtifactError::Checksum
                    | ArtifactError::BadMagic
                    | ArtifactError::OtherFormat(_)
                    | ArtifactError::Truncated
            ),
            "byte {i}: {e:?}"
        );
    }
}

#[test]
fn every_truncation_is_refused() {
    let (bytes, c, cfg, _, art) = setup();
    for n in 0..art.len() {
        assert!(load(&art[..n], &bytes, &c, &cfg).is_err(), "length {n}");
    }
}

#[test]
fn another_module_version_or_setting_is_refused() {
    let (mut bytes, c, cfg, _, art) = setup();
    let other_cfg = TranslateConfig {
        force_bounds_checks: true,
        ..cfg
    };
    assert_eq!(
        load(&art, &bytes, &c, &other_cfg).unwrap_err(),
        ArtifactError::OtherVersion
    );
    {
        let other_arch = if cfg!(target_arch = "riscv64") {
            TargetArch::X86_64
        } else {
            TargetArch::Riscv64
        };
        let other = Compiler::for_arch(other_arch).unwrap();
        assert_eq!(
            load(&art, &bytes, &other, &cfg).unwrap_err(),
            ArtifactError::OtherVersion
        );
    }
    // One byte of the module's data changed.
    let at = bytes.windows(5).position(|w| w == b"hello").unwrap();
    bytes[at] = b'j';
    assert_eq!(
        load(&art, &bytes, &c, &cfg).unwrap_err(),
        ArtifactError::OtherModule
    );
    assert_ne!(key(&bytes, &c, &cfg), key(&setup().0, &c, &cfg));
}

#[test]
fn a_payload_that_lies_about_counts_is_malformed_not_a_panic() {
    let (bytes, c, cfg, _, art) = setup();
    // Re-seal a payload whose function count is huge: the checksum holds,
    // the count cannot.
    let vlen = u32::from_le_bytes(art[12..16].try_into().unwrap()) as usize;
    let payload_at = 16 + vlen + 32 + 8;
    let mut body = art[..art.len() - 32].to_vec();
    body[payload_at..payload_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let sum = Sha256::digest(&body);
    body.extend_from_slice(&sum);
    assert_eq!(
        load(&body, &bytes, &c, &cfg).unwrap_err(),
        ArtifactError::Malformed
    );
}
