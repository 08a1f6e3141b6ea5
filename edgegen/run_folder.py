"""A sequencing run folder as ``watch`` sees it: the reads files at any depth, which barcode each belongs to,
MinKNOW's ``output_hash_*`` lists and ``final_summary_*`` marker (device-side, standard library)."""

from __future__ import annotations

import hashlib
import os
import re

SUFFIXES = (".fastq", ".fq", ".fasta", ".fa", ".fna")


def is_reads_file(name: str) -> bool:
    n = name.lower()
    n = n[:-3] if n.endswith(".gz") else n
    return n.endswith(SUFFIXES)


def barcode_of(rel: str) -> str:
    for part in rel.split("/")[:-1]:
        if re.fullmatch(r"(barcode\d+|unclassified)", part):
            return part
    return "all"


HEX = re.compile(r"^[0-9a-fA-F]{32,128}$")


def listed_hashes(run_dir: str, hash_files: list[str]) -> dict[str, str]:
    """MinKNOW's ``output_hash_*`` files: ``{file name: digest}`` of the files it lists as written (a line holding a
    hex digest and a name; the digest's length says md5 / sha1 / sha256)."""
    out = {}
    for f in hash_files:
        try:
            text = open(os.path.join(run_dir, f), encoding="utf-8", errors="replace").read()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.replace(",", " ").split()
            digest = next((w for w in words if HEX.match(w)), None)
            name = next((w for w in reversed(words) if is_reads_file(w)), None)
            if digest and name:
                out[os.path.basename(name)] = digest.lower()
    return out


def digest_of(path: str, digest: str) -> str:
    h = hashlib.new({32: "md5", 40: "sha1", 64: "sha256"}.get(len(digest), "sha512"))
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def scan(run_dir: str, skip: str) -> tuple[dict[str, tuple[int, int]], bool]:
    """Every reads file below ``run_dir`` (any depth, links not followed) with (size, mtime_ns); and whether the
    run has ended (a ``final_summary_*`` file). ``scan.hash_files`` lists the ``output_hash_*`` files seen."""
    files, final = {}, False
    scan.hash_files = []
    skip = os.path.realpath(skip)
    for d, dirs, names in os.walk(run_dir):
        dirs[:] = sorted(x for x in dirs if os.path.realpath(os.path.join(d, x)) != skip)
        for n in names:
            p = os.path.join(d, n)
            if n.startswith("final_summary"):
                final = True
            if n.startswith("output_hash"):
                scan.hash_files.append(os.path.relpath(os.path.join(d, n), run_dir))
            if is_reads_file(n) and not n.startswith(".") and os.path.isfile(p) and not os.path.islink(p):
                st = os.stat(p)
                files[os.path.relpath(p, run_dir).replace(os.sep, "/")] = (st.st_size, st.st_mtime_ns)
    return files, final
