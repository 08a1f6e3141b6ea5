import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgegen.errors import ConfigError
from edgegen.recipe import dry_run, load_recipe, plan, run_recipe

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, text, name="r.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


BASE = """name: t
data: {data}
out: {out}
steps:
  - type: train
    tokenizer: kmer_nonoverlap
    k: 3
    d_model: 32
    n_layers: 2
    n_heads: 4
    ffn_dim: 64
    epochs: 6
    lr: 0.002
  - type: prune
    targets: [0.6]
  - type: distill
    epochs: {distill_epochs}
    patience: 50
    batch_size: 16
  - type: export
    formats: [onnx]
    quant: [int8]
  - type: bench
    runs: 5
    warmup: 1
    threads: [1]
    max_samples: 40
"""


@pytest.mark.parametrize(
    "text,match",
    [
        (
            "name: x\nsteps:\n  - type: train\n    epochs: 2\n    bogus: 1\n",
            r"r.yaml:2: .*steps.0.bogus: unknown field",
        ),
        ("name: x\ndata: synthetic:promoter\nsteps:\n  - type: train\n    epochs: two\n", r"steps.0.epochs: .*integer"),
        ("name: x\ndata: /no/such/folder\nsteps:\n  - type: train\n", r"r.yaml:2: data: no such folder"),
        ("name: x\nsteps:\n  - type: train\n", "data is required"),
        ("name: x\ndata: synthetic:promoter\nsteps:\n  - type: smash\n", "unknown step type 'smash'"),
        (
            "name: x\ndata: synthetic:promoter\nsteps:\n  - type: train\n  - type: prune\n    targets: [1.5]\n",
            r"steps.1.*targets must be in \(0, 1\)",
        ),
        (
            "name: x\ndata: synthetic:promoter\nsteps:\n  - type: train\n  - type: export\n    formats: [onnx]\n    "
            "quant: [16x8]\n",
            "does not support quant='16x8'",
        ),
        ("name: x\ndata: synthetic:promoter\nsteps:\n  - type: prune\n", "exactly one teacher step"),
        ("name: [unclosed\n", "invalid YAML"),
        (
            "name: x\ndata: synthetic:promoter\nunknown_top: 1\nsteps:\n  - type: train\n",
            r"r.yaml:3: unknown_top: unknown field",
        ),
    ],
)
def test_malformed_recipes_fail_before_any_work(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        load_recipe(write(tmp_path, text))
    assert [p.name for p in tmp_path.iterdir()] == ["r.yaml"]


def test_set_overrides_and_builtin_recipes_validate(tmp_path):
    r = load_recipe(
        ROOT / "recipes" / "quickstart.yaml", [f"out={tmp_path}/q", "steps.0.epochs=1", "steps.1.targets=[0.5, 0.4]"]
    )
    assert r.steps[0].epochs == 1 and r.steps[1].targets == [0.5, 0.4] and r.out.endswith("/q")
    names = [s["stage"] for s in dry_run(r)]
    assert "prune-params50" in names and "prune-params40" in names and names[-1] == "bench"
    assert sum(n.startswith("export-") for n in names) == 6  # 3 compressed models x 2 formats
    for f in ("promoter.yaml", "splice.yaml"):
        with pytest.raises(ConfigError, match="data"):
            load_recipe(ROOT / "recipes" / f)
    with pytest.raises(ConfigError, match="no step 9"):
        load_recipe(ROOT / "recipes" / "quickstart.yaml", ["steps.9.epochs=1"])


def test_stage_keys_change_only_downstream(tmp_path):
    a = {s.name: s.key for s in plan(load_recipe(ROOT / "recipes" / "quickstart.yaml"))}
    b = {s.name: s.key for s in plan(load_recipe(ROOT / "recipes" / "quickstart.yaml", ["steps.3.epochs=9"]))}
    same = [n for n in a if a[n] == b[n]]
    assert {"teacher", "prune-params50", "student-small"} <= set(same)
    assert a["distill-params50"] != b["distill-params50"] and a["bench"] != b["bench"]


def test_fields_added_later_keep_cached_keys_at_their_default():
    """merge_tokens / augment at their defaults leave every stage key as it was before they existed;
    set, they change their own stage and what follows."""
    qs = ROOT / "recipes" / "quickstart.yaml"
    a = {s.name: s.key for s in plan(load_recipe(qs))}
    b = {
        s.name: s.key
        for s in plan(load_recipe(qs, ["steps.2.merge_tokens=1", "steps.0.merge_tokens=1", "steps.3.augment=0"]))
    }
    assert a == b
    c = {s.name: s.key for s in plan(load_recipe(qs, ["steps.2.merge_tokens=2"]))}
    assert (
        c["teacher"] == a["teacher"]
        and c["student-small"] != a["student-small"]
        and c["distill-small"] != a["distill-small"]
    )
    assert c["distill-params50"] == a["distill-params50"]


@pytest.mark.slow
def test_run_is_cached_and_resumes_after_kill_during_distillation(tmp_path, syn_dir):
    out = tmp_path / "run"
    rec = write(tmp_path, BASE.format(data=syn_dir, out=out, distill_epochs=40))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgegen.cli", "run", str(rec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not list(out.glob(".distill-*.tmp")):
        assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)  # a crash: no cleanup handlers run
    proc.wait()
    assert (out / "teacher" / "stage.json").exists() and (out / "prune-params60" / "stage.json").exists()
    assert not (out / "distill-params60").exists()
    teacher_bytes = (out / "teacher" / "model" / "model.safetensors").read_bytes()
    teacher_stage = (out / "teacher" / "stage.json").read_text()
    events = []
    r = load_recipe(rec, ["steps.2.epochs=2"])  # finish quickly on the rerun; upstream keys unchanged
    summary = run_recipe(r, show_progress=False, on_stage=lambda n, s: events.append((n, s)))
    status = dict(events)
    assert status["teacher"] == "cached" and status["prune-params60"] == "cached"
    assert status["distill-params60"] == "done"
    assert (out / "teacher" / "model" / "model.safetensors").read_bytes() == teacher_bytes
    assert (out / "teacher" / "stage.json").read_text() == teacher_stage
    assert not list(out.glob(".*.tmp"))
    assert (
        summary["models"]
        and (out / "report" / "report.md").exists()
        and (out / "report" / "accuracy_vs_latency.png").exists()
    )
    s = json.loads((out / "report" / "summary.json").read_text())
    assert s["teacher_metrics"]["accuracy"] > 0.6
    # a rerun with nothing changed runs nothing
    events.clear()
    t0 = time.perf_counter()
    run_recipe(r, show_progress=False, on_stage=lambda n, s: events.append((n, s)))
    assert all(s == "cached" for _, s in events) and time.perf_counter() - t0 < 5


