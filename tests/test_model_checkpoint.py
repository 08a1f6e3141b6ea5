import json
import subprocess
import sys

import pytest
import torch

from edgegen.checkpoint import load_model, save_model
from edgegen.dna_tokenizer import Tokenizer
from edgegen.errors import ModelFileError, UsageError
from edgegen.export.modes import export_mode
from edgegen.model import GenomicTransformer, ModelConfig, count_params


def tiny_cfg(**kw):
    base = dict(vocab_size=10, max_positions=41, num_classes=3, d_model=32, n_layers=2, n_heads=4, ffn_dim=64)
    return ModelConfig(**{**base, **kw})


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rotary", "none"])
@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("rewrites", [False, True])
@pytest.mark.parametrize("merge", [1, 3])
def test_fused_and_explicit_attention_agree(positions, pooling, norm, rewrites, merge):
    """The exporters' graph (explicit attention, gathered positions and, with rewrites, a CLS-row-only
    last layer and an additive padding mask) computes what the training graph computes."""
    torch.manual_seed(0)
    m = GenomicTransformer(tiny_cfg(positions=positions, pooling=pooling, norm=norm, merge_tokens=merge)).eval()
    x = torch.randint(5, 10, (3, 41), dtype=torch.int32)
    x[1, 30:] = 0  # padding
    a = m(x)
    with export_mode(m, cls_shortcut=rewrites, additive_mask=rewrites):
        b = m(x)
    assert not m.cls_only_last and not m.additive_mask and all(blk.attn.fused for blk in m.blocks)  # restored
    assert a.shape == (3, 3)
    assert torch.allclose(a, b, atol=1e-5)
    if rewrites and pooling == "cls":  # the last block really ran on one row
        seen = {}
        h = m.blocks[-1].register_forward_hook(lambda mod, i, o: seen.update(shape=tuple(o[0].shape)))
        with export_mode(m, cls_shortcut=True):
            m(x)
        h.remove()
        assert seen["shape"] == (3, 1, 32)


@pytest.mark.parametrize("merge", [1, 3])
def test_padding_is_masked(merge):
    """What the PAD embedding holds cannot change the logits of a padded sequence (with merged tokens
    too, where the last real row holds a base and two pads)."""
    torch.manual_seed(0)
    m = GenomicTransformer(tiny_cfg(pooling="mean", positions="rotary", merge_tokens=merge)).eval()
    x = torch.randint(5, 10, (1, 41), dtype=torch.int32)
    x[0, 20:] = 0
    base = m(x)
    with torch.no_grad():
        m.embed.weight[0].add_(torch.randn(32) * 3)
    assert torch.allclose(base, m(x), atol=1e-5)
    with torch.no_grad():
        m.embed.weight[7].add_(torch.randn(32) * 3)  # a real token's embedding does matter
    assert not torch.allclose(base, m(x), atol=1e-3)


def test_config_validation_and_macs():
    with pytest.raises(ValueError, match="not divisible"):
        tiny_cfg(d_model=30)
    with pytest.raises(ValueError, match="layer_heads"):
        tiny_cfg(layer_heads=[1])
    c = tiny_cfg()
    t, d, f = 41, 32, 64
    assert c.macs() == 2 * (4 * t * d * d + 2 * t * t * d + 2 * t * d * f) + d * 3
    # CLS-row-only last layer: k, v on all rows; q, out, scores, context and FFN on one row
    last = 2 * t * d * d + 2 * d * d + 2 * t * d + 2 * d * f
    assert c.macs(cls_only_last=True) == (4 * t * d * d + 2 * t * t * d + 2 * t * d * f) + last + d * 3
    assert tiny_cfg(pooling="mean").macs(cls_only_last=True) == tiny_cfg(pooling="mean").macs()
    # merged tokens: 1 + ceil(40 / 3) = 15 rows, plus a per-slot weighting (3 x d) per merged row
    mc = tiny_cfg(merge_tokens=3)
    r = 15
    assert mc.rows(41) == r and tiny_cfg(merge_tokens=4).rows(41) == 11
    assert mc.macs() == 14 * 3 * d + 2 * (4 * r * d * d + 2 * r * r * d + 2 * r * d * f) + d * 3


