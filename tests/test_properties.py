"""Property-based tests (hypothesis) of edgegen's parsers and validators.

The property is always the same: a result, or an ``EdgegenError`` with a one-line message; never another
exception, never a write outside the output, never a clobber. Bounded (``max_examples``, no deadline) so
the whole file takes a minute or two on 2 cores.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import string
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgegen.errors import EdgegenError
from tests.builders import write_bert_weights

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def one_line(e: EdgegenError) -> None:
    assert "\n" not in str(e).strip(), str(e)


def _tmpdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="edgegen-prop-"))


# text that looks like our inputs more often than random bytes do
CSV_LINES = st.lists(
    st.one_of(
        st.just("sequence,label"),
        st.just("label,sequence"),
        st.just('"sequence","label"'),
        st.just("\ufeffsequence,label"),
        st.just("sequence\tlabel"),
        st.just("sequence,label,sequence"),
        st.builds(
            lambda s, y: f"{s},{y}",
            st.text("ACGTNacgtnXZ -", max_size=30),
            st.one_of(st.integers(-2, 5), st.text(max_size=3)),
        ),
        st.text(max_size=40),
    ),
    max_size=12,
)


@SETTINGS
@given(lines=CSV_LINES, gz=st.booleans(), raw=st.binary(max_size=64), use_raw=st.booleans())
def test_tables_parse_or_raise_edgegen_errors(lines, gz, raw, use_raw):
    from edgegen.data.readers import read_labelled

    d = _tmpdir()
    try:
        data = raw if use_raw else "\n".join(lines).encode("utf-8", "surrogatepass")
        f = d / ("t.csv.gz" if gz else "t.csv")
        f.write_bytes(gzip.compress(data) if gz else data)
        try:
            ds = read_labelled(f)
        except EdgegenError as e:
            one_line(e)
            return
        assert len(ds.sequences) == len(ds.labels) > 0
        assert all(set(s) <= set("ACGTN") for s in ds.sequences) and (ds.labels >= 0).all()
    finally:
        shutil.rmtree(d)


VALID_ROWS = st.lists(
    st.tuples(st.text("ACGTNacgtn", min_size=1, max_size=30), st.integers(0, 4)), min_size=1, max_size=12
)


@SETTINGS
@given(rows=VALID_ROWS, gz=st.booleans(), tab=st.booleans())
def test_valid_tables_load_exactly(rows, gz, tab):
    """The other side of the property above (which every refusal would pass): a well-formed table loads, whole."""
    from edgegen.data.readers import read_labelled

    d = _tmpdir()
    try:
        sep = "\t" if tab else ","
        text = "\n".join([f"sequence{sep}label"] + [f"{s}{sep}{y}" for s, y in rows]) + "\n"
        f = d / ("t.tsv" if tab else "t.csv")
        f = f.with_name(f.name + ".gz") if gz else f
        f.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
        ds = read_labelled(f)
        assert list(ds.sequences) == [s.upper() for s, _ in rows]
        assert ds.labels.tolist() == [y for _, y in rows]
    finally:
        shutil.rmtree(d)


READ_TEXT = st.lists(
    st.one_of(
        st.builds(
            lambda n, s: f">{n}\n{s}",
            st.text(string.ascii_letters + " ", max_size=8),
            st.text("ACGTNacgtX\n", max_size=40),
        ),
        st.builds(
            lambda n, s, q: f"@{n}\n{s}\n+\n{q}",
            st.text(string.ascii_letters, max_size=6),
            st.text("ACGTN", max_size=20),
            st.text("I#!", max_size=20),
        ),
        st.text(max_size=30),
    ),
    max_size=8,
)


@SETTINGS
@given(records=READ_TEXT, gz=st.booleans(), on_bad=st.sampled_from(["fail", "skip"]))
def test_fasta_fastq_stream_or_raise_edgegen_errors(records, gz, on_bad):
    from edgegen.data.reads import iter_reads

    d = _tmpdir()
    try:
        text = "\n".join(records).encode("utf-8", "replace")
        f = d / ("r.fq.gz" if gz else "r.fa")
        f.write_bytes(gzip.compress(text) if gz else text)
        try:
            reads = list(iter_reads(f, on_bad_record=on_bad))
        except EdgegenError as e:
            one_line(e)
            return
        assert all(r.sequence and set(r.sequence) <= set("ACGTN") for r in reads)
    finally:
        shutil.rmtree(d)


VALID_READS = st.lists(
    st.tuples(
        st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=8),
        st.text("ACGTN", min_size=1, max_size=60),
    ),
    min_size=1,
    max_size=8,
)


@SETTINGS
@given(reads=VALID_READS, fastq=st.booleans(), gz=st.booleans(), wrap=st.integers(5, 80), dnaio=st.booleans())
def test_valid_fasta_fastq_read_exactly(reads, fastq, gz, wrap, dnaio):
    """A well-formed FASTA (wrapped lines too) or FASTQ yields every read, named and whole: with dnaio, and with the
    standard-library reader a device without dnaio uses."""
    from edgegen.data.reads import iter_reads

    import_dnaio = None if dnaio else _no_dnaio()

    d = _tmpdir()
    try:
        if fastq:
            text = "".join(f"@{n}\n{s}\n+\n{'I' * len(s)}\n" for n, s in reads)
        else:
            text = "".join(
                f">{n}\n" + "".join(s[i : i + wrap] + "\n" for i in range(0, len(s), wrap)) for n, s in reads
            )
        f = d / (("r.fq" if fastq else "r.fa") + (".gz" if gz else ""))
        f.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
        got = list(iter_reads(f))
        assert [(r.id, r.sequence) for r in got] == reads
    finally:
        shutil.rmtree(d)
        if import_dnaio is not None:
            import_dnaio.undo()


def _no_dnaio():
    """dnaio made unimportable (as on an arm64 device, which has no wheel of it), until ``.undo()``."""
    from _pytest.monkeypatch import MonkeyPatch

    mp = MonkeyPatch()
    mp.setitem(sys.modules, "dnaio", None)
    return mp


@SETTINGS
@given(records=READ_TEXT, gz=st.booleans(), on_bad=st.sampled_from(["fail", "skip"]))
def test_the_stdlib_reader_agrees_with_dnaio(records, gz, on_bad):
    """On any text: the same reads, or both a one-line DataError."""
    from edgegen.data.reads import iter_reads

    d = _tmpdir()
    try:
        text = "\n".join(records).encode("utf-8", "replace")
        f = d / ("r.fq.gz" if gz else "r.fa")
        f.write_bytes(gzip.compress(text) if gz else text)
        out = []
        for use_dnaio in (True, False):
            mp = None if use_dnaio else _no_dnaio()
            try:
                out.append([(r.id, r.sequence) for r in iter_reads(f, on_bad_record=on_bad)])
            except EdgegenError as e:
                one_line(e)
                out.append("error")
            finally:
                if mp is not None:
                    mp.undo()
        assert out[0] == out[1], out
    finally:
        shutil.rmtree(d)


@SETTINGS
@given(records=READ_TEXT, gz=st.booleans())
def test_reads_from_stdin_plain_or_gzip(records, gz, monkeypatch):
    from edgegen.data.reads import iter_reads

    text = "\n".join(records).encode("utf-8", "replace")
    payload = gzip.compress(text) if gz else text
    fake = io.TextIOWrapper(io.BufferedReader(io.BytesIO(payload)))
    monkeypatch.setattr(sys, "stdin", fake)
    try:
        from_stdin = [(r.id, r.sequence) for r in iter_reads("-", on_bad_record="skip")]
    except EdgegenError as e:
        one_line(e)
        return
    d = _tmpdir()
    try:
        (d / "r.fa").write_bytes(text)
        try:
            from_file = [(r.id, r.sequence) for r in iter_reads(d / "r.fa", on_bad_record="skip")]
        except EdgegenError:
            return
        assert from_stdin == from_file  # gzip or not, stdin reads what the file holds
    finally:
        shutil.rmtree(d)


TOKENIZERS = st.builds(
    lambda kind, k, n: (kind, k, n),
    st.sampled_from(["char", "kmer", "kmer_nonoverlap"]),
    st.integers(1, 6),
    st.integers(6, 60),
)


@SETTINGS
@given(spec=TOKENIZERS, seqs=st.lists(st.text("ACGTacgt", min_size=0, max_size=80), min_size=1, max_size=6))
def test_tokenizers_round_trip_every_base(spec, seqs):
    from edgegen.dna_tokenizer import Tokenizer

    kind, k, n = spec
    if n < k:
        return
    tok = Tokenizer(kind=kind, k=k, max_len=n)
    ids = tok.encode(seqs)
    assert ids.shape == (len(seqs), tok.seq_len) and ids.dtype == np.int32
    inv = {i: t for t, i in tok.vocab.items()}
    for s, row in zip(seqs, ids):
        s = s.upper()
        if len(s) > n:
            start = (len(s) - n) // 2
            s = s[start : start + n]
        toks = [inv[int(i)] for i in row[1:] if int(i) != tok.pad_id]  # row[0] is CLS
        if tok.kind == "char" or tok.k == 1:
            back = "".join(toks)
        elif tok.kind == "kmer_nonoverlap":
            back = "".join(toks)
            room = tok.body_len - len(s) // tok.k  # tokens left for the trailing single bases of a short sequence
            if len(s) % tok.k > room:
                s = s[: len(s) - (len(s) % tok.k - room)]
        else:
            back = "".join(t[0] for t in toks) + (toks[-1][1:] if toks else "")
            if len(s) < tok.k:
                back = ""  # a sequence shorter than k has no full k-mer
                s = ""
        assert back == s, (kind, k, n, s, toks)


@SETTINGS
@given(seq=st.text(min_size=1, max_size=30))
def test_tokenizers_take_every_letter(seq):
    from edgegen.dna_tokenizer import Tokenizer

    for kind in ("char", "kmer_nonoverlap"):
        tok = Tokenizer(kind=kind, k=3, max_len=32)
        try:
            ids = tok.encode([seq])
        except EdgegenError as e:
            assert set(seq.upper()) - set("ACGTN"), seq  # only letters outside ACGTN are refused
            one_line(e)
            continue
        assert set(seq.upper()) <= set("ACGTN") and ids.shape == (1, tok.seq_len)


JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=False), st.text(max_size=8)),
    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=8), c, max_size=3)),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory, tiny_model_dir, syn_splits):
    from edgegen.export import export
    from edgegen.export.config import ExportConfig

    out = tmp_path_factory.mktemp("prop") / "m.onnx"
    export(tiny_model_dir, out, ExportConfig(format="onnx", quant="none", verify_samples=32), calib=syn_splits["dev"])
    return out


@SETTINGS
@given(
    path=st.lists(
        st.sampled_from(
            [
                "input",
                "shape",
                "tokenizer",
                "vocab",
                "k",
                "max_len",
                "kind",
                "num_classes",
                "format",
                "file_sha256",
                "0",
                "1",
            ]
        ),
        min_size=1,
        max_size=3,
    ),
    value=JSONISH,
    delete=st.booleans(),
)
def test_sidecars_load_or_raise_model_file_errors(tiny_onnx, path, value, delete):
    from edgegen.runtime import load_runner

    d = _tmpdir()
    try:
        m = d / "m.onnx"
        shutil.copy(tiny_onnx, m)
        side = json.loads(Path(str(tiny_onnx) + ".json").read_text())
        cur = side
        for p in path[:-1]:
            nxt = cur.get(p) if isinstance(cur, dict) else None
            if not isinstance(nxt, dict):
                break
            cur = nxt
        else:
            if isinstance(cur, dict):
                if delete:
                    cur.pop(path[-1], None)
                else:
                    cur[path[-1]] = value
        Path(str(m) + ".json").write_text(json.dumps(side))
        try:
            r = load_runner(m)
        except EdgegenError as e:
            one_line(e)
            return
        r(np.full((1, r.input_spec["shape"][1]), 5, dtype=np.int32))
    finally:
        shutil.rmtree(d)


@SETTINGS
@given(
    field=st.sampled_from(["name", "runtimes", "threads", "ssh", "python", "bench", "tflite_quant", "bogus"]),
    value=JSONISH,
)
def test_device_profiles_validate_or_raise_config_errors(field, value):
    import yaml

    from edgegen.devices import load_device

    d = _tmpdir()
    try:
        f = d / "p.yaml"
        f.write_text(yaml.safe_dump({"name": "x", field: value}))
        try:
            p = load_device(f)
        except EdgegenError as e:
            one_line(e)
            return
        # accepted: the profile holds what the file said, in the types the fields declare
        assert p.model_dump().get(field) == value or field in ("bench", "ssh") or value is None
        assert (
            isinstance(p.runtimes, list) and p.runtimes and all(isinstance(t, int) and t >= 1 for t in p.threads or [])
        )
    finally:
        shutil.rmtree(d)


@pytest.mark.parametrize(
    "field,value",
    [
        ("threads", [1, 2]),
        ("runtimes", ["tflite"]),
        ("python", "python3.11"),
        ("tflite_quant", "int8-full"),
        ("ssh", {"host": "pi.local", "user": "lab", "port": 2222}),
        ("bench", {"runs": 20}),
    ],
)
def test_valid_device_profile_fields_load(field, value, tmp_path):
    """The property above would hold if every profile were refused: valid values load, as written."""
    import yaml

    from edgegen.devices import load_device

    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({"name": "x", field: value}))
    got = load_device(f).model_dump()[field]
    assert got == value or all(got[k] == v for k, v in value.items())


SET_KEYS = st.lists(
    st.sampled_from(
        ["steps", "0", "1", "9", "x", "", "name", "out", "data", "targets", "epochs", "type", "path", "-1"]
    ),
    min_size=1,
    max_size=4,
).map(".".join)


@SETTINGS
@given(
    key=SET_KEYS,
    value=st.one_of(st.text(max_size=12), st.just("[1, 2"), st.just("{a: 1}"), st.just("../../x"), st.just("0.5")),
    name=st.text(max_size=20),
)
def test_recipes_and_overrides_validate_and_never_escape(tiny_model_dir, key, value, name):
    from edgegen.recipe import load_recipe, plan

    d = _tmpdir()
    try:
        run_dir = d / "run"
        raw = {
            "out": str(run_dir),
            "steps": [
                {"type": "load", "path": str(tiny_model_dir)},
                {"type": "prune", "targets": [0.5]},
                {"type": "student", "name": name, "n_layers": 1},
            ],
        }
        try:
            r = load_recipe(raw=raw, overrides=[f"{key}={value}"])
        except EdgegenError as e:
            one_line(e)
            return
        for stage in plan(r):  # every stage folder of a valid recipe stays inside its run folder
            assert (Path(r.out) / stage.name).resolve().parent == Path(r.out).resolve()
        assert not run_dir.exists()  # loading and planning write nothing
    finally:
        shutil.rmtree(d)


@SETTINGS
@given(
    key=st.sampled_from(
        [
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "vocab_size",
            "model_type",
            "architectures",
            "max_position_embeddings",
            "hidden_act",
            "position_embedding_type",
            "pad_token_id",
            "layer_norm_eps",
        ]
    ),
    value=JSONISH,
)
def test_hugging_face_configs_import_or_raise(key, value):
    from edgegen.hf import import_hf

    d = _tmpdir()
    try:
        src = d / "hf"
        src.mkdir()
        cfg = {
            "model_type": "bert",
            "architectures": ["BertForMaskedLM"],
            "hidden_size": 8,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 16,
            "vocab_size": 9,
            "max_position_embeddings": 16,
        }
        cfg[key] = value
        (src / "config.json").write_text(json.dumps(cfg))
        (src / "vocab.txt").write_text(
            "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "AA", "AC", "AG", "AT"]) + "\n"
        )
        write_bert_weights(src, hidden=8)
        try:
            import_hf(src, d / "out")
        except EdgegenError as e:
            one_line(e)
            assert not (d / "out").exists()
            return
        assert (d / "out" / "model.safetensors").exists()
        assert sorted(p.name for p in d.iterdir()) == ["hf", "out"]  # nothing else written
    finally:
        shutil.rmtree(d)
