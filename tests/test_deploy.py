"""The model's life on a device (issue: signed bundles, versioned installs, health-checked updates, rollback), on a
deploy folder of this machine (a mounted SD card: the profile has no ssh). The same device side over ssh and on the
emulated arm64 Python: tests/test_deploy_remote.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgegen.bundle import bundle_model
from edgegen.deploy import deploy, rollback, status
from edgegen.devices import DeviceProfile
from edgegen.errors import EdgegenError
from edgegen.export import ExportConfig, export
from edgegen.signing import SignatureError, new_keys, sign_bundle, verify_signed_bundle

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    priv, pub = new_keys(str(d / "lab"))
    other_priv, other_pub = new_keys(str(d / "other"))
    return {"priv": Path(priv), "pub": Path(pub), "other_priv": Path(other_priv), "other_pub": Path(other_pub)}


@pytest.fixture(scope="module")
def onnx_model(tiny_model_dir, syn_splits, tmp_path_factory):
    p = tmp_path_factory.mktemp("onnx") / "tiny.int8.onnx"
    return export(tiny_model_dir, p, ExportConfig(format="onnx", quant="int8"), calib=syn_splits["dev"])


@pytest.fixture(scope="module")
def bundles(onnx_model, syn_dir, keys, tmp_path_factory):
    """v1, v2, v3 of the same model, signed; and an unsigned v4."""
    d = tmp_path_factory.mktemp("bundles")
    out = {}
    for v in ("1.0.0", "1.1.0", "1.2.0"):
        out[v] = bundle_model(onnx_model, d / v, acceptance=syn_dir / "test.csv", version=v, sign=keys["priv"])
    out["unsigned"] = bundle_model(onnx_model, d / "unsigned", acceptance=syn_dir / "test.csv", version="1.3.0")
    return out


def _device(tmp_path, **kw) -> DeviceProfile:
    return DeviceProfile(name="sd-card", runtimes=["onnxruntime"], deploy_dir=str(tmp_path / "device"), **kw)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _copy(bundle: Path, dest: Path) -> Path:
    shutil.copytree(bundle, dest)
    return dest


def test_deploy_v1_v2_then_rollback_gives_v1_back_byte_identical(bundles, keys, tmp_path):
    dev = _device(tmp_path)
    r1 = deploy(bundles["1.0.0"], dev, trust=keys["pub"])
    assert r1["promoted"] and r1["current"] == "1.0.0"
    h = r1["health"]
    assert h["ok"] and h["agreement"] >= 0.98 and h["reads"] > 100 and "accuracy" in h and "rc_consistency" in h
    root = Path(dev.deploy_dir)
    v1_files = _tree(root / "current")
    assert v1_files == _tree(bundles["1.0.0"])  # the release is the bundle, file for file
    r2 = deploy(bundles["1.1.0"], dev)  # the pinned key verifies it: --trust only at the first install
    assert r2["promoted"] and os.readlink(root / "current") == "releases/1.1.0"
    assert os.readlink(root / "previous") == "releases/1.0.0"
    back = rollback(dev)
    assert back == {"current": "1.0.0", "previous": "1.1.0", "changed": True}
    assert _tree(root / "current") == v1_files
    st = status(dev)
    assert st["current"] == "1.0.0" and [r["version"] for r in st["releases"]] == ["1.0.0", "1.1.0"]
    man = json.loads((bundles["1.0.0"] / "MANIFEST.json").read_text())
    assert st["releases"][0]["model_sha256"] == man["files"][man["model"]]
    assert all(r["health"]["ok"] and r["by"] and r["installed"] for r in st["releases"])
    events = [json.loads(line)["event"] for line in (root / "deploy-log.jsonl").read_text().splitlines()]
    assert events.count("installed") == 2 and events.count("switch") == 2 and events[-1] == "rollback"
    # a release is immutable on the device
    assert not os.access(root / "releases" / "1.0.0" / "runner.py", os.W_OK) or os.geteuid() == 0
    assert oct((root / "releases" / "1.0.0" / "runner.py").stat().st_mode & 0o777) == "0o444"


def test_tampered_model_runner_or_listed_file_is_refused_naming_it(bundles, keys, tmp_path):
    dev = _device(tmp_path)
    deploy(bundles["1.0.0"], dev, trust=keys["pub"])
    for name in ("tiny.int8.onnx", "runner.py", "acceptance.npz"):
        b = _copy(bundles["1.1.0"], tmp_path / f"t-{name}")
        f = b / name
        data = bytearray(f.read_bytes())
        data[len(data) // 2] ^= 0xFF
        f.write_bytes(bytes(data))
        with pytest.raises(EdgegenError, match=rf"{name}.*(changed since it was signed|sha256)"):
            deploy(b, dev)
    # a model swapped together with its manifest entry passes the manifest check; the signature stops it on the device
    b = _copy(bundles["1.1.0"], tmp_path / "swapped")
    from edgegen.io import sha256_file

    (b / "tiny.int8.onnx").write_bytes((b / "tiny.int8.onnx").read_bytes() + b"\0")
    man = json.loads((b / "MANIFEST.json").read_text())
    man["files"]["tiny.int8.onnx"] = sha256_file(b / "tiny.int8.onnx")
    (b / "MANIFEST.json").write_text(json.dumps(man))
    with pytest.raises(EdgegenError, match=r"MANIFEST\.json: changed since it was signed"):
        deploy(b, dev)
    b = _copy(bundles["1.1.0"], tmp_path / "extra")
    (b / "lib" / "edgegen" / "sitecustomize.py").write_text("print('hi')\n")
    with pytest.raises(EdgegenError, match="sitecustomize.py"):
        deploy(b, dev)
    assert os.readlink(Path(dev.deploy_dir) / "current") == "releases/1.0.0"
    assert status(dev)["releases"][-1]["version"] == "1.0.0"


def test_a_bundle_signed_with_another_key_or_unsigned_is_refused(bundles, keys, onnx_model, syn_dir, tmp_path):
    dev = _device(tmp_path)
    deploy(bundles["1.0.0"], dev, trust=keys["pub"])
    b = _copy(bundles["1.1.0"], tmp_path / "other")
    sign_bundle(str(b), str(keys["other_priv"]))
    with pytest.raises(EdgegenError, match="SHA256SUMS.sig.*signature does not match"):
        deploy(b, dev)
    with pytest.raises(EdgegenError, match="device trusts key"):
        deploy(b, dev, trust=keys["other_pub"])
    with pytest.raises(EdgegenError, match="not signed"):
        deploy(bundles["unsigned"], dev)
    r = deploy(bundles["unsigned"], dev, force=True)
    assert r["promoted"] and status(dev)["releases"][-1]["signed"] is False


def test_a_release_whose_outputs_disagree_is_not_promoted(bundles, keys, tmp_path):
    """The device computes other classes than the host recorded (here: the recorded outputs swapped): v2 is not made
    current, v1 stays, and the log and status say why."""
    dev = _device(tmp_path)
    deploy(bundles["1.0.0"], dev, trust=keys["pub"])
    b = _copy(bundles["1.1.0"], tmp_path / "bad")
    acc = dict(np.load(b / "acceptance.npz"))
    acc["expected"] = acc["expected"][:, ::-1].copy()
    np.savez(b / "acceptance.npz", **acc)
    man = json.loads((b / "MANIFEST.json").read_text())
    from edgegen.io import sha256_file

    man["files"]["acceptance.npz"] = sha256_file(b / "acceptance.npz")
    (b / "MANIFEST.json").write_text(json.dumps(man))
    sign_bundle(str(b), str(keys["priv"]))  # a correctly signed release that does not compute what was recorded
    r = deploy(b, dev)
    assert not r["promoted"] and "agreement" in r["health"]["why"] and r["current"] == "1.0.0"
    assert os.readlink(Path(dev.deploy_dir) / "current") == "releases/1.0.0"
    assert not (Path(dev.deploy_dir) / "releases" / "1.1.0").exists()
    log = [json.loads(x) for x in (Path(dev.deploy_dir) / "deploy-log.jsonl").read_text().splitlines()]
    assert any(e["event"] == "health" and e["version"] == "1.1.0" and not e["ok"] for e in log)


def test_latency_budget_of_the_profile_is_checked(bundles, keys, tmp_path):
    dev = _device(tmp_path, max_p50_ms=1e-6)
    r = deploy(bundles["1.0.0"], dev, trust=keys["pub"])
    assert not r["promoted"] and "p50 latency" in r["health"]["why"] and r["health"]["p50_ms"] > 1e-6


def test_downgrade_reinstall_and_pruning(bundles, keys, tmp_path):
    dev = _device(tmp_path, keep_releases=2)
    for v in ("1.0.0", "1.1.0"):
        deploy(bundles[v], dev, trust=keys["pub"])
    rollback(dev)  # 1.0.0 current, 1.1.0 previous
    with pytest.raises(EdgegenError, match="already installed"):
        deploy(bundles["1.1.0"], dev)
    r = deploy(bundles["1.2.0"], dev)  # keep 2: 1.1.0 goes (neither current nor the rollback target)
    assert r["promoted"] and r["removed"] == ["1.1.0"]
    assert [x["version"] for x in status(dev)["releases"]] == ["1.0.0", "1.2.0"]
    rollback(dev, to="1.0.0")
    with pytest.raises(EdgegenError, match="older than the current"):
        dev2 = _device(tmp_path / "d2")
        deploy(bundles["1.2.0"], dev2, trust=keys["pub"])
        deploy(bundles["1.0.0"], dev2)
    with pytest.raises(EdgegenError, match="no such release"):
        rollback(dev, to="9.9")


def _cli_deploy(bundle: Path, profile: Path, *extra: str, env=None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "edgegen.cli", "deploy", str(bundle), "--device", str(profile), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _current_runs(root: Path) -> str:
    """The current release verifies and classifies: its own runner.py, as the device runs it."""
    cur = root / "current"
    r = subprocess.run([sys.executable, str(cur / "runner.py"), "verify"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    man = json.loads((cur / "MANIFEST.json").read_text())
    reads = root.parent / "reads.fa"
    reads.write_text(">r1\n" + "ACGT" * 40 + "\n>r2\n" + "GATTACA" * 20 + "\n")
    out = root.parent / f"preds-{man['version']}.tsv"
    r = subprocess.run(
        [
            sys.executable,
            str(cur / "runner.py"),
            "predict",
            "--model",
            str(cur / man["model"]),
            "--input",
            str(reads),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    rows = [line.split("\t") for line in out.read_text().splitlines()]
    assert rows[0][-2:] == ["model_version", "model_sha256"] and len(rows) == 3
    assert {tuple(x[-2:]) for x in rows[1:]} == {(man["version"], man["files"][man["model"]])}  # who said so
    out.unlink()
    return man["version"]


@pytest.mark.parametrize("step", ["locked", "verified", "installed", "checked", "switched"])
def test_sigkill_at_each_step_leaves_a_current_release_that_runs(bundles, keys, tmp_path, step):
    root = tmp_path / "device"
    profile = tmp_path / "sd.yaml"
    profile.write_text(f"name: sd\nruntimes: [onnxruntime]\ndeploy_dir: {root}\n")
    assert _cli_deploy(bundles["1.0.0"], profile, "--trust", str(keys["pub"])).wait(timeout=300) == 0
    p = _cli_deploy(bundles["1.1.0"], profile, env={"EDGEGEN_DEPLOY_KILL_AT": step})
    assert p.wait(timeout=300) == -signal.SIGKILL
    assert _current_runs(root) == ("1.1.0" if step == "switched" else "1.0.0")
    if step != "switched":  # the next deploy cleans what the killed one left and succeeds
        p = _cli_deploy(bundles["1.1.0"], profile)
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert _current_runs(root) == "1.1.0"
    assert not [n for n in os.listdir(root / "releases") if n.endswith(".tmp")] or step != "switched"


def test_two_deploys_at_once_serialize(bundles, keys, tmp_path):
    root = tmp_path / "device"
    profile = tmp_path / "sd.yaml"
    profile.write_text(f"name: sd\nruntimes: [onnxruntime]\ndeploy_dir: {root}\n")
    assert _cli_deploy(bundles["1.0.0"], profile, "--trust", str(keys["pub"])).wait(timeout=300) == 0
    a, b = _cli_deploy(bundles["1.1.0"], profile), _cli_deploy(bundles["1.2.0"], profile)
    ra, rb = a.wait(timeout=300), b.wait(timeout=300)
    log = [json.loads(x) for x in (root / "deploy-log.jsonl").read_text().splitlines()]
    seq = [(e["event"], e.get("version")) for e in log if e.get("version") in ("1.1.0", "1.2.0")]
    # one deploy's events never interleave with the other's: each version's run of events is contiguous
    firsts = [v for i, (_, v) in enumerate(seq) if i == 0 or seq[i - 1][1] != v]
    assert len(firsts) == len(set(firsts)), seq
    assert rb == 0 and (ra == 0 or "older than the current" in a.stderr.read())
    assert _current_runs(root) == "1.2.0"


def test_keys_are_owner_only_and_cli_signs_and_refuses(onnx_model, syn_dir, tmp_path):
    env = {**os.environ}
    r = subprocess.run(
        [sys.executable, "-m", "edgegen.cli", "keys", "new", "--out", str(tmp_path / "k")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert oct((tmp_path / "k" / "edgegen-signing.key").stat().st_mode & 0o777) == "0o600"
    r = subprocess.run(
        [sys.executable, "-m", "edgegen.cli", "keys", "new", "--out", str(tmp_path / "k")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 2 and "already there" in r.stderr and "Traceback" not in r.stderr
    out = tmp_path / "b"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgegen.cli",
            "bundle",
            str(onnx_model),
            "--out",
            str(out),
            "--acceptance",
            str(syn_dir / "test.csv"),
            "--version",
            "2.0",
            "--sign",
            str(tmp_path / "k" / "edgegen-signing.key"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    listed = verify_signed_bundle(str(out), (tmp_path / "k" / "edgegen-signing.pub").read_bytes())
    assert "MANIFEST.json" in listed and "acceptance.npz" in listed and "runner.py" in listed
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgegen.cli",
            "bundle",
            str(onnx_model),
            "--out",
            str(tmp_path / "c"),
            "--acceptance",
            str(syn_dir / "test.csv"),
            "--version",
            "2.0; rm -rf /",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "not numbers separated by dots" in r.stderr and "Traceback" not in r.stderr


def test_a_signed_list_that_leaves_the_bundle_is_refused(bundles, keys, tmp_path):
    b = _copy(bundles["1.0.0"], tmp_path / "b")
    (tmp_path / "secret").write_text("x")
    sums = (b / "SHA256SUMS").read_text()
    from edgegen.io import sha256_file

    (b / "SHA256SUMS").write_text(sums + f"{sha256_file(tmp_path / 'secret')}  ../secret\n")
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(keys["priv"].read_bytes(), None)
    (b / "SHA256SUMS.sig").write_bytes(key.sign((b / "SHA256SUMS").read_bytes()))
    with pytest.raises(SignatureError, match=r"'\.\./secret', which is not a file inside the bundle"):
        verify_signed_bundle(str(b), keys["pub"].read_bytes())


OPENSSL = shutil.which("openssl")
SHA256SUM = shutil.which("sha256sum")


@pytest.mark.skipif(not (OPENSSL and SHA256SUM), reason="openssl and sha256sum (coreutils) are needed")
def test_a_third_party_verifies_with_openssl_and_sha256sum(bundles, keys, tmp_path):
    """The documented check with standard tools, no edgegen: openssl accepts the signature, sha256sum every file;
    a tampered model fails sha256sum, a changed list fails openssl."""
    b = _copy(bundles["1.0.0"], tmp_path / "b")

    def openssl_ok() -> bool:
        r = subprocess.run(
            [
                OPENSSL,
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                str(keys["pub"]),
                "-rawin",
                "-in",
                "SHA256SUMS",
                "-sigfile",
                "SHA256SUMS.sig",
            ],
            cwd=b,
            capture_output=True,
            text=True,
        )
        return r.returncode == 0 and "Signature Verified Successfully" in r.stdout

    def sums_ok() -> bool:
        return (
            subprocess.run(
                [SHA256SUM, "--check", "--strict", "--quiet", "SHA256SUMS"], cwd=b, capture_output=True
            ).returncode
            == 0
        )

    assert openssl_ok() and sums_ok()
    model = b / "tiny.int8.onnx"
    data = bytearray(model.read_bytes())
    data[100] ^= 1
    model.write_bytes(bytes(data))
    assert openssl_ok() and not sums_ok()
    (b / "SHA256SUMS").write_text((b / "SHA256SUMS").read_text().replace("tiny.int8.onnx", "tiny.int8.onnx "))
    assert not openssl_ok()


def test_cli_deploy_errors_are_one_line(bundles, keys, tmp_path):
    profile = tmp_path / "nodir.yaml"
    profile.write_text("name: sd\nruntimes: [onnxruntime]\n")
    cases = [
        (["deploy", str(tmp_path / "missing"), "--device", str(profile)], "no such bundle folder"),
        (["deploy", str(bundles["1.0.0"]), "--device", str(profile)], "has no deploy_dir"),
        (["rollback", "--device", str(profile), "--to", "1.0; reboot"], "not numbers separated by dots"),
    ]
    ok = tmp_path / "ok.yaml"
    ok.write_text(f"name: sd\nruntimes: [onnxruntime]\ndeploy_dir: {tmp_path / 'dev'}\n")
    cases += [
        (["deploy", str(bundles["1.0.0"]), "--device", str(ok)], "no key is pinned"),
        (["rollback", "--device", str(ok)], "no previous release"),
        (
            ["deploy", str(bundles["1.0.0"]), "--device", str(ok), "--trust", str(bundles["1.0.0"] / "runner.py")],
            "not a PEM public key",
        ),
    ]
    for args, msg in cases:
        r = subprocess.run([sys.executable, "-m", "edgegen.cli", *args], capture_output=True, text=True)
        assert r.returncode in (1, 2) and msg in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgegen.cli",
            "deploy",
            str(bundles["1.0.0"]),
            "--device",
            str(ok),
            "--trust",
            str(keys["pub"]),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "release 1.0.0 is current" in r.stdout, r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "edgegen.cli", "status", "--device", str(ok), "--json", str(tmp_path / "st.json")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "1.0.0" in r.stdout and "current" in r.stdout and "passed" in r.stdout
    assert json.loads((tmp_path / "st.json").read_text())["current"] == "1.0.0"


def test_a_nan_budget_fails_the_health_check_instead_of_passing_it(bundles, keys, tmp_path):
    """NaN in the manifest's budgets would make every comparison false; the check refuses such a record."""
    from edgegen.health import check_release

    man = json.loads((bundles["1.0.0"] / "MANIFEST.json").read_text())
    rec = dict(man["acceptance"], min_agreement=float("nan"))
    res = check_release(str(bundles["1.0.0"]), man["model"], rec)
    assert not res["ok"] and "min_agreement" in res["why"]
    assert check_release(str(bundles["1.0.0"]), man["model"], man["acceptance"])["ok"]
