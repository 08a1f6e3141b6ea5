"""Can this model be trusted? The data audit (planted shortcut, planted leaks, a clean set), the model card of a
recipe run's bundle (parsed back against the run's own records), and the adversarial ISM check on a toy model whose
decision is known."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgegen.attack import greedy_flip, ism_attack
from edgegen.audit import audit_data
from edgegen.audit_shortcuts import auroc
from edgegen.data.readers import SequenceSet
from edgegen.dna_tokenizer import Tokenizer
from edgegen.validity import reverse_complement


def _random_seqs(rng, n, length=120, gc=0.5):
    p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
    return ["".join(rng.choice(list("ACGT"), length, p=p)) for _ in range(n)]


def _splits(seqs, labels, sizes=(600, 150, 150)):
    out, i = {}, 0
    for name, n in zip(("train", "dev", "test"), sizes):
        out[name] = SequenceSet(list(seqs[i : i + n]), np.asarray(labels[i : i + n]), path=f"<{name}>")
        i += n
    return out


def _write(splits: dict, d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, ss in splits.items():
        (d / f"{name}.csv").write_text(
            "sequence,label\n" + "".join(f"{s},{y}\n" for s, y in zip(ss.sequences, ss.labels))
        )
    return d


def test_auroc_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    x, pos = rng.integers(0, 5, 300).astype(float), rng.random(300) < 0.4
    pairs = [(a > b) + 0.5 * (a == b) for a in x[pos] for b in x[~pos]]
    assert abs(auroc(x, pos) - np.mean(pairs)) < 1e-12


def test_a_clean_shuffled_set_passes(tmp_path):
    rng = np.random.default_rng(1)
    seqs = _random_seqs(rng, 900)
    rep = audit_data(_splits(seqs, rng.integers(0, 2, 900)), near_method="minhash")
    assert rep["verdict"] == "pass", rep["reasons"]
    assert rep["shortcuts"]["features"][0]["auroc"] < 0.6
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgegen.cli",
            "audit",
            str(_write(_splits(seqs, rng.integers(0, 2, 900)), tmp_path / "d")),
            "--near",
            "minhash",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


def test_a_planted_gc_shortcut_fails(tmp_path):
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 900)
    seqs = [s for s in (_random_seqs(rng, 1, gc=0.58 if c else 0.42)[0] for c in y)]
    rep = audit_data(_splits(seqs, y), near_method="minhash")
    assert rep["verdict"] == "fail"
    worst = rep["shortcuts"]["features"][0]
    assert worst["feature"] in ("GC content", "1-mer G", "1-mer C", "1-mer A", "1-mer T") and worst["auroc"] > 0.8
    assert any("GC content" in r for r in rep["reasons"])
    d = _write(_splits(seqs, y), tmp_path / "gc")
    r = subprocess.run(
        [sys.executable, "-m", "edgegen.cli", "audit", str(d), "--near", "minhash", "--out", str(tmp_path / "a")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 4 and "FAIL" in r.stdout
    saved = json.loads((tmp_path / "a" / "audit.json").read_text())
    assert saved["verdict"] == "fail" and "Data audit: **fail**" in (tmp_path / "a" / "audit.md").read_text()


def test_a_planted_reverse_complement_leak_and_near_copies_are_found():
    rng = np.random.default_rng(3)
    seqs = _random_seqs(rng, 900)
    y = rng.integers(0, 2, 900)
    for j in range(10):  # ten test sequences are reverse complements of training ones
        seqs[750 + j] = reverse_complement(seqs[j])
    for j in range(20):  # twenty dev sequences are training ones with 3 substitutions
        s = list(seqs[100 + j])
        for p in rng.choice(len(s), 3, replace=False):
            s[p] = "ACGT"[("ACGT".index(s[p]) + 1) % 4]
        seqs[600 + j] = "".join(s)
    rep = audit_data(_splits(seqs, y), near_method="minhash")
    across = rep["leakage"]["duplicates"]["across"]
    assert across["train-test"] == {"exact": 0, "reverse_complement": 10, "of": 150}
    near = rep["leakage"]["near"]
    assert near["method"] == "minhash" and 18 <= near["pairs"]["train-dev"]["near"] <= 20  # an estimate: LSH
    assert near["pairs"]["train-test"]["near"] == 10  # a reverse complement is a near-copy too (both strands)
    assert rep["verdict"] == "fail" and any("as their reverse complement" in r for r in rep["reasons"])


@pytest.mark.skipif(shutil.which("mmseqs") is None, reason="Debian's mmseqs2 not installed (.ci/setup --test)")
def test_mmseqs2_finds_the_same_planted_near_copies():
    rng = np.random.default_rng(4)
    seqs = _random_seqs(rng, 900)
    for j in range(15):
        s = list(seqs[200 + j])
        for p in rng.choice(len(s), 4, replace=False):
            s[p] = "ACGT"[("ACGT".index(s[p]) + 2) % 4]
        seqs[620 + j] = "".join(s)
    from edgegen.audit_leakage import near_duplicates

    got = near_duplicates(_splits(seqs, np.zeros(900, int)), method="mmseqs2")
    assert got["method"] == "mmseqs2" and got["pairs"]["train-dev"]["near"] == 15
    assert got["pairs"]["train-test"]["near"] == 0


class OneBase:
    """A toy classifier whose call is the base at position 30: class 1 when it is G, else 0."""

    backend = "toy"

    def __init__(self, positions=(30,)):
        self.tokenizer = Tokenizer(kind="char", max_len=60, add_cls=False)
        self.positions = positions
        self.num_classes = 2
        self.input_spec = {"batch": None}

    def __call__(self, ids):
        g = self.tokenizer.vocab["G"]
        votes = sum((ids[:, p] == g).astype(np.float32) for p in self.positions)
        margin = votes - len(self.positions) / 2  # class 1 by a majority of G at its positions
        return np.stack([np.zeros_like(margin), margin], 1).astype(np.float32)


def test_the_attack_finds_the_known_one_base_flip():
    rng = np.random.default_rng(5)
    seqs = _random_seqs(rng, 40, length=60)
    toy = OneBase()
    y = toy(toy.tokenizer.encode(seqs)).argmax(1)
    assert all(greedy_flip(toy, s, int(c)) == 1 for s, c in zip(seqs, y))
    res = ism_attack(toy, seqs, y, n=20)
    assert res["n"] == 20 and res["success_at_k"][0] == 1.0 and res["median_edits"] == 1.0
    # a majority of three positions: one edit never flips a G-G-G call, two always do
    toy3 = OneBase(positions=(10, 30, 50))
    s = list(seqs[0])
    for p in (10, 30, 50):
        s[p] = "G"
    assert greedy_flip(toy3, "".join(s), 1) == 2
    assert greedy_flip(toy3, "".join(s), 1, max_edits=1) is None


def test_bench_attack_and_the_model_card_of_a_recipe_bundle(tmp_path, syn_dir):
    """A recipe with an audit step (recorded, not blocking), train, prune, distill and an int8 export; its bundle's
    MODEL_CARD.md, parsed back, holds the run's own sha256s and metrics; bench --attack adds the ISM table."""
    from edgegen.bench import BenchConfig, bench
    from edgegen.bundle import bundle_model
    from edgegen.model_card import parse
    from edgegen.pipeline.engine import run_recipe
    from edgegen.recipe import load_recipe
    from edgegen.report import markdown

    raw = {
        "data": str(syn_dir),
        "out": str(tmp_path / "run"),
        "steps": [
            {
                "type": "train",
                "tokenizer": "kmer_nonoverlap",
                "k": 3,
                "d_model": 32,
                "n_layers": 2,
                "n_heads": 4,
                "ffn_dim": 64,
                "epochs": 2,
                "allow_chance": True,
            },
            {"type": "audit", "block": "never", "near": "minhash"},
            {"type": "prune", "targets": [0.6]},
            {"type": "distill", "epochs": 1},
            {"type": "export", "formats": ["onnx"], "quant": ["int8"]},
        ],
    }
    run = tmp_path / "run"
    run_recipe(load_recipe(raw=raw), show_progress=False)
    audit = json.loads((run / "audit" / "audit.json").read_text())
    onnx = next(run.glob("export-*/*.onnx"))
    assert (onnx.parent / "MODEL_CARD.md").is_file()
    res = bench(
        [run / "teacher" / "model", onnx],
        syn_dir / "test.csv",
        "local",
        BenchConfig(
            threads=[1],
            runs=5,
            warmup=1,
            validity=False,
            max_samples=120,
            n_boot=50,
            attack="ism",
            attack_samples=6,
            attack_max_edits=3,
        ),
        show_progress=False,
    )
    a = res["models"][1]["attack"]
    assert a["n"] == 6 and len(a["success_at_k"]) == 3 and a["success_at_k"] == sorted(a["success_at_k"])
    assert "## Adversarial check" in markdown(res)
    (tmp_path / "bench.json").write_text(json.dumps(res))
    b = bundle_model(
        onnx,
        tmp_path / "bundle",
        acceptance=syn_dir / "test.csv",
        version="1.0",
        audit=run / "audit" / "audit.json",
        bench=tmp_path / "bench.json",
    )
    card = (b / "MODEL_CARD.md").read_text()
    meta = parse(card)
    side = json.loads(Path(str(onnx) + ".json").read_text())
    distilled = json.loads((run / "distill-params60" / "model" / "manifest.json").read_text())
    teacher = json.loads((run / "teacher" / "model" / "manifest.json").read_text())
    manifest = json.loads((b / "MANIFEST.json").read_text())
    assert meta["model_sha256"] == side["file_sha256"] == manifest["files"][onnx.name]
    assert meta["source_model_sha256"] == distilled["files"]["model.safetensors"]
    assert meta["teacher_sha256"] == teacher["files"]["model.safetensors"]
    assert meta["train_sha256"] == distilled["dataset"]["train_sha256"]
    assert meta["metrics"]["mcc"] == distilled["metrics"]["test"]["mcc"]["value"]
    assert meta["metrics"]["accuracy"] == distilled["metrics"]["test"]["accuracy"]["value"]
    assert meta["audit_verdict"] == audit["verdict"]
    assert meta["device_metrics"]["accuracy"] == res["models"][1]["metrics"]["accuracy"]["value"]
    assert "MODEL_CARD.md" in manifest["files"]  # the manifest (and a signature) covers the card
    assert (
        "student started from" in card
        and '"pruning"' in card
        and "Adversarial ISM" in card
        and f"{a['success_at_k'][0]:.0%}" in card
    )


def test_an_audit_step_blocks_a_run_on_a_failing_data_set(tmp_path):
    from edgegen.errors import DataError
    from edgegen.pipeline.engine import run_recipe
    from edgegen.recipe import load_recipe

    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 900)
    d = _write(_splits([_random_seqs(rng, 1, gc=0.6 if c else 0.4)[0] for c in y], y), tmp_path / "gc")
    raw = {
        "data": str(d),
        "out": str(tmp_path / "run"),
        "steps": [
            {"type": "train", "epochs": 1, "d_model": 16, "n_layers": 1, "n_heads": 2, "ffn_dim": 32},
            {"type": "audit", "near": "minhash"},
        ],
    }
    with pytest.raises(DataError, match=r"data audit says fail \(fail: .*GC content"):
        run_recipe(load_recipe(raw=raw), show_progress=False)
    assert not (tmp_path / "run" / "teacher").exists()  # nothing trained on it
