"""Offline wheelhouses for device bundles: what pip fetches for a platform and CPython, and the clear errors when a
runtime has no wheel there. (Installing and running them under arm64 emulation: tests/test_arm64_emulated.py.)"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def float_tflite(tiny_model_dir, syn_splits, tmp_path_factory):
    from edgegen.export import export
    from edgegen.export.config import ExportConfig

    return export(
        tiny_model_dir,
        tmp_path_factory.mktemp("wh") / "tiny.none.tflite",
        ExportConfig(format="tflite", verify_samples=32),
        calib=syn_splits["dev"],
    )


def test_tflite_runtime_wheelhouse_for_an_older_pi_python(float_tflite, tmp_path):
    """tflite-runtime (the interpreter many Pi images use) is built against numpy 1.x and has wheels up to CPython
    3.10: a bundle for such a Pi pins numpy<2 with it; for 3.11 the error names the runtime, platform and Python."""
    from edgegen.bundle import bundle_model
    from edgegen.errors import BackendError, UsageError

    b = tmp_path / "b310"
    bundle_model(float_tflite, b, wheelhouse=True, platform="linux_aarch64", python="3.10", tflite_runtime=True)
    man = json.loads((b / "MANIFEST.json").read_text())
    wheels = man["wheelhouse"]["wheels"]
    assert any(w.startswith("tflite_runtime-") and "cp310" in w and "aarch64" in w for w in wheels), wheels
    numpy = [w for w in wheels if w.startswith("numpy-")]
    assert len(numpy) == 1 and numpy[0].split("-")[1].startswith("1."), numpy
    assert not any(w.startswith("ai_edge_litert") for w in wheels)
    req = (b / "requirements.txt").read_text()
    assert "tflite_runtime==" in req and "--hash=sha256:" in req
    assert 'want="3.10"' in (b / "install.sh").read_text()
    with pytest.raises(BackendError, match=r"no wheel of tflite-runtime for linux_aarch64 / CPython 3\.11"):
        bundle_model(
            float_tflite,
            tmp_path / "b311",
            wheelhouse=True,
            platform="linux_aarch64",
            python="3.11",
            tflite_runtime=True,
        )
    assert not (tmp_path / "b311").exists()
    with pytest.raises(UsageError, match="add --wheelhouse"):
        bundle_model(float_tflite, tmp_path / "b", tflite_runtime=True)
