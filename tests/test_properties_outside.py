"""Property tests over the readers of files that come from outside (issue 29): a teacher-logit store's meta.json and
shards, a bundle's manifest, a device profile's ssh fields, a Hugging Face folder's vocabulary. Whatever such a file
holds, it either loads into finite, in-bounds values confined to its folder, or gives one EdgegenError line naming
it, and a valid file still loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgegen.errors import EdgegenError
from tests.test_properties import JSONISH, SETTINGS, _tmpdir, one_line

NAMES = st.one_of(
    st.sampled_from(
        [
            "../x.npy",
            "/etc/hostname",
            "logits-00000.npy",
            "logits-00001.npy",
            "",
            ".",
            "a/../../b",
            "~/x",
            "lib/edgegen/io.py",
            "runner.py",
            "sub/../logits-00000.npy",
        ]
    ),
    st.text(max_size=12),
)


def _inside(path: str | Path, folder: Path) -> bool:
    return Path(path).resolve() == folder.resolve() or folder.resolve() in Path(path).resolve().parents


# ---------------------------------------------------------------------------------------------------- stores
@pytest.fixture(scope="module")
def store(tiny_model_dir, syn_dir, tmp_path_factory):
    import edgegen.teacher_logits as tl
    from edgegen.distill import compute_teacher_logits

    old, tl.SHARD_ROWS = tl.SHARD_ROWS, 1000  # several shards
    try:
        out = tmp_path_factory.mktemp("pstore") / "s"
        compute_teacher_logits(tiny_model_dir, syn_dir, out, show_progress=False)
    finally:
        tl.SHARD_ROWS = old
    return out


@SETTINGS
@given(
    field=st.lists(
        st.sampled_from(["format", "num_classes", "rows", "shards", "0", "1", "file", "sha256"]), min_size=1, max_size=3
    ),
    value=st.one_of(JSONISH, NAMES),
    delete=st.booleans(),
    shard=st.one_of(
        st.none(),
        hnp.arrays(
            st.sampled_from([np.float32, np.float64, np.int64]), hnp.array_shapes(min_dims=1, max_dims=3, max_side=1200)
        ),
    ),  # NaN, inf too
    rehash=st.booleans(),
    truncate=st.booleans(),
)
def test_a_store_opens_into_finite_logits_inside_its_folder_or_names_its_file(
    store, field, value, delete, shard, rehash, truncate
):
    from edgegen.io import sha256_file
    from edgegen.teacher_logits import LogitStore

    d = _tmpdir()
    try:
        s = d / "s"
        shutil.copytree(store, s)
        meta0 = json.loads((s / "meta.json").read_text())
        meta = json.loads(json.dumps(meta0))
        first = s / meta0["shards"][0]["file"]
        if shard is not None:
            np.save(first, shard)
        if truncate:
            first.write_bytes(first.read_bytes()[: max(0, first.stat().st_size - 7)])
        if rehash:  # a hostile writer who also fixes the recorded hash
            meta["shards"][0]["sha256"] = sha256_file(first)
        cur = meta
        for p in field[:-1]:
            key = int(p) if isinstance(cur, list) and p.isdigit() else p
            nxt = (
                cur[key]
                if (isinstance(cur, list) and isinstance(key, int) and key < len(cur))
                or (isinstance(cur, dict) and key in cur)
                else None
            )
            if not isinstance(nxt, (dict, list)):
                break
            cur = nxt
        else:
            if isinstance(cur, dict):
                if delete:
                    cur.pop(field[-1], None)
                else:
                    cur[field[-1]] = value
        (s / "meta.json").write_text(json.dumps(meta))
        try:
            st_ = LogitStore.open(
                s,
                teacher_sha=meta0["teacher_sha256"],
                tokenizer_sha=meta0["tokenizer_sha256"],
                ids_sha=meta0["ids_sha256"],
                rows=meta0["rows"],
            )
        except EdgegenError as e:
            one_line(e)
            assert e.path is not None and _inside(e.path, s), e  # names a file of the store
            return
        logits = st_[np.arange(len(st_))]
        assert logits.shape == (meta0["rows"], meta0["num_classes"]) and np.isfinite(logits).all()
        assert all(_inside(s / x["file"], s) for x in st_.meta["shards"])
    finally:
        shutil.rmtree(d)


def test_the_untouched_store_opens(store):
    from edgegen.teacher_logits import LogitStore

    meta = json.loads((store / "meta.json").read_text())
    s = LogitStore.open(
        store,
        teacher_sha=meta["teacher_sha256"],
        tokenizer_sha=meta["tokenizer_sha256"],
        ids_sha=meta["ids_sha256"],
        rows=meta["rows"],
    )
    assert len(s._shards) > 1 and np.isfinite(s[np.arange(len(s))]).all()


# ---------------------------------------------------------------------------------------------------- bundles
@pytest.fixture(scope="module")
def bundle(tiny_model_dir, syn_dir, tmp_path_factory):
    from edgegen.bundle import bundle_model
    from edgegen.export import export
    from edgegen.export.config import ExportConfig

    d = tmp_path_factory.mktemp("pbundle")
    m = export(
        tiny_model_dir, d / "m.onnx", ExportConfig(format="onnx", quant="none", verify_samples=32), calib=syn_dir
    )
    return bundle_model(m, d / "b", data=syn_dir / "test.csv")


@SETTINGS
@given(
    op=st.sampled_from(["add", "drop", "resha", "extra_file", "edit_file", "format"]),
    name=NAMES,
    sha=st.one_of(st.text(max_size=70), st.just("0" * 64), st.integers()),
    where=st.sampled_from(["", "lib/", "lib/edgegen/", "wheels/", "venv/"]),
)
def test_a_bundle_verifies_whole_or_names_the_file(bundle, op, name, sha, where):
    from edgegen.bundle_check import BundleError, verify_bundle

    d = _tmpdir()
    try:
        b = d / "b"
        shutil.copytree(bundle, b)
        man = json.loads((b / "MANIFEST.json").read_text())
        files = man["files"]
        listed = sorted(files)
        if op == "add":
            files[name] = sha
        elif op == "drop":
            files.pop(listed[hash(name) % len(listed)])
        elif op == "resha":
            files[listed[hash(name) % len(listed)]] = sha
        elif op == "format":
            man["format"] = name
        target = None
        if op == "extra_file" and name and "\x00" not in name and "/" not in name and name not in (".", ".."):
            target = b / where / f"x{name}.py"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("print('hello')\n")
        if op == "edit_file":
            f = b / listed[hash(name) % len(listed)]
            f.write_bytes(f.read_bytes() + b"#")
        (b / "MANIFEST.json").write_text(json.dumps(man))
        try:
            got = verify_bundle(str(b))
        except BundleError as e:
            assert "\n" not in str(e) and (_inside(e.path, b) or e.path == str(b / "MANIFEST.json")), e
            return
        # accepted: every listed file is inside and matches; an added file only under venv/ or not code
        from edgegen.io import sha256_file

        for n, h in got["files"].items():
            assert _inside(b / n, b) and sha256_file(b / n) == h
        assert op == "extra_file" and (target is None or where == "venv/"), (op, name, where)
    finally:
        shutil.rmtree(d)


def test_the_untouched_bundle_verifies(bundle):
    from edgegen.bundle_check import verify_bundle

    assert "runner.py" in verify_bundle(str(bundle))["files"]


# ---------------------------------------------------------------------------------------------------- profiles
TEXT = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), max_size=30)


@SETTINGS
@given(
    host=st.one_of(TEXT, st.sampled_from(["pi.local", "-oProxyCommand=x", "10.0.0.2", "a b", "pi;id", "::1"])),
    user=st.one_of(st.none(), TEXT),
    remote_dir=st.one_of(TEXT, st.just("/tmp/edgegen")),
    python=st.one_of(TEXT, st.just("python3")),
    option=st.one_of(st.none(), TEXT, st.just("ProxyCommand=x"), st.just("StrictHostKeyChecking=no")),
)
def test_profile_text_is_validated_or_refused_in_one_line(host, user, remote_dir, python, option):
    import shlex

    import yaml

    from edgegen.devices import load_device

    d = _tmpdir()
    try:
        f = d / "p.yaml"
        ssh = {
            "host": host,
            "remote_dir": remote_dir,
            **({"user": user} if user is not None else {}),
            **({"options": [option]} if option is not None else {}),
        }
        f.write_text(yaml.safe_dump({"name": "p", "python": python, "ssh": ssh}))
        try:
            p = load_device(f)
        except EdgegenError as e:
            one_line(e)
            return
        words = [
            p.ssh.host,
            *([p.ssh.user] if p.ssh.user else []),
            p.ssh.remote_dir,
            p.python_words()[0],
            *[o.split("=", 1)[1] for o in p.ssh.options],
        ]
        assert not any(w.startswith("-") for w in words)  # nothing a profile says reaches ssh as an option
        assert all(
            set(w) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./~+=:@%,-") for w in words
        )
        assert all(
            o.split("=")[0].lower() not in ("proxycommand", "localcommand", "knownhostscommand") for o in p.ssh.options
        )
        assert shlex.split(" ".join(shlex.quote(w) for w in p.python_words())) == p.python_words()
    finally:
        shutil.rmtree(d)


# ---------------------------------------------------------------------------------------------------- HF vocabularies
@SETTINGS
@given(
    lines=st.lists(
        st.one_of(
            st.text(max_size=8), st.sampled_from(["<pad>", "<unk>", "<cls>", "<mask>", "<eos>", "AAAAAA", "N", "A", ""])
        ),
        max_size=12,
    ),
    where=st.sampled_from(["start", "end", "replace"]),
)
def test_a_vocabulary_imports_into_in_bounds_ids_or_names_its_file(lines, where):
    from edgegen.checkpoint import load_model
    from edgegen.hf import import_hf
    from tests.conftest import SHARED_FIXTURES, shared_path

    d = _tmpdir()
    try:
        src = d / "hf"
        shutil.copytree(shared_path(SHARED_FIXTURES, "hf/nt_v2_tiny_cls", "HF fixture"), src)
        for f in src.iterdir():
            f.chmod(0o644)
        words = (src / "vocab.txt").read_text().splitlines()
        words = lines + words if where == "start" else words + lines if where == "end" else lines + words[len(lines) :]
        (src / "vocab.txt").write_text("\n".join(words) + "\n")
        try:
            import_hf(src, d / "out")
        except EdgegenError as e:
            one_line(e)
            assert not (d / "out").exists() and e.path is not None and _inside(e.path, src), e
            return
        lm = load_model(d / "out")
        ids = lm.tokenizer.encode(["ACGTACGTAAAAAANNNNNN" * 30, "A"])
        assert ids.min() >= 0 and ids.max() < lm.config.vocab_size
    finally:
        shutil.rmtree(d)
