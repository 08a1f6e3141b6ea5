"""The CLI through a real process: exit codes, one-line errors, nothing written on failure."""

import json
import subprocess
import sys

import pytest

from edgegen import cli


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "edgegen.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd
    )


def assert_clean_error(r, *needles, code=1):
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.strip().splitlines() if line.startswith("edgegen: error")]
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_version_and_help():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip().startswith("edgegen 0.")
    r = run("--help")
    assert r.returncode == 0
    for cmd in (
        "train",
        "evaluate",
        "prune",
        "distill",
        "export",
        "bench",
        "predict",
        "run",
        "import",
        "bundle",
        "devices",
    ):
        assert cmd in r.stdout


def test_bad_fasta_letter(tmp_path, tiny_model_dir):
    fa = tmp_path / "reads.fa"
    fa.write_text(">r1\nACGT\n>r2\nACGZ\n")
    r = run("evaluate", tiny_model_dir, "--data", fa)
    # FASTA has no labels: evaluate must fail on the letter first, naming file, record and character
    assert_clean_error(r, "reads.fa", "r2", "'Z'")


def test_empty_csv_missing_path_non_numeric_label(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "train.csv").write_text("")
    out = tmp_path / "model"
    assert_clean_error(run("train", "--data", d, "--out", out), "train.csv", "empty")
    assert not out.exists()
    assert_clean_error(run("train", "--data", tmp_path / "nope", "--out", out), "nope", "no such data folder")
    assert not out.exists()
    (d / "train.csv").write_text("sequence,label\nACGTACGT,yes\n")
    assert_clean_error(run("train", "--data", d, "--out", out), "train.csv:2", "'yes' is not an integer")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [d]  # no temp folders left behind


def test_corrupt_model_and_no_clobber(tmp_path, tiny_model_dir, syn_dir):
    import shutil

    m = tmp_path / "m"
    shutil.copytree(tiny_model_dir, m)
    w = m / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-10])
    assert_clean_error(run("evaluate", m, "--data", syn_dir / "test.csv"), "model.safetensors", "sha256 mismatch")
    out = tmp_path / "exists"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    r = run("prune", tiny_model_dir, "--out", out, "--target-params", "0.8")
    assert_clean_error(r, "already exists", "--force", code=2)
    assert (out / "keep.txt").read_text() == "precious"


def test_bad_config_values_are_usage_errors(tmp_path, tiny_model_dir):
    r = run("prune", tiny_model_dir, "--out", tmp_path / "p", "--target-params", "1.5")
    assert_clean_error(r, "target_params", "(0, 1)", code=2)
    cfg = tmp_path / "p.yaml"
    cfg.write_text("target_params: 0.5\nbogus: 1\n")
    r = run("prune", tiny_model_dir, "--out", tmp_path / "p", "--config", cfg)
    assert_clean_error(r, "p.yaml:2", "bogus", "unknown field", code=2)
    assert not (tmp_path / "p").exists()


def test_evaluate_prune_export_through_cli(tmp_path, tiny_model_dir, syn_dir):
    js = tmp_path / "eval.json"
    r = run("evaluate", tiny_model_dir, "--data", syn_dir / "test.csv", "--json", js)
    assert r.returncode == 0, r.stderr
    rep = json.loads(js.read_text())
    assert rep["accuracy"]["value"] > 0.8 and len(rep["per_class_recall"]) == 2
    r = run(
        "prune",
        tiny_model_dir,
        "--out",
        tmp_path / "p",
        "--target-params",
        "0.7",
        "--data",
        syn_dir,
        "--json",
        tmp_path / "p.json",
    )
    assert r.returncode == 0, r.stderr
    prep = json.loads((tmp_path / "p.json").read_text())
    assert prep["params_ratio"] <= 0.7 and "params" in r.stdout
    r = run("export", tmp_path / "p", "--out", tmp_path / "p.onnx", "--quant", "int8", "--calib", syn_dir)
    assert r.returncode == 0, r.stderr
    r = run("evaluate", tmp_path / "p.onnx", "--data", syn_dir / "test.csv", "--json", tmp_path / "o.json")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "o.json").read_text())["backend"] == "onnxruntime"


def test_cli_builds_the_config_the_library_receives(monkeypatch, tmp_path):
    seen = {}

    def fake_prune_model(model, out, cfg, data=None, force=False):
        seen.update(model=model, cfg=cfg, data=data, force=force)
        return {
            "seq_len": 5,
            "before": {"params": 2, "macs": 2, "layers": 1, "heads": [2], "ffn": [2]},
            "after": {"params": 1, "macs": 1, "layers": 1, "heads": [1], "ffn": [1]},
            "size_before": 2,
            "size_after": 1,
        }

    monkeypatch.setattr("edgegen.prune.prune_model", fake_prune_model)
    code = cli.main(
        [
            "prune",
            str(tmp_path / "m"),
            "--out",
            str(tmp_path / "o"),
            "--target-macs",
            "0.4",
            "--criterion",
            "taylor",
            "--global",
            "--force",
        ]
    )
    assert code == 0
    c = seen["cfg"]
    assert c.target_macs == 0.4 and c.criterion == "taylor" and c.global_pruning is True and seen["force"] is True


