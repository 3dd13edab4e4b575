//! A minimal ELF64 relocatable object describing one piece of JIT code, for
//! gdb's JIT interface (`jit`).
//!
//! Layout: the ELF header, then the section contents, then the section
//! header table. Sections: null, `.text` (`SHT_NOBITS`: the bytes live in
//! the process, at the section's address), `.symtab`, `.strtab`,
//! `.shstrtab`, and, when `debug` sections are given (`dwarf`), each of
//! them as `SHT_PROGBITS`.
//!
//! Invariants:
//! - INV-ELF-1: `.text`'s `sh_addr` is the code's absolute address and every
//!   function symbol's `st_value` is its offset from that address (the
//!   object is `ET_REL`: gdb places each section at its `sh_addr`).
//! - INV-ELF-2: every offset and size written fits the buffer built here;
//!   the builder never reads back what it wrote.

/// One function symbol: name, offset from the text start, length.
pub struct Symbol<'a> {
    /// Its name.
    pub name: &'a str,
    /// Offset from the start of `.text`.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
}

const EHDR_SIZE: usize = 64;
const SHDR_SIZE: usize = 64;
const SYM_SIZE: usize = 24;

const SHT_PROGBITS: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_STRTAB: u32 = 3;
const SHT_NOBITS: u32 = 8;
const SHF_ALLOC: u64 = 2;
const SHF_EXECINSTR: u64 = 4;
const STB_GLOBAL: u8 = 1;
const STT_FUNC: u8 = 2;
const STT_SECTION: u8 = 3;
const TEXT_INDEX: u16 = 1;

/// The ELF machine of this host.
const MACHINE: u16 = if cfg!(target_arch = "x86_64") {
    62 // EM_X86_64
} else if cfg!(target_arch = "aarch64") {
    183 // EM_AARCH64
} else if cfg!(target_arch = "riscv64") {
    243 // EM_RISCV
} else {
    0 // EM_NONE: gdb will not know the code, but nothing breaks
};

/// A section header to write.
struct Shdr {
    name: u32,
    kind: u32,
    flags: u64,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    align: u64,
    entsize: u64,
}

/// A string table under construction.
#[derive(Default)]
struct StrTab(Vec<u8>);

impl StrTab {
    fn new() -> Self {
        Self(vec![0])
    }

    fn add(&mut self, s: &str) -> u32 {
        let at = self.0.len() as u32;
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
        at
    }
}

fn put16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn align_to(b: &mut Vec<u8>, align: usize) {
    b.resize(b.len().next_multiple_of(align), 0);
}

