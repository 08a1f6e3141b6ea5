"""A sequencer plays into a run folder while ``watch`` follows it: barcode batch files over time (an empty one, one
written in two halves, a truncated gzip), the watch killed (SIGKILL) and started again, and at the end every read
classified exactly once, with the calls ``predict`` gives on the same reads; it stops on MinKNOW's final_summary.
Also: the status page in a real headless browser, and the drift alarm on shifted reads."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgegen.bundle import bundle_model
from edgegen.export import ExportConfig, export

ROOT = Path(__file__).resolve().parents[1]

WRITER = r"""
import gzip, os, sys, time, random
run, reads_file = sys.argv[1], sys.argv[2]
recs = [l.rstrip("\n").split("\t") for l in open(reads_file)]
random.seed(0)
def fq(rs): return "".join(f"@{i} ch=1\n{s}\n+\n{'I' * len(s)}\n" for i, s in rs)
def put(rel, data, gz=False):
    p = os.path.join(run, rel); os.makedirs(os.path.dirname(p), exist_ok=True)
    tmp = p + ".part"
    (gzip.open if gz else open)(tmp, "wt").write(data) if data else open(tmp, "w").close()
    os.replace(tmp, p)
batches = [recs[i:i + 40] for i in range(0, len(recs), 40)]
put("fastq_pass/barcode01/b01_0.fastq.gz", fq(batches[0]), gz=True); time.sleep(0.8)
put("fastq_pass/barcode02/b02_0.fastq", fq(batches[1])); time.sleep(0.8)
put("fastq_pass/barcode02/b02_empty.fastq", "")                       # an empty batch file
half = fq(batches[2]); p = os.path.join(run, "fastq_pass/barcode01/b01_1.fastq")
open(p, "w").write(half[: len(half) // 2]); time.sleep(2.5)            # written in two halves, slowly
open(p, "a").write(half[len(half) // 2:]); time.sleep(0.8)
good = gzip.compress(fq(batches[3]).encode())
bad = os.path.join(run, "fastq_pass/barcode02/b02_trunc.fastq.gz")
open(bad, "wb").write(good[: len(good) // 2])                           # a truncated gzip that stays so
for j, b in enumerate(batches[4:], 2):
    put(f"fastq_pass/barcode0{1 + j % 2}/late_{j}.fastq", fq(b)); time.sleep(0.7)
open(os.path.join(run, "final_summary_FAK000_abc.txt"), "w").write("done\n")
"""


@pytest.fixture(scope="module")
def bundle(tiny_model_dir, syn_splits, syn_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("watch")
    m = export(
        tiny_model_dir, d / "m" / "tiny.int8.onnx", ExportConfig(format="onnx", quant="int8"), calib=syn_splits["dev"]
    )
    return bundle_model(m, d / "bundle", acceptance=syn_dir / "dev.csv", version="3.1")


def _watch_cmd(bundle: Path, run: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        str(bundle / "runner.py"),
        "watch",
        str(run),
        "--model",
        str(bundle / "tiny.int8.onnx"),
        "--out",
        str(out),
        "--poll",
        "0.3",
        "--chunk",
        "60",
    ]


def test_watch_follows_a_run_survives_a_kill_and_counts_every_read_once(bundle, syn_splits, tmp_path):
    test = syn_splits["test"]
    recs = [(f"r{i}", s) for i, s in enumerate(test.sequences[:400])]
    (tmp_path / "reads.tsv").write_text("".join(f"{i}\t{s}\n" for i, s in recs))
    run, out = tmp_path / "run", tmp_path / "out"
    run.mkdir()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(run), str(tmp_path / "reads.tsv")])
    w = subprocess.Popen(_watch_cmd(bundle, run, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4.5)
    w.send_signal(signal.SIGKILL)  # killed mid-run, then started again
    w.wait()
    first = json.loads((out / "checkpoint.json").read_text())["files"] if (out / "checkpoint.json").exists() else {}
    w = subprocess.Popen(_watch_cmd(bundle, run, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert writer.wait(timeout=120) == 0
    stdout, stderr = w.communicate(timeout=300)
    assert w.returncode == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["stopped"] == "the run ended (final_summary)" and len(first) >= 1
    ck = json.loads((out / "checkpoint.json").read_text())["files"]
    assert ck["fastq_pass/barcode02/b02_trunc.fastq.gz"]["status"] == "bad"
    assert ck["fastq_pass/barcode02/b02_empty.fastq"]["reads"] == 0
    rows = []
    for f in sorted((out / "results").rglob("*.tsv")):
        lines = f.read_text().splitlines()
        rows += [dict(zip(lines[0].split("\t"), x.split("\t"))) for x in lines[1:]]
    truncated = {i for i, _ in recs[120:160]}
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == len(recs) - len(truncated)  # every read once, the truncated batch's none
    assert summary["reads"] == len(ids) and set(ids) == {i for i, _ in recs} - truncated
    assert sum(map(sum, summary["barcodes"].values())) == len(ids)
    assert {r["model_version"] for r in rows} == {"3.1"}
    # the same calls as edgegen predict on the same reads
    fa = tmp_path / "all.fa"
    fa.write_text("".join(f">{i}\n{s}\n" for i, s in recs if i not in truncated))
    from edgegen.predict import predict

    predict(bundle / "tiny.int8.onnx", fa, tmp_path / "p.tsv", show_progress=False)
    lines = (tmp_path / "p.tsv").read_text().splitlines()
    want = {x.split("\t")[0]: x.split("\t")[3] for x in lines[1:]}
    assert {r["id"]: r["prediction"] for r in rows} == want
    st = json.loads((out / "status.json").read_text())
    assert st["reads"] == len(ids) and st["drift"]["state"] in ("ok", "warn", "drift")
    assert (out / "drift.jsonl").read_text().count("\n") == st["drift"]["chunk"] >= 1


def _page(tmp_path, reads_shift=None) -> dict:
    """A finished watch on in-distribution (or shifted) reads: its status.json."""
    return json.loads((tmp_path / "out" / "status.json").read_text())


def test_the_drift_alarm_fires_on_shifted_reads_and_stays_quiet_otherwise(bundle, syn_splits, tmp_path):
    from edgegen.watch import WatchConfig, watch

    rng = np.random.default_rng(0)
    test = syn_splits["test"].sequences[:300]
    runs = {"same": test, "gc": ["".join("G" if c in "AT" and rng.random() < 0.3 else c for c in s) for s in test]}
    got = {}
    for name, seqs in runs.items():
        run = tmp_path / name / "run"
        run.mkdir(parents=True)
        (run / "reads.fastq").write_text("".join(f"@{i}\n{s}\n+\n{'I' * len(s)}\n" for i, s in enumerate(seqs)))
        (run / "final_summary_x.txt").write_text("")
        s = watch(run, bundle / "tiny.int8.onnx", tmp_path / name / "out", WatchConfig(poll_s=0.05, chunk_reads=100))
        got[name] = s
    assert got["same"]["drift"]["state"] in ("ok", "warn"), got["same"]["drift"]
    assert got["gc"]["drift"]["state"] == "drift" and any(
        "GC content is higher" in r for r in got["gc"]["drift"]["reasons"]
    )


def test_a_kill_between_a_drift_line_and_its_checkpoint_leaves_log_and_status_agreeing(
    bundle, syn_splits, tmp_path, monkeypatch
):
    from edgegen.watch import Watch, WatchConfig, watch

    run, out = tmp_path / "run", tmp_path / "out"
    run.mkdir()
    seqs = syn_splits["test"].sequences[:150]
    assert len(seqs) == 150
    for j in range(3):
        part = seqs[50 * j : 50 * (j + 1)]
        (run / f"b{j}.fastq").write_text("".join(f"@r{j}_{i}\n{s}\n+\n{'I' * len(s)}\n" for i, s in enumerate(part)))
    (run / "final_summary_x.txt").write_text("")
    cfg = WatchConfig(poll_s=0.05, chunk_reads=50)
    record, calls = Watch._record, []

    def dies_on_the_second_file(self, rel, entry, seconds):
        calls.append(rel)
        if len(calls) == 2:  # the second file's drift line is on disk, its checkpoint is not
            raise SystemExit("killed")
        record(self, rel, entry, seconds)

    monkeypatch.setattr(Watch, "_record", dies_on_the_second_file)
    with pytest.raises(SystemExit):
        watch(run, bundle / "tiny.int8.onnx", out, cfg)
    assert (out / "drift.jsonl").read_text().count("\n") == 2
    monkeypatch.setattr(Watch, "_record", record)
    s = watch(run, bundle / "tiny.int8.onnx", out, cfg)
    chunks = [json.loads(x)["chunk"] for x in (out / "drift.jsonl").read_text().splitlines()]
    assert chunks == [1, 2, 3] and s["drift"]["chunk"] == 3 and s["reads"] == 150


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium not installed")
def test_the_status_page_shows_what_the_json_holds_in_a_real_browser(bundle, syn_splits, tmp_path):
    from edgegen.watch import WatchConfig, watch

    rng = np.random.default_rng(1)
    run = tmp_path / "run"
    (run / "fastq_pass" / "barcode07").mkdir(parents=True)
    seqs = [
        "".join("G" if c in "AT" and rng.random() < 0.3 else c for c in s) for s in syn_splits["test"].sequences[:150]
    ]
    (run / "fastq_pass" / "barcode07" / "b.fastq").write_text(
        "".join(f"@{i}\n{s}\n+\n{'I' * len(s)}\n" for i, s in enumerate(seqs))
    )
    (run / "final_summary_x.txt").write_text("")
    s = watch(run, bundle / "tiny.int8.onnx", tmp_path / "out", WatchConfig(poll_s=0.05, chunk_reads=100))
    page = tmp_path / "out" / "status.html"
    shot = ROOT / "tests" / "artifacts" / "status-page.png"
    shot.parent.mkdir(exist_ok=True)
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=2000"]
    dom = subprocess.run([*args, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    subprocess.run(
        [*args, f"--screenshot={shot}", "--window-size=1000,900", page.as_uri()], capture_output=True, timeout=120
    )
    assert f"<b>{s['reads']}</b> reads classified" in dom
    assert f'data-state="{s["drift"]["state"]}"' in dom and s["drift"]["state"] == "drift"
    counts = s["barcodes"]["barcode07"]
    assert "<td>barcode07</td>" + "".join(f'<td class="n">{x}</td>' for x in counts) in dom.replace(
        "<td class=n>", '<td class="n">'
    )
    assert shot.exists() and shot.stat().st_size > 5000


def test_a_file_listed_in_output_hash_is_taken_at_once_and_a_bad_reference_is_refused(bundle, syn_splits, tmp_path):
    import hashlib

    from edgegen.errors import ModelFileError
    from edgegen.watch import WatchConfig, watch

    run = tmp_path / "run" / "fastq_pass"
    run.mkdir(parents=True)
    body = "".join(f"@{i}\n{s}\n+\n{'I' * len(s)}\n" for i, s in enumerate(syn_splits["test"].sequences[:30]))
    (run / "a.fastq").write_text(body)
    (run / "b.fastq").write_text(body)
    digest = hashlib.sha256(body.encode()).hexdigest()
    (tmp_path / "run" / "output_hash_FAK1.txt").write_text(f"{digest}  fastq_pass/a.fastq\n{'0' * 64}  b.fastq\n")
    s = watch(tmp_path / "run", bundle / "tiny.int8.onnx", tmp_path / "out", WatchConfig(poll_s=0.01), max_polls=1)
    ck = json.loads((tmp_path / "out" / "checkpoint.json").read_text())["files"]
    assert list(ck) == ["fastq_pass/a.fastq"] and s["reads"] == 30  # b's listed digest does not match: it waits
    ref = json.loads((bundle / "REFERENCE.json").read_text())
    ref["numeric"]["gc"] = [float("nan")]
    (tmp_path / "ref.json").write_text(json.dumps(ref))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgegen.cli",
            "watch",
            str(tmp_path / "run"),
            "--model",
            str(bundle / "tiny.int8.onnx"),
            "--out",
            str(tmp_path / "o2"),
            "--reference",
            str(tmp_path / "ref.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "ref.json: drift reference: a number is missing, not finite" in r.stderr
    assert "Traceback" not in r.stderr
    with pytest.raises(ModelFileError, match="drift reference"):
        from edgegen.drift import check_reference

        check_reference({"temperature": 1.0}, "x")


def test_an_export_carries_its_drift_reference_and_watch_uses_it(tiny_model_dir, syn_splits, tmp_path):
    from edgegen.watch import WatchConfig, watch

    m = export(
        tiny_model_dir, tmp_path / "m.int8.onnx", ExportConfig(format="onnx", quant="int8"), calib=syn_splits["dev"]
    )
    side = json.loads(Path(f"{m}.json").read_text())
    ref = side["reference"]
    assert ref["schema"] == "edgegen-reference/1" and len(ref["kmer4"]) == 256 and ref["temperature"] > 0
    run = tmp_path / "run"
    run.mkdir()
    seqs = [
        "".join("G" if c in "AT" and i % 3 == 0 else c for i, c in enumerate(s))
        for s in syn_splits["test"].sequences[:120]
    ]
    (run / "r.fastq").write_text("".join(f"@{i}\n{s}\n+\n{'I' * len(s)}\n" for i, s in enumerate(seqs)))
    (run / "final_summary_z.txt").write_text("")
    s = watch(run, m, tmp_path / "out", WatchConfig(poll_s=0.01, chunk_reads=100))
    assert s["drift"]["state"] == "drift"  # the sidecar's reference, with no bundle around the file
