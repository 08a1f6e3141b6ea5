#!/usr/bin/env python3
"""A reproducible bad-input campaign: ~100 inputs a field user can get wrong, through the real CLI.

    python benchmarks/bad_inputs.py --out benchmarks/results [--only PATTERN] [--subprocess]

For each case it builds the inputs in a fresh folder, runs ``edgegen ...`` (in this process through
``edgegen.cli.main`` by default, which is what the console script calls; ``--subprocess`` runs each in
its own process) and judges the outcome:

* an input edgegen should refuse is *handled* when the exit code is the expected one (2 usage, 1 data or
  model), stderr holds exactly one ``edgegen: error`` line, no traceback, no temp file is left and no
  protected file changed;
* an odd but valid input (a BOM in a header, gzip on stdin, an output folder that does not exist yet) is
  *handled* when it succeeds and its output is right.

Writes ``DATE-bad-inputs.json`` and ``.md`` (the table: case, command, exit code, message) and prints the
summary the README's reliability section quotes: cases tried, handled, and the failures by category.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.builders import write_bert_weights  # noqa: E402  (the repository root is on sys.path now)


@dataclass
class Case:
    category: str
    name: str
    argv: list[str]  # {w}: the case folder, {m}: model dir, {onnx}: exported model, {data}: split folder
    setup: Callable[[Path], None] | None = None
    expect: str = "error"  # "error" | "ok"
    code: int | None = None  # the exit code an error must have (default: 1 or 2)
    stdin: bytes | None = None
    protect: list[str] = field(default_factory=list)  # files (relative to the case folder) that must not change
    check: Callable[[Path, str], bool] | None = None  # for "ok" cases: is the output right?


# --------------------------------------------------------------------------------------------- helpers
def w(rel: str, text: str | bytes) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text if isinstance(text, bytes) else text.encode())

    return make


def both(*fs) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        for f in fs:
            f(d)

    return make


def rand_seq(n: int, seed: int = 0) -> str:
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), n))


def table(rows: list[tuple[str, object]], header: str = "sequence,label") -> str:
    return header + "\n" + "".join(f"{s},{y}\n" for s, y in rows)


GOOD_ROWS = [(rand_seq(120, i), i % 2) for i in range(40)]
FA = "".join(f">r{i}\n{rand_seq(150, i)}\n" for i in range(5))


def split_dir(rel: str, train: str, test: str | None = None) -> Callable[[Path], None]:
    fs = [w(f"{rel}/train.csv", train)]
    if test is not None:
        fs.append(w(f"{rel}/test.csv", test))
    return both(*fs)


def copy_model(rel: str, edit: Callable[[Path], None] | None = None) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        shutil.copytree(FIXTURES["m"], d / rel)
        if edit:
            edit(d / rel)

    return make


def copy_onnx(
    rel: str,
    edit_side: Callable[[dict], None] | None = None,
    edit_bytes: Callable[[bytes], bytes] | None = None,
    side_text: str | None = None,
) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        dst = d / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        data = Path(FIXTURES["onnx"]).read_bytes()
        dst.write_bytes(edit_bytes(data) if edit_bytes else data)
        side = json.loads(Path(FIXTURES["onnx"] + ".json").read_text())
        if edit_side:
            edit_side(side)
        Path(str(dst) + ".json").write_text(side_text if side_text is not None else json.dumps(side))

    return make


BERT = {
    "model_type": "bert",
    "architectures": ["BertForMaskedLM"],
    "hidden_size": 8,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 16,
    "vocab_size": 9,
    "max_position_embeddings": 16,
}
VOCAB = "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "AA", "AC", "AG", "AT"]) + "\n"


def hf_dir(
    rel: str, cfg, vocab: str | bytes = VOCAB, weights: bool = True, hidden: int = 8, **kw
) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        src = d / rel
        src.mkdir(parents=True)
        (src / "config.json").write_text(json.dumps(cfg))
        (src / "vocab.txt").write_bytes(vocab if isinstance(vocab, bytes) else vocab.encode())
        if weights:
            write_bert_weights(src, hidden, **kw)

    return make


def recipe(text: str, extra: Callable[[Path], None] | None = None) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        (d / "r.yaml").write_text(text.replace("{w}", str(d)).replace("{m}", FIXTURES["m"]))
        if extra:
            extra(d)

    return make


def rows_ok(n: int) -> Callable[[Path, str], bool]:
    return lambda d, out: (d / "p.tsv").exists() and (d / "p.tsv").read_text().count("\n") == n + 1


FIXTURES: dict[str, str] = {}


# ----------------------------------------------------------------------------------------------- cases
def cases() -> list[Case]:
    c: list[Case] = []
    ev = ["evaluate", "{onnx}", "--data"]
    tr = [
        "train",
        "--out",
        "{w}/model",
        "--epochs",
        "1",
        "--d-model",
        "16",
        "--n-layers",
        "1",
        "--n-heads",
        "2",
        "--ffn-dim",
        "32",
        "--data",
    ]
    # -- labelled tables
    c += [
        Case("table", "data folder missing", tr + ["{w}/nope"]),
        Case("table", "data is a file, not a folder", tr + ["{w}/t.csv"], w("t.csv", table(GOOD_ROWS))),
        Case("table", "folder without train.csv", tr + ["{w}/d"], w("d/dev.csv", table(GOOD_ROWS))),
        Case("table", "empty train.csv", tr + ["{w}/d"], w("d/train.csv", "")),
        Case("table", "header only", tr + ["{w}/d"], w("d/train.csv", "sequence,label\n")),
        Case("table", "no label column", tr + ["{w}/d"], w("d/train.csv", "sequence,class\nACGT,0\n")),
        Case("table", "non-integer label", tr + ["{w}/d"], w("d/train.csv", "sequence,label\nACGTACGT,yes\n")),
        Case("table", "negative label", tr + ["{w}/d"], w("d/train.csv", "sequence,label\nACGTACGT,-1\n")),
        Case("table", "labels {1, 2}", tr + ["{w}/d"], split_dir("d", table([(s, 1 + y) for s, y in GOOD_ROWS]))),
        Case(
            "table",
            "class only in test",
            tr + ["{w}/d"],
            split_dir("d", table(GOOD_ROWS), table([(s, i % 3) for i, (s, _) in enumerate(GOOD_ROWS)])),
        ),
        Case("table", "single class in train", tr + ["{w}/d"], split_dir("d", table([(s, 0) for s, _ in GOOD_ROWS]))),
        Case(
            "table",
            "letter Z in a sequence",
            tr + ["{w}/d"],
            w("d/train.csv", "sequence,label\nACGTACGT,0\nACGZACGT,1\n"),
        ),
        Case("table", "binary train.csv", tr + ["{w}/d"], w("d/train.csv", bytes(range(256)) * 4)),
        Case(
            "table",
            "truncated train.csv.gz",
            tr + ["{w}/d"],
            w("d/train.csv.gz", gzip.compress(table(GOOD_ROWS).encode())[:60]),
        ),
        Case(
            "table",
            "row with too few fields",
            tr + ["{w}/d"],
            w("d/train.csv", "sequence,label,extra\nACGTACGT,0,x\nACGT\n"),
        ),
        Case(
            "table", "duplicate sequence column", ev + ["{w}/t.csv"], w("t.csv", "sequence,label,sequence\nACGT,0,GG\n")
        ),
        Case(
            "table",
            "100 kb sequence, no --max-len",
            tr + ["{w}/d"],
            split_dir("d", table(GOOD_ROWS[:-1] + [("A" * 100_000, 1)])),
        ),
        Case(
            "table",
            "UTF-8 BOM before the header",
            ev + ["{w}/t.csv"],
            w("t.csv", "\ufeff" + table(GOOD_ROWS)),
            expect="ok",
        ),
        Case(
            "table",
            "quoted header",
            ev + ["{w}/t.csv"],
            w("t.csv", table(GOOD_ROWS, '"sequence","label"')),
            expect="ok",
        ),
        Case(
            "table",
            "labels beyond the model's classes",
            ev + ["{w}/t.csv"],
            w("t.csv", table([(s, 2) for s, _ in GOOD_ROWS])),
        ),
    ]
    # -- reads
    pr = ["predict", "{onnx}", "-o", "{w}/p.tsv", "-i"]
    c += [
        Case("reads", "input missing", pr + ["{w}/nope.fa"]),
        Case("reads", "input is a folder", pr + ["{w}"]),
        Case("reads", "FASTQ without '+' line", pr + ["{w}/r.fq"], w("r.fq", "@a\nACGT\nIIII\n")),
        Case("reads", "letter Z in a read", pr + ["{w}/r.fa"], w("r.fa", FA + ">bad\nACGZ\n")),
        Case(
            "reads",
            "letter Z, --on-bad-record skip",
            pr + ["{w}/r.fa", "--on-bad-record", "skip"],
            w("r.fa", FA + ">bad\nACGZ\n"),
            expect="ok",
            check=rows_ok(5),
        ),
        Case("reads", "empty record", pr + ["{w}/r.fa"], w("r.fa", FA + ">empty\n")),
        Case("reads", "truncated FASTA.gz", pr + ["{w}/r.fa.gz"], w("r.fa.gz", gzip.compress(FA.encode() * 50)[:200])),
        Case("reads", "binary file as FASTA", pr + ["{w}/r.fa"], w("r.fa", bytes(range(256)) * 8)),
        Case(
            "reads", "gzip FASTA on stdin", pr + ["-"], stdin=gzip.compress(FA.encode()), expect="ok", check=rows_ok(5)
        ),
        Case(
            "reads",
            "plain FASTQ on stdin",
            pr + ["-"],
            stdin="".join(f"@q{i}\n{'ACGT' * 40}\n+\n{'I' * 160}\n" for i in range(3)).encode(),
            expect="ok",
            check=rows_ok(3),
        ),
        Case(
            "reads",
            "-o onto a folder",
            ["predict", "{onnx}", "-i", "{w}/r.fa", "-o", "{w}/sub"],
            both(w("r.fa", FA), w("sub/x", "x")),
            protect=["sub/x"],
        ),
        Case(
            "reads",
            "-o below a file",
            ["predict", "{onnx}", "-i", "{w}/r.fa", "-o", "{w}/f/p.tsv"],
            both(w("r.fa", FA), w("f", "x")),
            protect=["f"],
        ),
        Case(
            "reads",
            "-o exists, no --force",
            pr + ["{w}/r.fa"],
            both(w("r.fa", FA), w("p.tsv", "mine")),
            code=2,
            protect=["p.tsv"],
        ),
        Case(
            "reads",
            "-o in a folder that does not exist",
            ["predict", "{onnx}", "-i", "{w}/r.fa", "-o", "{w}/new/p.tsv"],
            w("r.fa", FA),
            expect="ok",
            check=lambda d, out: (d / "new" / "p.tsv").read_text().count("\n") == 6,
        ),
        Case("reads", "--batch-size 0", pr + ["{w}/r.fa", "--batch-size", "0"], w("r.fa", FA), code=2),
    ]

    # -- model files
    def cut(n: int):
        return lambda b: b[:n]

    c += [
        Case("model", "model missing", ["evaluate", "{w}/nope", "--data", "{data}"]),
        Case(
            "model",
            "truncated model.safetensors",
            ["evaluate", "{w}/m", "--data", "{data}"],
            copy_model(
                "m", lambda p: (p / "model.safetensors").write_bytes((p / "model.safetensors").read_bytes()[:-9])
            ),
        ),
        Case(
            "model",
            "config.json not JSON",
            ["evaluate", "{w}/m", "--data", "{data}"],
            copy_model("m", lambda p: (p / "config.json").write_text("{")),
        ),
        Case(
            "model",
            "tokenizer.json holds null",
            ["evaluate", "{w}/m", "--data", "{data}"],
            copy_model("m", lambda p: (p / "tokenizer.json").write_text("null")),
        ),
        Case(
            "model",
            "manifest.json missing",
            ["evaluate", "{w}/m", "--data", "{data}"],
            copy_model("m", lambda p: (p / "manifest.json").unlink()),
        ),
        Case(
            "model",
            ".onnx without sidecar",
            ["evaluate", "{w}/x.onnx", "--data", "{data}"],
            lambda d: shutil.copy(FIXTURES["onnx"], d / "x.onnx"),
        ),
        Case(
            "model",
            ".onnx corrupted after export",
            ["evaluate", "{w}/x.onnx", "--data", "{data}"],
            copy_onnx("x.onnx", edit_bytes=cut(500)),
        ),
        Case(
            "model",
            ".onnx swapped for another file",
            ["evaluate", "{w}/x.onnx", "--data", "{data}"],
            copy_onnx("x.onnx", edit_bytes=lambda b: b + b"\x00"),
        ),
        Case(
            "model",
            "sidecar without num_classes",
            ["evaluate", "{w}/x.onnx", "--data", "{data}"],
            copy_onnx("x.onnx", edit_side=lambda s: s.pop("num_classes")),
        ),
        Case(
            "model",
            "sidecar tokenizer null",
            ["evaluate", "{w}/x.onnx", "--data", "{data}"],
            copy_onnx("x.onnx", edit_side=lambda s: s.__setitem__("tokenizer", None)),
        ),
        Case(
            "model",
            "sidecar not JSON",
            ["evaluate", "{w}/x.onnx", "--data", "{data}"],
            copy_onnx("x.onnx", side_text="not json"),
        ),
        Case(
            "model",
            "sidecar file_sha256 a number",
            ["evaluate", "{w}/x.onnx", "--data", "{data}"],
            copy_onnx("x.onnx", edit_side=lambda s: s.__setitem__("file_sha256", 7)),
        ),
        Case("model", "unknown model suffix", ["evaluate", "{w}/x.pt", "--data", "{data}"], w("x.pt", "x")),
        Case(
            "model",
            ".tflite that is text",
            ["evaluate", "{w}/x.tflite", "--data", "{data}"],
            copy_onnx("x.tflite", edit_bytes=lambda b: b"not a flatbuffer", edit_side=lambda s: s.pop("file_sha256")),
        ),
    ]
    # -- export
    ex = ["export", "{m}", "--out"]
    c += [
        Case("export", "wrong suffix for the format", ex + ["{w}/m.onnx", "--format", "tflite"], code=2),
        Case("export", "--out onto a folder", ex + ["{w}/d.onnx"], w("d.onnx/x", "x"), code=2, protect=["d.onnx/x"]),
        Case(
            "export", "--out exists, no --force", ex + ["{w}/m.onnx"], w("m.onnx", "mine"), code=2, protect=["m.onnx"]
        ),
        Case(
            "export",
            "only the sidecar exists",
            ex + ["{w}/m.onnx"],
            w("m.onnx.json", "{}"),
            code=2,
            protect=["m.onnx.json"],
        ),
        Case("export", "unknown --quant", ex + ["{w}/m.onnx", "--quant", "int4"], code=2),
        Case("export", "16x8 for ONNX", ex + ["{w}/m.onnx", "--quant", "16x8"], code=2),
        Case(
            "export",
            "--max-drop with unlabelled calib",
            ex + ["{w}/m.onnx", "--quant", "int8", "--calib", "{w}/r.fa", "--max-drop", "1"],
            w("r.fa", FA),
            code=2,
        ),
        Case("export", "--calib missing", ex + ["{w}/m.onnx", "--quant", "int8", "--calib", "{w}/nope.csv"]),
        Case("export", "model dir missing", ["export", "{w}/nope", "--out", "{w}/m.onnx"]),
        Case("export", "--out below a file", ex + ["{w}/f/m.onnx"], w("f", "x"), code=2, protect=["f"]),
    ]
    # -- prune / distill
    c += [
        Case("prune", "--target-params 1.5", ["prune", "{m}", "--out", "{w}/p", "--target-params", "1.5"], code=2),
        Case("prune", "unknown --criterion", ["prune", "{m}", "--out", "{w}/p", "--criterion", "l7"], code=2),
        Case(
            "prune",
            "config with unknown field",
            ["prune", "{m}", "--out", "{w}/p", "--config", "{w}/c.yaml"],
            w("c.yaml", "bogus: 1\n"),
            code=2,
        ),
        Case(
            "prune",
            "config that is binary",
            ["prune", "{m}", "--out", "{w}/p", "--config", "{w}/c.yaml"],
            w("c.yaml", b"\x00\xff" * 20),
            code=2,
        ),
        Case(
            "prune",
            "config that is a folder",
            ["prune", "{m}", "--out", "{w}/p", "--config", "{w}/c.yaml"],
            w("c.yaml/x", "x"),
            code=2,
        ),
        Case(
            "prune",
            "config YAML is a list",
            ["prune", "{m}", "--out", "{w}/p", "--config", "{w}/c.yaml"],
            w("c.yaml", "- 1\n- 2\n"),
            code=2,
        ),
        Case(
            "prune",
            "--out exists, no --force",
            ["prune", "{m}", "--out", "{w}/p", "--target-params", "0.8"],
            w("p/keep", "x"),
            code=2,
            protect=["p/keep"],
        ),
        Case(
            "distill",
            "student YAML with unknown field",
            ["distill", "--teacher", "{m}", "--student", "{w}/s.yaml", "--data", "{data}", "--out", "{w}/o"],
            w("s.yaml", "n_layers: 1\nwings: 2\n"),
            code=2,
        ),
        Case(
            "distill",
            "3-class data, 2-class teacher",
            ["distill", "--teacher", "{m}", "--student", "{w}/s.yaml", "--data", "{w}/d", "--out", "{w}/o"],
            both(
                w("s.yaml", "n_layers: 1\n"), split_dir("d", table([(s, i % 3) for i, (s, _) in enumerate(GOOD_ROWS)]))
            ),
        ),
        Case(
            "distill",
            "teacher missing",
            ["distill", "--teacher", "{w}/nope", "--student", "{w}/s.yaml", "--data", "{data}", "--out", "{w}/o"],
            w("s.yaml", "n_layers: 1\n"),
        ),
    ]
    # -- recipes
    base = "out: {w}/run\nsteps:\n  - type: load\n    path: {m}\n"
    rn = ["run", "{w}/r.yaml", "--dry-run"]
    c += [
        Case("recipe", "recipe missing", ["run", "{w}/nope.yaml"], code=2),
        Case("recipe", "recipe is binary", rn, w("r.yaml", b"\x00\x01\xfe" * 30), code=2),
        Case("recipe", "recipe is a YAML list", rn, w("r.yaml", "- type: train\n"), code=2),
        Case("recipe", "invalid YAML", rn, w("r.yaml", "steps: [\n"), code=2),
        Case("recipe", "unknown step type", rn, recipe(base + "  - type: quantize\n"), code=2),
        Case(
            "recipe",
            "student name escapes the run",
            ["run", "{w}/r.yaml"],
            recipe(
                base + "  - type: student\n    name: x/../../../victim\n    n_layers: 1\n", w("victim/keep", "precious")
            ),
            code=2,
            protect=["victim/keep"],
        ),
        Case("recipe", "two teacher steps", rn, recipe(base + "  - type: load\n    path: {m}\n"), code=2),
        Case("recipe", "unknown field", rn, recipe(base + "speed: fast\n"), code=2),
        Case("recipe", "data folder missing", rn, recipe("data: {w}/nope\n" + base), code=2),
        Case(
            "recipe",
            "load path missing",
            rn,
            recipe("out: {w}/run\nsteps:\n  - type: load\n    path: {w}/nope\n"),
            code=2,
        ),
        Case(
            "recipe",
            "out is a file",
            ["run", "{w}/r.yaml"],
            recipe(base.replace("{w}/run", "{w}/f"), w("f", "x")),
            code=2,
            protect=["f"],
        ),
        Case("recipe", "--set malformed key", rn + ["--set", "steps..path=x"], recipe(base), code=2),
        Case("recipe", "--set bad YAML value", rn + ["--set", "data=[1,"], recipe(base), code=2),
        Case("recipe", "--set missing step", rn + ["--set", "steps.9.epochs=1"], recipe(base), code=2),
        Case("recipe", "--set into a plain value", rn + ["--set", "out.x=1"], recipe(base), code=2),
        Case("recipe", "--set without '='", rn + ["--set", "data"], recipe(base), code=2),
        Case(
            "recipe",
            "prune target 0",
            rn + ["--set", "steps=[{type: load, path: x}, {type: prune, targets: [0]}]"],
            recipe(base),
            code=2,
        ),
    ]
    # -- devices, bench, bundle
    bn = ["bench", "{onnx}", "--data", "{data}", "--no-validity", "--runs", "5"]
    c += [
        Case("device", "unknown device name", bn + ["--device", "pi9"], code=2),
        Case("device", "device profile is a folder", bn + ["--device", "{w}/d.yaml"], w("d.yaml/x", "x"), code=2),
        Case(
            "device", "device profile is binary", bn + ["--device", "{w}/d.yaml"], w("d.yaml", b"\x00\xfe" * 30), code=2
        ),
        Case(
            "device",
            "unknown runtime in profile",
            bn + ["--device", "{w}/d.yaml"],
            w("d.yaml", "name: x\nruntimes: [tensorrt9]\n"),
            code=2,
        ),
        Case(
            "device",
            "unreachable ssh device",
            bn + ["--device", "{w}/d.yaml"],
            w(
                "d.yaml",
                "name: far\nruntimes: [onnxruntime]\nssh:\n  host: 127.0.0.1\n  port: 1\n  connect_timeout_s: 2\n",
            ),
        ),
        Case("device", "devices NAME unknown", ["devices", "pi9"], code=2),
        Case(
            "bench",
            "--json exists, no --force",
            bn + ["--json", "{w}/b.json"],
            w("b.json", "mine"),
            code=2,
            protect=["b.json"],
        ),
        Case(
            "bench",
            "--report exists, no --force",
            bn + ["--report", "{w}/rep"],
            w("rep/mine.md", "mine"),
            code=2,
            protect=["rep/mine.md"],
        ),
        Case("bench", "data missing", ["bench", "{onnx}", "--data", "{w}/nope.csv"]),
        Case("bundle", "a model folder, not a file", ["bundle", "{m}", "--out", "{w}/b"], code=2),
        Case(
            "bundle",
            "3-class data for a 2-class model",
            ["bundle", "{onnx}", "--out", "{w}/b", "--data", "{w}/t.csv"],
            w("t.csv", table([(s, i % 3) for i, (s, _) in enumerate(GOOD_ROWS)])),
        ),
        Case(
            "bundle",
            "--out exists, no --force",
            ["bundle", "{onnx}", "--out", "{w}/b"],
            w("b/keep", "x"),
            code=2,
            protect=["b/keep"],
        ),
        Case(
            "bundle",
            "device without the model's runtime",
            ["bundle", "{onnx}", "--out", "{w}/b", "--device", "{w}/d.yaml"],
            w("d.yaml", "name: x\nruntimes: [tflite]\n"),
            code=2,
        ),
    ]
    # -- Hugging Face folders
    im = ["import", "{w}/hf", "--out", "{w}/o"]
    c += [
        Case("hf", "a hub id", ["import", "InstaDeepAI/nucleotide-transformer-v2-50m", "--out", "{w}/o"], code=2),
        Case("hf", "folder without config.json", im, w("hf/vocab.txt", VOCAB)),
        Case("hf", "config.json is a list", im, hf_dir("hf", [BERT])),
        Case("hf", "no hidden_size", im, hf_dir("hf", {k: v for k, v in BERT.items() if k != "hidden_size"})),
        Case("hf", "heads do not divide the width", im, hf_dir("hf", {**BERT, "num_attention_heads": 3})),
        Case("hf", "binary vocab.txt", im, hf_dir("hf", BERT, vocab=b"\xff\xfe\x00" * 10)),
        Case("hf", "unsupported architecture (HyenaDNA)", im, hf_dir("hf", {**BERT, "model_type": "hyenadna"}), code=2),
        Case(
            "hf",
            "needs trust_remote_code",
            im,
            hf_dir("hf", {**BERT, "auto_map": {"AutoModel": "modeling_x.X"}}),
            code=2,
        ),
        Case("hf", "no weights", im, hf_dir("hf", BERT, weights=False)),
        Case("hf", "weights of another width", im, hf_dir("hf", BERT, hidden=4)),
        Case("hf", "max_position_embeddings null", im, hf_dir("hf", {**BERT, "max_position_embeddings": None})),
    ]
    # -- command line
    c += [
        Case("cli", "unknown option", ["train", "--bogus"], code=2),
        Case("cli", "missing argument", ["evaluate"], code=2),
        Case("cli", "unknown command", ["compress"], code=2),
        Case("cli", "--epochs not a number", tr[:3] + ["--epochs", "abc", "--data", "x"], code=2),
        Case("cli", "--train-device gpu", tr + ["synthetic:promoter:100:100", "--train-device", "gpu"], code=2),
        Case("cli", "synthetic spec malformed", tr + ["synthetic:promoter:x"], code=2),
    ]
    c += outside_cases(tr)
    return c


# ------------------------------------------------------------------ files from outside (issue 29's second campaign)
def edit_store(rel: str, edit: Callable[[Path, dict], None]) -> Callable[[Path], None]:
    """A copy of the fixture teacher-logit store, edited (``edit(folder, meta)``, meta written back after)."""

    def make(d: Path) -> None:
        s = d / rel
        shutil.copytree(FIXTURES["store"], s)
        meta = json.loads((s / "meta.json").read_text())
        edit(s, meta)
        (s / "meta.json").write_text(json.dumps(meta))

    return make


def _nan_shard(s: Path, meta: dict) -> None:
    from edgegen.io import sha256_file

    f = s / meta["shards"][0]["file"]
    a = np.load(f)
    a[3] = np.nan
    np.save(f, a)
    meta["shards"][0]["sha256"] = sha256_file(f)  # a writer who also fixes the hash


def _nan_model(p: Path) -> None:
    import safetensors.torch

    from edgegen.io import sha256_file

    st = safetensors.torch.load_file(str(p / "model.safetensors"))
    next(v for k, v in sorted(st.items()) if v.ndim == 2)[0, 0] = float("nan")
    safetensors.torch.save_file(st, str(p / "model.safetensors"))
    man = json.loads((p / "manifest.json").read_text())
    man["files"]["model.safetensors"] = sha256_file(p / "model.safetensors")
    (p / "manifest.json").write_text(json.dumps(man))


def bundle_edited(rel: str, edit: Callable[[Path], None]) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        shutil.copytree(FIXTURES["bundle"], d / rel)
        edit(d / rel)

    return make


def outside_cases(tr: list[str]) -> list[Case]:
    dl = [
        "distill",
        "--teacher",
        "{m}",
        "--student",
        "{w}/s.yaml",
        "--data",
        "{data}",
        "--out",
        "{w}/o",
        "--epochs",
        "1",
        "--teacher-logits",
        "{w}/s",
    ]
    student = w("s.yaml", "d_model: 16\nn_layers: 1\nn_heads: 2\nffn_dim: 32\n")
    bn = ["bench", "{w}/b/model.onnx", "--data", "{data}", "--no-validity", "--runs", "5"]
    prof = ["bench", "{onnx}", "--data", "{data}", "--no-validity", "--runs", "5", "--device", "{w}/d.yaml"]
    pr = ["predict", "{w}/x.onnx", "-o", "{w}/p.tsv", "-i", "{w}/r.fa"]
    ntv2 = ROOT.parent / "shared" / "fixtures" / "hf" / "nt_v2_tiny_cls"
    c = [
        # teacher-logit stores (H1, H2, M1, L1)
        Case(
            "store",
            "shard path ../outside.npy",
            dl,
            both(
                student,
                edit_store("s", lambda s, m: m["shards"][0].update(file="../outside.npy")),
                lambda d: shutil.copy(next(Path(FIXTURES["store"]).glob("*.npy")), d / "outside.npy"),
            ),
        ),
        Case(
            "store",
            "shard path /etc/hostname",
            dl,
            both(student, edit_store("s", lambda s, m: m["shards"][0].update(file="/etc/hostname"))),
        ),
        Case(
            "store",
            "a bit flipped in a shard",
            dl,
            both(
                student,
                edit_store(
                    "s",
                    lambda s, m: (s / m["shards"][0]["file"]).write_bytes(
                        (s / m["shards"][0]["file"]).read_bytes()[:-1] + b"\x01"
                    ),
                ),
            ),
        ),
        Case("store", "NaN logits, hash rewritten", dl, both(student, edit_store("s", _nan_shard))),
        Case(
            "store",
            "0-byte shard",
            dl,
            both(student, edit_store("s", lambda s, m: (s / m["shards"][0]["file"]).write_bytes(b""))),
            code=1,
        ),
        Case(
            "store", "num_classes 'two'", dl, both(student, edit_store("s", lambda s, m: m.update(num_classes="two")))
        ),
        Case(
            "store",
            "no shard hashes (an old store)",
            dl,
            both(student, edit_store("s", lambda s, m: [x.pop("sha256") for x in m["shards"]])),
        ),
        # NaN and infinity (H3)
        Case(
            "nan",
            "a NaN weight, manifest consistent",
            ["evaluate", "{w}/m", "--data", "{data}"],
            copy_model("m", _nan_model),
        ),
        Case(
            "nan",
            "predict with a NaN weight",
            ["predict", "{w}/m", "-i", "{w}/r.fa", "-o", "{w}/p.tsv"],
            both(copy_model("m", _nan_model), w("r.fa", FA)),
        ),
        Case("nan", "import a NaN weight", ["import", "{w}/hf", "--out", "{w}/o"], hf_dir("hf", BERT, nan=True)),
        # device profiles (H5)
        Case(
            "profile",
            "host -oProxyCommand=…",
            prof,
            w("d.yaml", "name: x\nssh:\n  host: '-oProxyCommand=touch MARKER'\n"),
            code=2,
            check=None,
        ),
        Case(
            "profile",
            "ssh option ProxyCommand",
            prof,
            w("d.yaml", "name: x\nssh:\n  host: pi\n  options: ['ProxyCommand=touch MARKER']\n"),
            code=2,
        ),
        Case(
            "profile",
            "user -oProxyCommand",
            prof,
            w("d.yaml", "name: x\nssh:\n  host: pi\n  user: '-oProxyCommand=x'\n"),
            code=2,
        ),
        Case(
            "profile",
            "python with a shell ';'",
            prof,
            w("d.yaml", "name: x\npython: 'python3; touch MARKER'\nssh:\n  host: pi\n"),
            code=2,
        ),
        Case("profile", "remote_dir /", prof, w("d.yaml", "name: x\nssh:\n  host: pi\n  remote_dir: /\n"), code=2),
        # bundles (H6, M5)
        Case(
            "bundle",
            "edited lib/edgegen/predict.py",
            bn,
            bundle_edited(
                "b",
                lambda b: (b / "lib/edgegen/predict.py").write_text(
                    (b / "lib/edgegen/predict.py").read_text() + "\nraise SystemExit(0)\n"
                ),
            ),
        ),
        Case(
            "bundle",
            "edited runner.py",
            bn,
            bundle_edited("b", lambda b: (b / "runner.py").write_text("import sys\nsys.exit(0)\n")),
        ),
        Case(
            "bundle",
            "edited inputs.npz",
            bn,
            bundle_edited("b", lambda b: (b / "inputs.npz").write_bytes((b / "inputs.npz").read_bytes()[:-4])),
        ),
        Case(
            "bundle",
            "unlisted lib/edgegen/sitecustomize.py",
            bn,
            bundle_edited("b", lambda b: (b / "lib/edgegen/sitecustomize.py").write_text("x = 1\n")),
        ),
        Case(
            "bundle",
            "manifest names ../outside",
            bn,
            bundle_edited(
                "b",
                lambda b: (b / "MANIFEST.json").write_text(
                    json.dumps({**json.loads((b / "MANIFEST.json").read_text()), "files": {"../outside": "0" * 64}})
                ),
            ),
        ),
        # Hugging Face folders (H7, M3, L2)
        Case(
            "hf",
            "config with fewer layers than the weights",
            ["import", "{w}/hf", "--out", "{w}/o"],
            hf_dir("hf", BERT, layers=2),
        ),
        Case(
            "hf",
            "a stray model_old.safetensors",
            ["import", "{w}/hf", "--out", "{w}/o"],
            both(
                hf_dir("hf", BERT),
                lambda d: shutil.copy(d / "hf" / "model.safetensors", d / "hf" / "model_old.safetensors"),
            ),
        ),
        Case(
            "hf",
            "vocabulary larger than the embedding",
            ["import", "{w}/hf", "--out", "{w}/o"],
            hf_dir("hf", BERT, vocab=VOCAB + "".join(f"{a}{b}\n" for a in "CGT" for b in "ACGT")),
        ),
        Case(
            "hf",
            "a pickle with code in pytorch_model.bin",
            ["import", "{w}/hf", "--out", "{w}/o"],
            both(
                hf_dir("hf", BERT, weights=False),
                w("hf/pytorch_model.bin", b"\x80\x04cposix\nsystem\n(S'touch PWNED'\ntR."),
            ),
            protect=[],
        ),
        # training window (H8), labels and YAML (L1), --set (L2)
        Case(
            "table",
            "one 16,000-nt row among 200-nt rows",
            tr + ["{w}/d", "--allow-chance"],
            split_dir("d", table(GOOD_ROWS * 3 + [("ACGT" * 4000, 1)])),
            expect="ok",
            check=lambda d, out: json.loads((d / "model" / "tokenizer.json").read_text())["max_len"] < 1000,
        ),
        Case(
            "table",
            "label 10^20",
            tr + ["{w}/d"],
            w("d/train.csv", "sequence,label\nACGTACGTAC,100000000000000000000\n"),
        ),
        Case(
            "recipe",
            "YAML nested 50,000 deep",
            ["run", "{w}/r.yaml"],
            w("r.yaml", "a: " + "[" * 50_000 + "]" * 50_000 + "\n"),
            code=2,
        ),
        Case(
            "recipe",
            "two prune targets of one percent",
            ["run", "{w}/r.yaml", "--dry-run"],
            recipe(
                "out: {w}/run\nsteps:\n  - type: load\n    path: {m}\n  - type: prune\n    targets: [0.8, 0.80, 0.8000001]\n"
            ),
            code=2,
        ),
        Case(
            "recipe",
            "a distill step with nothing to distil",
            ["run", "{w}/r.yaml", "--dry-run"],
            recipe("out: {w}/run\nsteps:\n  - type: load\n    path: {m}\n  - type: distill\n    epochs: 1\n"),
            code=2,
        ),
        # --force and sidecars (M4, M6)
        Case(
            "force",
            "predict -o its own input --force",
            ["predict", "{onnx}", "-i", "{w}/r.fa", "-o", "{w}/r.fa", "--force"],
            w("r.fa", FA),
            code=2,
            protect=["r.fa"],
        ),
        Case(
            "force",
            "evaluate --json onto the model's sidecar --force",
            ["evaluate", "{w}/x.onnx", "--data", "{data}", "--json", "{w}/x.onnx.json", "--force"],
            copy_onnx("x.onnx"),
            code=2,
            protect=["x.onnx.json"],
        ),
        Case(
            "force",
            "predict -o /dev/full --force",
            ["predict", "{onnx}", "-i", "{w}/r.fa", "-o", "/dev/full", "--force"],
            w("r.fa", FA),
            code=2,
        ),
        Case(
            "sidecar",
            "num_classes 3 on a 2-class model",
            pr,
            both(copy_onnx("x.onnx", edit_side=lambda s: s.update(num_classes=3)), w("r.fa", FA)),
        ),
        Case(
            "sidecar",
            "no file_sha256",
            pr,
            both(copy_onnx("x.onnx", edit_side=lambda s: s.pop("file_sha256")), w("r.fa", FA)),
        ),
        Case(
            "reads",
            "a table with only a sequence column",
            ["predict", "{onnx}", "-i", "{w}/t.csv", "-o", "{w}/p.tsv"],
            w("t.csv", "sequence\n" + "".join(f"{s}\n" for s, _ in GOOD_ROWS[:4])),
            expect="ok",
            check=rows_ok(4),
        ),
    ]
    if ntv2.is_dir():  # the published NT-v2 layout (../shared/fixtures), when it is beside the checkout

        def fewer_layers(d: Path) -> None:
            shutil.copytree(ntv2, d / "nt")
            for f in (d / "nt").iterdir():
                f.chmod(0o644)
            cfg = json.loads((d / "nt" / "config.json").read_text())
            (d / "nt" / "config.json").write_text(
                json.dumps({**cfg, "num_hidden_layers": cfg["num_hidden_layers"] - 1})
            )

        c.append(Case("hf", "NT-v2 config one layer short", ["import", "{w}/nt", "--out", "{w}/o"], fewer_layers))
    return c


# --------------------------------------------------------------------------------------------- running
def _fill(argv: list[str], d: Path) -> list[str]:
    return [
        a.replace("{w}", str(d))
        .replace("{m}", FIXTURES["m"])
        .replace("{onnx}", FIXTURES["onnx"])
        .replace("{data}", FIXTURES["data"])
        for a in argv
    ]


def _in_process(argv: list[str], stdin: bytes | None) -> tuple[int, str, str]:
    from edgegen.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BufferedReader(io.BytesIO(stdin)))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as e:  # never expected: main returns codes
                code = e.code if isinstance(e.code, int) else 1
                err.write("Traceback (SystemExit escaped main)\n")
            except BaseException as e:  # noqa: BLE001 - an escaped exception is a defect to count
                import traceback

                code = 1
                err.write("Traceback (most recent call last):\n" + "".join(traceback.format_exception(e)))
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


def _subprocess(argv: list[str], stdin: bytes | None) -> tuple[int, str, str]:
    r = subprocess.run([sys.executable, "-m", "edgegen.cli", *argv], input=stdin, capture_output=True)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def _snapshot(d: Path, rels: list[str]) -> dict:
    return {r: (d / r).read_bytes() for r in rels}


def _leftovers(d: Path) -> list[str]:
    return sorted(
        str(p.relative_to(d)) for p in d.rglob(".*") if ".tmp" in p.name or p.name.endswith((".old", ".lock"))
    )


def judge(case: Case, d: Path, code: int, out: str, err: str, before: dict) -> tuple[bool, str]:
    errs = [x for x in err.splitlines() if x.startswith("edgegen: error")]
    problems = []
    if "Traceback" in err:
        problems.append("traceback")
    if case.expect == "ok":
        if code != 0:
            problems.append(f"exit {code}")
        elif case.check and not case.check(d, out):
            problems.append("wrong output")
    else:
        want = (case.code,) if case.code else (1, 2)
        if code not in want:
            problems.append(f"exit {code}, expected {' or '.join(map(str, want))}")
        if len(errs) != 1:
            problems.append(f"{len(errs)} error lines")
        elif "unexpected " in errs[0] and "--debug" in errs[0]:
            problems.append("only the boundary's generic message")  # an exception no code path expected
    left = _leftovers(d)
    if left:
        problems.append(f"left {left[:2]}")
    changed = [r for r, b in before.items() if not (d / r).exists() or (d / r).read_bytes() != b]
    if changed:
        problems.append(f"changed {changed}")
    return not problems, "; ".join(problems)


def make_fixtures(work: Path) -> None:
    """A tiny model trained in seconds on a synthetic task, its fp32 ONNX export, the task's folder, a teacher-logit
    store of the model on it and a bundle of the export."""
    from edgegen.data.synthetic import write_task_dir
    from edgegen.export import export
    from edgegen.export.config import ExportConfig
    from edgegen.train import TrainConfig, train_teacher

    data = write_task_dir(work / "data", "promoter", n=1500, length=120, seed=0)
    m = work / "model"
    if not (m / "manifest.json").exists():
        train_teacher(
            data,
            m,
            TrainConfig(
                tokenizer="kmer_nonoverlap",
                k=3,
                d_model=32,
                n_layers=2,
                n_heads=4,
                ffn_dim=64,
                epochs=6,
                lr=2e-3,
                batch_size=32,
                allow_chance=True,
            ),
            show_progress=False,
            force=True,
        )
    onnx = work / "model.onnx"
    if not onnx.exists():
        export(m, onnx, ExportConfig(format="onnx", quant="none", verify_samples=64), calib=data)
    store = work / "store"
    if not (store / "meta.json").exists():
        from edgegen.distill import compute_teacher_logits

        compute_teacher_logits(m, data, store, show_progress=False, force=True)
    bundle = work / "bundle"
    if not (bundle / "MANIFEST.json").exists():
        from edgegen.bundle import bundle_model

        bundle_model(onnx, bundle, data=data / "test.csv", force=True)
    FIXTURES.update(m=str(m), onnx=str(onnx), data=str(data), store=str(store), bundle=str(bundle))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="folder for DATE-bad-inputs.json/.md (default: print only)")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp folder)")
    ap.add_argument("--only", default=None, help="run the cases whose 'category/name' matches this glob")
    ap.add_argument(
        "--subprocess", action="store_true", help="each case in a fresh process (slower; the console script's path)"
    )
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="edgegen-bad-inputs-"))
    work.mkdir(parents=True, exist_ok=True)
    make_fixtures(work)
    runner = _subprocess if args.subprocess else _in_process
    selected = [c for c in cases() if not args.only or fnmatch.fnmatch(f"{c.category}/{c.name}", args.only)]
    results = []
    t0 = time.perf_counter()
    for i, case in enumerate(selected):
        d = work / "cases" / f"{i:03d}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        if case.setup:
            case.setup(d)
        before = _snapshot(d, case.protect)
        argv_ = _fill(case.argv, d)
        cwd = os.getcwd()
        os.chdir(d)
        try:
            code, out, err = runner(argv_, case.stdin)
        finally:
            os.chdir(cwd)
        ok, why = judge(case, d, code, out, err, before)
        msg = next(
            (x for x in err.splitlines() if x.startswith("edgegen: error")),
            err.strip().splitlines()[-1] if err.strip() else "",
        )
        results.append(
            {
                "category": case.category,
                "case": case.name,
                "expect": case.expect,
                "exit": code,
                "handled": ok,
                "problem": why,
                "message": msg.replace(str(d), "<case>")[:300],
                "command": "edgegen "
                + " ".join(a.replace(str(d), "<case>").replace(str(work), "<work>") for a in argv_),
            }
        )
        print(f"{'ok  ' if ok else 'FAIL'} {case.category:8s} {case.name:42s} exit {code}  {why}", flush=True)
    handled = sum(r["handled"] for r in results)
    by_cat: dict[str, list[int]] = {}
    for r in results:
        by_cat.setdefault(r["category"], [0, 0])
        by_cat[r["category"]][0] += 1
        by_cat[r["category"]][1] += r["handled"]
    summary = {
        "cases": len(results),
        "handled": handled,
        "not_handled": len(results) - handled,
        "by_category": {k: {"cases": v[0], "handled": v[1]} for k, v in by_cat.items()},
        "mode": "subprocess" if args.subprocess else "in-process (edgegen.cli.main)",
        "seconds": time.perf_counter() - t0,
    }
    print(
        f"\n{summary['cases']} cases, {handled} handled, {summary['not_handled']} not handled ({summary['seconds']:.0f} s)"
    )
    if args.out:
        from edgegen.io import write_json

        stamp = time.strftime("%Y-%m-%d")
        write_json(
            args.out / f"{stamp}-bad-inputs.json",
            {"schema": "edgegen-bad-inputs/1", "summary": summary, "results": results},
        )
        lines = [
            f"# Bad-input campaign, {stamp}: {summary['cases']} cases, {handled} handled\n",
            "| category | case | exit | handled | message |",
            "|---|---|---|---|---|",
        ]
        for r in results:
            m = r["message"].replace("|", "\\|")
            lines.append(
                f"| {r['category']} | {r['case']} | {r['exit']} | {'yes' if r['handled'] else 'NO: ' + r['problem']} | {m} |"
            )
        (args.out / f"{stamp}-bad-inputs.md").write_text("\n".join(lines) + "\n")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if handled == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
