"""Hidden-width pruning: on the native model, Nucleotide Transformer v2 (pre-LN, rotary, SwiGLU) and DNABERT-2
(post-LN, ALiBi, GEGLU), removing residual channels that carry nothing leaves the logits as they were; the pruned
model reloads with the plain loader, exports to int8 ONNX and TFLite and predicts through a bundle."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from edgegen.checkpoint import load_model, save_model
from edgegen.prune import PruneConfig, prune

from .test_foundation import cli, fixture

# the parameters whose given axis is the residual stream, and whether a dead channel's entry must be zero there
# (a write to the stream, or a LayerNorm's scale and shift) or may hold anything (a read of a channel that is zero)
RESIDUAL_AXES = {
    "embed.weight": (1, True),
    "pos": (2, True),
    "merge.weight": (1, True),
    "merge.bias": (0, True),
    "attn.o.weight": (0, True),
    "attn.o.bias": (0, True),
    "fc2.weight": (0, True),
    "fc2.bias": (0, True),
    "attn.q.weight": (1, False),
    "attn.k.weight": (1, False),
    "attn.v.weight": (1, False),
    "fc1.weight": (1, False),
    "fc_up.weight": (1, False),
    "head_dense.weight": (1, False),
}


def _axis(name: str, model) -> tuple[int, bool] | None:
    if any(name.startswith(p) for p in ("embed_ln.", "final_ln.")) or ".ln1." in name or ".ln2." in name:
        return 0, True
    if name == "classifier.weight" and model.head_dense is None:
        return 1, False
    return next((v for k, v in RESIDUAL_AXES.items() if name == k or name.endswith("." + k)), None)


def widen_with_dead_channels(model, extra: int, seed: int = 0):
    """The same model with ``extra`` residual channels that carry nothing inserted at random places (zero where
    they would be written or normalised, random where they are read): its logits differ from the original's only
    through the LayerNorms' statistics. Returns the wide model and the dead channels' indices."""
    from edgegen.model import GenomicTransformer

    rng = np.random.default_rng(seed)
    cfg = model.config
    d = cfg.d_model
    wide_d = d + extra
    dead = np.sort(rng.choice(wide_d, extra, replace=False))
    live = np.setdiff1d(np.arange(wide_d), dead)
    wide = GenomicTransformer(
        cfg.model_copy(
            update={"d_model": wide_d, "head_dim": cfg.head_dim, "head_width": d if cfg.head_hidden else None}
        )
    )
    state = {}
    for name, t in model.state_dict().items():
        ax = _axis(name, model)
        if ax is None:
            state[name] = t
            continue
        axis, zero = ax
        shape = list(t.shape)
        shape[axis] = wide_d
        w = torch.zeros(shape) if zero else torch.from_numpy(rng.normal(0, 0.5, shape).astype(np.float32))
        idx = [slice(None)] * len(shape)
        idx[axis] = torch.from_numpy(live)
        w[tuple(idx)] = t
        state[name] = w
    wide.load_state_dict(state)
    return wide.eval(), dead.tolist()


@pytest.fixture(scope="module")
def foundation(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("width")
    got = {}
    for name in ("nt_v2_tiny_cls", "dnabert2_tiny_cls"):
        r = cli("import", fixture(name), "--out", out / name)
        assert r.returncode == 0, r.stderr
        got[name] = out / name
    return got


def _calib(tok, n=24, seed=0):
    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(list("ACGT"), int(rng.integers(40, 90)))) for _ in range(n)]
    ids = tok.encode(seqs)
    return ids, [(ids[i : i + 8], np.zeros(len(ids[i : i + 8]), dtype=np.int64)) for i in range(0, n, 8)]


def _check_dead_channels_removed_exactly(model, tok, extra=8):
    wide, dead = widen_with_dead_channels(model, extra)
    ids, calib = _calib(tok)
    x = torch.from_numpy(ids)
    with torch.no_grad():
        ref = wide(x)
    pruned = prune(wide, PruneConfig(hidden=model.config.d_model), ids[:2], calib=calib)
    assert pruned.prune_report["removed_hidden_channels"] == dead
    assert pruned.config.d_model == model.config.d_model and pruned.config.norm_width == model.config.d_model + extra
    with torch.no_grad():
        got = pruned(x)
    assert torch.allclose(got, ref, atol=1e-5), float((got - ref).abs().max())
    assert not torch.allclose(model(x), ref, atol=1e-3)  # the wide model's norms did see the extra zeros
    return wide, pruned


@pytest.mark.parametrize("name", ["nt_v2_tiny_cls", "dnabert2_tiny_cls"])
def test_removing_dead_hidden_channels_keeps_the_published_architectures_logits(foundation, name, tmp_path):
    lm = load_model(foundation[name])
    wide, pruned = _check_dead_channels_removed_exactly(lm.model.eval(), lm.tokenizer)
    cfg = lm.model.config
    assert cfg.positions == ("rotary" if name.startswith("nt") else "alibi") and cfg.ffn_gated
    for a, b in zip(wide.blocks, pruned.blocks):  # heads, head dimension and ALiBi slopes untouched
        assert b.attn.q.out_features == a.attn.q.out_features and b.attn.head_dim == a.attn.head_dim
        if cfg.positions == "alibi":
            assert torch.equal(a.attn.alibi_slopes, b.attn.alibi_slopes)
    save_model(pruned, lm.tokenizer, tmp_path / "p")  # the plain loader rebuilds it, outputs unchanged
    ids, _ = _calib(lm.tokenizer, seed=1)
    with torch.no_grad():
        assert torch.allclose(load_model(tmp_path / "p").model(torch.from_numpy(ids)), pruned(torch.from_numpy(ids)))


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"merge_tokens": 3, "pooling": "mean"},
        {"norm": "post", "embed_norm": True, "final_norm": False, "head_hidden": True, "activation": "gelu_tanh"},
    ],
)
def test_removing_dead_hidden_channels_keeps_native_logits(variant):
    from edgegen.dna_tokenizer import Tokenizer
    from edgegen.model import GenomicTransformer, ModelConfig

    tok = Tokenizer(kind="kmer_nonoverlap", k=3, max_len=150)
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=tok.vocab_size, max_positions=tok.seq_len, num_classes=3, d_model=24, n_layers=2, n_heads=3,
        ffn_dim=40, dropout=0.0, **variant,
    )  # fmt: skip
    model = GenomicTransformer(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)  # an untrained model's norms are all ones: make channels differ
    _check_dead_channels_removed_exactly(model, tok, extra=6)


def test_a_sinusoidal_position_table_is_refused_by_name():
    from edgegen.errors import UsageError
    from edgegen.model import GenomicTransformer, ModelConfig

    m = GenomicTransformer(ModelConfig(vocab_size=9, max_positions=20, num_classes=2, d_model=16, n_heads=2,
                                       positions="sinusoidal"))  # fmt: skip
    ids = np.full((2, 20), 5)
    with pytest.raises(UsageError, match="sinusoidal position table"):
        prune(m, PruneConfig(hidden=0.5), ids, calib=[(ids, np.zeros(2))])


def test_width_pruned_model_exports_to_int8_and_predicts_through_a_bundle(tiny_model_dir, syn_dir, tmp_path):
    p = tmp_path / "p"
    r = cli("prune", tiny_model_dir, "--out", p, "--hidden", "0.5", "--head-ratio", "0.25", "--data", syn_dir,
            "--json", tmp_path / "p.json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "p.json").read_text())
    assert (
        rep["after"]["d_model"] == 16 and rep["before"]["d_model"] == 32 and len(rep["removed_hidden_channels"]) == 16
    )
    assert rep["after"]["heads"] == [3, 3]
    lm = load_model(p)
    assert lm.model.config.norm_width == 32
    test = tmp_path / "reads.fa"
    lines = (syn_dir / "test.csv").read_text().splitlines()[1:]
    test.write_text("".join(f">r{i}\n{line.split(',')[0]}\n" for i, line in enumerate(lines)))
    assert cli("predict", p, "--input", test, "--out", tmp_path / "torch.tsv").returncode == 0
    want = [x.split("\t")[3] for x in (tmp_path / "torch.tsv").read_text().splitlines()[1:]]
    for fmt, suffix in (("onnx", "onnx"), ("tflite", "tflite")):
        f = tmp_path / f"p.int8.{suffix}"
        r = cli("export", p, "--out", f, "--format", fmt, "--quant", "int8", "--calib", syn_dir)
        assert r.returncode == 0, r.stderr
        b = tmp_path / f"bundle-{fmt}"
        assert cli("bundle", f, "--out", b).returncode == 0
        r = cli("predict", b / f.name, "--input", test, "--out", tmp_path / f"{fmt}.tsv")
        assert r.returncode == 0, r.stderr
        got = [x.split("\t")[3] for x in (tmp_path / f"{fmt}.tsv").read_text().splitlines()[1:]]
        assert len(got) == len(want) == len(lines) >= 100
        assert np.mean([a == b for a, b in zip(got, want)]) >= 0.95


def test_width_pruning_without_calibration_data_or_with_a_bad_width_is_refused(tiny_model_dir, tmp_path):
    r = cli("prune", tiny_model_dir, "--out", tmp_path / "p", "--hidden", "0.5")
    assert r.returncode != 0 and "hidden-width pruning needs calibration data" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "p").exists()
    r = cli("prune", tiny_model_dir, "--out", tmp_path / "p", "--hidden", "2.5", "--data", tmp_path)
    assert r.returncode != 0 and "hidden must be a fraction in (0, 1) or a whole width" in r.stderr
    with pytest.raises(Exception, match="neither a fraction"):
        from edgegen.prune_width import width_of

        width_of(64, 32)