def test_cli_train_merge_tokens_reaches_train_config(monkeypatch, tmp_path):
    seen = {}

    def fake_train_teacher(data, out, cfg, init=None, force=False):
        seen["cfg"] = cfg
        return {"test": None}

    monkeypatch.setattr("edgegen.train.train_teacher", fake_train_teacher)
    assert (
        cli.main(
            ["train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--merge-tokens", "3", "--d-model", "32"]
        )
        == 0
    )
    assert seen["cfg"].merge_tokens == 3 and seen["cfg"].d_model == 32 and seen["cfg"].device == "auto"
    assert cli.main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--merge-tokens", "0"]) == 2
    assert cli.main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--train-device", "cuda:1"]) == 0
    assert seen["cfg"].device == "cuda:1"
    assert cli.main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--train-device", "gpu"]) == 2


def test_cli_train_on_a_missing_gpu_is_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    r = run(
        "train",
        "--data",
        "synthetic:promoter:100:100",
        "--out",
        tmp_path / "m",
        "--train-device",
        "cuda",
        "--epochs",
        "1",
    )
    assert_clean_error(r, "'cuda'", "no such CUDA GPU", code=2)
    assert not (tmp_path / "m").exists()


def test_cli_distill_flags_reach_distill_config(monkeypatch, tmp_path):
    seen = {}

    def fake_distill_model(teacher, student, data, out, cfg=None, unlabeled=None, teacher_logits=None, force=False):
        seen.update(cfg=cfg, unlabeled=unlabeled, teacher_logits=teacher_logits)
        return {}

    monkeypatch.setattr("edgegen.distill.distill_model", fake_distill_model)
    code = cli.main(
        [
            "distill",
            "--teacher",
            str(tmp_path / "t"),
            "--student",
            str(tmp_path / "s"),
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
            "--augment",
            "2",
            "--mutation-rate",
            "0.02",
            "--beta",
            "0.7",
            "--train-device",
            "cpu",
            "--unlabeled",
            str(tmp_path / "r.fq"),
            "--teacher-logits",
            str(tmp_path / "store"),
        ]
    )
    assert code == 0
    c = seen["cfg"]
    assert c.augment == 2 and c.mutation_rate == 0.02 and c.beta == 0.7 and c.alpha == 0.5 and c.device == "cpu"
    assert seen["unlabeled"] == tmp_path / "r.fq" and seen["teacher_logits"] == tmp_path / "store"
    assert (
        cli.main(["distill", "--teacher", "t", "--student", "s", "--data", "d", "--out", "o", "--augment", "99"]) == 2
    )


def test_cli_export_flags_reach_export_config(monkeypatch, tmp_path):
    seen = {}

    from edgegen.export import ExportResult

    def fake_export(model, out, cfg, calib=None, verify=None, force=False):
        seen["cfg"] = cfg
        out.write_bytes(b"x")
        side = {"verification": {"max_abs_diff": 0.0, "argmax_agreement": 1.0, "n": 1}, "quant_impl": "fake"}
        (tmp_path / "m.tflite.json").write_text(json.dumps(side))
        return ExportResult(out, side)

    monkeypatch.setattr("edgegen.export.export_model", fake_export)
    code = cli.main(
        [
            "export",
            str(tmp_path / "m"),
            "--out",
            str(tmp_path / "m.tflite"),
            "--quant",
            "int8",
            "--per-tensor",
            "--keep-names",
            "--plain-graph",
        ]
    )
    assert code == 0
    c = seen["cfg"]
    assert c.format == "tflite" and c.per_channel is False and c.strip_names is False and c.graph_rewrites is False
    code = cli.main(["export", str(tmp_path / "m"), "--out", str(tmp_path / "m.tflite"), "--quant", "int8", "--force"])
    assert (
        code == 0
        and seen["cfg"].per_channel is None
        and seen["cfg"].strip_names is True
        and seen["cfg"].graph_rewrites is True
    )
    assert seen["cfg"].fused_attention is False
    (tmp_path / "m.onnx.json").write_text((tmp_path / "m.tflite.json").read_text())
    code = cli.main(["export", str(tmp_path / "m"), "--out", str(tmp_path / "m.onnx"), "--fused-attention"])
    assert code == 0 and seen["cfg"].format == "onnx" and seen["cfg"].fused_attention is True


def test_run_takes_out_like_every_command_that_writes(tmp_path):
    r = run(
        "run",
        "recipes/quickstart.yaml",
        "--dry-run",
        "--out",
        tmp_path / "elsewhere",
        cwd=cli.__file__.rsplit("/edgegen/", 1)[0],
    )
    assert r.returncode == 0, r.stderr
    assert f'"out": "{tmp_path / "elsewhere"}"' in r.stdout and "to run" in r.stdout
    assert not (tmp_path / "elsewhere").exists()  # a dry run writes nothing
