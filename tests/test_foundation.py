"""Nucleotide Transformer v2 and DNABERT-2 imported natively, checked against what their published code computes
(``../shared/fixtures/hf/*/golden.json``: token ids, encoder output, logits)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgegen.errors import UsageError

from .conftest import SHARED_FIXTURES, shared_path

ROOT = Path(__file__).resolve().parents[1]


def fixture(name: str) -> Path:
    """A Hugging Face fixture folder (``../shared/fixtures/hf/NAME``)."""
    return shared_path(SHARED_FIXTURES / "hf", name, "fixture")


def golden(name: str) -> dict:
    return json.loads((fixture(name) / "golden.json").read_text())


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "edgegen.cli", *map(str, args)], capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("foundation")
    models = {}
    for name in ("nt_v2_tiny_cls", "nt_v2_tiny_mlm", "dnabert2_tiny_cls"):
        r = cli("import", fixture(name), "--out", out / name)
        assert r.returncode == 0, r.stderr
        models[name] = out / name
    return models


@pytest.mark.parametrize("name", ["nt_v2_tiny_cls", "nt_v2_tiny_mlm", "dnabert2_tiny_cls"])
def test_token_ids_equal_the_published_tokenizer(imported, name):
    from edgegen.checkpoint import load_model

    g = golden(name)
    tok = load_model(imported[name]).tokenizer
    ids = tok.encode(g["sequences"])
    for row, want, mask in zip(ids, g["input_ids"], g["attention_mask"]):
        n = sum(mask)
        assert row[:n].tolist() == want[:n]
        assert (row[n:] == tok.pad_id).all()


@pytest.mark.parametrize("name", ["nt_v2_tiny_cls", "dnabert2_tiny_cls"])
def test_predict_reproduces_the_published_probabilities(imported, name, tmp_path):
    g = golden(name)
    fa = tmp_path / "golden.fa"
    fa.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(g["sequences"])))
    out = tmp_path / "p.tsv"
    r = cli("predict", imported[name], "-i", fa, "-o", out)
    assert r.returncode == 0, r.stderr
    rows = [line.split("\t") for line in out.read_text().splitlines()[1:]]
    got = np.array([[float(x) for x in row[4:-2]] for row in rows])
    z = np.array(g["logits"])
    want = np.exp(z - z.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-4


@pytest.mark.parametrize("name", ["nt_v2_tiny_mlm", "nt_v2_tiny_cls", "dnabert2_tiny_cls"])
def test_encoder_output_equals_last_hidden_state(imported, name):
    import torch

    from edgegen.checkpoint import load_model

    g = golden(name)
    lm = load_model(imported[name])
    with torch.no_grad():
        _, hidden, _ = lm.model.features(torch.from_numpy(lm.tokenizer.encode(g["sequences"])))
    h = hidden[-1].numpy()
    for i, mask in enumerate(g["attention_mask"]):
        n = sum(mask)
        assert np.abs(h[i, :n] - np.array(g["last_hidden_state"][i])[:n]).max() < g["atol"]


def test_imported_configs_describe_the_architectures(imported):
    from edgegen.checkpoint import load_model

    nt = load_model(imported["nt_v2_tiny_cls"]).model.config
    assert (nt.positions, nt.ffn_gated, nt.activation, nt.ffn_in_bias, nt.norm, nt.final_norm) == (
        "rotary",
        True,
        "silu",
        False,
        "pre",
        True,
    )
    db = load_model(imported["dnabert2_tiny_cls"])
    c = db.model.config
    assert (c.positions, c.ffn_gated, c.activation, c.ffn_in_bias, c.ffn_out_bias, c.norm, c.num_classes) == (
        "alibi",
        True,
        "gelu",
        False,
        True,
        "post",
        3,
    )
    assert db.model.pos is None and db.tokenizer.kind == "bpe"
    mlm = load_model(imported["nt_v2_tiny_mlm"])
    assert mlm.manifest["imported_from"]["has_head"] is False and mlm.model.config.num_classes == 2


def test_alibi_slopes_for_any_head_count():
    from edgegen.model import alibi_slopes

    assert alibi_slopes(8) == pytest.approx([2.0**-i for i in range(1, 9)])
    assert alibi_slopes(4) == pytest.approx([2.0 ** -(2 * i) for i in range(1, 5)])
    # 12 heads (DNABERT-2 117M): the 8-head series, then every other slope of the 16-head series
    assert alibi_slopes(12) == pytest.approx([2.0**-i for i in range(1, 9)] + [2.0 ** -(0.5 + i) for i in range(4)])
    assert len(alibi_slopes(6)) == 6 and len(set(alibi_slopes(6))) == 6


@pytest.mark.parametrize(
    "cfg,needle",
    [
        (
            {"model_type": "hyenadna", "auto_map": {"AutoModel": "modeling_hyena.HyenaDNAModel"}},
            "unsupported model_type 'hyenadna'.*trust_remote_code",
        ),
        (
            {"model_type": "caduceus", "auto_map": {"AutoModel": "modeling_caduceus.Caduceus"}},
            "unsupported model_type 'caduceus'",
        ),
        (
            {"auto_map": {"AutoModel": "modeling_ntv3.NTv3UNet"}, "hidden_size": 8},
            "unsupported architecture 'modeling_ntv3.NTv3UNet'",
        ),
        ({"model_type": "gpt2"}, "unsupported model_type 'gpt2'"),
    ],
)
def test_unsupported_architectures_are_refused_with_the_supported_list(tmp_path, cfg, needle):
    from edgegen.hf import import_hf

    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UsageError, match=needle) as e:
        import_hf(d, tmp_path / "out")
    assert "Nucleotide Transformer v2" in str(e.value) and "DNABERT-2" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_nt_v2_tokenizer_splits_around_n_and_keeps_every_base():
    from edgegen.alphabet import default_vocab
    from edgegen.dna_tokenizer import Tokenizer

    vocab = default_vocab("kmer_nonoverlap", 3)
    tok = Tokenizer(kind="kmer_nonoverlap", k=3, max_len=20, n_singles=True, vocab=vocab)
    inv = {i: t for t, i in vocab.items()}
    row = tok.encode(["ACGTNACGTAC"])[0]
    assert [inv[int(i)] for i in row[1:] if int(i) != tok.pad_id] == ["ACG", "T", "N", "ACG", "TAC"]
    plain = Tokenizer(kind="kmer_nonoverlap", k=3, max_len=20, vocab=vocab)
    assert [inv[int(i)] for i in plain.encode(["ACGTNACGTAC"])[0][1:] if int(i) != tok.pad_id] == [
        "ACG",
        "[UNK]",
        "CGT",
        "A",
        "C",
    ]


def _kept_heads(before, after) -> list[int]:
    """Indices of the original heads a pruned attention kept (matched by their query rows)."""
    dh = before.head_dim
    old = [before.q.weight[h * dh : (h + 1) * dh] for h in range(before.q.out_features // dh)]
    new = [after.q.weight[h * dh : (h + 1) * dh] for h in range(after.q.out_features // dh)]
    return [next(i for i, o in enumerate(old) if o.shape == n.shape and bool((o == n).all())) for n in new]


@pytest.mark.parametrize("name", ["dnabert2_tiny_cls", "nt_v2_tiny_cls"])
def test_head_pruning_equals_masking_the_removed_heads(imported, name, tmp_path):
    """Removing heads must equal zeroing their share of the output projection in the original model: with ALiBi
    that holds only if each surviving head keeps its own slope (recomputing slopes for the new head count fails)."""
    import copy

    import torch

    from edgegen.checkpoint import load_model, save_model
    from edgegen.prune import PruneConfig, prune

    lm = load_model(imported[name])
    ids = lm.tokenizer.encode(["ACGTTGCAAGGCTTACGATCGATCGGATCCGATAGCTAGCTAGGCAT" * 3, "GGCATTACAGATTACAGGCCTTAAGC" * 4])
    pruned = prune(lm.model, PruneConfig(head_ratio=0.5, criterion="l2"), ids)
    ref = copy.deepcopy(lm.model)
    dh = ref.config.head_dim
    kept_any_but_first = False
    for blk_old, blk_new in zip(ref.blocks, pruned.blocks):
        kept = _kept_heads(blk_old.attn, blk_new.attn)
        assert len(kept) == blk_old.attn.num_heads // 2
        kept_any_but_first |= kept != list(range(len(kept)))
        with torch.no_grad():
            for h in range(blk_old.attn.q.out_features // dh):
                if h not in kept:
                    blk_old.attn.o.weight[:, h * dh : (h + 1) * dh] = 0
    x = torch.from_numpy(ids)
    with torch.no_grad():
        assert torch.allclose(pruned(x), ref(x), atol=1e-5)
    if name.startswith("dnabert2"):
        assert kept_any_but_first  # the test would not see recomputed slopes if the first heads were always kept
    # the config describes the pruned model: the plain loader rebuilds it with the same outputs
    save_model(pruned, lm.tokenizer, tmp_path / "p")
    again = load_model(tmp_path / "p").model
    with torch.no_grad():
        assert torch.allclose(again(x), pruned(x), atol=1e-6)


@pytest.mark.parametrize("name", ["dnabert2_tiny_cls", "nt_v2_tiny_cls"])
def test_gated_feed_forward_is_pruned_in_gate_up_pairs(imported, name):
    import torch

    from edgegen.checkpoint import load_model
    from edgegen.prune import PruneConfig, prune

    lm = load_model(imported[name])
    ids = lm.tokenizer.encode(["ACGTTGCAAGGCTTACGATCGATCGG" * 4])
    pruned = prune(lm.model, PruneConfig(ffn_ratio=0.5), ids)
    for b in pruned.blocks:
        assert b.fc1.out_features == b.fc_up.out_features == b.fc2.in_features == lm.model.config.ffn_dim // 2
        assert (b.fc1.bias is None) == (not lm.model.config.ffn_in_bias)
    assert pruned.config.ffn_dim == lm.model.config.ffn_dim // 2
    assert torch.isfinite(pruned(torch.from_numpy(ids))).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["nt_v2_tiny_cls", "dnabert2_tiny_cls"])
def test_imported_model_through_the_whole_pipeline(name, tmp_path):
    """import -> prune heads and feed-forward -> distil briefly on a real dataset -> int8 TFLite and ONNX -> bench."""
    from .conftest import real_data

    data = real_data("promoter_nontata_human")
    m, p, s = tmp_path / "m", tmp_path / "p", tmp_path / "s"
    assert cli("import", fixture(name), "--out", m, "--max-len", "251").returncode == 0
    r = cli("prune", m, "--out", p, "--head-ratio", "0.5", "--ffn-ratio", "0.5", "--json", tmp_path / "p.json")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "p.json").read_text())
    assert rep["after"]["params"] < rep["before"]["params"]
    r = cli(
        "distill",
        "--teacher",
        m,
        "--student",
        p,
        "--data",
        data,
        "--out",
        s,
        "--max-steps",
        "60",
        "--json",
        tmp_path / "d.json",
    )
    assert r.returncode == 0, r.stderr
    files = []
    for fmt in ("tflite", "onnx"):
        f = tmp_path / f"s.int8.{fmt}"
        r = cli(
            "export", s, "--out", f, "--quant", "int8", "--calib", data, *(["--per-tensor"] if fmt == "tflite" else [])
        )
        assert r.returncode == 0, r.stderr
        side = json.loads(Path(str(f) + ".json").read_text())
        assert side["verification"]["argmax_agreement"] >= 0.9
        files.append(f)
    r = cli(
        "bench",
        m,
        s,
        *files,
        "--data",
        data / "test.csv",
        "--max-samples",
        "200",
        "--runs",
        "5",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--no-validity",
        "--json",
        tmp_path / "b.json",
    )
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "b.json").read_text())
    assert not res["errors"] and len(res["models"]) == 4
    for entry in res["models"][2:]:
        assert entry["vs_baseline"]["argmax_agreement"] > 0.5 and entry["size_bytes"] < res["models"][1]["size_bytes"]


@pytest.mark.slow
def test_masked_lm_backbone_fine_tunes_above_chance(tmp_path):
    """The NT-v2 masked-LM fixture becomes a classifier with 'train --init' and beats chance on real data."""
    from .conftest import real_data

    data = real_data("promoter_nontata_human")
    m = tmp_path / "backbone"
    assert cli("import", fixture("nt_v2_tiny_mlm"), "--out", m, "--max-len", "251").returncode == 0
    r = cli("train", "--init", m, "--data", data, "--out", tmp_path / "ft", "--epochs", "3", "--lr", "1e-3")
    assert r.returncode == 0, r.stderr  # a model at chance is refused by train itself
    from edgegen.checkpoint import load_model
    from edgegen.fit import chance_threshold

    test = load_model(tmp_path / "ft").manifest["metrics"]["test"]
    assert test["mcc"]["value"] > chance_threshold(test["n"] if "n" in test else 904) and test["mcc"]["ci"][0] > 0


@pytest.mark.slow
def test_dnabert2_int8_bundle_runs_with_numpy_litert_and_tokenizers_only(tmp_path):
    """The device tokenizes with DNABERT-2's BPE itself: a fresh venv holding numpy, ai-edge-litert and tokenizers
    (no torch, no edgegen, no dnaio) runs the bundle and predicts exactly what the host predicts."""
    from .conftest import real_data

    data = real_data("promoter_nontata_human")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    r = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "numpy", "ai-edge-litert", "tokenizers"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    probe = (
        "import importlib.util as u; print([m for m in ('torch', 'edgegen', 'dnaio', 'onnxruntime') if u.find_spec(m)])"
    )
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the device sees only its venv
    assert (
        subprocess.run([str(py), "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=clean).stdout.strip()
        == "[]"
    )
    m, f = tmp_path / "m", tmp_path / "m.int8.tflite"
    assert cli("import", fixture("dnabert2_tiny_cls"), "--out", m, "--max-len", "251").returncode == 0
    r = cli("export", m, "--out", f, "--quant", "int8", "--per-tensor", "--calib", data)
    assert r.returncode == 0, r.stderr
    seqs = tmp_path / "reads.csv"
    rows = (data / "test.csv").read_text().splitlines()[:101]
    seqs.write_text("\n".join(rows) + "\n")
    assert cli("bundle", f, "--out", tmp_path / "b").returncode == 0
    r = subprocess.run(
        [
            str(py),
            "runner.py",
            "predict",
            "--model",
            f.name,
            "--input",
            str(seqs),
            "--out",
            str(tmp_path / "device.tsv"),
        ],
        cwd=tmp_path / "b",
        capture_output=True,
        text=True,
        env=clean,
    )
    assert r.returncode == 0, r.stderr
    assert cli("predict", f, "-i", seqs, "-o", tmp_path / "host.tsv").returncode == 0
    dev = [x.split("\t") for x in (tmp_path / "device.tsv").read_text().splitlines()[1:]]
    host = [x.split("\t") for x in (tmp_path / "host.tsv").read_text().splitlines()[1:]]
    assert len(dev) == len(host) == 100
    assert [d[3] for d in dev] == [h[3] for h in host]
    assert (
        np.abs(
            np.array([[float(x) for x in d[4:-2]] for d in dev]) - np.array([[float(x) for x in h[4:-2]] for h in host])
        ).max()
        < 1e-5
    )
