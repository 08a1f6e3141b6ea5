"""ONNX files over 2 GiB: weights in FILE.onnx.data beside the graph (ONNX external data).

protobuf cannot write one message over 2 GiB, so NT-v2 500M in float32 cannot be a single .onnx file. These
tests force the external layout on a tiny model (``external_data=True``, or a lowered threshold for the
automatic choice) and check every place a model file travels: export, verification, the runners, sizes, the
sidecar's checksums, --force, and bundles run by the torch-free runner.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def _export(model_dir, out, calib, force=False, **kw):
    from edgegen.export import export
    from edgegen.export.config import ExportConfig

    return export(model_dir, out, ExportConfig(format="onnx", verify_samples=64, **kw), calib=calib, force=force)


@pytest.fixture(scope="module")
def pair(tmp_path_factory, tiny_model_dir, syn_splits):
    """The same float model exported with its weights inside the file and beside it."""
    d = tmp_path_factory.mktemp("ext")
    inside = _export(tiny_model_dir, d / "inside.onnx", syn_splits["dev"], quant="none", external_data=False)
    beside = _export(tiny_model_dir, d / "beside.onnx", syn_splits["dev"], quant="none", external_data=True)
    return inside, beside


def test_external_weights_compute_the_same_logits(pair, syn_splits):
    from edgegen.runtime import load_runner, run_batched

    inside, beside = pair
    data = Path(str(beside) + ".data")
    assert data.is_file() and not Path(str(inside) + ".data").exists()
    # the graph stays small; the weights moved out
    assert beside.stat().st_size < 0.2 * inside.stat().st_size
    assert data.stat().st_size > 0.8 * inside.stat().st_size
    side = json.loads(Path(str(beside) + ".json").read_text())
    assert side["external_data"]["file"] == data.name and side["external_data"]["bytes"] == data.stat().st_size
    assert side["verification"]["max_abs_diff"] < 1e-4
    ids = load_runner(inside).tokenizer.encode(syn_splits["test"].sequences[:200])
    a = run_batched(load_runner(inside), ids)
    b = run_batched(load_runner(beside), ids)
    np.testing.assert_allclose(a, b, atol=1e-6)
    # the stage folder is gone: nothing but the three files
    assert sorted(p.name for p in beside.parent.iterdir() if p.name.startswith("beside")) == [
        "beside.onnx",
        "beside.onnx.data",
        "beside.onnx.json",
    ]
    assert not [p for p in beside.parent.iterdir() if p.name.startswith(".")]


def test_sizes_count_the_external_weights(pair):
    from edgegen.bench_measure import model_info as _model_info

    inside, beside = pair
    a, b = _model_info(inside)["size_bytes"], _model_info(beside)["size_bytes"]
    assert b == beside.stat().st_size + Path(str(beside) + ".data").stat().st_size
    assert abs(a - b) < 0.1 * a  # the same weights, a little framing either way


@pytest.mark.parametrize("quant", ["int8", "fp16"])
def test_quantized_exports_keep_external_weights(quant, tiny_model_dir, syn_splits, tmp_path):
    from edgegen.runtime import load_runner, run_batched

    out = _export(tiny_model_dir, tmp_path / f"m.{quant}.onnx", syn_splits["dev"], quant=quant, external_data=True)
    side = json.loads(Path(str(out) + ".json").read_text())
    assert Path(str(out) + ".data").is_file() and side["external_data"]["bytes"] > out.stat().st_size
    assert side["verification"]["argmax_agreement"] >= 0.9
    r = load_runner(out)
    assert run_batched(r, r.tokenizer.encode(syn_splits["test"].sequences[:16])).shape == (16, 2)


def test_weights_go_beside_the_file_only_above_the_threshold(tiny_model_dir, syn_splits, tmp_path, monkeypatch):
    import edgegen.export.onnx as backend

    small = _export(tiny_model_dir, tmp_path / "auto.onnx", syn_splits["dev"], quant="int8")
    assert not Path(str(small) + ".data").exists() and "external_data" not in json.loads(
        Path(str(small) + ".json").read_text()
    )
    monkeypatch.setattr(backend, "EXTERNAL_DATA_BYTES", 1000)  # a 'large' model, as NT-v2 500M is at 1.8 GB
    big = _export(tiny_model_dir, tmp_path / "big.onnx", syn_splits["dev"], quant="int8")
    assert Path(str(big) + ".data").is_file()
    forced = _export(tiny_model_dir, tmp_path / "forced.onnx", syn_splits["dev"], quant="int8", external_data=False)
    assert not Path(str(forced) + ".data").exists()


def test_missing_or_corrupt_external_weights_fail_clearly(pair, tmp_path):
    import shutil

    from edgegen.errors import ModelFileError
    from edgegen.runtime import load_runner

    _, beside = pair
    for name in (beside.name, beside.name + ".json", beside.name + ".data"):
        shutil.copy2(beside.parent / name, tmp_path / name)
    m, data = tmp_path / beside.name, tmp_path / (beside.name + ".data")
    raw = bytearray(data.read_bytes())
    raw[100] ^= 1
    data.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="weights were replaced or corrupted"):
        load_runner(m)
    data.unlink()
    with pytest.raises(ModelFileError, match=r"missing beside\.onnx\.data"):
        load_runner(m)


def test_clobbering_and_force_with_external_weights(tiny_model_dir, syn_splits, tmp_path):
    from edgegen.errors import UsageError

    out = tmp_path / "m.onnx"
    Path(str(out) + ".data").write_bytes(b"someone else's file")
    with pytest.raises(UsageError, match="already exists"):
        _export(tiny_model_dir, out, syn_splits["dev"], quant="none", external_data=True)
    assert Path(str(out) + ".data").read_bytes() == b"someone else's file" and not out.exists()
    _export(tiny_model_dir, out, syn_splits["dev"], quant="none", external_data=True, force=True)
    assert Path(str(out) + ".data").stat().st_size > 1000
    # --force over it with the weights inside: the stale data file goes, the new file loads on its own
    _export(tiny_model_dir, out, syn_splits["dev"], quant="none", external_data=False, force=True)
    assert not Path(str(out) + ".data").exists()
    from edgegen.runtime import load_runner

    assert load_runner(out).num_classes == 2


def test_bundle_carries_external_weights_to_the_torch_free_runner(pair, syn_dir, tmp_path):
    import os

    from edgegen.bundle import bundle_model

    _, beside = pair
    b = tmp_path / "bundle"
    bundle_model(beside, b, data=syn_dir / "test.csv")
    man = json.loads((b / "MANIFEST.json").read_text())
    assert beside.name + ".data" in man["files"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    block = (
        "import runpy, sys; sys.modules['torch'] = None; sys.argv = ['runner.py'] + sys.argv[1:]; "
        "runpy.run_path('runner.py', run_name='__main__')"
    )
    args = [
        "measure",
        "--model",
        beside.name,
        "--inputs",
        "inputs.npz",
        "--out",
        str(tmp_path / "res.json"),
        "--no-latency",
    ]
    r = subprocess.run([sys.executable, "-c", block, *args], cwd=b, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "res.json").read_text())["accuracy"]["value"] > 0.8
    # weights swapped inside the bundle: the manifest catches them
    data = b / (beside.name + ".data")
    raw = bytearray(data.read_bytes())
    raw[-1] ^= 1
    data.write_bytes(bytes(raw))
    r = subprocess.run(
        [sys.executable, "-c", block, *args[:-3], "--out", str(tmp_path / "r2.json"), "--no-latency"],
        cwd=b,
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 1 and "bundle manifest" in r.stderr and not (tmp_path / "r2.json").exists()


def test_cli_external_data_flag(tiny_model_dir, syn_dir, tmp_path):
    out = tmp_path / "cli.onnx"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgegen.cli",
            "export",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--external-data",
            "--calib",
            str(syn_dir),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "external weights" in r.stdout and Path(str(out) + ".data").is_file()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgegen.cli",
            "export",
            str(tiny_model_dir),
            "--out",
            str(tmp_path / "m.tflite"),
            "--external-data",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "Traceback" not in r.stderr and "external_data is an ONNX option" in r.stderr
