import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgegen.bench import BenchConfig, bench
from edgegen.devices import DeviceProfile, load_device
from edgegen.errors import ConfigError, UsageError
from edgegen.export import export
from edgegen.export.config import ExportConfig
from edgegen.machine import machine_info
from edgegen.plots import pareto
from edgegen.report import write_report


def test_peak_rss_is_the_childs_own_not_the_parents():
    """ru_maxrss keeps a parent's high-water mark across fork+exec; the runner must not report it."""
    code = (
        "import numpy as np, subprocess, sys; x = np.ones(150_000_000); "
        "print(subprocess.run([sys.executable, '-c', 'from edgegen.standalone import _rss_mb; print(_rss_mb())'], "
        "capture_output=True, text=True).stdout)"
    )
    child = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert child < 300  # the parent holds 1.2 GB


def test_machine_info_records_the_cpu_features_that_decide_int8_kernels(tmp_path):
    """Two x86 CPUs with the same name ("AMD EPYC") ran different int8 kernels; results must say which ran."""
    zen3 = (
        "processor\t: 0\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC\n"
        "flags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\nmodel name\t: other\nflags\t\t: avx512f avx512_vnni\n"
    )
    zen5 = (
        "cpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\n"
        "flags\t\t: avx2 avx512f avx512_vnni avx_vnni avx512_bf16\n"
    )
    arm = "processor\t: 0\nFeatures\t: fp asimd asimddp i8mm\nCPU part\t: 0xd0b\n\n"
    infos = {}
    for name, text in (("zen3", zen3), ("zen5", zen5), ("arm", arm)):
        (tmp_path / name).write_text(text)
        infos[name] = machine_info(tmp_path / name)
    assert infos["zen3"]["int8_features"] == ["avx2"]  # the first processor's block only
    assert (infos["zen3"]["cpu_family"], infos["zen3"]["cpu_model"], infos["zen3"]["cpu"]) == ("25", "1", "AMD EPYC")
    assert infos["zen5"]["int8_features"] == ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16"]
    assert infos["zen5"]["cpu_family"] == "26"
    assert infos["arm"]["int8_features"] == ["asimddp", "i8mm"] and infos["arm"]["cpu_part"] == "0xd0b"
    assert "int8_features" not in machine_info(tmp_path / "missing")  # no /proc: the platform fields alone


def test_pareto_front():
    pts = [(1.0, 0.9), (2.0, 0.95), (3.0, 0.94), (0.5, 0.7)]
    assert pareto(pts) == [0, 1, 3]


def test_device_profiles_validate_and_fail_clearly(tmp_path):
    for name in ("local", "rpi4", "rpi5", "jetson-orin-nano"):
        p = load_device(name)
        assert p.runtimes
    assert load_device("rpi4").ssh.user == "pi"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nruntimes: [tensorflow]\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:2: runtimes"):
        load_device(bad)
    with pytest.raises(ConfigError, match="unknown device 'nope'"):
        load_device("nope")


def test_local_bench_table_json_and_report(tiny_model_dir, syn_dir, tmp_path):
    q = export(tiny_model_dir, tmp_path / "t.int8.onnx", ExportConfig(format="onnx", quant="int8"), calib=syn_dir)
    prof = DeviceProfile(name="local", threads=[1], bench={"warmup": 1, "runs": 5, "batch": 16})
    res = bench([tiny_model_dir, q], syn_dir, prof, BenchConfig(n_boot=100), show_progress=False)
    assert res["schema"] == "edgegen-bench/1" and not res["errors"]
    t, o = res["models"]
    assert t["vs_baseline"]["argmax_agreement"] == 1.0 and o["vs_baseline"]["argmax_agreement"] > 0.95
    assert o["vs_baseline"]["size_ratio"] > 1.1  # a 30k-parameter model: graph overhead weighs
    for m in (t, o):
        assert m["timing"]["1"]["latency_b1"]["p50_ms"] > 0 and m["peak_rss_mb"] > 10 and m["tokenize_ms_per_seq"] > 0
        assert 0 <= m["validity"]["rc_consistency"] <= 1 and set(m["validity"]["sequencing_error"]) == {
            "0.01",
            "0.05",
            "0.1",
        }
        thr = m["timing"]["1"]["throughput"]  # a median of passes over 4 batches, with its spread
        assert (
            thr["passes"] == 5
            and thr["sequences"] == 64
            and thr["seq_per_s_min"] <= thr["seq_per_s"] <= thr["seq_per_s_max"]
        )
    assert o["peak_rss_mb"] < t["peak_rss_mb"]  # ONNX Runtime process imports no torch
    assert "exact_overlap_train_test" in res["data_check"]
    out = write_report(res, tmp_path / "rep")
    md = (out / "report.md").read_text()
    assert "Genomic validity" in md and "Methodology" in md and "t.int8.onnx" in md
    if Path("/proc/cpuinfo").exists():  # which int8 kernels ran is part of the result
        assert isinstance(res["host_machine"]["int8_features"], list) and "int8 features:" in md
    assert (out / "accuracy_vs_latency.png").stat().st_size > 1000 and (out / "size.png").exists()
    assert json.loads((out / "bench.json").read_text())["schema"] == "edgegen-bench/1"


