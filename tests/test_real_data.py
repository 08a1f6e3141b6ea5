"""End-to-end on real data (promoter_nontata_human): prune + distill recovers the
teacher, exports agree with torch. Slow (minutes): marked, but run in CI."""

import json

import numpy as np
import pytest

from edgegen.checkpoint import load_model, save_model
from edgegen.distill import DistillConfig, distill
from edgegen.export import export
from edgegen.export.config import ExportConfig
from edgegen.inference import predict_logits
from edgegen.metrics import point_metrics
from edgegen.prune import PruneConfig, prune
from edgegen.runtime import load_runner, run_batched
from edgegen.train import encode

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def compressed(real_teacher, real_splits, tmp_path_factory):
    """Teacher -> L2 prune to <=50% params -> distil; plus the two controls."""
    t = load_model(real_teacher["dir"])
    tok = t.tokenizer
    tr = real_splits["train"]
    ids = encode(tok, tr)
    calib = [(ids[i : i + 32], tr.labels[i : i + 32]) for i in range(0, 256, 32)]
    out = tmp_path_factory.mktemp("compressed")
    res = {}
    for name, crit in (("l2", "l2"), ("random", "random")):
        p = prune(t.model, PruneConfig(target_params=0.5, criterion=crit), ids[:2], calib=calib)
        res[f"{name}_pruned"] = predict_logits(p, encode(tok, real_splits["test"]))
        distill(p, t.model, DistillConfig(epochs=4, lr=5e-4), real_splits, tok, show_progress=False)
        save_model(p, tok, out / name, metrics={}, extra={"pruning": p.prune_report})
        res[f"{name}_dir"] = out / name
        res[f"{name}_params_ratio"] = p.prune_report["params_ratio"]
    return t, res


def test_pruned_and_distilled_recovers_teacher(compressed, real_splits):
    t, res = compressed
    te = real_splits["test"]
    ids = encode(t.tokenizer, te)
    teacher = point_metrics(te.labels, predict_logits(t.model, ids))
    rows = {"teacher": teacher}
    for name in ("l2", "random"):
        rows[f"{name} pruned, not distilled"] = point_metrics(te.labels, res[f"{name}_pruned"])
        m = load_model(res[f"{name}_dir"]).model
        rows[f"{name} pruned + distilled"] = point_metrics(te.labels, predict_logits(m, ids))
    print("\n" + "\n".join(f"{k:32s} acc {v['accuracy']:.4f} mcc {v['mcc']:.4f}" for k, v in rows.items()))
    assert res["l2_params_ratio"] <= 0.5
    best = rows["l2 pruned + distilled"]
    assert best["accuracy"] >= teacher["accuracy"] - 0.01
    assert best["mcc"] >= teacher["mcc"] - 0.02
    # the controls are worse before distillation: pruning alone costs accuracy
    assert rows["random pruned, not distilled"]["accuracy"] < teacher["accuracy"]
    assert best["accuracy"] >= rows["l2 pruned, not distilled"]["accuracy"]


def test_compressed_reloads_identically_and_exports(compressed, real_splits, tmp_path):
    t, res = compressed
    d = res["l2_dir"]
    a, b = load_model(d), load_model(d)
    ids = encode(a.tokenizer, real_splits["test"])[:64]
    assert np.array_equal(predict_logits(a.model, ids), predict_logits(b.model, ids))
    onnx = export(d, tmp_path / "s.onnx", ExportConfig(format="onnx"), calib=real_splits["dev"])
    got = run_batched(load_runner(onnx), ids)
    assert np.abs(got - predict_logits(a.model, ids)).max() <= 1e-4


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_real_exports_fp32_exact_and_int8_agree(real_teacher, real_splits, tmp_path, fmt):
    d = real_teacher["dir"]
    te = real_splits["test"]
    lm = load_model(d)
    ids = encode(lm.tokenizer, te)
    ref = predict_logits(lm.model, ids)
    f32 = export(d, tmp_path / f"t.{fmt}", ExportConfig(format=fmt), calib=real_splits["dev"])
    assert np.abs(run_batched(load_runner(f32), ids) - ref).max() <= 1e-4
    q = export(
        d,
        tmp_path / f"t.int8.{fmt}",
        ExportConfig(format=fmt, quant="int8", max_drop=1.0),
        calib=real_splits["train"],
        verify=real_splits["dev"],
    )
    got = run_batched(load_runner(q), ids)
    agree = (got.argmax(1) == ref.argmax(1)).mean()
    acc_f, acc_q = (ref.argmax(1) == te.labels).mean(), (got.argmax(1) == te.labels).mean()
    print(
        f"\n{fmt}: int8 agreement {agree:.4f}, accuracy {acc_f:.4f} -> {acc_q:.4f}, size "
        f"{q.stat().st_size / f32.stat().st_size:.3f} of fp32"
    )
    assert agree >= 0.98
    assert acc_q >= acc_f - 0.01  # --max-drop 1.0 holds on the held-out test set too
    side = json.loads((tmp_path / f"t.int8.{fmt}.json").read_text())
    assert side["verification"]["accuracy_drop_pp"] <= 1.0
