"""Issue 29's medium and low defects (M2 … M8, L1 … L10) and what a new user found, one regression test each (the
high ones are in test_outside_files.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED_FIXTURES, shared_path
from tests.test_outside_files import cli, one_line_error


@pytest.fixture(scope="module")
def onnx_pair(tiny_model_dir, syn_dir, tmp_path_factory) -> dict:
    """A plain ONNX export and one with external weights, of the tiny model."""
    from edgegen.export import export
    from edgegen.export.config import ExportConfig

    d = tmp_path_factory.mktemp("onnx")
    plain = export(
        tiny_model_dir, d / "m.onnx", ExportConfig(format="onnx", quant="none", verify_samples=32), calib=syn_dir
    )
    ext = export(
        tiny_model_dir,
        d / "e.onnx",
        ExportConfig(format="onnx", quant="none", verify_samples=32, external_data=True),
        calib=syn_dir,
    )
    return {"plain": plain, "external": ext}


def _copy_model(src: Path, dst_dir: Path) -> Path:
    dst_dir.mkdir(exist_ok=True)
    for f in src.parent.glob(src.name + "*"):
        shutil.copy(f, dst_dir / f.name)
    return dst_dir / src.name


# --------------------------------------------------------------------------------------------------------- medium
@pytest.mark.parametrize(
    "content,needle",
    [
        (b"", "empty or truncated"),
        (None, "empty or truncated"),
        (b"PK\x03\x04 not really a zip", "not a readable .npz"),
    ],
)
def test_m2_the_runner_reports_a_bad_inputs_file_in_one_line(onnx_pair, syn_dir, tmp_path, content, needle):
    from edgegen.bundle import bundle_model

    b = bundle_model(onnx_pair["plain"], tmp_path / "b", data=syn_dir / "test.csv")
    good = (b / "inputs.npz").read_bytes()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(good[: len(good) // 2] if content is None else content)
    r = subprocess.run(
        [
            sys.executable,
            "runner.py",
            "measure",
            "--model",
            "m.onnx",
            "--inputs",
            str(bad),
            "--out",
            str(tmp_path / "r.json"),
            "--no-latency",
        ],
        cwd=b,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "bad.npz" in r.stderr and needle in r.stderr, r.stderr


def test_m2_token_arrays_must_be_non_negative_integers(tmp_path):
    from edgegen.errors import DataError
    from edgegen.standalone import load_inputs

    np.savez(tmp_path / "f.npz", test=np.zeros((2, 5), np.float32))
    with pytest.raises(DataError, match="expected non-negative integer"):
        load_inputs(str(tmp_path / "f.npz"))
    np.savez(tmp_path / "n.npz", test=-np.ones((2, 5), np.int32))
    with pytest.raises(DataError, match="non-negative"):
        load_inputs(str(tmp_path / "n.npz"))
    np.savez(tmp_path / "ok.npz", test=np.ones((2, 5), np.int32), labels=np.array([0, 1]))
    assert set(load_inputs(str(tmp_path / "ok.npz"))) == {"test", "labels"}


def test_m3_a_tokenizer_the_model_cannot_embed_is_refused_at_import_and_load(tiny_model_dir, tmp_path):
    from edgegen.checkpoint import load_model
    from edgegen.errors import ModelFileError
    from edgegen.io import sha256_file

    hf = tmp_path / "hf"
    shutil.copytree(shared_path(SHARED_FIXTURES, "hf/nt_v2_tiny_cls", "HF fixture"), hf)
    for f in hf.iterdir():
        f.chmod(0o644)
    words = (hf / "vocab.txt").read_text().splitlines()
    kmer = next(w for w in words if len(w) == 6 and set(w) <= set("ACGT"))
    moved = [w for w in words if w != kmer] + [f"<extra{i}>" for i in range(50)] + [kmer]  # a 6-mer past vocab_size
    (hf / "vocab.txt").write_text("\n".join(moved) + "\n")
    line = one_line_error(cli("import", hf, "--out", tmp_path / "m"))
    assert (
        "but the model's embedding has only" in line and "vocab_size in config.json and the tokenizer disagree" in line
    )
    assert not (tmp_path / "m").exists() and not list(tmp_path.glob(".m.*"))  # nothing half-written
    m = tmp_path / "native"
    shutil.copytree(tiny_model_dir, m)
    tok = json.loads((m / "tokenizer.json").read_text())
    kmer = next(t for t in tok["vocab"] if len(t) == 3 and set(t) <= set("ACGT"))
    tok["vocab"][kmer] = 10_000
    (m / "tokenizer.json").write_text(json.dumps(tok))
    man = json.loads((m / "manifest.json").read_text())
    man["files"]["tokenizer.json"] = sha256_file(m / "tokenizer.json")
    (m / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(
        ModelFileError, match=r"tokenizer has ids up to 10000 \('\w+'\), but the model's embedding has only"
    ):
        load_model(m)


def test_m4_force_replaces_only_regular_files_that_are_not_inputs(tiny_model_dir, onnx_pair, syn_dir, tmp_path):
    reads = tmp_path / "x.fa"
    reads.write_text(">r1\n" + "ACGT" * 40 + "\n")
    before = reads.read_text()
    assert "an input of this command" in one_line_error(
        cli("predict", tiny_model_dir, "-i", reads, "-o", reads, "--force"), 2
    )
    assert reads.read_text() == before
    if Path("/dev/full").exists():
        line = one_line_error(cli("predict", tiny_model_dir, "-i", reads, "-o", "/dev/full", "--force"), 2)
        assert "not a regular file" in line and Path("/dev/full").is_char_device()
    m = _copy_model(onnx_pair["plain"], tmp_path / "m")
    side = Path(f"{m}.json").read_bytes()
    line = one_line_error(cli("evaluate", m, "--data", syn_dir / "test.csv", "--json", f"{m}.json", "--force"), 2)
    assert "part of the input model m.onnx" in line and Path(f"{m}.json").read_bytes() == side
    other = tmp_path / "report.json"
    other.write_text("old")
    assert cli("evaluate", m, "--data", syn_dir / "test.csv", "--json", other, "--force").returncode == 0
    assert json.loads(other.read_text())["accuracy"]["value"] > 0.5  # a plain earlier output is replaced


def test_m5_a_bundle_never_carries_weights_its_sidecar_does_not_check(onnx_pair, tmp_path):
    import onnx

    from edgegen.bundle import bundle_model
    from edgegen.errors import ModelFileError
    from edgegen.runtime.sidecar import seal

    src = onnx_pair["plain"]
    d = tmp_path / "m"
    d.mkdir()
    m = onnx.load(str(src))
    onnx.save_model(
        m,
        str(tmp_path / "m.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="outside.data",
        size_threshold=0,
    )  # the data beside the model's folder, not in it
    m = onnx.load(str(tmp_path / "m.onnx"), load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "../outside.data"
    (d / "m.onnx").write_bytes(m.SerializeToString())
    side = json.loads(Path(f"{src}.json").read_text())
    side.pop("external_data", None)
    (d / "m.onnx.json").write_text(json.dumps(seal(side, d / "m.onnx")))
    with pytest.raises(ModelFileError, match=r"external data \.\./outside\.data that its sidecar does not record"):
        bundle_model(d / "m.onnx", tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_m6_sidecar_checks_are_not_optional(onnx_pair, syn_dir, tmp_path):
    from edgegen.errors import ModelFileError
    from edgegen.runtime import load_runner

    e = _copy_model(onnx_pair["external"], tmp_path / "e")
    assert load_runner(e) is not None
    side = json.loads(Path(f"{e}.json").read_text())
    ext = side.pop("external_data")
    Path(f"{e}.json").write_text(json.dumps(side))  # an edited sidecar no longer checks the .data beside the model
    with pytest.raises(ModelFileError, match="cannot load"):
        load_runner(e)  # opened from its bytes: the unchecked weights are never read
    side["external_data"] = ext
    side["num_classes"] = 3
    Path(f"{e}.json").write_text(json.dumps(side))
    out = tmp_path / "p.tsv"
    reads = tmp_path / "r.fa"
    reads.write_text(">r\n" + "ACGT" * 50 + "\n")
    line = one_line_error(cli("predict", e, "-i", reads, "-o", out))
    assert re.search(r"outputs shape \[('batch'|\d+), 2\], but its sidecar says 3 classes", line) and not out.exists()


def test_m7_a_peer_gone_error_is_not_reported_by_a_second_rank(monkeypatch, capsys):
    from edgegen.boundary import run_guarded

    def failing():
        raise RuntimeError(
            "[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:1234"
        )

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert run_guarded(failing) == 1
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert run_guarded(failing) == 1
    assert "unexpected RuntimeError" in capsys.readouterr().err  # alone, the same error is reported


def test_m8_prune_targets_naming_one_stage_are_refused(syn_dir):
    from edgegen.errors import ConfigError
    from edgegen.recipe import load_recipe

    raw = {
        "name": "m8",
        "data": str(syn_dir),
        "steps": [{"type": "train", "epochs": 1}, {"type": "prune", "targets": [0.8, 0.80, 0.8000001]}],
    }
    with pytest.raises(ConfigError, match="targets 0.8 and 0.8 are both 80%"):
        load_recipe(raw=raw)
    raw["steps"][1]["targets"] = [0.8, 0.5]
    assert [s.name for s in __import__("edgegen.recipe", fromlist=["plan"]).plan(load_recipe(raw=raw))][1:3] == [
        "prune-params80",
        "prune-params50",
    ]


# ------------------------------------------------------------------------------------------------------------ low
def test_l1_errors_name_their_file(tmp_path, syn_dir):
    d = tmp_path / "d"
    d.mkdir()
    (d / "train.csv").write_text("sequence,label\nACGTACGTAC,100000000000000000000\n")
    line = one_line_error(cli("train", "--data", d, "--out", tmp_path / "m"))
    assert "train.csv:2: label 100000000000000000000 is not a class index" in line
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 50_000 + "]" * 50_000 + "\n")
    assert "deep.yaml: YAML nested too deeply" in one_line_error(cli("run", deep), 2)


def test_l2_set_errors_blame_the_set_not_a_recipe_line(tmp_path, syn_dir):
    r = tmp_path / "r.yaml"
    r.write_text(f"name: x\ndata: {syn_dir}\nsteps:\n  - type: train\n    epochs: 1\n")
    line = one_line_error(cli("run", r, "--set", "steps.0.epochs=abc", "--dry-run"), 2)
    assert "r.yaml: steps.0.epochs" in line and "(from --set steps.0.epochs=abc)" in line and "r.yaml:4" not in line


def test_l2_a_pickle_refusal_says_why(tmp_path):
    import pickle

    hf = tmp_path / "hf"
    hf.mkdir()
    for f in ("config.json", "vocab.txt"):
        shutil.copy(shared_path(SHARED_FIXTURES, f"hf/nt_v2_tiny_cls/{f}", "HF fixture"), hf / f)

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'PWNED'}",))

    (hf / "pytorch_model.bin").write_bytes(pickle.dumps({"w": Evil()}))
    line = one_line_error(cli("import", hf, "--out", tmp_path / "m"))
    assert "is never unpickled" in line and "Unsupported" in line and "UserWarning" not in line
    assert not (tmp_path / "PWNED").exists()


def test_l2_a_full_disk_names_the_output(tmp_path, monkeypatch):
    import errno

    import edgegen.io as io

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.os, "fsync", full)
    with pytest.raises(OSError) as e:
        io.atomic_write_text(tmp_path / "out.json", "{}")
    assert e.value.filename == str(tmp_path / "out.json") and not list(tmp_path.iterdir())
    from edgegen.boundary import os_error_message

    assert str(tmp_path / "out.json") in os_error_message(e.value)


def test_l3_a_second_run_in_the_same_folder_is_refused_at_once(tmp_path):
    from edgegen.errors import UsageError
    from edgegen.io import held_or_refused

    with held_or_refused(tmp_path / ".lock", "run folder"):
        code = "from edgegen.io import held_or_refused\nwith held_or_refused(%r, 'run folder'):\n    pass" % str(
            tmp_path / ".lock"
        )
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "another edgegen process is using this run folder" in r.stderr
    assert not (tmp_path / ".lock").exists()  # nothing left behind
    with held_or_refused(tmp_path / ".lock", "run folder"):  # released: taken again at once
        with pytest.raises(UsageError, match="another edgegen process"):  # and refused in this process too
            with held_or_refused(tmp_path / ".lock", "run folder"):
                pass


def test_l6_weights_get_the_usual_permissions(tiny_model_dir, tmp_path):
    from edgegen.checkpoint import load_model, save_model

    lm = load_model(tiny_model_dir)
    old = os.umask(0o022)
    try:
        save_model(lm.model, lm.tokenizer, tmp_path / "m")
    finally:
        os.umask(old)
    modes = {f.name: f.stat().st_mode & 0o777 for f in (tmp_path / "m").iterdir()}
    assert set(modes.values()) == {0o644}, modes


def test_l7_an_unlabeled_table_needs_only_a_sequence_column(tmp_path):
    from edgegen.distill_data import read_windows

    t = tmp_path / "reads.csv"
    t.write_text("sequence\n" + "ACGT" * 30 + "\n" + "GGCC" * 10 + "\n")
    assert [len(w) for w in read_windows(t, 100)] == [100, 100, 40]


def test_l8_a_distill_step_with_nothing_to_distil_is_an_error(syn_dir):
    from edgegen.errors import ConfigError
    from edgegen.recipe import load_recipe, plan

    raw = {
        "name": "l8",
        "data": str(syn_dir),
        "steps": [{"type": "train", "epochs": 1}, {"type": "distill", "epochs": 1}],
    }
    with pytest.raises(ConfigError, match="nothing to distil"):
        plan(load_recipe(raw=raw))


def test_l10_a_duplicate_vocabulary_entry_is_warned_about(tmp_path, caplog):
    from edgegen.hf_files import read_vocab

    (tmp_path / "vocab.txt").write_text("<pad>\nAAA\nCCC\nAAA\n")
    with caplog.at_level("WARNING", logger="edgegen"):
        v = read_vocab(tmp_path)
    assert v["AAA"] == 3 and "1 token(s) appear more than once (first 'AAA', lines 2 and 4)" in caplog.text


# ------------------------------------------------------------------------------------------------ as a new user
def test_tables_printed_to_a_pipe_are_not_cut():
    code = (
        "from rich.table import Table\nfrom edgegen.commands import console\nt = Table('model', 'accuracy', 'p50 ms')\n"
        "t.add_row('distill-params50-student-small.int8-full.per-channel.tflite' * 2, '0.893 [0.857, 0.927]', '0.18')\n"
        "console().print(t)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
    )
    assert r.returncode == 0, r.stderr
    assert "distill-params50-student-small.int8-full.per-channel.tflite" * 2 in r.stdout and "…" not in r.stdout


def test_the_kmer_baseline_scores_real_data_and_train_reports_it(tmp_path):
    from edgegen.baseline import kmer_baseline
    from edgegen.data import load_split_dir
    from tests.conftest import real_data

    s = load_split_dir(real_data("promoter_nontata_human"))
    base = kmer_baseline(s["train"], s["test"])
    assert 0.5 < base["mcc"] < 0.7 and base["n"] == len(s["test"])  # the README's 4-mer LR: 0.593
    shuffled = type(s["train"])(
        s["train"].sequences, np.random.default_rng(0).permutation(s["train"].labels), None, "x"
    )
    assert abs(kmer_baseline(shuffled, s["test"])["mcc"]) < 0.1  # labels it cannot learn: chance


def test_train_warns_when_the_transformer_does_not_beat_the_baseline(syn_dir, tmp_path, caplog):
    from edgegen.data import load_split_dir
    from edgegen.train import compare_with_baseline

    s = load_split_dir(syn_dir)
    hist = {"epochs": [{"dev_mcc": 0.05}]}
    with caplog.at_level("WARNING", logger="edgegen"):
        compare_with_baseline(hist, s["train"], s["dev"])
    assert hist["kmer_baseline"]["mcc"] > 0.05 and "does not beat a 4-mer logistic regression" in caplog.text
    caplog.clear()
    hist = {"epochs": [{"dev_mcc": 0.999}]}
    with caplog.at_level("WARNING", logger="edgegen"):
        compare_with_baseline(hist, s["train"], s["dev"])
    assert "does not beat" not in caplog.text


@pytest.mark.slow
def test_m7_nproc_runs_ranks_and_keeps_one_error_line_and_its_exit_code(tiny_model_dir, syn_dir, tmp_path):
    """`--nproc N` launches the ranks as torchrun would, without torchrun's own traceback; a usage error keeps exit
    2."""
    bad = tmp_path / "s.yaml"
    bad.write_text("n_layers: 1\nwings: 2\n")
    r = cli(
        "distill",
        "--nproc",
        "2",
        "--teacher",
        tiny_model_dir,
        "--student",
        bad,
        "--data",
        syn_dir,
        "--out",
        tmp_path / "o",
    )
    assert "wings: unknown field" in one_line_error(r, 2)
    r = cli(
        "distill",
        "--nproc",
        "2",
        "--teacher",
        tiny_model_dir,
        "--student",
        bad,
        "--data",
        tmp_path / "missing",
        "--out",
        tmp_path / "o",
    )
    assert r.returncode in (1, 2) and r.stderr.count("edgegen: error") == 1 and "Traceback" not in r.stderr, r.stderr
    r = cli(
        "teacher-logits", "--nproc", "2", "--teacher", tiny_model_dir, "--data", syn_dir, "--out", tmp_path / "store"
    )
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((tmp_path / "store" / "meta.json").read_text())
    assert len(meta["shards"]) >= 1 and all(len(s["sha256"]) == 64 for s in meta["shards"])
    assert "nproc must be a positive integer" in one_line_error(cli("distill", "--nproc", "x"), 2)


def test_l5_temp_folders_of_a_killed_writer_are_removed_by_the_next(tmp_path):
    import signal

    from edgegen.io import temp_dir

    code = (
        "import os, sys\nfrom edgegen.io import temp_dir\nprint(temp_dir(sys.argv[1]), flush=True)\n"
        "os.kill(os.getpid(), 9)"
    )
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "store")], capture_output=True, text=True)
    assert r.returncode == -signal.SIGKILL
    left = Path(r.stdout.strip())
    assert left.is_dir() and left.name.startswith(".store.p")
    mine = temp_dir(tmp_path / "store")  # the next writer of the same output
    assert not left.exists() and mine.is_dir()
    assert temp_dir(tmp_path / "store").is_dir() and mine.is_dir()  # a live writer's folder is never touched


def test_l4_an_unwritable_output_folder_is_found_before_the_work(tiny_model_dir, tmp_path, monkeypatch):
    """As root every folder is writable, so the system's answer is simulated: edgegen asks before any work and names
    the folder, not a temp path after minutes of work."""
    import edgegen.io as io
    from edgegen.errors import UsageError
    from edgegen.export import export
    from edgegen.export.config import ExportConfig

    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(io.os, "access", lambda p, mode: False if Path(p) == ro else real(p, mode))
    calls = []
    monkeypatch.setattr("edgegen.checkpoint.load_model", lambda *a, **k: calls.append(a))
    with pytest.raises(UsageError, match=f"no permission to write in {ro}"):
        export(tiny_model_dir, ro / "m.onnx", ExportConfig(format="onnx", quant="none"))
    assert calls == []  # refused before the model was even loaded


def test_labels_of_nearby_points_do_not_overlap(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgegen.plots import place_labels

    # an at-chance model widens the accuracy axis: the three int8 students lie within a few pixels of each other
    pts = [(0.18, 0.887), (0.18, 0.890), (0.19, 0.889), (1.32, 0.893), (0.70, 0.890), (0.03, 0.50)]
    names = [
        "distill-params50.int8.tflite",
        "distill-params50.int8.onnx",
        "distill-small.int8.tflite",
        "teacher",
        "distill-params50",
        "1-layer",
    ]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(*zip(*pts))
    ax.set_xscale("log")
    fig.tight_layout()
    offsets = place_labels(ax, pts, names)
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.texts]
    plt.close(fig)
    assert len(boxes) == 6 and len(set(offsets[:3])) == 3  # the three nearby points got three different places
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (names[i], names[j])


@pytest.mark.parametrize(
    "edit,needle",
    [
        (lambda t: t["added_tokens"][0].pop("content"), "added_tokens[0] has no token text"),
        (lambda t: t["model"]["vocab"].update(A="seven"), "model.vocab['A'] is 'seven', not a token id"),
    ],
)
def test_l1_a_bpe_tokenizer_json_with_a_bad_token_names_the_file(tmp_path, edit, needle):
    src = tmp_path / "d2"
    shutil.copytree(shared_path(SHARED_FIXTURES, "hf/dnabert2_tiny_cls", "HF fixture"), src)
    for f in src.iterdir():
        f.chmod(0o644)
    tok = json.loads((src / "tokenizer.json").read_text())
    edit(tok)
    (src / "tokenizer.json").write_text(json.dumps(tok))
    line = one_line_error(cli("import", src, "--out", tmp_path / "m"))
    assert "d2" in line and needle in line and "unexpected" not in line


def test_l1_a_sidecar_tokenizer_that_does_not_fit_the_model_input_is_refused(onnx_pair, tmp_path):
    from edgegen.errors import ModelFileError
    from edgegen.runtime import load_runner

    m = _copy_model(onnx_pair["plain"], tmp_path / "m")
    side = json.loads(Path(f"{m}.json").read_text())
    side["tokenizer"]["max_len"] += 30  # ten more 3-mer tokens than the graph takes
    Path(f"{m}.json").write_text(json.dumps(side))
    with pytest.raises(ModelFileError, match=r"m.onnx.json: sidecar tokenizer gives \d+ tokens, the model takes \d+"):
        load_runner(m)


def test_a_label_at_the_edge_stays_inside_the_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgegen.plots import place_labels

    pts = [(0.03, 0.84), (0.17, 0.893), (1.3, 0.897)]  # the slowest model sits at the right edge
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(*zip(*pts))
    ax.set_xscale("log")
    fig.tight_layout()
    place_labels(ax, pts, ["distill-small.int8.tflite", "distill-params50.int8.onnx", "teacher"])
    fig.canvas.draw()
    frame = ax.bbox
    boxes = [t.get_window_extent() for t in ax.texts]
    plt.close(fig)
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)


def test_a_sidecar_that_misstates_the_class_count_is_refused_at_load(onnx_pair, tmp_path):
    """Found by the sidecar property test: a sidecar saying 3 classes for a 2-class model loaded, and failed only
    on the first batch. Now the runner refuses it when it opens the file, naming both counts."""
    import shutil

    from edgegen.errors import ModelFileError
    from edgegen.runtime import load_runner

    src = onnx_pair["plain"]
    shutil.copy(src, tmp_path / "m.onnx")
    side = json.loads(Path(f"{src}.json").read_text())
    side["num_classes"] = 3
    (tmp_path / "m.onnx.json").write_text(json.dumps(side))
    with pytest.raises(ModelFileError, match=r"m\.onnx: model outputs shape \[.*, 2\], but its sidecar says 3 classes"):
        load_runner(tmp_path / "m.onnx")
