"""Regression tests for the defects found by trying 145 bad inputs (issue 18): every one failed before its fix.

Each checks the same contract: a result, or an ``EdgegenError`` with a one-line message naming the file and
the problem (through the CLI: exit 2 for usage, 1 for data/model errors, no traceback); never a write outside
the output, never a clobber without ``--force``, never a temp file left behind.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgegen.errors import ConfigError, DataError, EdgegenError, ModelFileError, UsageError


def run(*args, cwd=None, stdin=None, input_bytes=None):
    return subprocess.run(
        [sys.executable, "-m", "edgegen.cli", *map(str, args)],
        capture_output=True,
        cwd=cwd,
        input=input_bytes,
        text=input_bytes is None,
        stdin=stdin,
    )


def assert_clean_error(r, *needles, code=1):
    err = r.stderr if isinstance(r.stderr, str) else r.stderr.decode()
    assert r.returncode == code, (r.returncode, err)
    assert "Traceback" not in err
    lines = [x for x in err.strip().splitlines() if x.startswith("edgegen: error")]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], lines[0]


def leftovers(folder: Path) -> list[str]:
    """Temp files and folders that edgegen's writers create: none may survive a run."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob(".*")
        if p.name.endswith((".tmp", ".old", ".lock")) or ".tmp." in p.name
    )


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory, tiny_model_dir, syn_splits) -> Path:
    from edgegen.export import export
    from edgegen.export.config import ExportConfig

    out = tmp_path_factory.mktemp("rel") / "tiny.onnx"
    export(tiny_model_dir, out, ExportConfig(format="onnx", quant="none", verify_samples=64), calib=syn_splits["dev"])
    return out


# ----------------------------------------------------------------------------------- the error boundary
def test_usage_errors_exit_2_without_traceback():
    """typer 0.29 raises its vendored typer._click exceptions: they printed tracebacks and exited 1."""
    assert_clean_error(run("train", "--bogus"), "--bogus", code=2)
    assert_clean_error(run("evaluate"), "model", code=2)
    assert_clean_error(run("export", "m", "--out", "x.onnx", "--quant", "int9"), code=2)


def test_typer_returned_exit_codes_are_not_dropped(monkeypatch):
    """typer returns 130 from non-standalone mode on Ctrl-C; main() returned 0."""
    from edgegen import boundary

    assert boundary.run_guarded(lambda: 130) == 130
    assert boundary.run_guarded(lambda: None) == 0

    def ctrl_c():
        raise KeyboardInterrupt

    def term():
        raise boundary.Terminated()

    def oops():
        raise RuntimeError("line one\nline two")

    assert boundary.run_guarded(ctrl_c) == 130
    assert boundary.run_guarded(term) == 143
    assert boundary.run_guarded(oops) == 1
    with pytest.raises(RuntimeError):
        boundary.run_guarded(oops, debug=True)


def test_unexpected_exceptions_are_one_line(capsys):
    from edgegen import boundary

    def oops():
        raise RuntimeError("first\nsecond")

    assert boundary.run_guarded(oops) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "RuntimeError: first" in err[0] and "--debug" in err[0]


def test_cli_imports_no_click_package():
    """A plain install has no 'click' (typer 0.29 vendors it): importing and running the CLI must not need it."""
    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name == 'click' or name.startswith('click.'):\n"
        "        raise ImportError('no click here')\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "from edgegen.cli import main\n"
        "sys.exit(main(['train', '--bogus']))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr


# ------------------------------------------------------------------------------------ names and paths
def test_recipe_name_cannot_escape_the_run_folder(tmp_path, tiny_model_dir):
    from edgegen.recipe import load_recipe

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    raw = {
        "out": str(tmp_path / "a" / "b" / "run"),
        "steps": [
            {"type": "load", "path": str(tiny_model_dir)},
            {"type": "student", "name": "x/../../../victim", "n_layers": 1},
        ],
    }
    with pytest.raises(ConfigError, match="steps.1.name"):
        load_recipe(raw=raw)
    raw["steps"][1]["name"] = ".."
    with pytest.raises(ConfigError, match="steps.1.name"):
        load_recipe(raw=raw)
    assert (victim / "keep.txt").read_text() == "precious"


