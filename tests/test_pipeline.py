"""The pipeline engine: stage kinds come from the registry, data is read and tokenized once per run, and cache keys
made before the engine existed still hold."""

import json
from pathlib import Path

import pytest

from edgegen.recipe import load_recipe, plan, run_recipe

ROOT = Path(__file__).resolve().parents[1]


def test_a_stage_kind_in_one_file_runs_in_a_recipe(tmp_path, tiny_model_dir):
    import tests.pipeline_toy_kind  # noqa: F401  registers count_params; nothing else is edited

    raw = {
        "out": str(tmp_path / "run"),
        "steps": [
            {"type": "load", "path": str(tiny_model_dir)},
            {"type": "prune", "targets": [0.5]},
            {"type": "count_params", "label": "n"},
        ],
    }
    r = load_recipe(raw=raw)
    assert [s.name for s in plan(r)] == ["teacher", "prune-params50", "count-params"]
    events = []
    run_recipe(r, show_progress=False, on_stage=lambda n, s: events.append((n, s)))
    counts = json.loads((tmp_path / "run" / "count-params" / "counts.json").read_text())["n"]
    teacher = sum(
        p.numel()
        for p in __import__("edgegen.checkpoint", fromlist=["x"]).load_model(tiny_model_dir).model.parameters()
    )
    assert set(counts) == {"prune-params50"} and 0 < counts["prune-params50"] < 0.7 * teacher
    assert json.loads((tmp_path / "run" / "count-params" / "stage.json").read_text())["kind"] == "count_params"
    # its key is its own: a changed field reruns it alone
    events.clear()
    run_recipe(
        load_recipe(raw=raw, overrides=["steps.2.label=m"]),
        show_progress=False,
        on_stage=lambda n, s: events.append((n, s)),
    )
    assert dict(events) == {"teacher": "cached", "prune-params50": "cached", "count-params": "done"}
    with pytest.raises(Exception, match="steps.2.bogus: unknown field"):
        load_recipe(raw=raw, overrides=["steps.2.bogus=1"])


def test_recipe_data_is_read_and_tokenized_once(tmp_path, syn_dir, monkeypatch):
    """Teacher, pruning, a student, distillation and export share one read of the data and one tokenization per
    split."""
    import edgegen.data.load
    from edgegen.dna_tokenizer import Tokenizer

    reads, encoded = [], []
    real_read, real_encode = edgegen.data.load.load_split_dir, Tokenizer.encode
    monkeypatch.setattr(edgegen.data.load, "load_split_dir", lambda *a, **k: reads.append(a) or real_read(*a, **k))
    monkeypatch.setattr(Tokenizer, "encode", lambda self, seqs: encoded.append(len(seqs)) or real_encode(self, seqs))
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
                "epochs": 1,
                "allow_chance": True,
            },
            {"type": "prune", "targets": [0.6]},
            {"type": "student", "name": "s", "n_layers": 1, "d_model": 16, "n_heads": 2},
            {"type": "distill", "epochs": 1},
            {"type": "export", "formats": ["onnx"], "quant": ["int8"]},
        ],
    }
    r = load_recipe(raw=raw)
    run_recipe(r, show_progress=False)
    splits = real_read(syn_dir)
    assert len(reads) == 1
    # each split once, across 7 stages; and each export's drift reference the reverse complements of its sample
    rc_sample = min(512, len(splits["dev"]))
    assert sorted(encoded) == sorted([len(s) for s in splits.values()] + [rc_sample] * 2)
    assert len(list((tmp_path / "run").glob("export-*/*.onnx"))) == 2


def test_cache_keys_made_before_the_engine_are_unchanged():
    """The quickstart's stage keys as the pre-registry code computed them: its cached runs are reused."""
    keys = {s.name: s.key for s in plan(load_recipe(ROOT / "recipes" / "quickstart.yaml"))}
    assert keys == {
        "teacher": "a8cc46620c737335",
        "prune-params50": "75b53aa560c4ca04",
        "student-small": "796a5e3548e8f2b3",
        "distill-params50": "23ff88101a196eb1",
        "distill-small": "f9f44d1568f0fffd",
        "export-distill-params50.int8.tflite": "abc67cd2e0280356",
        "export-distill-params50.int8.onnx": "b3b534769064ab98",
        "export-distill-small.int8.tflite": "193eb4aa4e6cbee4",
        "export-distill-small.int8.onnx": "6e5dac253e0d36cb",
        "bench": "9322f08514a9c48b",
    }
