//! Minimal DWARF 4 for one piece of JIT code: a compile unit named
//! `<module>.wasm` with a subprogram per function, and a line table whose
//! "line numbers" are wasm byte offsets in the module, so gdb shows
//! `at calc.wasm:41` for the instruction at module offset 41.
//!
//! Sections produced: `.debug_abbrev`, `.debug_info`, `.debug_line`
//! (32-bit DWARF, 8-byte addresses, little-endian).
//!
//! The prologue has no row: gdb then finds the end of the prologue by
//! reading the code (frame pointer set up) and puts a breakpoint on a
//! function there. A row at the function's first byte would make gdb skip
//! to the second row instead, which may lie past a trapping instruction.
//!
//! Invariants:
//! - INV-DWARF-1: each function's rows form one sequence, starting at its
//!   first byte and ended (`DW_LNE_end_sequence`) at its last byte + 1, so
//!   rows never leak across functions.
//! - INV-DWARF-2: the unit lengths written are the byte counts that follow
//!   them; they are patched after the contents are complete.

use kernel_core::hal::JitCode;

const DW_TAG_COMPILE_UNIT: u8 = 0x11;
const DW_TAG_SUBPROGRAM: u8 = 0x2e;
const DW_AT_NAME: u8 = 0x03;
const DW_AT_STMT_LIST: u8 = 0x10;
const DW_AT_LOW_PC: u8 = 0x11;
const DW_AT_HIGH_PC: u8 = 0x12;
const DW_AT_LANGUAGE: u8 = 0x13;
const DW_AT_EXTERNAL: u8 = 0x3f;
const DW_FORM_ADDR: u8 = 0x01;
const DW_FORM_DATA2: u8 = 0x05;
const DW_FORM_DATA8: u8 = 0x07;
const DW_FORM_STRING: u8 = 0x08;
const DW_FORM_SEC_OFFSET: u8 = 0x17;
const DW_FORM_FLAG_PRESENT: u8 = 0x19;
/// No DWARF language code names wasm; C keeps gdb's expression parser
/// ordinary.
const DW_LANG_C89: u16 = 0x0001;

const DW_LNS_COPY: u8 = 1;
const DW_LNS_ADVANCE_PC: u8 = 2;
const DW_LNS_ADVANCE_LINE: u8 = 3;
const DW_LNE_END_SEQUENCE: u8 = 1;
const DW_LNE_SET_ADDRESS: u8 = 2;
const OPCODE_BASE: u8 = 13;
const STANDARD_OPCODE_LENGTHS: [u8; 12] = [0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1];

fn uleb(b: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            b.push(byte);
            return;
        }
        b.push(byte | 0x80);
    }
}

fn sleb(b: &mut Vec<u8>, mut v: i64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        let done = (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0);
        b.push(if done { byte } else { byte | 0x80 });
        if done {
            return;
        }
    }
}

fn cstr(b: &mut Vec<u8>, s: &str) {
    // A NUL inside a name would end it early; names come from the module.
    b.extend(s.bytes().map(|c| if c == 0 { b'?' } else { c }));
    b.push(0);
}

