"""The benchmark scripts run end to end in their small smoke modes (the real runs are on demand)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_compare_smoke(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "compare.py"),
            "--smoke",
            "--out",
            str(tmp_path / "res"),
            "--work",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(next((tmp_path / "res").glob("*-smoke.json")).read_text())
    names = [m["name"] for m in res["bench"]["models"]]
    assert any("dynamic-int8" in n for n in names) and any(
        n.endswith(".int8.tflite") and n.startswith("distill") for n in names
    )
    assert not res["bench"]["errors"]
    assert res["cpu_peak"]["int8_peak_gmacs"] > res["cpu_peak"]["fp32_peak_gmacs"] > 0
    assert (
        len(res["scaling"]) >= 3 and res["scaling"][1]["attention_mac_share"] > res["scaling"][0]["attention_mac_share"]
    )
    assert "speedup_vs_torch_fp32" in res["targets"]
    # each student shape against the same shape trained from labels, with the target's precondition
    kd = res["distilled_vs_label_trained"]
    assert set(kd) == {"half", "quarter", "half-m2"} == set(res["targets"]["distillation"])
    assert all(len(d["distilled_minus_labels"]["ci"]) == 2 for d in kd.values())
    assert sum(n.startswith("student-") and n.rstrip("/").endswith("-labels") for n in names) == 3
    # batch-64 TFLite copies measure throughput in one call per batch
    b64 = [m for m in res["bench"]["models"] if ".b64." in m["name"]]
    assert len(b64) == 5 and all(m["timing"]["1"]["throughput"]["batch"] == 64 for m in b64)
    assert 0 < res["targets"]["throughput"]["edgegen"]["peak_fraction"] < 1
    # the cross-dataset summary reads the same JSON (run as a script: tests import nothing from benchmarks/)
    full = tmp_path / "as-full.json"
    full.write_text(json.dumps({**res, "smoke": False}))
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "summary.py"), str(full)], capture_output=True, text=True
    )
    line = r.stdout.strip().splitlines()[-1]
    assert r.returncode == 0 and line.startswith("| ") and line.count("|") == 12 and "×" in line


def test_predict_stream_smoke(tmp_path, tiny_model_dir, syn_splits):
    from edgegen.export import export
    from edgegen.export.config import ExportConfig

    m = export(
        tiny_model_dir,
        tmp_path / "m.int8.tflite",
        ExportConfig(format="tflite", quant="int8", calib_samples=32, per_channel=False),
        calib=syn_splits["dev"],
    )
    js = tmp_path / "s.json"
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "predict_stream.py"),
            "--model",
            str(m),
            "--reads",
            "20000",
            "--length",
            "100",
            "--work",
            str(tmp_path / "w"),
            "--json",
            str(js),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(js.read_text())["results"][0]
    assert res["rows"] == 20000 - 2  # one bad record per 10k is skipped and counted
    assert "2 bad" in res["summary"]
    assert 0 < res["peak_rss_mb"] < 400


def test_kd_augment_smoke(tmp_path, tiny_model_dir, syn_dir):
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "kd_augment.py"),
            "--data",
            str(syn_dir),
            "--teacher",
            str(tiny_model_dir),
            "--d-model",
            "16",
            "--layers",
            "1",
            "--epochs",
            "1",
            "--augment",
            "1",
            "--n-boot",
            "50",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(next(tmp_path.glob("*-kd-augment-*.json")).read_text())
    arms = res["arms"]
    assert set(arms) == {"labels", "labels+mutants", "kd", "kd+mutants"}
    # the mutant arms see twice the sequences, hence twice the steps; the fair control matches kd+mutants
    assert arms["labels+mutants"]["steps"] == arms["kd+mutants"]["steps"]
    assert abs(arms["kd+mutants"]["steps"] - 2 * arms["kd"]["steps"]) <= 1
    assert all(0 <= a["accuracy"] <= 1 for a in arms.values())
    assert "kd+mutants - labels+mutants" in res["deltas"]


def test_kd_budget_smoke(tmp_path, tiny_model_dir, syn_dir):
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "kd_budget.py"),
            "--data",
            str(syn_dir),
            "--teacher",
            str(tiny_model_dir),
            "--d-model",
            "16",
            "--layers",
            "1",
            "--epochs",
            "1",
            "2",
            "--seeds",
            "0",
            "1",
            "--n-boot",
            "50",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(next(tmp_path.glob("*-kd-budget-*.json")).read_text())
    assert [(run["seed"], run["epochs"]) for run in res["runs"]] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    for ep in (1, 2):
        sp = res["across_seeds"][str(ep)]
        mccs = [run["arms"]["kd"]["mcc"] for run in res["runs"] if run["epochs"] == ep]
        assert sp["kd MCC"]["n"] == 2 and abs(sp["kd MCC"]["mean"] - sum(mccs) / 2) < 1e-9
        assert sp["kd MCC"]["min"] == min(mccs) and 0 <= sp["kd - labels"]["ci_above_zero"] <= 2
    for run in res["runs"]:
        assert set(run["arms"]) == {"labels", "kd", "kd-pure"}
        assert set(run["deltas"]) == {"teacher - labels", "kd - labels", "kd-pure - labels"}
        assert all(d["ci"][0] <= d["delta"] <= d["ci"][1] for d in run["deltas"].values())
        # every arm gets the same budget (the 3-epoch patience floor outlasts these runs): the same number of steps
        assert len({a["steps"] for a in run["arms"].values()}) == 1


def test_kd_budget_trains_its_teacher_first(tmp_path, syn_dir):
    from edgegen.checkpoint import load_model

    t = tmp_path / "teacher"
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "kd_budget.py"),
            "--data",
            str(syn_dir),
            "--teacher",
            str(t),
            "--teacher-shape",
            "32",
            "2",
            "2",
            "64",
            "--teacher-epochs",
            "2",
            "--arms",
            "labels",
            "--d-model",
            "16",
            "--layers",
            "1",
            "--epochs",
            "1",
            "--n-boot",
            "50",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(next(tmp_path.glob("*-kd-budget-*.json")).read_text())
    lm = load_model(t)
    assert (lm.model.config.d_model, lm.model.config.n_layers, lm.model.config.ffn_dim) == (32, 2, 64)
    assert (
        res["teacher_training"]["epochs_run"] <= 2
        and res["teacher_training"]["config"]["tokenizer"] == "kmer_nonoverlap"
    )
    assert (
        abs(res["teacher_mcc"] - lm.manifest["metrics"]["test"]["mcc"]["value"]) < 1e-6
    )  # scored on the same test split
    assert set(res["runs"][0]["arms"]) == {"labels"} and set(res["runs"][0]["deltas"]) == {"teacher - labels"}


def test_gemm_ceiling_smoke(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gemm_ceiling.py"),
            "--rows",
            "128",
            "--widths",
            "32",
            "--runs",
            "2",
            "--threads",
            "1",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    row = json.loads(next(tmp_path.glob("*-gemm-ceiling.json")).read_text())["rows"][0]
    assert row["mmac"] == 128 * 32 * 32 * 4 / 1e6
    for name in ("tflite-int8", "onnx-static-int8", "onnx-dynamic-int8", "torch-fp32"):
        assert row[name].get("gmacs", 0) > 0, row[name]


def test_op_profile_smoke(tmp_path, tiny_model_dir, syn_splits):
    from edgegen.export import export
    from edgegen.export.config import ExportConfig

    m = export(
        tiny_model_dir,
        tmp_path / "m.int8.onnx",
        ExportConfig(format="onnx", quant="int8", calib_samples=32),
        calib=syn_splits["dev"],
    )
    js = tmp_path / "p.json"
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "op_profile.py"),
            str(m),
            "--batch",
            "8",
            "--runs",
            "3",
            "--json",
            str(js),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(js.read_text())
    assert abs(sum(res["group_share"].values()) - 1) < 1e-6 and res["group_share"]["int8 matmul"] > 0
    assert res["ms_per_batch"] > 0


def test_fused_attention_smoke(tmp_path):
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fused_attention.py"), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(next(tmp_path.glob("*-fused-attention-smoke.json")).read_text())
    assert set(res["rows"]) == {"fp32 plain", "fp32 fused", "int8 plain", "int8 fused"}
    for row in res["rows"].values():
        assert len(row["b64_ms"]) == 2 and min(row["b64_ms"]) > 0 and row["b1_speedup"]["median"] > 0
    assert res["rows"]["fp32 plain"]["b64_speedup"]["median"] == 1.0


def test_bad_input_campaign_handles_every_case(tmp_path):
    """The whole campaign (benchmarks/bad_inputs.py, ~150 inputs through edgegen.cli.main): each refused with
    one line and the right exit code, or, for odd but valid inputs, handled correctly."""
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bad_inputs.py"),
            "--out",
            str(tmp_path),
            "--work",
            str(tmp_path / "w"),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    res = json.loads(next(tmp_path.glob("*-bad-inputs.json")).read_text())
    failed = [f"{x['category']}/{x['case']}: {x['problem']}" for x in res["results"] if not x["handled"]]
    assert r.returncode == 0 and not failed, failed or r.stderr[-2000:]
    assert res["summary"]["cases"] >= 150


def test_foundation_scale_smoke(tmp_path):
    """The scale benchmark's stages on a small random checkpoint in the published DNABERT-2 layout (three heads)."""
    from .conftest import SHARED_FIXTURES, real_data, shared_path

    data = real_data("splice_site_human")
    shared_path(SHARED_FIXTURES, "hf", "Hugging Face fixtures")
    out = tmp_path / "res.json"
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "foundation_scale.py"),
            "--size",
            "dnabert2_smoke",
            "--data",
            str(data),
            "--fixtures",
            str(SHARED_FIXTURES / "hf"),
            "--work",
            str(tmp_path / "work"),
            "--out",
            str(out),
            "--n-train",
            "100",
            "--n-eval",
            "60",
            "--target",
            "0.95",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(out.read_text())
    st = res["stages"]
    assert set(st) == {"write", "import", "prune", "distill", "export", "bench", "prune-width", "width-export",
                       "width-bench"}  # fmt: skip
    assert all(s["seconds"] > 0 and s["peak_rss_mb"] > 50 for s in st.values())
    assert st["prune"]["result"]["params_ratio"] <= 0.95 and st["prune"]["result"]["config_after"]["d_model"] == 48
    w = st["prune-width"]["result"]  # width only, to the same fraction: every layer and head kept
    assert w["params_ratio"] <= 0.95 and w["config_after"]["d_model"] < 48 and w["config_after"]["n_layers"] == 2
    assert all(m["latency_b1_ms"] > 0 and not m["error"] for m in st["width-bench"]["result"]["models"])
    assert (
        0.99 < st["import"]["result"]["params"] / st["write"]["result"]["params"] <= 1
    )  # every weight but the token-type table
    assert 0 < res["int8_tflite_vs_float"] < 0.5 and 0 < res["int8_onnx_vs_float"] < 0.5
    rows = st["bench"]["result"]["models"]
    assert len(rows) == 6 and not any(r["error"] for r in rows)
    assert all(0 <= r["agreement_with_teacher"] <= 1 and r["latency_b1_ms"] > 0 for r in rows)
    assert res["seconds_without_distill"] < res["total_seconds"]


def test_kd_low_label_smoke(tmp_path, syn_dir):
    out = tmp_path / "res.json"
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "kd_low_label.py"),
            "--data",
            str(syn_dir),
            "--smoke",
            "--fraction",
            "0.2",
            "--work",
            str(tmp_path / "work"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(out.read_text())
    (d,) = res["datasets"]
    assert d["labelled_rows"] == 240 and [x["size"] for x in d["rows"]] == ["half", "quarter"]
    # one teacher-logit store for every student: computed for the first, reused by the second
    assert [x["store_computed_now"] for x in d["rows"]] == [True, False]
    assert all(x["unlabeled_windows"] == 960 and len(x["ci"]) == 2 for x in d["rows"])
    sc = res["torchrun_scaling"]
    assert sc["processes_1"]["rc"] == 0 and sc["processes_2"]["rc"] == 0 and sc["speedup_2_vs_1"] > 0
