"""The on-device path: a real OpenSSH server on 127.0.0.1 (throwaway host and user
keys, started here), and fresh venvs that have numpy + one runtime but no torch
and no edgegen. Slow: venv creation and pip installs."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgegen.bench import BenchConfig, bench
from edgegen.bundle import write_bundle
from edgegen.devices import DeviceProfile, SSHConfig
from edgegen.errors import RemoteError
from edgegen.export import export
from edgegen.export.config import ExportConfig

pytestmark = pytest.mark.slow
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _need(cond: bool, why: str):
    if not cond:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


def _venv(path: Path, packages: list[str]) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    py = path / "bin" / "python"
    r = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return py


@pytest.fixture(scope="module")
def lite_venvs(tmp_path_factory):
    base = tmp_path_factory.mktemp("venvs")
    tfl = _venv(base / "tflite", ["numpy", "ai-edge-litert"])
    ort = _venv(base / "ort", ["numpy", "onnxruntime"])
    for py in (tfl, ort):
        out = subprocess.run(
            [
                str(py),
                "-c",
                "import importlib.util as u; print(u.find_spec('torch') is None and u.find_spec('edgegen') is None)",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=base,
        ).stdout.strip()
        assert out == "True"
    return {"tflite": tfl, "onnxruntime": ort}


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    _need(Path(SSHD).exists(), "sshd not installed (.ci/run installs openssh-server)")
    d = tmp_path_factory.mktemp("sshd")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "user_key")], check=True)
    (d / "authorized_keys").write_text((d / "user_key.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    port = _free_port()
    cfg = d / "sshd_config"
    cfg.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\nPidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nSubsystem sftp "
        "internal-sftp\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    host_pub = (d / "host_key.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    for _ in range(50):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"sshd did not start: {proc.stdout.read().decode()[-500:]}")
    yield {"port": port, "dir": d}
    proc.terminate()
    proc.wait(timeout=10)


def _profile(sshd, python: Path, runtimes=("tflite",), port=None, **kw) -> DeviceProfile:
    d = sshd["dir"]
    ssh = SSHConfig(
        host="127.0.0.1",
        user=os.environ.get("USER", "root") if os.geteuid() != 0 else "root",
        port=port or sshd["port"],
        identity_file=str(d / "user_key"),
        remote_dir=str(d / "remote"),
        connect_timeout_s=5,
        options=[f"UserKnownHostsFile={d / 'known_hosts'}", "StrictHostKeyChecking=yes"],
        **kw,
    )
    return DeviceProfile(
        name="loopback-pi",
        runtimes=list(runtimes),
        python=str(python),
        ssh=ssh,
        threads=[1],
        bench={"warmup": 2, "runs": 10, "batch": 8},
    )


@pytest.fixture(scope="module")
def int8_tflite(tiny_model_dir, syn_splits, tmp_path_factory):
    p = tmp_path_factory.mktemp("tfl") / "tiny.int8.tflite"
    return export(
        tiny_model_dir,
        p,
        ExportConfig(format="tflite", quant="int8", calib_samples=64, per_channel=False),
        calib=syn_splits["dev"],
    )


def test_remote_bench_equals_local_accuracy(sshd, lite_venvs, int8_tflite, syn_dir):
    cfg = BenchConfig(n_boot=100, max_samples=120)
    remote = bench([int8_tflite], syn_dir, _profile(sshd, lite_venvs["tflite"]), cfg, show_progress=False)
    local = bench(
        [int8_tflite],
        syn_dir,
        DeviceProfile(name="local", threads=[1], bench={"warmup": 2, "runs": 10, "batch": 8}),
        cfg,
        show_progress=False,
    )
    r, here = remote["models"][0], local["models"][0]
    assert "error" not in r, r.get("error")
    assert r["metrics"]["accuracy"]["value"] == here["metrics"]["accuracy"]["value"]
    assert r["metrics"]["mcc"]["value"] == here["metrics"]["mcc"]["value"]
    assert r["validity"]["rc_consistency"] == here["validity"]["rc_consistency"]
    assert r["versions"]["tflite_package"] == "ai_edge_litert"
    assert "torch" not in r["versions"]
    assert r["timing"]["1"]["latency_b1"]["p50_ms"] > 0


def test_unreachable_host_and_missing_runtime(sshd, lite_venvs, int8_tflite, syn_dir):
    cfg = BenchConfig(n_boot=50, max_samples=20, validity=False)
    closed = _free_port()
    with pytest.raises(RemoteError, match="cannot reach"):
        bench([int8_tflite], syn_dir, _profile(sshd, lite_venvs["tflite"], port=closed), cfg, show_progress=False)
    # the onnxruntime-only venv has no TFLite interpreter: a clear message, partial results kept
    res = bench([int8_tflite], syn_dir, _profile(sshd, lite_venvs["onnxruntime"]), cfg, show_progress=False)
    err = res["models"][0]["error"]
    assert "no TFLite interpreter" in err or "runtime missing" in err, err


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_standalone_runner_in_torch_free_venv(lite_venvs, tiny_model_dir, syn_splits, tmp_path, fmt):
    from edgegen.runtime import load_runner, run_batched

    q = "int8"
    m = export(
        tiny_model_dir,
        tmp_path / f"m.{q}.{fmt}",
        ExportConfig(format=fmt, quant=q, calib_samples=64, per_channel=False),
        calib=syn_splits["dev"],
    )
    tok_ids = load_runner(m).tokenizer.encode(syn_splits["test"].sequences)
    b = write_bundle(m, tmp_path / "bundle", inputs={"test": tok_ids})
    py = lite_venvs["tflite" if fmt == "tflite" else "onnxruntime"]
    r = subprocess.run(
        [
            str(py),
            "runner.py",
            "measure",
            "--model",
            m.name,
            "--inputs",
            "inputs.npz",
            "--out",
            "res.json",
            "--threads",
            "1",
            "--runs",
            "5",
            "--warmup",
            "1",
            "--batch",
            "64",
        ],
        cwd=b,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    res = json.loads((b / "res.json").read_text())
    import numpy as np

    device_logits = np.asarray(res["logits"]["test"], dtype=np.float32)
    # same batch as on the device: ORT dynamic int8 picks activation scales per batch
    here = run_batched(load_runner(m), tok_ids, 64)
    assert np.allclose(device_logits, here, atol=1e-5)
    man = json.loads((b / "MANIFEST.json").read_text())
    assert m.name in man["files"] and "lib/edgegen/dna_tokenizer.py" in man["files"]
