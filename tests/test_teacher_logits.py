"""Distillation at scale: the teacher-logit store, unlabeled reads, and torchrun (gloo on CPU)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import real_data

STUDENT_YAML = "d_model: 16\nn_layers: 1\nn_heads: 2\nffn_dim: 32\n"


def _count_teacher_rows(monkeypatch, teacher_dir) -> list[int]:
    """Rows the teacher (loaded from ``teacher_dir``) is run on, per forward call."""
    import edgegen.checkpoint as ckpt

    rows: list[int] = []
    real_load = ckpt.load_model

    def load(path, *a, **k):
        lm = real_load(path, *a, **k)
        if Path(path).resolve() == Path(teacher_dir).resolve():
            lm.model.register_forward_hook(lambda m, inp, out: rows.append(int(inp[0].shape[0])))
        return lm

    monkeypatch.setattr(ckpt, "load_model", load)
    return rows


@pytest.fixture()
def student_yaml(tmp_path) -> Path:
    p = tmp_path / "student.yaml"
    p.write_text(STUDENT_YAML)
    return p


def test_store_is_computed_once_and_reused(tiny_model_dir, syn_dir, syn_splits, student_yaml, tmp_path, monkeypatch):
    from edgegen.checkpoint import load_model
    from edgegen.distill import DistillConfig, distill_model

    cfg = DistillConfig(epochs=2, batch_size=32, seed=0)
    store = tmp_path / "logits"
    rows = _count_teacher_rows(monkeypatch, tiny_model_dir)
    first = distill_model(
        tiny_model_dir, student_yaml, syn_dir, tmp_path / "s1", cfg, teacher_logits=store, show_progress=False
    )
    n_train, n_test = len(syn_splits["train"]), len(syn_splits["test"])
    assert sum(rows) == n_train + n_test  # the store's rows, then the teacher's test report
    assert first["history"]["teacher_logits"]["computed_now"] is True
    meta = json.loads((store / "meta.json").read_text())
    assert meta["rows"] == n_train and meta["parts"] == {"train": n_train}
    rows.clear()
    second = distill_model(
        tiny_model_dir, student_yaml, syn_dir, tmp_path / "s2", cfg, teacher_logits=store, show_progress=False
    )
    assert sum(rows) == n_test, "the teacher ran on training rows although the store holds their logits"
    assert second["history"]["teacher_logits"]["computed_now"] is False
    # the same logits and seed give the same student as an in-memory run
    plain = distill_model(tiny_model_dir, student_yaml, syn_dir, tmp_path / "s3", cfg, show_progress=False)
    w = [load_model(tmp_path / s).model.state_dict() for s in ("s1", "s2", "s3")]
    for k in w[0]:
        np.testing.assert_allclose(w[0][k].numpy(), w[1][k].numpy(), atol=1e-6)
        np.testing.assert_allclose(w[0][k].numpy(), w[2][k].numpy(), atol=1e-5)
    assert first["test"]["mcc"]["value"] == second["test"]["mcc"]["value"]
    assert abs(first["test"]["mcc"]["value"] - plain["test"]["mcc"]["value"]) < 1e-6


def test_store_for_another_teacher_or_data_is_refused(tiny_model_dir, syn_dir, student_yaml, tmp_path):
    from edgegen.data.synthetic import write_task_dir
    from edgegen.distill import DistillConfig, compute_teacher_logits, distill_model
    from edgegen.errors import ModelFileError, UsageError
    from edgegen.train import TrainConfig, train_teacher
    from tests.conftest import TINY

    store = tmp_path / "logits"
    res = compute_teacher_logits(tiny_model_dir, syn_dir, store, show_progress=False)
    assert res["rows"] == res["parts"]["train"]
    cfg = DistillConfig(epochs=1, batch_size=32)
    other = tmp_path / "other_teacher"
    train_teacher(
        syn_dir, other, TrainConfig(**{**TINY, "epochs": 1, "seed": 1, "allow_chance": True}), show_progress=False
    )
    with pytest.raises(UsageError, match="made for another teacher"):
        distill_model(other, student_yaml, syn_dir, tmp_path / "s", cfg, teacher_logits=store, show_progress=False)
    data2 = write_task_dir(tmp_path / "data2", "promoter", n=600, length=120, seed=5)
    with pytest.raises(UsageError, match="made for another training windows"):
        distill_model(
            tiny_model_dir, student_yaml, data2, tmp_path / "s", cfg, teacher_logits=store, show_progress=False
        )
    # augmented rows are part of the windows: a store without them does not fit
    with pytest.raises(UsageError, match="another training windows"):
        distill_model(
            tiny_model_dir,
            student_yaml,
            syn_dir,
            tmp_path / "s",
            DistillConfig(epochs=1, augment=1),
            teacher_logits=store,
            show_progress=False,
        )
    assert not (tmp_path / "s").exists()
    (store / "logits-00000.npy").write_bytes(b"not numpy")
    with pytest.raises(ModelFileError, match="replaced or damaged"):
        distill_model(
            tiny_model_dir, student_yaml, syn_dir, tmp_path / "s", cfg, teacher_logits=store, show_progress=False
        )
    with pytest.raises(UsageError, match="already exists"):
        compute_teacher_logits(tiny_model_dir, syn_dir, store, show_progress=False)


def test_store_is_written_and_read_a_shard_at_a_time(tiny_model_dir, syn_dir, syn_splits, tmp_path, monkeypatch):
    """Many windows, small shards: the teacher never sees more than one shard's rows at once, and the store is
    read memory-mapped, a batch of rows at a time."""
    import edgegen.inference as train_mod
    import edgegen.teacher_logits as tl
    from edgegen.checkpoint import load_model
    from edgegen.distill import DistillConfig, compute_teacher_logits
    from edgegen.distill_data import training_windows

    monkeypatch.setattr(tl, "SHARD_ROWS", 100)
    calls: list[int] = []
    real = train_mod.predict_logits
    monkeypatch.setattr(
        train_mod, "predict_logits", lambda m, ids, bs=256: (calls.append(len(ids)), real(m, ids, bs))[1]
    )
    cfg = DistillConfig(augment=2)  # three times the training rows
    res = compute_teacher_logits(tiny_model_dir, syn_dir, tmp_path / "store", cfg, show_progress=False)
    n = 3 * len(syn_splits["train"])
    assert res["rows"] == n and max(calls) <= 100 and len(calls) == -(-n // 100)
    lm = load_model(tiny_model_dir)
    ids, _, _ = training_windows(lm.tokenizer, syn_splits["train"], cfg)
    store = tl.LogitStore.open(
        tmp_path / "store",
        teacher_sha=lm.manifest["files"]["model.safetensors"],
        tokenizer_sha=tl.tokenizer_sha256(lm.tokenizer),
        ids_sha=tl.ids_sha256(ids),
        rows=n,
    )
    assert all(isinstance(s, np.memmap) for s in store._shards) and len(store._shards) == len(calls)
    pick = np.array([5, n - 1, 150, 0, 299, 300])
    np.testing.assert_allclose(store[pick], real(lm.model, ids[pick]), atol=1e-5)


def _write_reads(path: Path, seqs: list[str]) -> None:
    with gzip.open(path, "wt") as fh:
        for i, s in enumerate(seqs):
            fh.write(f"@r{i}\n{s}\n+\n{'I' * len(s)}\n")


def test_unlabeled_reads_train_the_kd_term(tiny_model_dir, syn_dir, syn_splits, student_yaml, tmp_path):
    from edgegen.distill import DistillConfig, distill_model
    from edgegen.errors import UsageError
    from edgegen.predict import windows

    # long reads: two test sequences joined make reads longer than the window, windowed as predict does
    te = syn_splits["test"].sequences
    reads = [te[i] + te[i + 1] for i in range(0, 100, 2)] + te[100:150]
    fq = tmp_path / "reads.fastq.gz"
    _write_reads(fq, reads)
    size = 120
    want = sum(len(windows(r, size, size // 2)) for r in reads)
    store = tmp_path / "store"
    res = distill_model(
        tiny_model_dir,
        student_yaml,
        syn_dir,
        tmp_path / "s",
        DistillConfig(epochs=1, batch_size=32),
        unlabeled=fq,
        teacher_logits=store,
        show_progress=False,
    )
    h = res["history"]
    assert h["unlabeled_windows"] == want
    assert h["steps"] == -(-(len(syn_splits["train"]) + want) // 32)
    assert json.loads((store / "meta.json").read_text())["parts"] == {
        "train": len(syn_splits["train"]),
        "unlabeled": want,
    }
    with pytest.raises(UsageError, match="need the KD term"):
        distill_model(
            tiny_model_dir,
            student_yaml,
            syn_dir,
            tmp_path / "s2",
            DistillConfig(epochs=1, alpha=1.0, beta=0.0),
            unlabeled=fq,
            show_progress=False,
        )


def test_cli_teacher_logits_then_distill(tiny_model_dir, syn_dir, student_yaml, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "edgegen.cli", *map(str, args)], capture_output=True, text=True)

    store = tmp_path / "store"
    r = run("teacher-logits", "--teacher", tiny_model_dir, "--data", syn_dir, "--out", store)
    assert r.returncode == 0, r.stderr
    assert "saved teacher logits for 1,200 windows" in r.stdout
    r = run(
        "distill",
        "--teacher",
        tiny_model_dir,
        "--student",
        student_yaml,
        "--data",
        syn_dir,
        "--out",
        tmp_path / "s",
        "--teacher-logits",
        store,
        "--epochs",
        "1",
    )
    assert r.returncode == 0, r.stderr
    r = run(
        "distill",
        "--teacher",
        tiny_model_dir,
        "--student",
        student_yaml,
        "--data",
        syn_dir,
        "--out",
        tmp_path / "s3",
        "--teacher-logits",
        store,
        "--augment",
        "1",
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and "another training windows" in r.stderr


# ------------------------------------------------------------------------------------------------ torchrun


def _small_real(tmp_path: Path, n_train: int = 512, n_eval: int = 200) -> Path:
    from edgegen.data import load_split_dir

    src = load_split_dir(real_data("promoter_nontata_human"))
    out = tmp_path / "nontata_small"
    out.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("train", n_train), ("dev", n_eval), ("test", n_eval)):
        s = src[name]
        idx = rng.permutation(len(s))[:n]
        (out / f"{name}.csv").write_text(
            "sequence,label\n" + "".join(f"{s.sequences[i]},{int(s.labels[i])}\n" for i in idx)
        )
    return out


def _torchrun(*args, timeout=900):
    exe = shutil.which("edgegen") or str(Path(sys.executable).with_name("edgegen"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", exe, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.mark.slow
def test_torchrun_distillation_matches_one_process(tmp_path):
    """Two gloo ranks on the CPU: the first optimizer step on a global batch equals one process's step on the
    same batch, and the distilled student ends within 1 pp of the single-process one."""
    from edgegen.checkpoint import load_model
    from edgegen.distill import DistillConfig, distill_model
    from edgegen.train import TrainConfig, train_teacher

    data = _small_real(tmp_path)
    teacher = tmp_path / "teacher"
    # no dropout: each rank draws its own masks, so only a dropout-free step can equal the one-process step
    train_teacher(
        data,
        teacher,
        TrainConfig(d_model=32, n_layers=2, n_heads=4, ffn_dim=64, epochs=4, dropout=0.0, seed=0),
        show_progress=False,
    )
    student = tmp_path / "student.yaml"
    student.write_text(STUDENT_YAML)
    common = ["--teacher", teacher, "--student", student, "--data", data, "--threads", "1"]
    r = _torchrun("distill", *common, "--out", tmp_path / "ddp1", "--max-steps", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    one = distill_model(
        teacher, student, data, tmp_path / "one1", DistillConfig(max_steps=1, threads=1), show_progress=False
    )
    assert one["history"]["world_size"] == 1
    ddp_hist = json.loads((tmp_path / "ddp1" / "manifest.json").read_text())["history"]
    assert ddp_hist["world_size"] == 2 and ddp_hist["steps"] == 1
    from edgegen.student import student_from_teacher

    a, b = load_model(tmp_path / "ddp1").model.state_dict(), load_model(tmp_path / "one1").model.state_dict()
    init = student_from_teacher(
        load_model(teacher).model, d_model=16, n_layers=1, n_heads=2, ffn_dim=32, seed=0
    ).state_dict()
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), atol=1e-5, err_msg=k)
    assert sum(int((a[k] != init[k]).sum()) for k in a) > 0.5 * sum(
        v.numel() for v in a.values()
    )  # the step moved the weights
    # a full run: within 1 pp of the single-process student
    r = _torchrun("distill", *common, "--out", tmp_path / "ddp", "--epochs", "4")
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("saved distilled model") == 1  # rank 0 reports
    one = distill_model(
        teacher, student, data, tmp_path / "one", DistillConfig(epochs=4, threads=1), show_progress=False
    )
    ddp = json.loads((tmp_path / "ddp" / "manifest.json").read_text())["metrics"]["test"]
    acc_ddp, acc_one = ddp["accuracy"]["value"], one["test"]["accuracy"]["value"]
    assert abs(acc_ddp - acc_one) <= 0.01, (acc_ddp, acc_one)
    # an error meets every rank alike: one message, a non-zero exit
    r = _torchrun("distill", *common, "--out", tmp_path / "bad", "--data", tmp_path / "missing")
    assert r.returncode != 0
    assert (r.stderr + r.stdout).count("edgegen: error:") == 1, r.stderr[-3000:]
    assert not (tmp_path / "bad").exists()
