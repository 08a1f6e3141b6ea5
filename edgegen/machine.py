"""Where a result was measured: the platform, the CPU, and the CPU features that decide which int8 kernels run.

Two CPUs of one name ("AMD EPYC") can run different int8 kernels (with VNNI or without), and their int8 latency
and numerics differ: every benchmark result records this next to its numbers."""

from __future__ import annotations

import os
import platform
from pathlib import Path

# CPU features that decide which int8 (and bf16) kernels run: int8 numerics differ between machines with and without
# them.
INT8_CPU_FEATURES = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_int8",  # x86-64
    "asimddp",
    "i8mm",
    "sve",
)  # arm64: dot product, int8 matrix multiply, SVE


def machine_info(cpuinfo: str | Path = "/proc/cpuinfo") -> dict:
    """Where a result was measured: platform, CPU name, family/model, and the int8-relevant features it has."""
    info = {
        "hostname": platform.node(),
        "machine": platform.machine(),
        "system": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    try:
        lines = Path(cpuinfo).read_text(errors="replace").splitlines()
    except OSError:
        return info
    fields: dict[str, str] = {}
    for line in lines:
        if not line.strip():
            break  # the first processor's block describes them all
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    names = {"model name": "cpu", "cpu family": "cpu_family", "model": "cpu_model", "CPU part": "cpu_part"}
    info.update({out: fields[key] for key, out in names.items() if key in fields})
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    info["int8_features"] = [f for f in INT8_CPU_FEATURES if f in flags]
    return info
