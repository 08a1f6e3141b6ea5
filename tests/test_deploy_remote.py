"""Deploy, health check and rollback on a device reached over ssh (the local sshd of the remote tests), with the
device side run by a Python that has numpy, the runtime and cryptography but neither torch nor edgegen: a venv of this
machine, and the emulated arm64 Python of the Pi tests with the bundle's offline wheels."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from edgegen.bundle import bundle_model
from edgegen.data.reads import read_sequences
from edgegen.deploy import deploy, rollback, status
from edgegen.errors import EdgegenError
from edgegen.export import ExportConfig, export
from edgegen.signing import new_keys, sign_bundle
from tests.test_arm64_emulated import _install, _need_arm64
from tests.test_remote_device import _profile, _venv, sshd  # noqa: F401 - the local sshd fixture

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def signed(tiny_model_dir, syn_splits, syn_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("signed")
    priv, pub = new_keys(str(d / "keys"))
    model = export(
        tiny_model_dir, d / "m" / "tiny.int8.onnx", ExportConfig(format="onnx", quant="int8"), calib=syn_splits["dev"]
    )
    return {"d": d, "priv": priv, "pub": pub, "model": model, "acceptance": syn_dir / "test.csv"}


def _tree_sha(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _cycle(prof, b1: Path, b2: Path, pub: str) -> None:
    """deploy v1, deploy v2, rollback: v1 is current again, file for file; status says so over ssh."""
    r1 = deploy(b1, prof, trust=pub)
    assert r1["promoted"] and r1["health"]["ok"] and r1["health"]["agreement"] >= 0.98, r1
    root = Path(prof.deploy_dir)
    v1 = _tree_sha(root / "current")
    r2 = deploy(b2, prof)
    assert r2["promoted"] and os.readlink(root / "current") == "releases/2.0"
    assert rollback(prof)["current"] == "1.0"
    assert _tree_sha(root / "current") == v1
    st = status(prof)
    assert (
        st["current"] == "1.0" and st["previous"] == "2.0" and [r["version"] for r in st["releases"]] == ["1.0", "2.0"]
    )
    assert all(r["health"]["ok"] for r in st["releases"])


def test_deploy_and_rollback_over_ssh_with_a_torch_free_python(sshd, signed, tmp_path):  # noqa: F811
    py = _venv(tmp_path / "venv", ["numpy", "onnxruntime", "cryptography"])
    base = _profile(sshd, py, runtimes=("onnxruntime",))
    prof = base.model_copy(update={"deploy_dir": str(tmp_path / "device")})
    b = {
        v: bundle_model(signed["model"], tmp_path / v, acceptance=signed["acceptance"], version=v, sign=signed["priv"])
        for v in ("1.0", "2.0")
    }
    _cycle(prof, b["1.0"], b["2.0"], signed["pub"])
    # a tampered model is refused on the device, naming the file; current does not move
    t = tmp_path / "tampered"
    import shutil

    shutil.copytree(b["2.0"], t)
    m = t / "tiny.int8.onnx"
    m.write_bytes(m.read_bytes()[:-1] + bytes([m.read_bytes()[-1] ^ 1]))
    with pytest.raises(EdgegenError, match=r"tiny\.int8\.onnx.*(changed since it was signed|sha256)"):
        deploy(t, prof)
    # signed by another key: refused by the device's pinned key
    other_priv, _ = new_keys(str(tmp_path / "other"))
    shutil.rmtree(t)
    shutil.copytree(b["2.0"], t)
    sign_bundle(str(t), other_priv)
    with pytest.raises(EdgegenError, match="signature does not match"):
        deploy(t, prof)
    assert status(prof)["current"] == "1.0"
    # edgegen monitor: a watch's status and drift checks, fetched over ssh
    from edgegen.monitor import monitor
    from edgegen.watch import WatchConfig, watch

    run = tmp_path / "run" / "fastq_pass" / "barcode03"
    run.mkdir(parents=True)
    seqs = read_sequences(signed["acceptance"]).sequences[:120]
    (run / "b.fastq").write_text("".join(f"@{i}\n{s}\n+\n{'I' * len(s)}\n" for i, s in enumerate(seqs)))
    (tmp_path / "run" / "final_summary_x.txt").write_text("")
    cur = Path(prof.deploy_dir) / "current"
    local = watch(
        tmp_path / "run", cur / "tiny.int8.onnx", tmp_path / "watch-out", WatchConfig(poll_s=0.05, chunk_reads=60)
    )
    m = monitor(prof.model_copy(update={"watch_out": str(tmp_path / "watch-out")}), last=3)
    assert m["status"]["reads"] == local["reads"] == 120 and m["status"]["barcodes"] == local["barcodes"]
    assert len(m["drift"]) == 2 and m["drift"][-1]["chunk"] == 2 and m["status"]["model_version"] == "1.0"


def test_deploy_and_rollback_on_the_emulated_arm64_python(sshd, signed, tmp_path):  # noqa: F811
    qemu = _need_arm64()
    b1 = bundle_model(
        signed["model"],
        tmp_path / "1.0",
        acceptance=signed["acceptance"],
        version="1.0",
        sign=signed["priv"],
        wheelhouse=True,
        platform="linux_aarch64",
        python="3.11",
    )
    b2 = bundle_model(
        signed["model"], tmp_path / "2.0", acceptance=signed["acceptance"], version="2.0", sign=signed["priv"]
    )
    setup = tmp_path / "pi-python"  # the Pi's Python, set up once from v1's offline wheels
    import shutil

    shutil.copytree(b1, setup)
    py = _install(qemu, setup)
    base = _profile(sshd, Path("unused"), runtimes=("onnxruntime",))
    prof = base.model_copy(
        update={"python": " ".join([*qemu, str(py)]), "deploy_dir": str(tmp_path / "device"), "emulated": True}
    )
    _cycle(prof, b1, b2, signed["pub"])
    # a wheel changed after signing (what install.sh would install on the Pi) is refused, naming it (here the host's
    # manifest check catches it before anything is copied; the device's signature check is tested in test_deploy)
    t = tmp_path / "3.0"
    shutil.copytree(b1, t)
    wheel = sorted((t / "wheels").glob("numpy-*.whl"))[0]
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    with pytest.raises(
        EdgegenError, match=rf"wheels/{wheel.name}: (changed since it was signed|differs from the bundle)"
    ):
        deploy(t, prof)
    log = (Path(prof.deploy_dir) / "deploy-log.jsonl").read_text()
    assert log.count('"event": "installed"') == 2 and '"event": "rollback"' in log
    # the Pi classifies a gzipped FASTQ with the current release, without dnaio (no arm64 wheel): the same calls
    # as this host, and every row names the release
    import gzip
    import subprocess

    from edgegen.predict import predict

    test = read_sequences(signed["acceptance"])
    reads = tmp_path / "reads.fq.gz"
    with gzip.open(reads, "wt") as fh:
        for i, s in enumerate(test.sequences[:40]):
            fh.write(f"@r{i} run=1\n{s}\n+\n{'I' * len(s)}\n")
    cur = Path(prof.deploy_dir) / "current"
    man = json.loads((cur / "MANIFEST.json").read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = subprocess.run(
        [
            *qemu,
            str(py),
            str(cur / "runner.py"),
            "predict",
            "--model",
            str(cur / man["model"]),
            "--input",
            str(reads),
            "--out",
            str(tmp_path / "pi.tsv"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert (
        "dnaio"
        not in subprocess.run([*qemu, str(py), "-m", "pip", "list"], capture_output=True, text=True, env=env).stdout
    )
    predict(signed["model"], reads, tmp_path / "host.tsv", show_progress=False)
    pi = [x.split("\t") for x in (tmp_path / "pi.tsv").read_text().splitlines()]
    host = [x.split("\t") for x in (tmp_path / "host.tsv").read_text().splitlines()]
    assert len(pi) == len(host) == 41 and [x[:4] for x in pi] == [x[:4] for x in host]
    assert {tuple(x[-2:]) for x in pi[1:]} == {("1.0", man["files"][man["model"]])}
    # the Pi's runner.py watch on a run folder: every read once, the calls the host's predict gives
    run = tmp_path / "run"
    (run / "fastq_pass" / "barcode01").mkdir(parents=True)
    (run / "fastq_pass" / "barcode01" / "a.fastq.gz").write_bytes(reads.read_bytes())
    (run / "final_summary_y.txt").write_text("")
    r = subprocess.run(
        [
            *qemu,
            str(py),
            str(cur / "runner.py"),
            "watch",
            str(run),
            "--model",
            str(cur / man["model"]),
            "--out",
            str(tmp_path / "pi-watch"),
            "--poll",
            "0.2",
            "--chunk",
            "50",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["reads"] == 40 and s["stopped"] == "the run ended (final_summary)"
    res = next((tmp_path / "pi-watch" / "results").rglob("*.tsv")).read_text().splitlines()[1:]
    assert [x.split("\t")[:4] for x in res] == [x[:4] for x in host[1:]]
    _live_run_with_a_kill_on_the_pi(qemu, py, cur / man["model"], test.sequences[:400], env, tmp_path)


def _live_run_with_a_kill_on_the_pi(qemu, py, model: Path, seqs, env, tmp_path: Path) -> None:
    """The sequencer plays (tests/test_watch.py's writer) while the Pi's runner.py watch follows it; the watch is
    killed once it has recorded a file and started again: every read of a readable batch once, none twice."""
    import signal
    import subprocess
    import sys
    import time

    from tests.test_watch import WRITER

    recs = [(f"r{i}", s) for i, s in enumerate(seqs)]
    (tmp_path / "live.tsv").write_text("".join(f"{i}\t{s}\n" for i, s in recs))
    run, out = tmp_path / "live-run", tmp_path / "live-out"
    run.mkdir()
    cmd = [
        *qemu,
        str(py),
        str(model.parent / "runner.py"),
        "watch",
        str(run),
        "--model",
        str(model),
        "--out",
        str(out),
        "--poll",
        "0.5",
        "--chunk",
        "60",
    ]
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(run), str(tmp_path / "live.tsv")])
    w = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 300
    while not (out / "checkpoint.json").exists() and time.time() < deadline and w.poll() is None:
        time.sleep(0.2)
    w.send_signal(signal.SIGKILL)
    w.wait()
    w = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert writer.wait(timeout=300) == 0
    stdout, stderr = w.communicate(timeout=900)
    assert w.returncode == 0, stderr[-2000:]
    assert json.loads(stdout.strip().splitlines()[-1])["stopped"] == "the run ended (final_summary)"
    rows = []
    for f in (out / "results").rglob("*.tsv"):
        rows += [x.split("\t") for x in f.read_text().splitlines()[1:]]
    ids = [r[0] for r in rows]
    truncated = {i for i, _ in recs[120:160]}
    assert len(ids) == len(set(ids)) and set(ids) == {i for i, _ in recs} - truncated
    # the calls this host's predict gives on the same reads
    from edgegen.predict import predict

    fa = tmp_path / "live.fa"
    fa.write_text("".join(f">{i}\n{s}\n" for i, s in recs if i not in truncated))
    predict(model, fa, tmp_path / "live-host.tsv", show_progress=False)
    host = {x.split("\t")[0]: x.split("\t")[3] for x in (tmp_path / "live-host.tsv").read_text().splitlines()[1:]}
    assert {r[0]: r[3] for r in rows} == host
