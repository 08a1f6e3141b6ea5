"""Files from outside are checked before anything uses them (issue 29, second hostile-input campaign): one regression
test per defect found, named by its code (H1 … H8, M1), each failing before its fix."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED_FIXTURES, shared_path

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgegen.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd
    )


def one_line_error(r: subprocess.CompletedProcess, code: int = 1) -> str:
    assert r.returncode == code, r.stderr
    lines = [x for x in r.stderr.strip().splitlines() if x.strip() and not x.startswith("edgegen: WARNING")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


# ---------------------------------------------------------------------------------------------- teacher-logit stores
@pytest.fixture(scope="module")
def store(tiny_model_dir, syn_dir, tmp_path_factory) -> Path:
    from edgegen.distill import compute_teacher_logits

    out = tmp_path_factory.mktemp("store") / "logits"
    compute_teacher_logits(tiny_model_dir, syn_dir, out, show_progress=False)
    return out


def _open(store: Path, tiny_model_dir, syn_splits):
    from edgegen.checkpoint import load_model
    from edgegen.distill import DistillConfig
    from edgegen.distill_data import training_windows
    from edgegen.teacher_logits import LogitStore, ids_sha256, tokenizer_sha256

    lm = load_model(tiny_model_dir)
    ids, _, _ = training_windows(lm.tokenizer, syn_splits["train"], DistillConfig())
    return LogitStore.open(
        store,
        teacher_sha=lm.manifest["files"]["model.safetensors"],
        tokenizer_sha=tokenizer_sha256(lm.tokenizer),
        ids_sha=ids_sha256(ids),
        rows=len(ids),
    )


def _copy(store: Path, tmp: Path) -> tuple[Path, dict]:
    dst = tmp / "copy"
    shutil.copytree(store, dst)
    return dst, json.loads((dst / "meta.json").read_text())


def _save_meta(dst: Path, meta: dict) -> None:
    (dst / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "name,needle",
    [("../outside/evil.npy", "points outside"), ("/etc/hostname", "absolute path"), (7, "not a file name")],
)
def test_h1_a_shard_path_leaving_the_store_is_refused(store, tiny_model_dir, syn_splits, tmp_path, name, needle):
    from edgegen.errors import ModelFileError

    assert len(_open(store, tiny_model_dir, syn_splits)) == len(syn_splits["train"])  # the untouched store opens
    dst, meta = _copy(store, tmp_path)
    (tmp_path / "outside").mkdir()
    np.save(tmp_path / "outside" / "evil.npy", np.load(dst / "logits-00000.npy"))
    meta["shards"][0]["file"] = name
    _save_meta(dst, meta)
    with pytest.raises(ModelFileError, match=needle):
        _open(dst, tiny_model_dir, syn_splits)


def test_h2_changed_swapped_or_non_finite_shards_are_refused(store, tiny_model_dir, syn_splits, tmp_path):
    from edgegen.errors import ModelFileError
    from edgegen.io import sha256_file

    dst, meta = _copy(store, tmp_path)
    shard = dst / meta["shards"][0]["file"]
    good = np.load(shard)
    raw = bytearray(shard.read_bytes())
    raw[-3] ^= 0x40  # one flipped bit in the last logit
    shard.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="replaced or damaged"):
        _open(dst, tiny_model_dir, syn_splits)
    np.save(shard, good[:, ::-1].copy())  # classes swapped: a valid file, wrong logits
    with pytest.raises(ModelFileError, match="replaced or damaged"):
        _open(dst, tiny_model_dir, syn_splits)
    # someone who also rewrites the recorded hash: NaN and inf are still refused, naming the row
    for bad, word in (
        (np.full_like(good, np.nan), "NaN"),
        (np.where(np.arange(len(good))[:, None] == 5, np.inf, good), "infinite"),
    ):
        np.save(shard, bad.astype(np.float32))
        meta["shards"][0]["sha256"] = sha256_file(shard)
        _save_meta(dst, meta)
        with pytest.raises(ModelFileError, match=f"{word}.*first at row {0 if word == 'NaN' else 5}"):
            _open(dst, tiny_model_dir, syn_splits)
    # a store without recorded hashes (an old or hand-made one) is refused, not trusted
    del meta["shards"][0]["sha256"]
    _save_meta(dst, meta)
    with pytest.raises(ModelFileError, match="records no valid sha256"):
        _open(dst, tiny_model_dir, syn_splits)


def test_m1_an_empty_shard_is_a_damaged_store_not_an_interrupt(store, tiny_model_dir, syn_dir, tmp_path):
    dst, meta = _copy(store, tmp_path)
    (dst / meta["shards"][0]["file"]).write_bytes(b"")
    student = tmp_path / "s.yaml"
    student.write_text("d_model: 16\nn_layers: 1\nn_heads: 2\nffn_dim: 32\n")
    r = cli(
        "distill",
        "--teacher",
        tiny_model_dir,
        "--student",
        student,
        "--data",
        syn_dir,
        "--out",
        tmp_path / "out",
        "--teacher-logits",
        dst,
        "--epochs",
        "1",
    )
    line = one_line_error(r)
    assert "shard is empty" in line and "logits-00000.npy" in line
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------------- NaN and Inf
def test_h3_a_nan_weight_is_refused_at_load_and_at_import(tiny_model_dir, syn_dir, tmp_path):
    import safetensors.torch

    from edgegen.checkpoint import load_model
    from edgegen.errors import ModelFileError
    from edgegen.io import sha256_file

    m = tmp_path / "m"
    shutil.copytree(tiny_model_dir, m)
    state = safetensors.torch.load_file(str(m / "model.safetensors"))
    name = sorted(k for k in state if k.endswith("attn.q.weight"))[0]
    state[name][0, 0] = float("nan")
    safetensors.torch.save_file(state, str(m / "model.safetensors"))
    man = json.loads((m / "manifest.json").read_text())
    man["files"]["model.safetensors"] = sha256_file(m / "model.safetensors")  # a consistent manifest: only NaN is wrong
    (m / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ModelFileError, match=f"weight {name} holds NaN"):
        load_model(m)
    assert "holds NaN" in one_line_error(cli("evaluate", m, "--data", syn_dir / "test.csv"))

    src = shared_path(SHARED_FIXTURES, "hf/nt_v2_tiny_cls", "HF fixture")
    hf = tmp_path / "hf"
    shutil.copytree(src, hf)
    st = safetensors.torch.load_file(str(hf / "model.safetensors"))
    st["classifier.out_proj.weight"][0, 0] = float("inf")
    safetensors.torch.save_file(st, str(hf / "model.safetensors"))
    line = one_line_error(cli("import", hf, "--out", tmp_path / "imported"))
    assert "classifier.weight holds NaN or infinite" in line
    assert not (tmp_path / "imported").exists()


def test_h3_a_model_computing_nan_gives_no_metric_prediction_or_verification(syn_splits):
    from edgegen.errors import ModelFileError
    from edgegen.evaluate import evaluate
    from edgegen.runtime import run_batched

    class NaNRunner:  # a model file whose graph computes NaN (weights finite, an overflowing op)
        backend, path, num_classes, input_spec = "onnxruntime", Path("nan.onnx"), 2, {}

        def __init__(self, tok):
            self.tokenizer = tok

        def set_threads(self, n):
            pass

        def __call__(self, ids):
            out = np.zeros((len(ids), 2), np.float32)
            out[len(ids) // 2] = np.nan
            return out

    from edgegen.dna_tokenizer import Tokenizer

    r = NaNRunner(Tokenizer(kind="kmer_nonoverlap", k=3, max_len=200))
    with pytest.raises(ModelFileError, match="nan.onnx: the model's logits .* NaN"):
        run_batched(r, np.zeros((8, 70), np.int32))
    with pytest.raises(ModelFileError, match="NaN"):
        evaluate(r, syn_splits["test"])


# ---------------------------------------------------------------------------------------------- recipe cache keys
def test_h4_recipe_inputs_are_keyed_by_content_not_path(tiny_model_dir, syn_dir, tmp_path):
    from edgegen.recipe import load_recipe, plan

    model = tmp_path / "teacher"
    shutil.copytree(tiny_model_dir, model)
    reads = tmp_path / "reads.fa"
    reads.write_text(">r1\nACGTACGTACGTACGTACGT\n")
    raw = {
        "name": "h4",
        "data": str(syn_dir),
        "steps": [
            {"type": "load", "path": str(model)},
            {"type": "prune", "targets": [0.5]},
            {"type": "distill", "epochs": 1, "unlabeled": str(reads)},
        ],
    }

    def keys():
        return {s.name: s.key for s in plan(load_recipe(raw=raw))}

    before = keys()
    assert keys() == before  # the same files: the same keys
    reads.write_text(">r1\nTTTTACGTACGTACGTACGT\n")  # other reads at the same path
    after_reads = keys()
    assert after_reads["teacher"] == before["teacher"]
    assert all(after_reads[k] != before[k] for k in before if k.startswith("distill"))
    (model / "model.safetensors").write_bytes(
        (model / "model.safetensors").read_bytes() + b" "
    )  # another model, same path
    after_model = keys()
    assert after_model["teacher"] != before["teacher"]
    assert all(after_model[k] != after_reads[k] for k in after_model)  # everything built on the teacher is rebuilt


# ---------------------------------------------------------------------------------------------------- device profiles
@pytest.mark.parametrize(
    "ssh,needle",
    [
        ({"host": "-oProxyCommand=touch MARKER"}, "host"),
        ({"host": "pi", "user": "-oProxyCommand=x"}, "user"),
        ({"host": "pi", "options": ["ProxyCommand=touch MARKER"]}, "ssh option"),
        ({"host": "pi", "options": ["LocalCommand=touch MARKER"]}, "ssh option"),
        ({"host": "pi", "remote_dir": "/tmp/x; touch MARKER"}, "remote_dir"),
        ({"host": "pi", "remote_dir": "/"}, "remote_dir"),
        ({"host": "pi", "identity_file": "-oProxyCommand=x"}, "identity_file"),
    ],
)
def test_h5_profile_text_never_becomes_an_ssh_option(tmp_path, ssh, needle):
    import yaml

    from edgegen.devices import load_device
    from edgegen.errors import ConfigError

    f = tmp_path / "evil.yaml"
    f.write_text(yaml.safe_dump({"name": "evil", "ssh": ssh}))
    with pytest.raises(ConfigError, match=needle):
        load_device(f)
    r = cli("devices", f)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert not (tmp_path / "MARKER").exists() and not Path("MARKER").exists()


def test_h5_python_words_are_quoted_and_ssh_ends_its_options(tmp_path, monkeypatch):
    import yaml

    import edgegen.remote as remote
    from edgegen.devices import load_device
    from edgegen.errors import ConfigError

    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({"name": "p", "python": "python3; touch MARKER", "ssh": {"host": "pi"}}))
    with pytest.raises(ConfigError, match="python"):
        load_device(f)
    f.write_text(
        yaml.safe_dump(
            {
                "name": "p",
                "python": "qemu-aarch64-static -L /opt/root /opt/root/usr/bin/python3",
                "ssh": {
                    "host": "pi.local",
                    "user": "lab",
                    "port": 2222,
                    "options": ["StrictHostKeyChecking=accept-new"],
                },
            }
        )
    )
    prof = load_device(f)
    seen = []
    monkeypatch.setattr(
        remote, "_run", lambda cmd, *a: (seen.append(cmd), subprocess.CompletedProcess(cmd, 1, "", "no"))[1]
    )
    with pytest.raises(Exception):
        remote.SSHDevice(prof).measure("/tmp/d", "m.tflite", [], tmp_path / "m;x.json")
    cmd = seen[0]
    assert cmd[0] == "ssh" and cmd[cmd.index("--") + 1] == "lab@pi.local"
    assert "qemu-aarch64-static -L /opt/root /opt/root/usr/bin/python3 runner.py" in cmd[-1]
    assert "result_m_x.json" in cmd[-1] and ";" not in cmd[-1].split("runner.py")[1]


# ---------------------------------------------------------------------------------------------------------- bundles
@pytest.fixture(scope="module")
def bundle(tiny_model_dir, syn_dir, tmp_path_factory) -> Path:
    from edgegen.bundle import bundle_model
    from edgegen.export import export
    from edgegen.export.config import ExportConfig

    d = tmp_path_factory.mktemp("bundle")
    m = export(
        tiny_model_dir, d / "tiny.onnx", ExportConfig(format="onnx", quant="none", verify_samples=32), calib=syn_dir
    )
    return bundle_model(m, d / "b", data=syn_dir / "test.csv")


def _measure(b: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "runner.py",
            "measure",
            "--model",
            "tiny.onnx",
            "--inputs",
            "inputs.npz",
            "--out",
            "r.json",
            "--runs",
            "5",
            "--warmup",
            "1",
            "--no-latency",
        ],
        cwd=b,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    "tamper,needle",
    [
        (
            lambda b: (b / "lib/edgegen/predict.py").write_text(
                (b / "lib/edgegen/predict.py").read_text() + "\nraise SystemExit(0)\n"
            ),
            "lib/edgegen/predict.py: differs from the bundle manifest",
        ),
        (
            lambda b: (b / "runner.py").write_text(
                (b / "runner.py").read_text().replace("verify_bundle(here)", "{'files': {}}")
            ),
            None,
        ),  # a runner that skips the check is caught by the host before copying it (the signature's job on a device)
        (lambda b: (b / "inputs.npz").write_bytes((b / "inputs.npz").read_bytes()[:-10]), "inputs.npz: differs"),
        (lambda b: (b / "lib/edgegen/sitecustomize.py").write_text("import os\n"), "sitecustomize.py: is not listed"),
        (lambda b: (b / "json.py").write_text("raise SystemExit('shadowed')\n"), "json.py: is not listed"),
        (lambda b: (b / "tiny.onnx").unlink(), "tiny.onnx: missing from the bundle"),
    ],
)
def test_h6_a_changed_or_added_bundle_file_is_refused_before_anything_runs(bundle, tmp_path, tamper, needle):
    from edgegen.errors import ModelFileError
    from edgegen.standalone import check_bundle

    b = tmp_path / "b"
    shutil.copytree(bundle, b)
    r = _measure(b)
    assert r.returncode == 0, r.stderr  # the untouched copy runs
    (b / "r.json").unlink()
    tamper(b)
    if needle is not None:
        r = _measure(b)
        assert r.returncode == 1 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert not (b / "r.json").exists()
    with pytest.raises(ModelFileError):
        check_bundle(b)


def test_h6_manifest_paths_leaving_the_bundle_are_refused(bundle, tmp_path):
    from edgegen.errors import ModelFileError
    from edgegen.standalone import check_bundle

    b = tmp_path / "b"
    shutil.copytree(bundle, b)
    man = json.loads((b / "MANIFEST.json").read_text())
    for name in ("../outside.txt", "/etc/hostname"):
        (b / "MANIFEST.json").write_text(json.dumps({**man, "files": {**man["files"], name: "0" * 64}}))
        with pytest.raises(ModelFileError, match="outside the bundle|not a relative file name"):
            check_bundle(b)


@pytest.mark.slow
def test_h6_install_sh_verifies_the_wheels_before_pip_runs(float_onnx_bundle_with_wheels, tmp_path):
    b = tmp_path / "b"
    shutil.copytree(float_onnx_bundle_with_wheels, b)
    pip = next((b / "wheels").glob("pip-*.whl"))
    pip.write_bytes(pip.read_bytes() + b"tampered")
    r = subprocess.run(["sh", "install.sh"], cwd=b, capture_output=True, text=True)
    assert r.returncode == 1 and f"wheels/{pip.name}: differs from the bundle manifest" in r.stderr, r.stderr
    assert not (b / "venv").exists(), "pip ran before the wheels were verified"


@pytest.fixture(scope="module")
def float_onnx_bundle_with_wheels(tiny_model_dir, syn_dir, tmp_path_factory) -> Path:
    import platform

    from edgegen.bundle import bundle_model
    from edgegen.export import export
    from edgegen.export.config import ExportConfig

    d = tmp_path_factory.mktemp("wh")
    m = export(
        tiny_model_dir, d / "tiny.onnx", ExportConfig(format="onnx", quant="none", verify_samples=32), calib=syn_dir
    )
    return bundle_model(
        m,
        d / "b",
        data=syn_dir / "test.csv",
        wheelhouse=True,
        platform=f"linux_{platform.machine()}",
        python="%d.%d" % sys.version_info[:2],
    )


# --------------------------------------------------------------------------------------------- Hugging Face folders
@pytest.fixture()
def nt_v2(tmp_path) -> Path:
    dst = tmp_path / "nt"
    shutil.copytree(shared_path(SHARED_FIXTURES, "hf/nt_v2_tiny_cls", "HF fixture"), dst)
    for f in dst.iterdir():
        f.chmod(0o644)
    return dst


def test_h7_a_config_with_fewer_layers_than_the_weights_is_refused(nt_v2, tmp_path):
    cfg = json.loads((nt_v2 / "config.json").read_text())
    cfg["num_hidden_layers"] -= 1
    (nt_v2 / "config.json").write_text(json.dumps(cfg))
    line = one_line_error(cli("import", nt_v2, "--out", tmp_path / "m"))
    assert f"encoder.layer.{cfg['num_hidden_layers']}." in line and "config.json leaves unused" in line
    assert not (tmp_path / "m").exists()


def test_h7_a_stray_weight_file_is_an_error_naming_both(nt_v2, tmp_path):
    shutil.copy(nt_v2 / "model.safetensors", nt_v2 / "model_old.safetensors")
    line = one_line_error(cli("import", nt_v2, "--out", tmp_path / "m"))
    assert "more than one weight file: model.safetensors, model_old.safetensors" in line
    (nt_v2 / "model_old.safetensors").unlink()
    assert cli("import", nt_v2, "--out", tmp_path / "m").returncode == 0  # the published layout imports


def test_h7_a_sharded_index_naming_a_file_outside_is_refused(nt_v2, tmp_path):
    (nt_v2 / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"x": "../../etc/passwd"}}))
    line = one_line_error(cli("import", nt_v2, "--out", tmp_path / "m"))
    assert "points outside" in line or "absolute" in line


# --------------------------------------------------------------------------------------------------- training window
def test_h8_one_long_row_does_not_make_the_window(tmp_path):
    from edgegen.train import default_window

    lens = np.full(800, 200)
    assert default_window(lens) == (200, 0)
    assert default_window(np.append(lens, 16_000)) == (200, 1)  # the outlier is cropped, not the window
    spread = np.arange(150, 350)  # a smooth spread of lengths keeps the longest
    assert default_window(spread) == (349, 0)
    csv = "sequence,label\n" + "".join(f"{'ACGT' * 50},{i % 2}\n" for i in range(199)) + f"{'ACGT' * 4000},1\n"
    d = tmp_path / "d"
    d.mkdir()
    for split in ("train", "dev", "test"):
        (d / f"{split}.csv").write_text(csv)
    from edgegen.data import load_split_dir
    from edgegen.train import TrainConfig, make_tokenizer

    tok = make_tokenizer(TrainConfig(), load_split_dir(d)["train"])
    assert tok.max_len == 200
