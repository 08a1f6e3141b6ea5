"""The bundle: a self-contained folder a device runs with numpy and one runtime (never torch): the exported model and
its sidecar, the numpy-only edgegen modules under ``lib/edgegen``, ``runner.py``, optional tokenized inputs and an
offline wheelhouse, and ``MANIFEST.json`` with every file's sha256, which ``runner.py`` checks before it imports
anything (:mod:`edgegen.bundle_check`). Copying a bundle to a device and running it there is :mod:`edgegen.remote`."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgegen.errors import ModelFileError, UsageError

# edgegen modules that need only numpy (+ a runtime, + dnaio for FASTA): what a device gets.
LITE_MODULES = [
    "__init__.py",
    "errors.py",
    "io.py",
    "integrity.py",
    "alphabet.py",
    "dna_tokenizer.py",
    "token_kinds.py",
    "bpe.py",
    "metrics.py",
    "predict.py",
    "validity.py",
    "data/__init__.py",
    "data/readers.py",
    "data/reads.py",
    "data/fastx.py",
    "runtime/__init__.py",
    "runtime/sidecar.py",
    "runtime/onnx_runner.py",
    "runtime/tflite_runner.py",
    "standalone.py",
    "runner_cli.py",
    "signing.py",
    "health.py",
    "releases.py",
    "deploy_agent.py",
    "drift.py",
    "watch.py",
    "run_folder.py",
    "status_page.py",
    "bundle_check.py",
]


RUNNER_HEAD = '''#!/usr/bin/env python3
"""edgegen on-device runner: checks the whole bundle against MANIFEST.json, then runs edgegen's runner (numpy and one
runtime: ai-edge-litert / tflite-runtime / onnxruntime; never torch).

    python3 runner.py verify                 # only the check (install.sh runs it before pip)
    python3 runner.py measure|predict ...    # the check, then edgegen.runner_cli
"""
import sys

del sys.path[0]  # the bundle folder: nothing in it is imported before it is verified
sys.dont_write_bytecode = True  # no unlisted __pycache__ appears in lib/
'''


RUNNER_MAIN = """

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
    from edgegen.runner_cli import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