def test_outputs_onto_folders_files_and_missing_folders(tmp_path, onnx_model, tiny_model_dir, syn_dir):
    fa = tmp_path / "r.fa"
    fa.write_text(">a\n" + "ACGT" * 40 + "\n")
    (tmp_path / "adir").mkdir()
    assert_clean_error(run("predict", onnx_model, "-i", fa, "-o", tmp_path / "adir"), "adir", "is a folder", code=2)
    (tmp_path / "afile").write_text("x")
    assert_clean_error(
        run("predict", onnx_model, "-i", fa, "-o", tmp_path / "afile" / "p.tsv"), "afile", "is a file", code=2
    )
    r = run("predict", onnx_model, "-i", fa, "-o", tmp_path / "new" / "sub" / "p.tsv")  # missing folders are made
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "new" / "sub" / "p.tsv").read_text().count("\n") == 2
    (tmp_path / "d.onnx").mkdir()
    assert_clean_error(run("export", tiny_model_dir, "--out", tmp_path / "d.onnx"), "d.onnx", "is a folder", code=2)
    # a recipe whose out is a file
    rec = tmp_path / "r.yaml"
    rec.write_text(f"out: {tmp_path / 'afile'}\nsteps:\n  - type: load\n    path: {tiny_model_dir}\n")
    assert_clean_error(run("run", rec), "afile", "is a file", code=2)
    assert (tmp_path / "afile").read_text() == "x"
    assert leftovers(tmp_path) == []


def test_malformed_set_overrides_are_one_line(tmp_path, tiny_model_dir):
    rec = tmp_path / "r.yaml"
    rec.write_text(f"out: {tmp_path / 'run'}\nsteps:\n  - type: load\n    path: {tiny_model_dir}\n")
    for bad, needle in [
        ("steps.x.path=1", "list index"),
        ("steps..path=1", "malformed key"),
        ("out.deeper=1", "plain value"),
        ("steps.7.path=1", "no step 7"),
        ("data=[unclosed", "not valid YAML"),
        ("noequals", "key=value"),
    ]:
        assert_clean_error(run("run", rec, "--set", bad, "--dry-run"), needle, code=2)


def test_device_profiles_that_are_folders_or_binary(tmp_path):
    from edgegen.devices import load_device

    d = tmp_path / "prof.yaml"
    d.mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        load_device(d)
    b = tmp_path / "bin.yaml"
    b.write_bytes(b"\x00\x01\xff\xfe" * 10)
    with pytest.raises(ConfigError, match="not a text file"):
        load_device(b)
    assert_clean_error(run("devices", b), "bin.yaml", code=2)


# --------------------------------------------------------------------------------- no clobbering
def test_json_and_report_outputs_are_not_clobbered(tmp_path, onnx_model, tiny_model_dir, syn_dir):
    keep = tmp_path / "keep.json"
    keep.write_text('{"precious": 1}')
    assert_clean_error(
        run("evaluate", onnx_model, "--data", syn_dir / "test.csv", "--json", keep), "keep.json", "--force", code=2
    )
    assert_clean_error(
        run("bench", onnx_model, "--data", syn_dir / "test.csv", "--json", keep), "keep.json", "--force", code=2
    )
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "mine.md").write_text("mine")
    assert_clean_error(
        run("bench", onnx_model, "--data", syn_dir / "test.csv", "--report", rep), "rep", "--force", code=2
    )
    assert keep.read_text() == '{"precious": 1}' and (rep / "mine.md").read_text() == "mine"
    # an existing sidecar alone (no model file) is not overwritten by export either
    side = tmp_path / "m.onnx.json"
    side.write_text("{}")
    assert_clean_error(run("export", tiny_model_dir, "--out", tmp_path / "m.onnx"), "m.onnx.json", "--force", code=2)
    assert side.read_text() == "{}" and not (tmp_path / "m.onnx").exists()
    r = run("evaluate", onnx_model, "--data", syn_dir / "test.csv", "--json", keep, "--force")
    assert r.returncode == 0, r.stderr
    assert "accuracy" in json.loads(keep.read_text())
    assert leftovers(tmp_path) == []


def test_train_force_onto_a_file_leaves_nothing_behind(tmp_path):
    f = tmp_path / "m"
    f.write_text("a file")
    r = run("train", "--data", "synthetic:promoter:200:60", "--out", f, "--force", "--epochs", "1")
    assert_clean_error(r, "is a file", code=2)
    assert f.read_text() == "a file" and leftovers(tmp_path) == []


