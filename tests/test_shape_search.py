"""The budgeted shape search: its grid's shapes are what pruning makes, its cost table fits what was measured, and on
a teacher trained on real data it returns a shape whose measured batch-1 latency meets the budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgegen.checkpoint import load_model

from .conftest import real_data
from .test_foundation import cli


def test_every_grid_shape_is_what_pruning_to_it_makes(tiny_model_dir, syn_splits):
    from edgegen.model import count_params
    from edgegen.prune import _example_and_calib, prune
    from edgegen.shape_search import SearchConfig, enumerate_shapes, prune_config_for, shape_of

    lm = load_model(tiny_model_dir)
    base = lm.model.config
    scfg = SearchConfig(target_size_mb=1, depths=[1.0, 0.5], widths=[1.0, 0.5], heads=[1.0, 0.5], ffn=[1.0, 0.25])
    shapes = enumerate_shapes(base, scfg, lm.tokenizer.seq_len)
    assert len(shapes) == 16
    ex, calib = _example_and_calib(lm.tokenizer, syn_splits, 2)
    for s in shapes[::3]:
        m = prune(lm.model, prune_config_for(base, s), ex, calib=calib)
        got = shape_of(m.config)
        assert got == {k: s[k] for k in got}, (s, got)
        assert count_params(m) == s["params"] and m.config.macs(lm.tokenizer.seq_len) == s["macs"]


def test_the_cost_table_fits_measured_probes_and_keeps_coefficients_non_negative():
    from edgegen.shape_search import pick_candidates, pick_probes
    from edgegen.shape_timing import CostTable

    rng = np.random.default_rng(0)
    shapes = [{"macs": float(m), "n_layers": int(n), "heads": int(h), "params": float(p), "d_model": 64}
              for m, n, h, p in zip(rng.uniform(1e6, 5e7, 40), rng.integers(1, 6, 40), rng.integers(1, 9, 40),
                                    rng.uniform(1e4, 1e6, 40))]  # fmt: skip
    probes = pick_probes(shapes, 6)
    assert len(probes) == 6 and probes[0]["macs"] == min(s["macs"] for s in shapes)
    assert probes[-1]["macs"] == max(s["macs"] for s in shapes)
    assert len({p["n_layers"] for p in probes}) >= 3  # spread over layers too, not only MACs
    for p in probes:  # 0.1 ms fixed, 0.02 ms per MMAC, 0.05 ms per layer, 0.01 ms per head; 1 B per param + 20 kB
        p.update(p50_ms=0.1 + 0.02 * p["macs"] / 1e6 + 0.05 * p["n_layers"] + 0.01 * p["n_layers"] * p["heads"],
                 size_bytes=2e4 + p["params"])  # fmt: skip
    t = CostTable(probes, {"measured_on": "test"})
    assert np.allclose(t.lat, [0.1, 0.02, 0.05, 0.01], atol=1e-6) and np.allclose(t.size, [0.02, 1.0], atol=1e-6)
    for p in probes:  # a layer count that lowers latency is no cost model: that coefficient is dropped
        p["p50_ms"] = 0.1 + 0.02 * p["macs"] / 1e6 - 0.01 * p["n_layers"]
    t = CostTable(probes, {"measured_on": "test"})
    assert t.lat[2] == 0 and (t.lat >= 0).all()
    cands = pick_candidates(shapes, 3)  # the largest of each depth, largest first
    assert len({c["n_layers"] for c in cands}) == 3 and [c["params"] for c in cands] == sorted(
        (c["params"] for c in cands), reverse=True
    )
    for c in cands:
        assert c["params"] == max(s["params"] for s in shapes if s["n_layers"] == c["n_layers"])


def test_a_search_step_in_a_recipe_stands_alone():
    from edgegen.errors import ConfigError
    from edgegen.recipe import load_recipe

    base = {"name": "s", "data": "synthetic:promoter", "out": "runs/s"}
    train = {"type": "train", "epochs": 1}
    step = {"type": "prune", "search": {"target_latency_ms": 2.0, "device": "rpi5"}}
    r = load_recipe(raw=base | {"steps": [train, step]})
    assert r.steps[1].search.target_latency_ms == 2.0 and r.steps[1].search.device == "rpi5"
    with pytest.raises(ConfigError, match="give search alone, not targets"):
        load_recipe(raw=base | {"steps": [train, step | {"targets": [0.3]}]})
    with pytest.raises(ConfigError, match="target_latency_ms and/or target_size_mb"):
        load_recipe(raw=base | {"steps": [train, {"type": "prune", "search": {"device": "rpi5"}}]})


@pytest.fixture(scope="module")
def slow_teacher(tmp_path_factory, torch_threads):
    """4 x d128 on real promoters, a few hundred steps: slow enough at batch 1 for shapes to differ in latency."""
    from edgegen.train import TrainConfig, train_teacher

    out = tmp_path_factory.mktemp("search") / "teacher"
    cfg = TrainConfig(d_model=128, n_layers=4, n_heads=4, ffn_dim=256, max_steps=150, batch_size=32, lr=1e-3)
    train_teacher(real_data("promoter_nontata_human"), out, cfg, show_progress=False)
    return out


@pytest.mark.slow
def test_the_search_returns_a_shape_whose_measured_latency_meets_the_budget(slow_teacher, tmp_path):
    from edgegen.data import load_split_dir
    from edgegen.devices import load_device
    from edgegen.shape_timing import time_models

    data = real_data("promoter_nontata_human")
    splits = load_split_dir(data)
    prof = load_device("local")
    full = np.median([time_models([slow_teacher], splits, prof, 1, tmp_path)[0]["p50_ms"] for _ in range(3)])
    budget = round(0.6 * full, 4)
    out = tmp_path / "chosen"
    r = cli("prune", slow_teacher, "--out", out, "--data", data, "--target-latency-ms", budget, "--candidates", "2",
            "--short-steps", "30", "--json", tmp_path / "s.json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "s.json").read_text())
    chosen = rep["chosen"]
    assert chosen["meets_budget"] and chosen["measured_ms"] <= budget
    assert rep["cost_table"]["measured_on"].startswith("this machine") and len(rep["cost_table"]["probes"]) == 6
    assert all(-1 <= c["dev_mcc"] <= 1 for c in rep["candidates"]) and rep["candidates"][0]["dev_mcc"] == max(
        c["dev_mcc"] for c in rep["candidates"]
    )
    m = load_model(out)  # the plain loader; smaller than the teacher
    assert m.model.config.macs(m.tokenizer.seq_len) < load_model(slow_teacher).model.config.macs(m.tokenizer.seq_len)
    again = np.median([time_models([out], splits, prof, 1, tmp_path)[0]["p50_ms"] for _ in range(3)])
    assert again <= budget * 1.25, (again, budget, full)  # measured again, apart from the search (a noisy machine)
    assert m.manifest["shape_search"]["chosen"]["d_model"] == m.model.config.d_model


@pytest.mark.slow
@pytest.mark.parametrize(
    "prune_step",
    ["hidden: 0.5\n    targets: [0.3]", "search: {target_size_mb: 0.03, probes: 4, candidates: 1, short_steps: 5}"],
)
def test_a_recipe_prunes_the_hidden_width_or_searches_a_shape(prune_step, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""name: w
data: synthetic:promoter:1500:120
out: {tmp_path / "run"}
steps:
  - type: train
    d_model: 32
    n_layers: 2
    ffn_dim: 64
    epochs: 6
    lr: 0.002
    batch_size: 32
  - type: prune
    {prune_step}
  - type: distill
    epochs: 1
  - type: export
    formats: [onnx]
    quant: [int8]
  - type: bench
""")
    r = cli("run", recipe)
    assert r.returncode == 0, r.stderr[-2000:]
    stage = next((tmp_path / "run").glob("prune-*"))
    cfg = json.loads((stage / "model" / "config.json").read_text())
    rep = json.loads((stage / "stage.json").read_text())
    if "hidden" in prune_step:
        assert cfg["d_model"] == 16 and cfg["norm_width"] == 32 and rep["params_ratio"] <= 0.3
    else:  # the chosen shape's exported file fits 30 kB (the teacher's does not)
        assert rep["chosen"]["meets_budget"] and rep["chosen"]["measured_size_mb"] <= 0.03
        assert cfg["d_model"] == rep["chosen"]["d_model"]
    summary = json.loads((tmp_path / "run" / "report" / "summary.json").read_text())
    assert any(m["name"].endswith(".int8.onnx") for m in summary["models"])
