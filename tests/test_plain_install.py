"""A plain ``pip install -c constraints.txt .`` (no extras) in a fresh venv runs the CLI.

typer 0.29 stopped depending on click, which edgegen imported; click then came only through the ``hf``
extra, and every command of a plain install failed with ``No module named 'click'``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_plain_install_runs_help_and_a_short_train(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    r = subprocess.run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "-c",
            str(ROOT / "constraints.txt"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    extras = subprocess.run(
        [
            str(py),
            "-c",
            "import importlib.util as u; print([m for m in ('click', 'transformers', 'ai_edge_litert', "
            "'litert_torch', 'hypothesis') if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
    )
    assert extras.stdout.strip() == "[]", extras.stdout  # really a plain install
    exe = venv / "bin" / "edgegen"
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and "train" in r.stdout, r.stderr
    r = subprocess.run(
        [
            str(exe),
            "train",
            "--data",
            "synthetic:promoter:400:80",
            "--out",
            "m",
            "--epochs",
            "2",
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
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "m" / "model.safetensors").exists()
    r = subprocess.run([str(exe), "train", "--bogus"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