def test_concurrent_writers_never_mix_model_and_sidecar(tmp_path, tiny_model_dir, syn_dir):
    """Two exports to one OUT: without --force the later fails, with --force the pair comes from one run;
    the sidecar always describes the file beside it (its sha256 is checked on load)."""
    import onnx

    from edgegen.runtime import load_runner

    out = tmp_path / "m.onnx"
    cmds = [
        [
            sys.executable,
            "-m",
            "edgegen.cli",
            "export",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--quant",
            q,
            "--calib",
            str(syn_dir),
        ]
        for q in ("dynamic", "none")
    ]
    for extra in ([], ["--force"]):
        if extra:
            out.unlink()
            Path(str(out) + ".json").unlink()
        procs = [subprocess.Popen(c + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in cmds]
        codes = [p.wait() for p in procs]
        assert 0 in codes, [p.stderr.read() for p in procs]
        if not extra:
            assert sorted(codes) == [0, 2]
        side = json.loads(Path(str(out) + ".json").read_text())
        ops = {n.op_type for n in onnx.load(str(out)).graph.node}
        assert (side["quant"] == "dynamic") == bool(ops & {"DynamicQuantizeLinear", "MatMulInteger"})
        load_runner(out)  # sha256 of the file matches its sidecar
    assert leftovers(tmp_path) == []


def test_concurrent_predicts_to_one_output(tmp_path, onnx_model):
    """A failing predict never leaves its output (or its temp file) under the final name of another run."""
    good = tmp_path / "good.fa"
    good.write_text("".join(f">g{i}\n{'ACGT' * 50}\n" for i in range(3000)))
    bad = tmp_path / "bad.fa"
    bad.write_text("".join(f">b{i}\n{'ACGT' * 50}\n" for i in range(3000)) + ">z\nACGZ\n")
    out = tmp_path / "p.tsv"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "edgegen.cli", "predict", str(onnx_model), "-i", str(f), "-o", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in (bad, good)
    ]
    codes = [p.wait() for p in procs]
    assert codes == [1, 0], [p.stderr.read() for p in procs]
    rows = out.read_text().splitlines()
    assert len(rows) == 3001 and rows[1].startswith("g0\t")
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------ checksums
def test_swapped_model_file_is_refused(tmp_path, tiny_model_dir, syn_dir, syn_splits):
    from edgegen.export import export
    from edgegen.export.config import ExportConfig
    from edgegen.runtime import load_runner

    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    export(tiny_model_dir, a, ExportConfig(format="onnx", quant="none", verify_samples=32), calib=syn_splits["dev"])
    export(tiny_model_dir, b, ExportConfig(format="onnx", quant="dynamic", verify_samples=32), calib=syn_splits["dev"])
    shutil.copy(b, a)  # a's sidecar now describes another file
    with pytest.raises(ModelFileError, match="does not match its sidecar"):
        load_runner(a)
    assert_clean_error(run("evaluate", a, "--data", syn_dir / "test.csv"), "a.onnx", "does not match its sidecar")


def test_bundle_labels_checksums_and_classes(tmp_path, onnx_model, syn_dir):
    """A bundle made with labelled --data: the runner used to feed the labels to the model; a model swapped
    inside a bundle (sidecar and all) ran silently; 3-class data was accepted for a 2-class model."""
    from edgegen.runner_cli import main as runner_main

    b = tmp_path / "bundle"
    r = run("bundle", onnx_model, "--out", b, "--data", syn_dir / "test.csv")
    assert r.returncode == 0, r.stderr
    res_path = tmp_path / "res.json"
    assert (
        runner_main(
            [
                "measure",
                "--model",
                str(b / onnx_model.name),
                "--inputs",
                str(b / "inputs.npz"),
                "--out",
                str(res_path),
                "--runs",
                "5",
                "--warmup",
                "1",
                "--no-latency",
            ]
        )
        == 0
    )
    res = json.loads(res_path.read_text())
    assert (
        list(res["logits"]) == ["test"]
        and res["accuracy"]["value"] > 0.8
        and res["accuracy"]["n"] == len(res["logits"]["test"])
    )
    # change the model and make its sidecar agree (as a swapped model+sidecar pair would): the manifest catches it
    side = json.loads(Path(str(onnx_model) + ".json").read_text())
    m = b / onnx_model.name
    m.write_bytes(m.read_bytes()[:-1] + bytes([m.read_bytes()[-1] ^ 1]))
    side["file_sha256"] = __import__("hashlib").sha256(m.read_bytes()).hexdigest()
    Path(str(m) + ".json").write_text(json.dumps(side))
    code = runner_main(
        [
            "measure",
            "--model",
            str(m),
            "--inputs",
            str(b / "inputs.npz"),
            "--out",
            str(tmp_path / "r2.json"),
            "--no-latency",
        ]
    )
    assert code == 1 and not (tmp_path / "r2.json").exists()
    # 3-class labels for a 2-class model
    three = tmp_path / "three.csv"
    three.write_text("sequence,label\n" + "".join(f"{'ACGT' * 30},{i % 3}\n" for i in range(30)))
    assert_clean_error(run("bundle", onnx_model, "--out", tmp_path / "b3", "--data", three), "three.csv", "2 classes")
    assert not (tmp_path / "b3").exists()
    # a device profile that cannot run the model's runtime
    from edgegen.bundle import bundle_model

    with pytest.raises(UsageError, match=r"device rpi4 runs \['tflite'\], not onnxruntime"):
        bundle_model(onnx_model, tmp_path / "b4", device="rpi4")
    assert not (tmp_path / "b4").exists()


