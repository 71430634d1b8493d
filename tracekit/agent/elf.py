"""Just enough ELF reading for tracing: section names and symbol file offsets.

Standard library only (see tracekit/agent/__init__.py).  Reads headers and
tables only, so it stays fast on a 1 GB vmlinux.
"""

import struct

PT_LOAD, SHT_SYMTAB, SHT_DYNSYM = 1, 2, 11


class _Elf:
    def __init__(self, f):
        ident = f.read(64)
        if len(ident) < 52 or ident[:4] != b"\x7fELF":
            raise ValueError("not an ELF file")
        self.f = f
        self.is64 = ident[4] == 2
        self.e = "<" if ident[5] == 1 else ">"
        if self.is64:
            self.phoff, self.shoff = struct.unpack_from(self.e + "QQ", ident, 0x20)
            self.phentsize, self.phnum, self.shentsize, self.shnum, self.shstrndx = \
                struct.unpack_from(self.e + "HHHHH", ident, 0x36)
        else:
            self.phoff, self.shoff = struct.unpack_from(self.e + "II", ident, 0x1C)
            self.phentsize, self.phnum, self.shentsize, self.shnum, self.shstrndx = \
                struct.unpack_from(self.e + "HHHHH", ident, 0x2A)

    def read(self, offset, size):
        self.f.seek(offset)
        data = self.f.read(size)
        if len(data) < size:
            raise ValueError("truncated ELF file")
        return data

    def sections(self):
        """[(name, type, offset, size, link, entsize)]"""
        table = self.read(self.shoff, self.shentsize * self.shnum)
        raw = []
        for i in range(self.shnum):
            if self.is64:
                name, typ, _, _, off, size, link, _, _, ent = struct.unpack_from(
                    self.e + "IIQQQQIIQQ", table, i * self.shentsize)
            else:
                name, typ, _, _, off, size, link, _, _, ent = struct.unpack_from(
                    self.e + "IIIIIIIIII", table, i * self.shentsize)
            raw.append((name, typ, off, size, link, ent))
        if self.shstrndx >= len(raw):
            raise ValueError("bad section name table index")
        strtab = self.read(raw[self.shstrndx][2], raw[self.shstrndx][3])
        return [(_cstr(strtab, r[0]),) + r[1:] for r in raw]

    def segments(self):
        """[(type, offset, vaddr, filesz)]"""
        table = self.read(self.phoff, self.phentsize * self.phnum)
        result = []
        for i in range(self.phnum):
            if self.is64:
                typ, _, off, vaddr, _, filesz = struct.unpack_from(self.e + "IIQQQQ", table, i * self.phentsize)
            else:
                typ, off, vaddr, _, filesz = struct.unpack_from(self.e + "IIIII", table, i * self.phentsize)
            result.append((typ, off, vaddr, filesz))
        return result


def _cstr(table, offset):
    end = table.find(b"\0", offset)
    return table[offset:end if end >= 0 else len(table)].decode(errors="replace")


def has_section(path, names):
    """True/False whether the ELF file has a non-empty section of one of these
    names; None when it cannot be read as ELF."""
    try:
        with open(path, "rb") as f:
            return any(s[0] in names and s[3] > 0 for s in _Elf(f).sections())
    except (OSError, ValueError, struct.error):
        return None


def symbol_file_offset(path, symbol):
    """File offset of a function symbol, as uprobe_events wants it."""
    with open(path, "rb") as f:
        elf = _Elf(f)
        sections = elf.sections()
        value = None
        for name, typ, off, size, link, ent in sections:
            if typ not in (SHT_SYMTAB, SHT_DYNSYM) or not ent:
                continue
            strtab = elf.read(sections[link][2], sections[link][3])
            data = elf.read(off, size)
            for i in range(size // ent):
                if elf.is64:
                    st_name, _, _, st_shndx, st_value, _ = struct.unpack_from(elf.e + "IBBHQQ", data, i * ent)
                else:
                    st_name, st_value, _, _, _, st_shndx = struct.unpack_from(elf.e + "IIIBBH", data, i * ent)
                if st_shndx and st_value and _cstr(strtab, st_name) == symbol:
                    value = st_value
                    break
            if value is not None:
                break
        if value is None:
            raise LookupError("%s: no symbol %s" % (path, symbol))
        for typ, off, vaddr, filesz in elf.segments():
            if typ == PT_LOAD and vaddr <= value < vaddr + filesz:
                return value - vaddr + off
        raise LookupError("%s: symbol %s is in no loadable segment" % (path, symbol))


SHT_NOTE, NT_GNU_BUILD_ID = 7, 3


def note_build_id(data, endian="<"):
    """The GNU build-id (hex) in a block of ELF notes (a SHT_NOTE section,
    or /sys/kernel/notes), or None."""
    offset = 0
    while offset + 12 <= len(data):
        namesz, descsz, typ = struct.unpack_from(endian + "III", data, offset)
        name_start = offset + 12
        desc_start = name_start + (namesz + 3) // 4 * 4
        end = desc_start + (descsz + 3) // 4 * 4
        if desc_start + descsz > len(data):
            return None
        if typ == NT_GNU_BUILD_ID and data[name_start:name_start + namesz].rstrip(b"\0") == b"GNU":
            return data[desc_start:desc_start + descsz].hex()
        offset = end
    return None


def build_id(path):
    """The GNU build-id (hex) of an ELF file, from its note sections; None
    when it has none."""
    with open(path, "rb") as f:
        elf = _Elf(f)
        for _, typ, off, size, _, _ in elf.sections():
            if typ == SHT_NOTE and size:
                found = note_build_id(elf.read(off, size), elf.e)
                if found:
                    return found
    return None