def test_merged_tokens_shorten_the_encoder():
    """merge_tokens=s: the blocks see 1 + ceil((T-1)/s) rows; every token still reaches the logits."""
    torch.manual_seed(0)
    m = GenomicTransformer(tiny_cfg(merge_tokens=4)).eval()
    seen = {}
    h = m.blocks[0].register_forward_hook(lambda mod, i, o: seen.update(shape=tuple(o[0].shape)))
    x = torch.randint(5, 10, (2, 41), dtype=torch.int32)
    base = m(x)
    h.remove()
    assert seen["shape"] == (2, 11, 32)
    for pos in (1, 2, 3, 4, 40):  # each member of a merged group, and the last token
        y = x.clone()
        y[:, pos] = 5 if int(x[0, pos]) != 5 else 6
        assert not torch.allclose(base[0], m(y)[0], atol=1e-6)
    # per-slot weights and a bias; the position table has one row per encoder row (11), not per token (41)
    assert count_params(m) == count_params(GenomicTransformer(tiny_cfg())) + 4 * 32 + 32 - (41 - 11) * 32
    assert m.pos.shape == (1, 11, 32)


def test_save_load_round_trip_identical_logits(tmp_path):
    torch.manual_seed(1)
    m = GenomicTransformer(tiny_cfg(vocab_size=Tokenizer(kind="char", max_len=40).vocab_size)).eval()
    tok = Tokenizer(kind="char", max_len=40)
    save_model(m, tok, tmp_path / "m", metrics={"x": 1})
    back = load_model(tmp_path / "m")
    ids = torch.from_numpy(tok.encode(["ACGT" * 10, "GATTACA"]))
    assert torch.equal(m(ids), back.model(ids))
    man = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert man["params"] == count_params(m) and man["torch_version"] == torch.__version__
    assert set(man["files"]) == {"config.json", "model.safetensors", "tokenizer.json"}


def test_tampered_and_truncated_weights_are_refused(tmp_path):
    m = GenomicTransformer(tiny_cfg())
    tok = Tokenizer(kind="char", max_len=40)
    save_model(m, tok, tmp_path / "m")
    w = tmp_path / "m" / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-5] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="sha256 mismatch.*truncated or edited"):
        load_model(tmp_path / "m")
    w.write_bytes(bytes(data[:100]))
    with pytest.raises(ModelFileError, match="model.safetensors"):
        load_model(tmp_path / "m")
    with pytest.raises(ModelFileError, match="cannot read weights"):
        load_model(tmp_path / "m", verify=False)


def test_no_clobber_without_force(tmp_path):
    m = GenomicTransformer(tiny_cfg())
    tok = Tokenizer(kind="char", max_len=40)
    save_model(m, tok, tmp_path / "m")
    before = (tmp_path / "m" / "model.safetensors").read_bytes()
    with pytest.raises(UsageError, match="--force"):
        save_model(GenomicTransformer(tiny_cfg()), tok, tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == before
    save_model(GenomicTransformer(tiny_cfg()), tok, tmp_path / "m", force=True)
    assert (tmp_path / "m" / "model.safetensors").read_bytes() != before


def test_importing_edgegen_does_not_import_torch():
    code = (
        "import sys, edgegen, edgegen.cli, edgegen.data, edgegen.dna_tokenizer, edgegen.metrics; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_onnx_and_tflite_runners_do_not_import_torch():
    code = (
        "import sys; import edgegen.runtime.onnx_runner, edgegen.runtime.tflite_runner; "
        "print(any(m == 'torch' or m.startswith('torch.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_outputs_get_normal_permissions(tmp_path):
    import os
    import stat

    m = GenomicTransformer(tiny_cfg())
    save_model(m, Tokenizer(kind="char", max_len=40), tmp_path / "m")
    old = os.umask(0o022)
    os.umask(old)
    want = 0o644 & ~old
    assert stat.S_IMODE((tmp_path / "m" / "manifest.json").stat().st_mode) == want
    assert stat.S_IMODE((tmp_path / "m").stat().st_mode) == 0o755 & ~old
