"""SIGINT and SIGTERM in the middle of train, export, predict and run: exit 130 / 143 with one line, no
temp files left, and the same command run again succeeds. (Ctrl-C used to exit 0 silently, and SIGTERM
during predict left its ``.NAME.tmp``.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
WORD = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


def start(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "edgegen.cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def interrupt(
    proc: subprocess.Popen, sig, ready=lambda: True, min_s: float = 0.0, timeout: float = 120.0
) -> tuple[int, str]:
    """Send ``sig`` once ``ready()`` holds and ``min_s`` have passed; the command must still be running then."""
    t0 = time.monotonic()
    while not (ready() and time.monotonic() - t0 >= min_s):
        assert proc.poll() is None, f"finished before the signal: {proc.communicate()}"
        assert time.monotonic() - t0 < timeout, "never became ready"
        time.sleep(0.05)
    assert proc.poll() is None, "finished before the signal"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def assert_stopped(code: int, err: str, sig) -> None:
    assert code == EXIT[sig], (code, err)
    assert "Traceback" not in err
    lines = [x for x in err.strip().splitlines() if x.startswith("edgegen: error")]
    assert lines == [f"edgegen: error: {WORD[sig]}"], err


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if ".tmp" in p.name or p.name.endswith(".old")]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_train_stops_cleanly_and_reruns(tmp_path, sig):
    out = tmp_path / "m"
    p = start("train", "--data", "synthetic:promoter:3000:200", "--out", out, "--epochs", "50", "--tokenizer", "char")
    code, err = interrupt(p, sig, min_s=6.0)
    assert_stopped(code, err, sig)
    assert not out.exists() and temp_files(tmp_path) == []
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgegen.cli",
            "train",
            "--data",
            "synthetic:promoter:300:80",
            "--out",
            out,
            "--epochs",
            "1",
            "--d-model",
            "16",
            "--n-layers",
            "1",
            "--n-heads",
            "2",
            "--ffn-dim",
            "32",
            "--allow-chance",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_predict_stops_cleanly_and_reruns(tmp_path, sig, tiny_model_dir):
    reads = tmp_path / "reads.fa"
    reads.write_text("".join(f">r{i}\n{'ACGTTGCA' * 25}\n" for i in range(200_000)))
    out = tmp_path / "p.tsv"
    p = start("predict", tiny_model_dir, "-i", reads, "-o", out)
    code, err = interrupt(p, sig, ready=lambda: bool(list(tmp_path.glob(".p.tsv.*.tmp"))))
    assert_stopped(code, err, sig)
    assert not out.exists() and temp_files(tmp_path) == []
    small = tmp_path / "small.fa"
    small.write_text(">a\n" + "ACGT" * 50 + "\n")
    r = subprocess.run(
        [sys.executable, "-m", "edgegen.cli", "predict", str(tiny_model_dir), "-i", str(small), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and out.read_text().count("\n") == 2, r.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_export_stops_cleanly_and_reruns(tmp_path, sig, tiny_model_dir, syn_dir):
    out = tmp_path / "m.tflite"
    p = start("export", tiny_model_dir, "--out", out, "--quant", "int8", "--calib", syn_dir, "--max-drop", "0.000001")
    code, err = interrupt(p, sig, ready=lambda: bool(list(tmp_path.glob(".m.tflite.*"))))
    assert_stopped(code, err, sig)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    r = subprocess.run(
        [sys.executable, "-m", "edgegen.cli", "export", str(tiny_model_dir), "--out", str(tmp_path / "m.onnx")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_run_stops_cleanly_and_resumes(tmp_path, sig):
    rec = tmp_path / "r.yaml"
    run_dir = tmp_path / "run"
    rec.write_text(
        f"data: synthetic:promoter:400:80\nout: {run_dir}\nsteps:\n"
        "  - {type: train, tokenizer: char, d_model: 32, n_layers: 2, n_heads: 4, ffn_dim: 128, epochs: 1, "
        "allow_chance: true}\n"
        "  - {type: prune, targets: [0.8]}\n"
        "  - {type: export, formats: [onnx], quant: [dynamic], max_drop: null}\n"
    )
    # a long teacher first: interrupted mid-stage
    p = start("run", rec, "--set", "steps.0.epochs=500", "--set", "data=synthetic:promoter:3000:200")
    code, err = interrupt(p, sig, ready=lambda: bool(list(run_dir.glob(".teacher.*.tmp"))), min_s=3.0)
    assert_stopped(code, err, sig)
    assert temp_files(tmp_path) == [] and not (run_dir / "teacher").exists()
    r = subprocess.run([sys.executable, "-m", "edgegen.cli", "run", str(rec)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (run_dir / "export-prune-params80.dynamic.onnx" / "prune-params80.dynamic.onnx").exists()
