import numpy as np
import pytest
import torch

from edgegen.checkpoint import load_model, save_model
from edgegen.distill import DistillConfig, distill
from edgegen.distill_loop import default_layer_map
from edgegen.errors import UsageError
from edgegen.inference import predict_logits
from edgegen.metrics import point_metrics
from edgegen.model import GenomicTransformer, ModelConfig, count_params
from edgegen.prune import PruneConfig, prune
from edgegen.student import student_from_teacher
from edgegen.train import encode


def tiny(seed=0, **kw):
    torch.manual_seed(seed)
    base = dict(vocab_size=12, max_positions=33, num_classes=2, d_model=32, n_layers=3, n_heads=4, ffn_dim=128)
    return GenomicTransformer(ModelConfig(**{**base, **kw})).eval()


def ids(n=8, t=33, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(5, 12, (n, t), generator=g, dtype=torch.int32)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.2, 1.5])
def test_bad_ratios_are_rejected(bad):
    with pytest.raises(ValueError, match=r"must be in \(0, 1\)"):
        PruneConfig(target_params=bad)
    with pytest.raises(ValueError, match=r"must be in \(0, 1\)"):
        PruneConfig(head_ratio=bad)


def test_conflicting_targets_rejected():
    with pytest.raises(ValueError, match="not both"):
        PruneConfig(target_params=0.5, target_macs=0.5)


def test_pruning_nothing_is_the_identity():
    m = tiny()
    x = ids()
    p = prune(m, PruneConfig(prune_heads=False, prune_ffn=False), x[:2])
    assert torch.equal(m(x), p(x))
    assert count_params(p) == count_params(m)


def test_ffn_only_pruning_keeps_attention_exact():
    m = tiny()
    p = prune(m, PruneConfig(ffn_ratio=0.5, prune_heads=False), ids()[:2])
    for a, b in zip(m.blocks, p.blocks):
        for name in ("q", "k", "v", "o"):
            assert torch.equal(getattr(a.attn, name).weight, getattr(b.attn, name).weight)
        assert b.fc1.out_features == 64
    assert p.config.n_heads == 4 and p.config.ffn_dim == 64


@pytest.mark.parametrize("criterion", ["l1", "l2", "random", "taylor"])
def test_target_params_is_met_and_shapes_are_consistent(tmp_path, criterion):
    m = tiny()
    x = ids(16)
    calib = [(x[:8], torch.tensor([0, 1] * 4)), (x[8:], torch.tensor([1, 0] * 4))]
    p = prune(m, PruneConfig(target_params=0.6, criterion=criterion), x[:2], calib=calib)
    assert count_params(p) <= 0.6 * count_params(m)
    assert p.prune_report["params_ratio"] > 0.45  # not grossly over-pruned
    for i, b in enumerate(p.blocks):
        h = p.config.heads(i)
        assert b.attn.q.out_features == b.attn.k.out_features == b.attn.v.out_features == b.attn.o.in_features == h * 8
        assert b.fc1.out_features == b.fc2.in_features == p.config.ffn(i)
    assert p.config.d_model == 32
    # the plain loader rebuilds it from config.json: identical logits
    from edgegen.dna_tokenizer import Tokenizer

    tok = Tokenizer(kind="char", max_len=32)
    save_model(p, tok, tmp_path / "p")
    back = load_model(tmp_path / "p")
    assert torch.equal(back.model(x), p(x))


def test_target_macs_and_global_and_layer_drop():
    m = tiny()
    x = ids(16)
    calib = [(x, torch.tensor([0, 1] * 8))]
    p = prune(m, PruneConfig(target_macs=0.5, global_pruning=True), x[:2])
    assert p.config.macs(33) <= 0.5 * m.config.macs(33)
    d = prune(m, PruneConfig(drop_layers=1, head_ratio=0.5), x[:2], calib=calib)
    assert d.config.n_layers == 2 and len(d.prune_report["dropped_layers"]) == 1
    assert all(d.config.heads(i) == 2 for i in range(2))


def test_iterative_schedule_calls_finetune_between_steps():
    m = tiny()
    calls = []
    p = prune(
        m,
        PruneConfig(target_params=0.6, iterative_steps=3),
        ids()[:2],
        finetune=lambda mm: calls.append(count_params(mm)),
    )
    assert len(calls) == 2 and calls[0] > calls[1] > count_params(p) * 0.99
    assert count_params(p) <= 0.6 * count_params(m)


def test_unreachable_target_and_bad_ignore_pattern():
    m = tiny()
    with pytest.raises(UsageError, match="unreachable"):
        prune(m, PruneConfig(target_params=0.05), ids()[:2])
    with pytest.raises(UsageError, match="matches no module"):
        prune(m, PruneConfig(target_params=0.6, ignored_layers=["blocks.9.*"]), ids()[:2])
    with pytest.raises(UsageError, match="calibration"):
        prune(m, PruneConfig(target_params=0.6, criterion="taylor"), ids()[:2])


def test_ignored_layers_are_untouched():
    m = tiny()
    p = prune(m, PruneConfig(ffn_ratio=0.5, prune_heads=False, ignored_layers=["blocks.0.fc1"]), ids()[:2])
    assert p.blocks[0].fc1.out_features == 128 and p.blocks[1].fc1.out_features == 64


def test_default_layer_map():
    assert default_layer_map(2, 4) == [2, 4]
    assert default_layer_map(1, 2) == [2]
    assert default_layer_map(2, 1) == [1, 1]  # a student deeper than its teacher (round(0.5) was layer 0)
    assert default_layer_map(3, 2) == [1, 1, 2]


