"""Offline bundles: the exact wheels a device's runner needs, fetched by pip on the host at bundle time.

A sequencer add-on in the field often has no internet. ``edgegen bundle M --out DIR --wheelhouse --platform
linux_aarch64 --python 3.11`` puts numpy, the model's runtime (ai-edge-litert for .tflite, or with ``--tflite-runtime``
tflite-runtime and numpy<2; onnxruntime for .onnx),
tokenizers for a BPE model and dnaio for FASTA/FASTQ, at the versions this host verified the model with, under
``DIR/wheels/`` with ``requirements.txt`` (pins with sha256) and ``install.sh``, which makes a venv on the device
and installs from those files alone (``pip --no-index``; pip itself travels as a wheel). The device needs Python 3
of the bundle's version and nothing else.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from edgegen.errors import BackendError, UsageError

# pip matches platform tags exactly: every manylinux tag the runtimes' wheels are published under
PLATFORM_TAGS = {
    "linux_aarch64": [
        "manylinux2014_aarch64",
        "manylinux_2_17_aarch64",
        "manylinux_2_24_aarch64",
        "manylinux_2_27_aarch64",
        "manylinux_2_28_aarch64",
        "linux_aarch64",
    ],
    "linux_x86_64": [
        "manylinux2014_x86_64",
        "manylinux_2_17_x86_64",
        "manylinux_2_24_x86_64",
        "manylinux_2_27_x86_64",
        "manylinux_2_28_x86_64",
        "linux_x86_64",
    ],
}
RUNTIME_PACKAGE = {".tflite": "ai-edge-litert", ".onnx": "onnxruntime"}

INSTALL_SH = r"""#!/bin/sh
# Install this bundle's runner on the device, offline: a venv beside this file, from wheels/ only.
#   sh install.sh                 (PYTHON=python3.11 sh install.sh to choose the interpreter)
#   venv/bin/python runner.py measure --model MODEL --inputs inputs.npz --out result.json
set -eu
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
# every file of the bundle against MANIFEST.json (runner.py needs only the standard library), before pip runs
$PY runner.py verify || { echo "install.sh: the bundle differs from its manifest; nothing installed" >&2; exit 1; }
want="@PYTHON@"
have=$($PY -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$have" != "$want" ]; then
    echo "install.sh: this bundle's wheels are for Python $want; $PY is $have (make the bundle with --python $have)" >&2
    exit 1
fi
machine=$($PY -c 'import platform; print(platform.machine())')
if [ "$machine" != "@MACHINE@" ]; then
    echo "install.sh: this bundle's wheels are for @MACHINE@; this machine is $machine" >&2
    exit 1
fi
$PY -m venv --without-pip venv
site=$($PY -c 'import sysconfig; print(sysconfig.get_path("purelib", vars={"base": "venv", "platbase": "venv"}))')
$PY wheels/@PIP@/pip install --no-index --find-links wheels --no-warn-script-location \
    --disable-pip-version-check --root-user-action=ignore --require-hashes --target "$site" -r requirements.txt
echo "installed; run: venv/bin/python runner.py measure --model @MODEL@ --inputs inputs.npz --out result.json"
"""


def runner_requirements(model: Path, sidecar: dict, tflite_runtime: bool = False) -> list[str]:
    """What the runner imports for this model, pinned to this host's versions (those the export was verified with).
    dnaio (FASTA/FASTQ for ``runner.py predict``) is optional: see :func:`write_wheelhouse`. cryptography checks
    signed bundles (``runner.py deploy``)."""

    extra = ["cryptography"] + (["tokenizers"] if (sidecar.get("tokenizer") or {}).get("bpe") else [])
    if tflite_runtime:  # the older interpreter many Pi images use: built against numpy 1.x, wheels up to CPython 3.10
        if model.suffix != ".tflite":
            raise UsageError("--tflite-runtime is for .tflite models", path=model)
        return ["numpy<2", "tflite-runtime"] + [_pinned(p) for p in extra]
    return [_pinned(p) for p in ["numpy", RUNTIME_PACKAGE[model.suffix], *extra]]


def _pinned(package: str) -> str:
    from importlib import metadata

    try:
        return f"{package}=={metadata.version(package)}"
    except metadata.PackageNotFoundError:
        return package  # not on this host (e.g. the TFLite runtime on an ONNX-only host): the newest wheel


def download(requirements: list[str], dest: Path, platform: str, python: str) -> list[Path]:
    """``pip download`` the wheels (and their dependencies, and pip) for ``platform`` / CPython ``python`` into
    ``dest``.

    Raises:
        UsageError: an unknown platform or Python version.
        BackendError: no wheel of a package for that platform and Python (naming them), or pip failed.
    """
    if platform not in PLATFORM_TAGS:
        raise UsageError(f"unknown platform {platform!r} (known: {', '.join(PLATFORM_TAGS)})")
    if not re.fullmatch(r"3\.\d{1,2}", python):
        raise UsageError(f"--python wants a CPython version like 3.11, not {python!r}")
    cp = "cp" + python.replace(".", "")
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--dest",
        str(dest),
        "--python-version",
        python,
        "--implementation",
        "cp",
        "--abi",
        cp,
        "--abi",
        "abi3",
        "--abi",
        "none",
    ]
    for tag in PLATFORM_TAGS[platform]:
        cmd += ["--platform", tag]
    # pip itself goes as a pure-Python wheel: install.sh runs it straight from the .whl
    r = subprocess.run(cmd + ["--no-deps", "pip"], capture_output=True, text=True)
    if r.returncode == 0:
        r = subprocess.run(cmd + requirements, capture_output=True, text=True)
    if r.returncode != 0:
        err = r.stderr + r.stdout
        m = re.search(r"No matching distribution found for (\S+)", err) or re.search(
            r"Could not find a version that satisfies the requirement (\S+)", err
        )
        if m:
            raise BackendError(
                f"no wheel of {m.group(1)} for {platform} / CPython {python} on the package index: choose "
                "another --python or --platform (or another runtime: export the other format)"
            )
        last = [x for x in err.strip().splitlines() if x.strip()][-1:] or ["(no output)"]
        raise BackendError(f"pip download failed for {platform} / CPython {python}: {last[0][:300]}")
    return sorted(dest.glob("*.whl"))


def write_wheelhouse(
    bundle: Path, model: Path, sidecar: dict, platform: str, python: str, tflite_runtime: bool = False
) -> dict:
    """Fill ``bundle/wheels``, ``bundle/requirements.txt`` (every wheel, pinned by sha256) and ``bundle/install.sh``."""
    from edgegen.io import sha256_file

    wheels = download(runner_requirements(model, sidecar, tflite_runtime), bundle / "wheels", platform, python)
    notes = []
    try:  # dnaio publishes no arm64 wheels (it would compile on the device): there edgegen.data.fastx reads FASTA/FASTQ
        wheels = download([_pinned("dnaio")], bundle / "wheels", platform, python)
    except BackendError:
        notes.append(
            f"dnaio has no wheel for {platform} / CPython {python}: runner.py predict reads FASTA/FASTQ there with "
            "edgegen's standard-library reader (slower than dnaio, the same records)"
        )
    pip = [w for w in wheels if w.name.startswith("pip-")]
    deps = [w for w in wheels if not w.name.startswith("pip-")]
    lines = []
    for w in deps:
        name, version = w.name.split("-")[:2]
        lines.append(f"{name}=={version} --hash=sha256:{sha256_file(w)}")
    (bundle / "requirements.txt").write_text("\n".join(lines) + "\n")
    machine = platform.split("_", 1)[1]
    sh = (
        INSTALL_SH.replace("@PYTHON@", python)
        .replace("@MACHINE@", machine)
        .replace("@PIP@", pip[0].name)
        .replace("@MODEL@", model.name)
    )
    (bundle / "install.sh").write_text(sh)
    (bundle / "install.sh").chmod(0o755)
    return {
        "platform": platform,
        "python": python,
        "requirements": [x.split(" ")[0] for x in lines],
        "wheels": {w.name: sha256_file(w) for w in wheels},
        "notes": notes,
    }