/// Build the object for code at `text_addr`, `text_size` bytes long, with
/// `symbols` and extra `(name, contents)` debug sections.
pub fn build(
    text_addr: u64,
    text_size: u64,
    symbols: &[Symbol<'_>],
    debug: &[(&str, Vec<u8>)],
) -> Vec<u8> {
    let mut shstr = StrTab::new();
    let mut strtab = StrTab::new();
    // Symbols: null, the section symbol of .text, then the functions.
    let mut symtab = vec![0u8; SYM_SIZE];
    put32(&mut symtab, 0);
    symtab.push(STT_SECTION); // local
    symtab.push(0);
    put16(&mut symtab, TEXT_INDEX);
    put64(&mut symtab, 0);
    put64(&mut symtab, 0);
    let first_global = 2u32;
    for s in symbols {
        put32(&mut symtab, strtab.add(s.name));
        symtab.push((STB_GLOBAL << 4) | STT_FUNC);
        symtab.push(0);
        put16(&mut symtab, TEXT_INDEX);
        put64(&mut symtab, s.offset);
        put64(&mut symtab, s.size);
    }

    let mut out = vec![0u8; EHDR_SIZE];
    let mut shdrs = vec![Shdr {
        name: 0,
        kind: 0,
        flags: 0,
        addr: 0,
        offset: 0,
        size: 0,
        link: 0,
        info: 0,
        align: 0,
        entsize: 0,
    }];
    shdrs.push(Shdr {
        name: shstr.add(".text"),
        kind: SHT_NOBITS,
        flags: SHF_ALLOC | SHF_EXECINSTR,
        addr: text_addr,
        offset: EHDR_SIZE as u64,
        size: text_size,
        link: 0,
        info: 0,
        align: 16,
        entsize: 0,
    });
    align_to(&mut out, 8);
    let symtab_index = shdrs.len() as u32;
    shdrs.push(Shdr {
        name: shstr.add(".symtab"),
        kind: SHT_SYMTAB,
        flags: 0,
        addr: 0,
        offset: out.len() as u64,
        size: symtab.len() as u64,
        link: symtab_index + 1, // .strtab follows
        info: first_global,
        align: 8,
        entsize: SYM_SIZE as u64,
    });
    out.extend_from_slice(&symtab);
    shdrs.push(Shdr {
        name: shstr.add(".strtab"),
        kind: SHT_STRTAB,
        flags: 0,
        addr: 0,
        offset: out.len() as u64,
        size: strtab.0.len() as u64,
        link: 0,
        info: 0,
        align: 1,
        entsize: 0,
    });
    out.extend_from_slice(&strtab.0);
    for (name, contents) in debug {
        shdrs.push(Shdr {
            name: shstr.add(name),
            kind: SHT_PROGBITS,
            flags: 0,
            addr: 0,
            offset: out.len() as u64,
            size: contents.len() as u64,
            link: 0,
            info: 0,
            align: 1,
            entsize: 0,
        });
        out.extend_from_slice(contents);
    }
    let shstrndx = shdrs.len() as u16;
    let shstr_name = shstr.add(".shstrtab");
    shdrs.push(Shdr {
        name: shstr_name,
        kind: SHT_STRTAB,
        flags: 0,
        addr: 0,
        offset: out.len() as u64,
        size: shstr.0.len() as u64,
        link: 0,
        info: 0,
        align: 1,
        entsize: 0,
    });
    out.extend_from_slice(&shstr.0);
    align_to(&mut out, 8);
    let shoff = out.len() as u64;
    for h in &shdrs {
        put32(&mut out, h.name);
        put32(&mut out, h.kind);
        put64(&mut out, h.flags);
        put64(&mut out, h.addr);
        put64(&mut out, h.offset);
        put64(&mut out, h.size);
        put32(&mut out, h.link);
        put32(&mut out, h.info);
        put64(&mut out, h.align);
        put64(&mut out, h.entsize);
    }

    // The header, now that every offset is known (INV-ELF-2).
    let mut eh = Vec::with_capacity(EHDR_SIZE);
    eh.extend_from_slice(b"\x7fELF");
    eh.push(2); // ELFCLASS64
    eh.push(1); // ELFDATA2LSB
    eh.push(1); // EV_CURRENT
    eh.push(0); // ELFOSABI_NONE
    eh.resize(16, 0);
    put16(&mut eh, 1); // ET_REL
    put16(&mut eh, MACHINE);
    put32(&mut eh, 1); // EV_CURRENT
    put64(&mut eh, 0); // e_entry
    put64(&mut eh, 0); // e_phoff
    put64(&mut eh, shoff);
    put32(&mut eh, 0); // e_flags
    put16(&mut eh, EHDR_SIZE as u16);
    put16(&mut eh, 0); // e_phentsize
    put16(&mut eh, 0); // e_phnum
    put16(&mut eh, SHDR_SIZE as u16);
    put16(&mut eh, shdrs.len() as u16);
    put16(&mut eh, shstrndx);
    out[..EHDR_SIZE].copy_from_slice(&eh);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(a)
    }

    #[test]
    fn header_and_section_table_are_consistent() {
        let syms = [
            Symbol {
                name: "m!a",
                offset: 0,
                size: 16,
            },
            Symbol {
                name: "m!b",
                offset: 16,
                size: 32,
            },
        ];
        let elf = build(0x7000_0000, 4096, &syms, &[]);
        assert_eq!(&elf[..4], b"\x7fELF");
        let shoff = u64_at(&elf, 0x28) as usize;
        let shnum = u16_at(&elf, 0x3c) as usize;
        assert_eq!(shnum, 5);
        assert_eq!(elf.len(), shoff + shnum * SHDR_SIZE);
        // .text: NOBITS at the code's address.
        let text = shoff + SHDR_SIZE;
        assert_eq!(u64_at(&elf, text + 0x10), 0x7000_0000);
        assert_eq!(u64_at(&elf, text + 0x20), 4096);
        // .symtab: null, section, two functions.
        let symtab = shoff + 2 * SHDR_SIZE;
        assert_eq!(u64_at(&elf, symtab + 0x20), 4 * SYM_SIZE as u64);
        let strtab_off = u64_at(&elf, shoff + 3 * SHDR_SIZE + 0x18) as usize;
        assert_eq!(&elf[strtab_off..strtab_off + 9], b"\0m!a\0m!b\0");
    }
}
