"""The Raspberry Pi path on real arm64 code: offline bundles installed and run under qemu-user.

`.ci/setup --test` builds a minimal arm64 Debian userland (`.ci/arm64-root`); these tests make int8 TFLite and
int8/float ONNX bundles of a student pruned and distilled on real data with `--wheelhouse --platform linux_aarch64`,
install each bundle's wheels into a venv of the emulated arm64 Python with its `install.sh` (pip `--no-index`: no
network), run `runner.py measure` there, and compare with this x86 host: the arm64 wheels are other builds with other
kernels (XNNPACK's and MLAS's NEON paths). Emulation proves the arm64 code computes the same numbers; it says nothing
about speed, so no latency is taken.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.test_remote_device import _profile, sshd  # noqa: F401,F811 - the local sshd fixture of the remote tests

ROOT = Path(__file__).resolve().parents[1]
ARM64_ROOT = Path(os.environ.get("EDGEGEN_ARM64_ROOT", ROOT / ".ci" / "arm64" / "root"))
pytestmark = pytest.mark.slow


def _need_arm64(cpu: str = "cortex-a72") -> list[str]:
    """The qemu-user command line for the emulated arm64 userland, as a given CPU: cortex-a72 is a Raspberry Pi 4's,
    cortex-a76 a Pi 5's. (qemu's default 'max' CPU also offers extensions no Pi has; with it, int8 TFLite outputs
    came out wrong under qemu 7.2: accuracy 0.54 where the host and both Pi CPUs give 0.87.)"""
    qemu = shutil.which("qemu-aarch64-static")
    if qemu is None or not (ARM64_ROOT / "usr" / "bin" / "python3").exists():
        msg = f"arm64 emulation not set up (qemu-aarch64-static, {ARM64_ROOT}): run bash .ci/setup --test"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return [qemu, "-cpu", cpu, "-L", str(ARM64_ROOT)]


@pytest.fixture(scope="module")
def student_exports(real_teacher, real_splits, tmp_path_factory):
    """A real-data student (the promoter teacher pruned to half and distilled briefly), exported three ways."""
    from edgegen.distill import DistillConfig, distill_model
    from edgegen.export import export
    from edgegen.export.config import ExportConfig
    from edgegen.prune import PruneConfig, prune_model

    d = tmp_path_factory.mktemp("arm64")
    prune_model(real_teacher["dir"], d / "pruned", PruneConfig(target_params=0.5))
    from tests.conftest import real_data

    data = real_data("promoter_nontata_human")
    distill_model(
        real_teacher["dir"],
        d / "pruned",
        data,
        d / "student",
        DistillConfig(epochs=1, max_steps=150),
        show_progress=False,
    )
    out = {}
    for fmt, quant in (("tflite", "int8"), ("onnx", "int8"), ("onnx", "none"), ("tflite", "none")):
        out[(fmt, quant)] = export(
            d / "student",
            d / f"student.{quant}.{fmt}",
            ExportConfig(format=fmt, quant=quant, per_channel=False if quant == "int8" else None),
            calib=real_splits["dev"],
        )
    test = d / "test.csv"
    te = real_splits["test"]
    idx = np.random.default_rng(0).permutation(len(te))[:400]
    test.write_text("sequence,label\n" + "".join(f"{te.sequences[i]},{int(te.labels[i])}\n" for i in idx))
    return out, test


def _host_result(model: Path, bundle: Path, tmp: Path) -> dict:
    from edgegen.runner_cli import main as runner_main

    out = tmp / f"host-{model.name}.json"
    assert (
        runner_main(
            [
                "measure",
                "--model",
                str(bundle / model.name),
                "--inputs",
                str(bundle / "inputs.npz"),
                "--out",
                str(out),
                "--no-latency",
                "--threads",
                "2",
            ]
        )
        == 0
    )
    return json.loads(out.read_text())


def _emulated(qemu: list[str], python: Path, bundle: Path, model: str, tmp: Path) -> dict:
    out = tmp / f"arm-{model}.json"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = subprocess.run(
        [
            *qemu,
            str(python),
            "runner.py",
            "measure",
            "--model",
            model,
            "--inputs",
            "inputs.npz",
            "--out",
            str(out),
            "--no-latency",
            "--threads",
            "2",
        ],
        cwd=bundle,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(out.read_text())


def _install(qemu: list[str], bundle: Path) -> Path:
    """The bundle's install.sh with the emulated Python, and no network: pip may only read the wheels folder."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PIP_FIND_LINKS", "PIP_INDEX_URL")
    }
    env.update(
        PYTHON=" ".join([*qemu, str(ARM64_ROOT / "usr" / "bin" / "python3")]),
        PIP_NO_INDEX="1",
        https_proxy="http://127.0.0.1:9",
        http_proxy="http://127.0.0.1:9",
    )  # any download attempt fails
    r = subprocess.run(["sh", "install.sh"], cwd=bundle, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return bundle / "venv" / "bin" / "python3"


def test_arm64_bundles_install_offline_and_agree_with_the_host(student_exports, tmp_path):
    from edgegen.bundle import bundle_model

    qemu = _need_arm64()
    models, test = student_exports
    venvs: dict[str, Path] = {}
    report = {}
    for (fmt, quant), model in models.items():
        if (fmt, quant) == ("tflite", "none"):
            continue  # the bench test below runs it
        b = tmp_path / f"bundle-{quant}-{fmt}"
        bundle_model(model, b, data=test, wheelhouse=True, platform="linux_aarch64", python="3.11")
        man = json.loads((b / "MANIFEST.json").read_text())
        assert man["wheelhouse"]["platform"] == "linux_aarch64"
        assert all(w.endswith(("none-any.whl", "aarch64.whl")) for w in man["wheelhouse"]["wheels"]), man["wheelhouse"][
            "wheels"
        ]
        assert all(f"wheels/{w}" in man["files"] for w in man["wheelhouse"]["wheels"])
        runtime = "ai-edge-litert" if fmt == "tflite" else "onnxruntime"
        assert any(
            r.startswith(runtime.replace("-", "_")) or r.startswith(runtime) for r in man["wheelhouse"]["requirements"]
        )
        if fmt not in venvs:  # one install per runtime: the float ONNX bundle runs with the int8 one's venv
            venvs[fmt] = _install(qemu, b)
        arm = _emulated(qemu, venvs[fmt], b, model.name, tmp_path)
        host = _host_result(model, b, tmp_path)
        assert arm["versions"]["machine"] == "aarch64" and host["versions"]["machine"] == "x86_64"
        la, lh = np.asarray(arm["logits"]["test"]), np.asarray(host["logits"]["test"])
        agree = float((la.argmax(1) == lh.argmax(1)).mean())
        acc_arm, acc_host = arm["accuracy"]["value"], host["accuracy"]["value"]
        report[f"{quant}.{fmt}"] = {
            "max_abs_diff": float(np.abs(la - lh).max()),
            "agreement": agree,
            "acc_arm64": acc_arm,
            "acc_x86": acc_host,
        }
        if quant == "none":
            assert np.abs(la - lh).max() < 1e-4
        assert abs(acc_arm - acc_host) <= 0.005, report
        assert agree >= 0.95, report
    print(json.dumps(report, indent=1))


def test_wheelhouse_refuses_a_platform_or_python_without_wheels(student_exports, tmp_path):
    from edgegen.bundle import bundle_model
    from edgegen.errors import BackendError, UsageError

    models, _ = student_exports
    with pytest.raises(UsageError, match="unknown platform 'linux_riscv64'"):
        bundle_model(models[("onnx", "int8")], tmp_path / "b1", wheelhouse=True, platform="linux_riscv64")
    with pytest.raises(BackendError, match=r"no wheel of .* for linux_aarch64 / CPython 3\.6"):
        bundle_model(
            models[("tflite", "int8")], tmp_path / "b2", wheelhouse=True, platform="linux_aarch64", python="3.6"
        )
    assert not (tmp_path / "b1").exists() and not (tmp_path / "b2").exists()


def test_bench_on_an_emulated_pi_through_ssh(student_exports, sshd, tmp_path):  # noqa: F811 (sshd: the fixture imported above)
    """`bench --device rpi5` with the profile's python the emulated arm64 interpreter, behind the same local sshd as
    the remote tests: accuracy and agreement from arm64 outputs, `emulated: true`, arm64 host_machine, no timings."""
    from edgegen.bench import BenchConfig, bench
    from edgegen.bundle import bundle_model
    from edgegen.devices import load_device
    from edgegen.report import markdown, write_report

    qemu = _need_arm64("cortex-a76")  # a Pi 5
    models, test = student_exports
    b = tmp_path / "pi-venv"
    bundle_model(models[("tflite", "int8")], b, wheelhouse=True, platform="linux_aarch64", python="3.11")
    py = _install(qemu, b)  # the 'Pi's' Python, with the bundle's offline wheels
    loop = _profile(sshd, Path("unused"))
    prof = load_device("rpi5").model_copy(
        update={"python": " ".join([*qemu, str(py)]), "ssh": loop.ssh, "emulated": True, "bench": loop.bench}
    )
    cfg = BenchConfig(n_boot=100, max_samples=200, validity=False)
    pair = [models[("tflite", "none")], models[("tflite", "int8")]]
    res = bench(pair, test, prof, cfg, show_progress=False)
    host = bench(pair, test, load_device("local").model_copy(update={"threads": [1]}), cfg, show_progress=False)
    assert (
        res["emulated"] is True
        and res["host_machine"]["machine"] == "aarch64"
        and res["host_machine"]["emulated"] is True
    )
    assert res["harness_machine"]["machine"] == "x86_64" and not res["errors"], res["errors"]
    for arm, x86 in zip(res["models"], host["models"]):
        assert arm["emulated"] is True and arm["timing"] == {} and arm["peak_rss_mb"] is None
        assert arm["versions"]["machine"] == "aarch64" and arm["versions"]["tflite_package"] == "ai_edge_litert"
        assert abs(arm["metrics"]["accuracy"]["value"] - x86["metrics"]["accuracy"]["value"]) <= 0.005
    # int8 against float, both on arm64: the agreement the Pi would show
    assert (
        abs(res["models"][1]["vs_baseline"]["argmax_agreement"] - host["models"][1]["vs_baseline"]["argmax_agreement"])
        <= 0.02
    )
    md = markdown(res)
    assert "Emulated device (aarch64 under qemu-user)" in md
    write_report(res, tmp_path / "report")  # no latencies to plot: still a report
    assert (tmp_path / "report" / "size.png").exists()
