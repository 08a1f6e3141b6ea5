import gzip
import json
import subprocess
import sys

import numpy as np
import pytest

from edgegen.errors import DataError
from edgegen.inference import TorchRunner
from edgegen.predict import PredictConfig, predict, windows
from edgegen.runtime import load_runner
from edgegen.validity import reverse_complement
from edgegen.validity import sequencing_errors as mutate


def load_any(path, **kw):
    """Model directories too (the device-side default opens files only)."""
    return load_runner(path, open_dir=TorchRunner, **kw)


def read_tsv(path):
    lines = open(path).read().strip().splitlines()
    head = lines[0].split("\t")
    return head, [dict(zip(head, line.split("\t"))) for line in lines[1:]]


def test_windows_cover_the_read_and_end_at_its_end():
    w = windows("A" * 10 + "C" * 10 + "G" * 5, 10, 5)
    assert [len(x) for x in w] == [10] * 4 and w[-1] == "C" * 5 + "G" * 5
    assert windows("ACGT", 10, 5) == ["ACGT"]


def test_reverse_complement_and_mutation_rates():
    assert reverse_complement("AACGTN") == "NACGTT"
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 200)) for _ in range(200)]
    assert mutate(seqs, 0.0) == seqs
    m = mutate(seqs, 0.05, seed=1)
    assert m == mutate(seqs, 0.05, seed=1)
    changed = np.mean([a != b for a, b in zip(seqs, m)])
    assert changed > 0.95
    lens = np.array([len(x) for x in m])
    assert abs(lens.mean() - 200) < 2  # insertions and deletions balance


def test_predict_fastq_windows_rc_and_bad_records(tiny_model_dir, tmp_path):
    rng = np.random.default_rng(0)
    recs = []
    for i in range(30):
        n = [60, 120, 300][i % 3]
        recs.append((f"read{i}", "".join(rng.choice(list("acgtn"), n))))
    fq = tmp_path / "r.fastq.gz"
    with gzip.open(fq, "wt") as fh:
        for rid, s in recs:
            fh.write(f"@{rid} extra\n{s}\n+\n{'I' * len(s)}\n")
        fh.write("@bad1\nACGTXX\n+\nIIIIII\n")
    with pytest.raises(DataError, match="bad1"):
        predict(tiny_model_dir, fq, tmp_path / "p.tsv", show_progress=False, open_runner=load_any)
    assert not (tmp_path / "p.tsv").exists()
    st = predict(
        tiny_model_dir,
        fq,
        tmp_path / "p.tsv",
        PredictConfig(on_bad_record="skip", short="skip"),
        show_progress=False,
        open_runner=load_any,
    )
    assert st["skipped_bad"] == 1 and st["bad_ids"] == ["bad1"]
    assert st["skipped_short"] == 10  # the 60 nt reads are shorter than the 120 nt window
    head, rows = read_tsv(tmp_path / "p.tsv")
    assert head[:4] == ["id", "length", "windows", "prediction"] and len(rows) == 20
    assert {r["windows"] for r in rows if r["length"] == "300"} == {"4"}  # 120 window, 60 stride: 0,60,120,180
    probs = np.array([[float(r["prob_0"]), float(r["prob_1"])] for r in rows])
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    weights = json.loads((tiny_model_dir / "manifest.json").read_text())["files"]["model.safetensors"]
    assert {(r["model_version"], r["model_sha256"]) for r in rows} == {("-", weights)}  # which model said so
    assert (st["model_version"], st["model_sha256"]) == ("-", weights)
    st2 = predict(
        tiny_model_dir,
        fq,
        tmp_path / "rc.tsv",
        PredictConfig(on_bad_record="skip", rc_average=True),
        show_progress=False,
        open_runner=load_any,
    )
    assert st2["reads"] == 30 and st2["skipped_short"] == 0


def test_predict_matches_evaluate_exactly_on_real_test_set(tmp_path):
    """The int8 TFLite model's predictions through predict equal evaluate's argmax on a real test set."""
    from edgegen.data import read_labelled
    from edgegen.evaluate import evaluate, predict_set
    from edgegen.runtime import load_runner

    from .conftest import real_data

    pytest.importorskip("litert_torch")
    test = real_data("promoter_nontata_human") / "test.csv"
    # a quick model on the real task is enough to check plumbing identity
    from edgegen.export import export
    from edgegen.export.config import ExportConfig
    from edgegen.train import TrainConfig, train_teacher

    d = real_data("promoter_nontata_human")
    train_teacher(
        d,
        tmp_path / "m",
        TrainConfig(
            tokenizer="kmer_nonoverlap", k=3, d_model=32, n_layers=1, n_heads=2, ffn_dim=64, epochs=1, max_steps=40
        ),
        show_progress=False,
    )
    q = export(
        tmp_path / "m",
        tmp_path / "m.int8.tflite",
        ExportConfig(format="tflite", quant="int8", calib_samples=64, per_channel=False),
        calib=d,
    )
    predict(q, test, tmp_path / "p.tsv", show_progress=False)
    _, rows = read_tsv(tmp_path / "p.tsv")
    runner = load_runner(q)
    logits, _ = predict_set(runner, read_labelled(test))
    assert [int(r["prediction"]) for r in rows] == logits.argmax(1).tolist()
    rep = evaluate(runner, test, n_boot=50)
    acc = np.mean([int(r["prediction"]) == y for r, y in zip(rows, read_labelled(test).labels)])
    assert acc == pytest.approx(rep["accuracy"]["value"])


def test_predict_cli_stdin_to_stdout(tiny_model_dir):
    fa = ">a\n" + "ACGT" * 30 + "\n>b\n" + "GGCC" * 30 + "\n"
    r = subprocess.run(
        [sys.executable, "-m", "edgegen.cli", "predict", str(tiny_model_dir), "-i", "-", "-o", "-"],
        input=fa,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("id\tlength") and [x.split("\t")[0] for x in lines[1:]] == ["a", "b"]
    assert "2 reads" in r.stderr and "reads/s" in r.stderr