def test_more_classes_than_the_model_is_refused_everywhere(tmp_path, tiny_model_dir, syn_dir):
    """evaluate, bundle and distill share one check: labels the model has no class for are an error naming the file."""
    import shutil

    from edgegen.distill import distill_model
    from edgegen.errors import DataError
    from edgegen.evaluate import evaluate

    three = tmp_path / "three"
    shutil.copytree(syn_dir, three)
    (three / "test.csv").write_text("sequence,label\n" + "".join(f"{'ACGT' * 30},{i % 3}\n" for i in range(30)))
    with pytest.raises(DataError, match="labels go up to 2 but the model has 2 classes"):
        evaluate(tiny_model_dir, three / "test.csv")
    (three / "train.csv").write_text((syn_dir / "train.csv").read_text() + f"{'ACGT' * 30},2\n")
    with pytest.raises(DataError, match="labels go up to 2 but the teacher has 2 classes"):
        distill_model(tiny_model_dir, tiny_model_dir, three, tmp_path / "s", show_progress=False)
    assert not (tmp_path / "s").exists()


# -------------------------------------------------------------------------------------------- data
def _split_dir(tmp_path: Path, rows: dict[str, list[tuple[str, int]]]) -> Path:
    d = tmp_path / "data"
    d.mkdir(exist_ok=True)
    for split, rs in rows.items():
        (d / f"{split}.csv").write_text("sequence,label\n" + "".join(f"{s},{y}\n" for s, y in rs))
    return d


def test_labels_must_be_class_indices_present_in_training(tmp_path):
    from edgegen.data import load_split_dir

    rng = np.random.default_rng(0)
    seq = lambda: "".join(rng.choice(list("ACGT"), 40))  # noqa: E731
    d = _split_dir(
        tmp_path, {"train": [(seq(), 1 + i % 2) for i in range(20)], "test": [(seq(), 1 + i % 2) for i in range(6)]}
    )
    with pytest.raises(DataError, match="train.csv.*no class 0"):
        load_split_dir(d)
    d = _split_dir(tmp_path, {"train": [(seq(), i % 2) for i in range(20)], "test": [(seq(), i % 3) for i in range(6)]})
    with pytest.raises(DataError, match="test.csv.*label 2 never occurs in the training split"):
        load_split_dir(d)
    assert_clean_error(run("train", "--data", d, "--out", tmp_path / "m"), "test.csv", "label 2")
    assert not (tmp_path / "m").exists()


def test_a_huge_sequence_without_max_len_is_refused_with_advice(tmp_path):
    rng = np.random.default_rng(0)
    rows = [("".join(rng.choice(list("ACGT"), 50)), i % 2) for i in range(30)]
    rows[7] = ("A" * 100_000, 1)
    d = _split_dir(tmp_path, {"train": rows})
    r = run("train", "--data", d, "--out", tmp_path / "m", "--epochs", "1")
    assert_clean_error(r, "train.csv", "100,000 nt", "--max-len")
    assert not (tmp_path / "m").exists()


def test_csv_headers_with_bom_quotes_and_duplicates(tmp_path):
    from edgegen.data import read_labelled

    f = tmp_path / "t.csv"
    f.write_bytes("\ufeffsequence,label\nACGT,0\nGGCC,1\n".encode("utf-8"))
    assert read_labelled(f).sequences == ["ACGT", "GGCC"]
    f.write_text('"sequence","label"\n"ACGT","1"\n')
    ds = read_labelled(f)
    assert ds.sequences == ["ACGT"] and ds.labels.tolist() == [1]
    f.write_text("sequence,label,sequence\nACGT,0,GGGG\n")
    with pytest.raises(DataError, match="'sequence' appears 2 times"):
        read_labelled(f)