"""


def runner_script() -> str:
    """A bundle's ``runner.py``: a header that takes the bundle folder off ``sys.path``, the source of
    :mod:`edgegen.bundle_check` (standard library only), and a main that runs :mod:`edgegen.runner_cli` once the
    whole bundle matches its manifest."""
    from edgegen import bundle_check

    return RUNNER_HEAD + Path(bundle_check.__file__).read_text() + RUNNER_MAIN


def write_bundle(
    model: str | Path,
    out: str | Path,
    *,
    inputs: dict | None = None,
    wheels: tuple | None = None,
    release: dict | None = None,
    records: dict | None = None,
    sign: str | Path | None = None,
    force: bool = False,
) -> Path:
    """Write a self-contained bundle folder for a .onnx/.tflite model.

    Contents: the model and its sidecar, ``inputs.npz`` (already tokenized
    sets, if given), ``runner.py`` and ``lib/edgegen`` (numpy-only modules),
    and ``MANIFEST.json`` with the sha256 of every file. ``wheels``
    (platform, Python version[, use tflite-runtime]) adds an offline wheelhouse and ``install.sh``
    (:mod:`edgegen.wheelhouse`). ``release`` (from :func:`edgegen.acceptance.release_info`) makes it deployable:
    its ``version``, and ``acceptance.npz`` with the budgets its health check applies. ``sign`` (a private key file)
    adds ``SHA256SUMS`` and its Ed25519 signature (:mod:`edgegen.signing`). Every bundle holds ``MODEL_CARD.md``
    (:mod:`edgegen.model_card`), with ``records`` (``audit``, ``bench`` dicts) when given.
    """
    import numpy as np

    import edgegen
    from edgegen.io import sha256_file, staging_dir, write_json

    model = Path(model)
    side, parts = _model_parts(model)
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
        if release:
            np.savez(tmp / "acceptance.npz", **release["arrays"])
            write_json(tmp / "REFERENCE.json", release["reference"])  # what edgegen watch compares live reads with
        from edgegen.model_card import render

        (tmp / "MODEL_CARD.md").write_text(
            render(model, acceptance=release["record"] if release else None, **(records or {}))
        )
        house = None
        if wheels:
            from edgegen.runtime.sidecar import read_sidecar
            from edgegen.wheelhouse import write_wheelhouse

            house = write_wheelhouse(tmp, model, read_sidecar(model, check_file=False), *wheels)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        py = "venv/bin/python" if house else "python3"
        write_json(
            tmp / "MANIFEST.json",
            {
                "format": "edgegen-bundle/1",
                "model": model.name,
                "edgegen_version": edgegen.__version__,
                **({"version": release["version"], "acceptance": release["record"]} if release else {}),
                "run": f"{py} runner.py measure --model {model.name} --inputs inputs.npz --out result.json --threads 1",
                **({"install": "sh install.sh", "wheelhouse": house} if house else {}),
                "files": {str(p.relative_to(tmp)): sha256_file(p) for p in files},
            },
        )
        if sign:
            from edgegen.signing import sign_bundle

            sign_bundle(str(tmp), str(sign))
    return Path(out)


def _model_parts(model: Path) -> tuple[Path, list[Path]]:
    """(the sidecar, the model's files), checked: a bundle never carries a corrupted model, nor one whose ONNX
    weights point to a file its sidecar does not check."""
    if model.is_dir():
        raise UsageError(
            "bundles hold .onnx or .tflite files (a device runs no torch); export the model first", path=model
        )
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
            raise ModelFileError(
                f"its weights point to external data {', '.join(stray)} that its sidecar does not record "
                "(and so cannot check); export the model again",
                path=model,
            )
    return side, parts


def bundle_model(
    model: str | Path,
    out: str | Path,
    *,
    data: str | Path | None = None,
    device: str | Path | None = None,
    wheelhouse: bool = False,
    platform: str | None = None,
    python: str | None = None,
    tflite_runtime: bool = False,
    acceptance: str | Path | None = None,
    version: str | None = None,
    sign: str | Path | None = None,
    audit: str | Path | None = None,
    bench: str | Path | None = None,
    force: bool = False,
) -> Path:
    """Write a self-contained bundle for ``model`` (.onnx/.tflite) to ``out`` (see :func:`edgegen.remote.write_bundle`).

    ``data`` (a sequence table) is included already tokenized as ``inputs.npz`` for ``runner.py measure``, with its
    labels when it has them; ``device`` (a profile) must run the model's runtime. ``wheelhouse`` adds the runner's
    wheels for ``platform`` (default: linux_aarch64 for a device profile, else this machine's) and CPython ``python``
    (default: this interpreter's version) and an ``install.sh`` that installs them with no network. ``acceptance``
    (reads, labelled or not) makes a deployable release of ``version`` (default: the UTC time, YYYYMMDD.HHMMSS)
    whose health check a device runs before it switches to it; ``sign`` signs the bundle with that private key.
    ``audit`` (an audit.json) and ``bench`` (a bench.json) go into its model card.
    """
    import platform as _platform
    import sys

    from edgegen.bundle import write_bundle
    from edgegen.data.readers import check_fits_model
    from edgegen.data.reads import as_dataset
    from edgegen.runtime.sidecar import read_sidecar, tokenizer_from_sidecar

    model = Path(model)
    if device:
        from edgegen.devices import load_device

        load_device(device).require_runtime("onnxruntime" if model.suffix == ".onnx" else "tflite", model)
    inputs = None
    if data:
        ds = as_dataset(data)
        side = read_sidecar(model)
        inputs = {"test": tokenizer_from_sidecar(side, model).encode(ds.sequences)}
        if ds.labels is not None:
            check_fits_model(ds.num_classes, side["num_classes"], ds.path)
            inputs["labels"] = ds.labels
    wheels = None
    if wheelhouse:
        plat = platform or ("linux_aarch64" if device else f"linux_{_platform.machine()}")
        wheels = (plat, python or f"{sys.version_info[0]}.{sys.version_info[1]}", tflite_runtime)
    elif platform or python or tflite_runtime:
        raise UsageError(
            "--platform, --python and --tflite-runtime choose the wheels of --wheelhouse; add --wheelhouse"
        )
    release = None
    if acceptance is not None or version is not None:
        from edgegen.acceptance import release_info

        release = release_info(model, acceptance, version)
    if sign is not None and not Path(sign).is_file():
        raise UsageError("no such private key file (edgegen keys new --out DIR makes one)", path=sign)
    records = {k: _read_record(v, k) for k, v in (("audit", audit), ("bench", bench)) if v is not None}
    return write_bundle(
        model, out, inputs=inputs, wheels=wheels, release=release, records=records, sign=sign, force=force
    )


def _read_record(path, what: str) -> dict:
    from edgegen.io import read_json

    rec = read_json(path, missing=f"no such {what} JSON file")
    if not isinstance(rec, dict):
        raise ModelFileError(f"not an edgegen {what} result", path=path)
    return rec