def test_distillation_with_hidden_and_attention_terms(syn_splits, tiny_model_dir, torch_threads):
    t = load_model(tiny_model_dir)
    s = student_from_teacher(t.model, n_layers=1, d_model=16, n_heads=2)
    cfg = DistillConfig(epochs=3, max_steps=20, hidden_weight=1.0, attn_weight=1.0)
    hist = distill(s, t.model, cfg, syn_splits, t.tokenizer, show_progress=False)
    assert hist["steps"] == 20 and hist["layer_map"] == [2]
    assert np.isfinite(hist["epochs"][0]["train_loss"])
    assert all(p.requires_grad for p in t.model.parameters())  # teacher flags restored


def test_prune_then_distill_recovers_on_synthetic(syn_splits, tiny_model_dir, torch_threads):
    t = load_model(tiny_model_dir)
    tok = t.tokenizer
    te = syn_splits["test"]
    te_ids = encode(tok, te)
    acc = lambda m: point_metrics(te.labels, predict_logits(m, te_ids))["accuracy"]
    teacher_acc = acc(t.model)
    p = prune(t.model, PruneConfig(target_params=0.5, criterion="random", seed=1), te_ids[:2])
    pruned_acc = acc(p)
    distill(p, t.model, DistillConfig(epochs=4, lr=2e-3, batch_size=32), syn_splits, tok, show_progress=False)
    assert acc(p) >= pruned_acc
    assert acc(p) >= teacher_acc - 0.05


def test_mutate_substitutes_at_the_asked_rate():
    from edgegen.distill_data import substitution_copies as mutate

    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 500)) for _ in range(40)] + ["N" * 500]
    out = mutate(seqs, copies=2, rate=0.1, seed=3)
    assert len(out) == 2 * len(seqs) and all(len(a) == 500 for a in out)
    assert set("".join(out)) <= set("ACGTN")
    diff = np.mean([sum(x != y for x, y in zip(a, b)) / 500 for a, b in zip(out, seqs * 2)])
    assert 0.08 < diff < 0.12  # every hit is a real change (a different base)
    assert out[: len(seqs)] != out[len(seqs) :] and mutate(seqs, 1, 0.1, seed=3) == out[: len(seqs)]


def test_distillation_on_teacher_labelled_mutants(syn_splits, tiny_model_dir, torch_threads):
    """augment: unlabelled mutated copies join the training set, learned from the teacher's logits only."""
    t = load_model(tiny_model_dir)
    s = student_from_teacher(t.model, n_layers=1, d_model=16, n_heads=2)
    cfg = DistillConfig(epochs=1, batch_size=32, augment=1, mutation_rate=0.05)
    hist = distill(s, t.model, cfg, syn_splits, t.tokenizer, show_progress=False)
    n = len(syn_splits["train"])
    assert hist["augmented_sequences"] == n and hist["steps"] == -(-2 * n // 32)
    assert np.isfinite(hist["epochs"][0]["train_loss"])
    with pytest.raises(UsageError, match="beta"):
        distill(
            s,
            t.model,
            DistillConfig(epochs=1, augment=1, beta=0.0, alpha=1.0),
            syn_splits,
            t.tokenizer,
            show_progress=False,
        )


def test_merged_token_student_distils_exports_and_prunes(syn_splits, tiny_model_dir, torch_threads, tmp_path):
    """A student that merges pairs of tokens (half the encoder rows) learns from the teacher's logits,
    exports to int8 ONNX and TFLite that agree with it, and prunes without touching the merge layer."""
    from edgegen.export import export
    from edgegen.export.config import ExportConfig
    from edgegen.runtime import load_runner, run_batched

    t = load_model(tiny_model_dir)
    s = student_from_teacher(t.model, n_layers=1, d_model=32, n_heads=4, merge_tokens=2, seed=0)
    assert s.config.merge_tokens == 2 and s.config.rows(t.model.config.max_positions) < t.model.config.max_positions
    with pytest.raises(UsageError, match="merges 2 tokens"):
        distill(s, t.model, DistillConfig(epochs=1, hidden_weight=1.0), syn_splits, t.tokenizer, show_progress=False)
    distill(s, t.model, DistillConfig(epochs=6, lr=2e-3, batch_size=32), syn_splits, t.tokenizer, show_progress=False)
    te = syn_splits["test"]
    te_ids = encode(t.tokenizer, te)
    acc = lambda m: point_metrics(te.labels, predict_logits(m, te_ids))["accuracy"]
    assert acc(s) >= acc(t.model) - 0.1 and acc(s) > 0.7  # the synthetic task is learnable at half the rows
    save_model(s, t.tokenizer, tmp_path / "student")
    ref = predict_logits(s, te_ids)
    for fmt in ("onnx", "tflite"):
        for q in ("none", "int8"):
            p = tmp_path / f"s.{q}.{fmt}"
            export(
                tmp_path / "student",
                p,
                ExportConfig(format=fmt, quant=q, calib_samples=64, per_channel=False if q == "int8" else None),
                calib=syn_splits["dev"],
                verify=syn_splits["dev"],
            )
            got = run_batched(load_runner(p), te_ids.astype(np.int32))
            if q == "none":
                assert np.abs(got - ref).max() <= 1e-4
            else:
                assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.95
    w = s.merge.weight.detach().clone()
    p = prune(s, PruneConfig(target_params=0.8, criterion="l1"), te_ids[:2])
    assert torch.equal(p.merge.weight, w) and count_params(p) < count_params(s)