def test_gzip_on_stdin(tmp_path, onnx_model):
    fq = "".join(f"@r{i}\n{'ACGT' * 40}\n+\n{'I' * 160}\n" for i in range(5)).encode()
    r = run("predict", onnx_model, "-i", "-", "-o", "-", input_bytes=gzip.compress(fq))
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().count("\n") == 6


# ------------------------------------------------------------------------------------ model files
def _hf_folder(tmp_path: Path, cfg, vocab: bytes | None = b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nAAA\nAAC\n") -> Path:
    d = tmp_path / "hf"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    (d / "config.json").write_text(json.dumps(cfg))
    if vocab is not None:
        (d / "vocab.txt").write_bytes(vocab)
    return d


BERT = {
    "model_type": "bert",
    "architectures": ["BertForMaskedLM"],
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "vocab_size": 7,
    "max_position_embeddings": 64,
}


@pytest.mark.parametrize(
    "change,needle",
    [
        ("list", "must hold an object, not a list"),
        ("no_hidden", "hidden_size is missing"),
        ("bad_heads", "num_attention_heads 5 does not divide hidden_size 32"),
        ("binary_vocab", "vocab.txt is not"),
        ("missing_weight", "checkpoint lacks"),
    ],
)
def test_malformed_hugging_face_folders(tmp_path, change, needle):
    import torch
    from safetensors.torch import save_file

    from edgegen.hf import import_hf

    cfg = dict(BERT)
    vocab = b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nAAA\nAAC\n"
    if change == "list":
        cfg = [cfg]
    elif change == "no_hidden":
        del cfg["hidden_size"]
    elif change == "bad_heads":
        cfg["num_attention_heads"] = 5
    elif change == "binary_vocab":
        vocab = b"\xff\xfe\x00\x01" * 8
    d = _hf_folder(tmp_path, cfg, vocab)
    save_file({"bert.embeddings.word_embeddings.weight": torch.zeros(7, 32)}, str(d / "model.safetensors"))
    with pytest.raises(ModelFileError, match=needle):
        import_hf(d, tmp_path / "out")
    assert_clean_error(run("import", d, "--out", tmp_path / "out"), needle.split(" ")[0])
    assert not (tmp_path / "out").exists()


def test_shape_mismatch_names_every_tensor():
    from edgegen.hf import shape_mismatch_message

    err = RuntimeError(
        "Error(s) in loading state_dict for GenomicTransformer:\n\tsize mismatch for embed.weight: copying a param "
        "with shape torch.Size([7, 16]) from checkpoint, the shape in current model is torch.Size([7, 32]).\n\t"
        "size mismatch for classifier.weight: copying a param with shape torch.Size([2, 16]) ..."
    )
    msg = shape_mismatch_message(err)
    assert "embed.weight" in msg and "classifier.weight" in msg and "\n" not in msg


@pytest.mark.parametrize(
    "edit,needle",
    [
        (lambda s: s.pop("num_classes"), "num_classes"),
        (lambda s: s.__setitem__("tokenizer", None), "tokenizer"),
        (lambda s: s["tokenizer"].__setitem__("k", "three"), "k must be int"),
        (lambda s: s.__setitem__("input", {"shape": "x"}), "input.shape"),
    ],
)
def test_sidecars_missing_or_mistyped_fields(tmp_path, onnx_model, edit, needle):
    from edgegen.runtime import load_runner

    m = tmp_path / onnx_model.name
    shutil.copy(onnx_model, m)
    side = json.loads(Path(str(onnx_model) + ".json").read_text())
    edit(side)
    Path(str(m) + ".json").write_text(json.dumps(side))
    with pytest.raises(ModelFileError, match=needle):
        load_runner(m)


def test_tokenizer_json_holding_null(tmp_path, tiny_model_dir):
    from edgegen.checkpoint import load_model

    m = tmp_path / "m"
    shutil.copytree(tiny_model_dir, m)
    (m / "tokenizer.json").write_text("null")
    with pytest.raises(EdgegenError, match="tokenizer"):
        load_model(m)


def test_unreachable_ssh_device_leaves_no_temp_folder(tmp_path, onnx_model, syn_dir, monkeypatch):
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", None)
    prof = tmp_path / "dev.yaml"
    prof.write_text(
        "name: nowhere\nruntimes: [onnxruntime]\nssh:\n  host: 127.0.0.1\n  port: 1\n  connect_timeout_s: 2\n"
    )
    from edgegen.bench import bench

    with pytest.raises(EdgegenError, match="cannot reach"):
        bench([onnx_model], syn_dir / "test.csv", str(prof), show_progress=False)
    assert list((tmp_path / "tmp").iterdir()) == []


# ------------------------------------------------------------------------------------- training
def test_a_run_at_chance_is_refused_unless_allowed(tmp_path):
    """Labels independent of the sequences: dev MCC cannot leave chance; no model is saved, exit 1."""
    rng = np.random.default_rng(0)
    seq = lambda: "".join(rng.choice(list("ACGT"), 48))  # noqa: E731
    d = _split_dir(
        tmp_path,
        {s: [(seq(), int(rng.integers(2))) for _ in range(n)] for s, n in (("train", 300), ("dev", 200), ("test", 50))},
    )
    args = [
        "train",
        "--data",
        d,
        "--out",
        tmp_path / "m",
        "--epochs",
        "2",
        "--d-model",
        "16",
        "--n-layers",
        "1",
        "--n-heads",
        "2",
        "--ffn-dim",
        "32",
    ]
    assert_clean_error(run(*args), "dev MCC stayed at chance", "--allow-chance")
    assert not (tmp_path / "m").exists()
    r = run(*args, "--allow-chance")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "m" / "model.safetensors").exists() and "chance" in r.stderr