def test_bench_rejects_runtime_the_device_lacks(tiny_model_dir, syn_dir):
    with pytest.raises(UsageError, match="runs \\['tflite'\\], not torch"):
        bench([tiny_model_dir], syn_dir, DeviceProfile(name="pi", runtimes=["tflite"]), show_progress=False)


def test_bench_cli_keeps_partial_results(tiny_model_dir, syn_dir, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"garbage")
    (tmp_path / "broken.onnx.json").write_text(
        json.dumps(
            {
                "format": "edgegen-export/1",
                "tokenizer": json.loads((tiny_model_dir / "tokenizer.json").read_text()),
                "num_classes": 2,
                "input": {"shape": [None, 41]},
                "file_sha256": hashlib.sha256(b"garbage").hexdigest(),  # checked: only the runtime finds it broken
            }
        )
    )
    js = tmp_path / "b.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgegen.cli",
            "bench",
            str(tiny_model_dir),
            str(broken),
            "--data",
            str(syn_dir / "test.csv"),
            "--threads",
            "1",
            "--runs",
            "5",
            "--warmup",
            "1",
            "--no-validity",
            "--json",
            str(js),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "1 of 2 models failed" in r.stderr
    res = json.loads(js.read_text())
    assert "metrics" in res["models"][0] and "error" in res["models"][1]


class _ClockRunner:
    """A runner whose batches cost a set time per row on a fake clock (a stand-in for a large model)."""

    backend, tokenizer, num_classes, input_spec = "fake", None, 2, {}

    def __init__(self, seconds_per_row):
        self.seconds_per_row, self.rows, self.now = seconds_per_row, 0, 0.0

    def __call__(self, ids):
        self.now += self.seconds_per_row * len(ids)
        self.rows += len(ids)
        return np.zeros((len(ids), 2), np.float32)


@pytest.mark.parametrize("seconds_per_row, batches", [(0.001, 4), (0.1, 2), (0.2, 1), (10.0, 1)])
def test_throughput_passes_shrink_for_a_slow_model_only(seconds_per_row, batches, tmp_path, monkeypatch):
    """Batch-16 passes of THROUGHPUT_BATCHES batches, fewer (down to one) when the warm-up batch shows a pass would
    outlast THROUGHPUT_PASS_S (2 s): batches of 0.016, 1.6, 3.2 and 160 s on a fake clock."""
    import types

    from edgegen import standalone

    runner = _ClockRunner(seconds_per_row)
    monkeypatch.setattr(standalone, "time", types.SimpleNamespace(perf_counter=lambda: runner.now))
    np.savez(tmp_path / "in.npz", test=np.zeros((10, 8), np.int32))
    res = standalone.measure(
        str(tmp_path / "m.fake"),
        str(tmp_path / "in.npz"),
        warmup=0,
        runs=5,
        batch=16,
        logits=False,
        open_runner=lambda path, threads=None: runner,
    )
    thr = res["throughput"]
    assert thr["sequences"] == 16 * batches and thr["passes"] == standalone.THROUGHPUT_PASSES
    assert thr["seq_per_s"] == pytest.approx(1 / seconds_per_row)
    assert runner.rows == 5 + 16 + standalone.THROUGHPUT_PASSES * 16 * batches  # latency, warm-up batch, passes