/// Patch the 4-byte unit length at `at` to cover everything after it.
fn patch_len(b: &mut [u8], at: usize) {
    let len = (b.len() - at - 4) as u32;
    b[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// The `(name, contents)` debug sections describing `code`.
pub fn sections(code: &JitCode<'_>) -> Vec<(&'static str, Vec<u8>)> {
    let file = format!("{}.wasm", code.module);

    let mut abbrev = Vec::new();
    abbrev.extend_from_slice(&[1, DW_TAG_COMPILE_UNIT, 1]);
    abbrev.extend_from_slice(&[DW_AT_NAME, DW_FORM_STRING]);
    abbrev.extend_from_slice(&[DW_AT_LANGUAGE, DW_FORM_DATA2]);
    abbrev.extend_from_slice(&[DW_AT_STMT_LIST, DW_FORM_SEC_OFFSET]);
    abbrev.extend_from_slice(&[DW_AT_LOW_PC, DW_FORM_ADDR]);
    abbrev.extend_from_slice(&[DW_AT_HIGH_PC, DW_FORM_DATA8]);
    abbrev.extend_from_slice(&[0, 0]);
    abbrev.extend_from_slice(&[2, DW_TAG_SUBPROGRAM, 0]);
    abbrev.extend_from_slice(&[DW_AT_NAME, DW_FORM_STRING]);
    abbrev.extend_from_slice(&[DW_AT_LOW_PC, DW_FORM_ADDR]);
    abbrev.extend_from_slice(&[DW_AT_HIGH_PC, DW_FORM_DATA8]);
    abbrev.extend_from_slice(&[DW_AT_EXTERNAL, DW_FORM_FLAG_PRESENT]);
    abbrev.extend_from_slice(&[0, 0]);
    abbrev.push(0);

    let mut info = vec![0u8; 4];
    info.extend_from_slice(&4u16.to_le_bytes()); // version
    info.extend_from_slice(&0u32.to_le_bytes()); // abbrev offset
    info.push(8); // address size
    uleb(&mut info, 1);
    cstr(&mut info, &file);
    info.extend_from_slice(&DW_LANG_C89.to_le_bytes());
    info.extend_from_slice(&0u32.to_le_bytes()); // stmt_list: offset 0
    info.extend_from_slice(&(code.range.start as u64).to_le_bytes());
    info.extend_from_slice(&(code.range.len as u64).to_le_bytes());
    for s in code.symbols {
        uleb(&mut info, 2);
        cstr(&mut info, s.name);
        info.extend_from_slice(&(s.start as u64).to_le_bytes());
        info.extend_from_slice(&(s.len as u64).to_le_bytes());
    }
    info.push(0); // end of the unit's children
    patch_len(&mut info, 0);

    let mut line = vec![0u8; 4];
    line.extend_from_slice(&4u16.to_le_bytes()); // version
    let header_len_at = line.len();
    line.extend_from_slice(&[0; 4]);
    line.push(1); // minimum_instruction_length
    line.push(1); // maximum_operations_per_instruction
    line.push(1); // default_is_stmt
    line.push((-5i8) as u8); // line_base
    line.push(14); // line_range
    line.push(OPCODE_BASE);
    line.extend_from_slice(&STANDARD_OPCODE_LENGTHS);
    line.push(0); // no include directories
    cstr(&mut line, &file);
    line.extend_from_slice(&[0, 0, 0]); // directory, mtime, length
    line.push(0); // end of file names
    let header_len = (line.len() - header_len_at - 4) as u32;
    line[header_len_at..header_len_at + 4].copy_from_slice(&header_len.to_le_bytes());
    for s in code.symbols {
        if s.lines.is_empty() {
            continue;
        }
        // INV-DWARF-1: one sequence per function.
        line.extend_from_slice(&[0, 9, DW_LNE_SET_ADDRESS]);
        line.extend_from_slice(&(s.start as u64).to_le_bytes());
        let (mut pc, mut row) = (0u64, 1i64);
        for &(off, wasm) in s.lines {
            let off = u64::from(off);
            if off < pc || off >= s.len as u64 {
                continue;
            }
            if off > pc {
                line.push(DW_LNS_ADVANCE_PC);
                uleb(&mut line, off - pc);
                pc = off;
            }
            let wasm = i64::from(wasm);
            if wasm != row {
                line.push(DW_LNS_ADVANCE_LINE);
                sleb(&mut line, wasm - row);
                row = wasm;
            }
            line.push(DW_LNS_COPY);
        }
        let end = s.len as u64;
        if end > pc {
            line.push(DW_LNS_ADVANCE_PC);
            uleb(&mut line, end - pc);
        }
        line.extend_from_slice(&[0, 1, DW_LNE_END_SEQUENCE]);
    }
    patch_len(&mut line, 0);

    vec![
        (".debug_abbrev", abbrev),
        (".debug_info", info),
        (".debug_line", line),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel_core::hal::{JitSymbol, VirtRange};

    #[test]
    fn leb128_encodings() {
        let mut b = Vec::new();
        uleb(&mut b, 624_485);
        assert_eq!(b, [0xe5, 0x8e, 0x26]);
        b.clear();
        sleb(&mut b, -123_456);
        assert_eq!(b, [0xc0, 0xbb, 0x78]);
        b.clear();
        sleb(&mut b, 63);
        sleb(&mut b, 64);
        assert_eq!(b, [0x3f, 0xc0, 0x00]);
    }

    #[test]
    fn unit_lengths_cover_their_sections() {
        let syms = [JitSymbol {
            name: "m!f",
            start: 0x1000,
            len: 32,
            lines: &[(0, 40), (8, 42), (8, 43), (40, 50)],
        }];
        let code = JitCode {
            range: VirtRange {
                start: 0x1000,
                len: 4096,
            },
            module: "m",
            symbols: &syms,
        };
        for (name, s) in sections(&code) {
            if name == ".debug_abbrev" {
                assert_eq!(s.last(), Some(&0));
                continue;
            }
            let len = u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize;
            assert_eq!(len + 4, s.len(), "{name}");
        }
    }
}