def test_chance_threshold_separates_learning_from_noise():
    from edgegen.fit import chance_threshold
    from edgegen.metrics import mcc

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 900)
    noise = [mcc(y, rng.integers(0, 2, 900), 2) for _ in range(200)]
    assert np.mean(np.array(noise) > chance_threshold(900)) < 0.05  # a random predictor passes < 5% of the time
    weak = np.where(rng.random(900) < 0.6, y, 1 - y)  # 60% correct: MCC ~0.2
    assert mcc(y, weak, 2) > chance_threshold(900)


def test_bundle_predicts_with_its_own_modules_only(tmp_path, onnx_model, syn_dir):
    """runner.py predict inside a bundle imports only the bundle's lib/edgegen (a device has no edgegen): every
    module it needs must travel (predict's writer, edgegen.io, once did not, and the device path failed)."""
    import os

    b = tmp_path / "b"
    r = run("bundle", onnx_model, "--out", b)
    assert r.returncode == 0, r.stderr
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    block = (
        "import runpy, sys; sys.modules['torch'] = None; sys.argv = ['runner.py'] + sys.argv[1:]; "
        "runpy.run_path('runner.py', run_name='__main__')"
    )
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            block,
            "predict",
            "--model",
            onnx_model.name,
            "--input",
            str(syn_dir / "test.csv"),
            "--out",
            str(tmp_path / "p.tsv"),
        ],
        cwd=b,
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "p.tsv").read_text().count("\n") == 1 + len((syn_dir / "test.csv").read_text().splitlines()) - 1


def test_signal_inside_converter_is_held_until_the_block_ends():
    """The TFLite converter's C++ calls back into Python: a handler that raised there aborted the process
    (exit -6, temp files left). Inside ``signals_deferred`` the first signal is noted and raised at the end;
    a second one raises at once; a swallowed SIGTERM still exits 143, not 130."""
    import os
    import signal

    from edgegen import boundary
    from edgegen.errors import raise_if_signalled, signals_deferred

    reached = []

    def converter(n_signals, sig=signal.SIGTERM):
        def run():
            with signals_deferred():
                for _ in range(n_signals):
                    os.kill(os.getpid(), sig)
                reached.append(n_signals)  # the C++ work goes on after one signal
            reached.append("after")

        return run

    assert boundary.run_guarded(converter(1)) == 143
    assert reached == [1]
    reached.clear()
    assert boundary.run_guarded(converter(1, signal.SIGINT)) == 130
    assert reached == [1]
    reached.clear()
    assert boundary.run_guarded(converter(2)) == 143
    assert reached == []

    def swallowed():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except BaseException:
            pass
        raise_if_signalled()  # what a commit does

    assert boundary.run_guarded(swallowed) == 143
    assert boundary.run_guarded(lambda: None) == 0  # nothing carried over to the next command