def test_distill_branches_share_one_teacher_logit_store_and_take_unlabeled_reads(tmp_path, syn_dir, syn_splits):
    """Two pruned branches distilled with unlabeled reads: the teacher's logits are computed once, into the
    run's store, and the second branch reuses them."""
    reads = tmp_path / "reads.fa"
    reads.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(syn_splits["test"].sequences[:64])))
    text = (
        BASE.format(data=syn_dir, out=tmp_path / "run", distill_epochs=1)
        .replace("targets: [0.6]", "targets: [0.6, 0.5]")
        .replace("    batch_size: 16\n", f"    batch_size: 16\n    unlabeled: {reads}\n")
        .replace("  - type: export\n    formats: [onnx]\n    quant: [int8]\n", "")
    )
    text = text[: text.index("  - type: bench")]
    run_recipe(load_recipe(write(tmp_path, text)), show_progress=False)
    run = tmp_path / "run"
    (store,) = run.glob("teacher-logits-*")
    meta = json.loads((store / "meta.json").read_text())
    assert meta["parts"] == {"train": len(syn_splits["train"]), "unlabeled": 64}
    hists = {
        b: json.loads((run / f"distill-params{b}" / "model" / "manifest.json").read_text())["history"] for b in (60, 50)
    }
    assert [hists[b]["teacher_logits"]["computed_now"] for b in (60, 50)] == [True, False]
    assert all(h["unlabeled_windows"] == 64 for h in hists.values())
