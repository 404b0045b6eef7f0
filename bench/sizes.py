"""Package size per function: the arm64 `bootstrap` that `cargo lambda build
--release --arm64` leaves under target/lambda/<name>/, and the zip Lambda
would be given (the file alone, deflate, as `cargo lambda build
--output-format zip` packs it).

    python bench/sizes.py OUT_DIR NAME ...

Prints one JSON object: per function the bootstrap's size, its ELF machine,
whether it still carries a symbol table, and the zip's size.
"""

import json
import os
import struct
import sys
import zipfile

MACHINES = {0x3E: "x86_64", 0xB7: "aarch64"}


def elf_facts(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return {"machine": "not a 64-bit ELF file", "symtab": None}
    machine = struct.unpack_from("<H", data, 18)[0]
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names_off = sections[shstrndx][4] if shnum else 0

    def name(entry):
        start = names_off + entry[0]
        return data[start:data.index(b"\0", start)].decode()

    names = {name(s) for s in sections}
    return {"machine": MACHINES.get(machine, hex(machine)), "symtab": ".symtab" in names,
            "debug_info": ".debug_info" in names}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    result = {}
    for name in sys.argv[2:]:
        bootstrap = os.path.join("target", "lambda", name, "bootstrap")
        if not os.path.exists(bootstrap):
            result[name] = {"error": f"{bootstrap} is missing (the arm64 build failed or did not run)"}
            continue
        archive = os.path.join(out, f"{name}.zip")
        info = zipfile.ZipInfo("bootstrap", date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(bootstrap, "rb") as f, zipfile.ZipFile(archive, "w") as z:
            z.writestr(info, f.read(), compresslevel=9)
        result[name] = {"bootstrap": bootstrap, "bootstrap_bytes": os.path.getsize(bootstrap),
                        "zip_bytes": os.path.getsize(archive),
                        "mtime": os.path.getmtime(bootstrap), **elf_facts(bootstrap)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
