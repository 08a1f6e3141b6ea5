"""Bundles (model + sidecar + tokenized inputs + the numpy-only runner) and
running them on a device with the system ssh/scp."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

from edgegen.errors import ModelFileError, RemoteError, UsageError

# edgegen modules that need only numpy (+ a runtime, + dnaio for FASTA): what a device gets.
LITE_MODULES = [
    "__init__.py",
    "errors.py",
    "io.py",
    "integrity.py",
    "tokenizers.py",
    "bpe.py",
    "metrics.py",
    "predict.py",
    "validity.py",
    "data/__init__.py",
    "data/readers.py",
    "data/reads.py",
    "runtime/__init__.py",
    "runtime/sidecar.py",
    "runtime/onnx_runner.py",
    "runtime/tflite_runner.py",
    "standalone.py",
    "bundle_check.py",
]

RUNNER_HEAD = '''#!/usr/bin/env python3
"""edgegen on-device runner: checks the whole bundle against MANIFEST.json, then runs edgegen's runner (numpy and one
runtime: ai-edge-litert / tflite-runtime / onnxruntime; never torch).

    python3 runner.py verify                 # only the check (install.sh runs it before pip)
    python3 runner.py measure|predict ...    # the check, then edgegen.standalone
"""
import sys

del sys.path[0]  # the bundle folder: nothing in it is imported before it is verified
sys.dont_write_bytecode = True  # no unlisted __pycache__ appears in lib/
'''

RUNNER_MAIN = '''

def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        manifest = verify_bundle(here)
    except BundleError as e:
        print(f"edgegen-runner: error: {e}", file=sys.stderr)
        return 1
    if sys.argv[1:2] == ["verify"]:
        print(f"bundle verified: {len(manifest['files'])} files match {MANIFEST}")
        return 0
    sys.path.insert(0, os.path.join(here, "lib"))
    from edgegen.standalone import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
'''


def runner_script() -> str:
    """A bundle's ``runner.py``: a header that takes the bundle folder off ``sys.path``, the source of
    :mod:`edgegen.bundle_check` (standard library only), and a main that runs :mod:`edgegen.standalone` once the
    whole bundle matches its manifest."""
    from edgegen import bundle_check

    return RUNNER_HEAD + Path(bundle_check.__file__).read_text() + RUNNER_MAIN



def write_bundle(model: str | Path, out: str | Path, *, inputs: dict | None = None, wheels: tuple | None = None,
                 force: bool = False) -> Path:
    """Write a self-contained bundle folder for a .onnx/.tflite model.

    Contents: the model and its sidecar, ``inputs.npz`` (already tokenized
    sets, if given), ``runner.py`` and ``lib/edgegen`` (numpy-only modules),
    and ``MANIFEST.json`` with the sha256 of every file. ``wheels``
    (platform, Python version[, use tflite-runtime]) adds an offline wheelhouse and ``install.sh``
    (:mod:`edgegen.wheelhouse`).
    """
    import numpy as np

    import edgegen
    from edgegen.io import sha256_file, staging_dir, write_json

    model = Path(model)
    if model.is_dir():
        raise UsageError("bundles hold .onnx or .tflite files (a device runs no torch); export the model first", path=model)
    side = Path(str(model) + ".json")
    if not model.exists():
        raise ModelFileError("no such model file", path=model)
    if not side.exists():
        raise ModelFileError(f"missing sidecar {side.name}", path=model)
    from edgegen.runtime.sidecar import model_files, read_sidecar

    side_d = read_sidecar(model)
    parts = model_files(model, side_d)  # checked: a bundle never carries a corrupted model
    if model.suffix == ".onnx":  # nor one whose weights point to a file other than the one its sidecar checks
        from edgegen.export.onnx import external_data_files

        named = (side_d.get("external_data") or {}).get("file")
        stray = sorted(f for f in external_data_files(model) if f != named)
        if stray:
            raise ModelFileError(f"its weights point to external data {', '.join(stray)} that its sidecar does not record "
                                 "(and so cannot check); export the model again", path=model)
    src = Path(edgegen.__file__).resolve().parent
    with staging_dir(out, force=force) as tmp:
        for p in parts:
            shutil.copy2(p, tmp / p.name)
        shutil.copy2(side, tmp / side.name)
        for rel in LITE_MODULES:
            dst = tmp / "lib" / "edgegen" / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / rel, dst)
        (tmp / "runner.py").write_text(runner_script())  # verifies the bundle before it imports anything
        if inputs:
            np.savez(tmp / "inputs.npz", **inputs)
        house = None
        if wheels:
            from edgegen.wheelhouse import write_wheelhouse

            house = write_wheelhouse(tmp, model, read_sidecar(model, check_file=False), *wheels)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        py = "venv/bin/python" if house else "python3"
        write_json(tmp / "MANIFEST.json", {
            "format": "edgegen-bundle/1",
            "model": model.name,
            "edgegen_version": edgegen.__version__,
            "run": f"{py} runner.py measure --model {model.name} --inputs inputs.npz --out result.json --threads 1",
            **({"install": "sh install.sh", "wheelhouse": house} if house else {}),
            "files": {str(p.relative_to(tmp)): sha256_file(p) for p in files},
        })
    return Path(out)


def _run(cmd: list[str], timeout: int, what: str, host: str) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise RemoteError(f"{what} on {host} timed out after {timeout} s") from None
    except FileNotFoundError:
        raise RemoteError(f"'{cmd[0]}' not found: install OpenSSH client") from None
    return r


def _safe_name(name: str) -> str:
    """A file or folder name for the device made of plain characters (a model's name is never shell text there)."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".-") or "bundle"


def _last_line(text: str) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return lines[-1] if lines else "(no output)"


class SSHDevice:
    """Copy a bundle to a device and run measurements there."""

    def __init__(self, profile):
        self.p = profile
        self.ssh = profile.ssh
        self.host = self.ssh.target()

    def check(self) -> None:
        r = _run(["ssh", *self.ssh.base_args(), "--", self.host, "true"], self.ssh.connect_timeout_s + 20, "connection test", self.host)
        if r.returncode != 0:
            raise RemoteError(f"cannot reach {self.host}: {_last_line(r.stderr)}")

    def push(self, bundle: Path, name: str) -> str:
        from edgegen.standalone import check_bundle

        check_bundle(bundle)  # never copy a bundle that differs from its manifest
        rdir = f"{self.ssh.remote_dir.rstrip('/')}/{_safe_name(name)}"
        r = _run(["ssh", *self.ssh.base_args(), "--", self.host, f"rm -rf {shlex.quote(rdir)} && mkdir -p {shlex.quote(rdir)}"], 60, "mkdir", self.host)
        if r.returncode != 0:
            raise RemoteError(f"cannot create {rdir} on {self.host}: {_last_line(r.stderr)}")
        r = _run(["scp", "-q", "-r", *self.ssh.base_args(scp=True), "--", *[str(p) for p in bundle.iterdir()], f"{self.host}:{rdir}/"], 600, "copy", self.host)
        if r.returncode != 0:
            raise RemoteError(f"copying the bundle to {self.host} failed: {_last_line(r.stderr)}")
        return rdir

    def measure(self, rdir: str, model_name: str, args: list[str], out_local: Path) -> dict:
        remote_out = f"result_{_safe_name(out_local.stem)}.json"
        python = " ".join(shlex.quote(w) for w in self.p.python_words())
        cmd = f"cd {shlex.quote(rdir)} && {python} runner.py measure --model {shlex.quote(model_name)} --inputs inputs.npz --out {remote_out} " + " ".join(shlex.quote(a) for a in args)
        r = _run(["ssh", *self.ssh.base_args(), "--", self.host, cmd], self.ssh.timeout_s, "measurement", self.host)
        if r.returncode != 0:
            msg = _last_line(r.stderr)
            if r.returncode == 3 or "missing package" in msg or "No module named" in msg:
                raise RemoteError(f"runtime missing on {self.host}: {msg}")
            raise RemoteError(f"measurement failed on {self.host} (exit {r.returncode}): {msg}")
        r = _run(["scp", "-q", *self.ssh.base_args(scp=True), "--", f"{self.host}:{rdir}/{remote_out}", str(out_local)], 300, "fetch", self.host)
        if r.returncode != 0:
            raise RemoteError(f"fetching results from {self.host} failed: {_last_line(r.stderr)}")
        return json.loads(out_local.read_text())
