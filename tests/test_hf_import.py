"""Tiny random transformers models saved to disk, imported, compared logit by logit."""

import itertools
import json

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from edgegen.checkpoint import load_model  # noqa: E402  (after the importorskip above)
from edgegen.errors import ModelFileError, UsageError  # noqa: E402
from edgegen.hf import import_hf  # noqa: E402


def dnabert_vocab(k=3):
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + ["".join(p) for p in itertools.product("ACGT", repeat=k)]


def nt_vocab(k=3):
    return (
        ["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>"]
        + ["".join(p) for p in itertools.product("ACGT", repeat=k)]
        + list("ACGTN")
    )


def save(model, vocab, d):
    model.save_pretrained(d)  # safetensors
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return d


def bert(tmp_path, head=True):
    vocab = dnabert_vocab(3)
    cfg = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=2,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    m = (transformers.BertForSequenceClassification if head else transformers.BertForMaskedLM)(cfg).eval()
    return m, save(m, vocab, tmp_path / ("bert" if head else "bert_mlm"))


def esm(tmp_path, positions, head=True):
    vocab = nt_vocab(3)
    cfg = transformers.EsmConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=80,
        num_labels=3,
        pad_token_id=1,
        mask_token_id=2,
        position_embedding_type=positions,
        token_dropout=True,
        emb_layer_norm_before=False,
        layer_norm_eps=1e-12,
    )
    torch.manual_seed(1)
    m = (transformers.EsmForSequenceClassification if head else transformers.EsmForMaskedLM)(cfg).eval()
    return m, save(m, vocab, tmp_path / f"esm_{positions}")


def random_dna(n, length, seed=0):
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]


def test_bert_logits_match(tmp_path):
    hf, d = bert(tmp_path)
    import_hf(d, tmp_path / "out", max_len=40)
    lm = load_model(tmp_path / "out")
    seqs = random_dna(6, 40) + ["ACGTN" * 6]
    ids = lm.tokenizer.encode(seqs)
    ours = lm.model(torch.from_numpy(ids)).detach()
    with torch.no_grad():
        theirs = hf(input_ids=torch.from_numpy(ids).long(), attention_mask=torch.from_numpy(ids != 0).long()).logits
    assert ids[0, 0] == 2 and ids[0, -1] == 3  # [CLS] ... [SEP] as DNABERT does
    assert (ours - theirs).abs().max() <= 1e-5


@pytest.mark.parametrize("positions", ["absolute", "rotary"])
def test_esm_logits_match(tmp_path, positions):
    hf, d = esm(tmp_path, positions)
    import_hf(d, tmp_path / "out", max_len=60)
    lm = load_model(tmp_path / "out")
    ids = lm.tokenizer.encode(random_dna(5, 60, seed=3) + ["ACGT" * 10])  # the last one is padded
    ours = lm.model(torch.from_numpy(ids)).detach()
    with torch.no_grad():
        theirs = hf(input_ids=torch.from_numpy(ids).long(), attention_mask=torch.from_numpy(ids != 1).long()).logits
    assert ours.shape == (6, 3)
    assert (ours - theirs).abs().max() <= 1e-5


def test_imported_model_prunes_and_exports_int8_tflite(tmp_path):
    pytest.importorskip("litert_torch")
    from edgegen.checkpoint import save_model
    from edgegen.data.synthetic import make_task
    from edgegen.export import export
    from edgegen.export.config import ExportConfig
    from edgegen.prune import PruneConfig, prune
    from edgegen.runtime import load_runner, run_batched

    hf, d = esm(tmp_path, "rotary")
    import_hf(d, tmp_path / "imp", max_len=60)
    lm = load_model(tmp_path / "imp")
    ids = lm.tokenizer.encode(random_dna(4, 60))
    p = prune(lm.model, PruneConfig(head_ratio=0.5, ffn_ratio=0.5), ids[:2])
    assert p.config.n_heads == 2
    save_model(p, lm.tokenizer, tmp_path / "pruned")
    calib = make_task("promoter", 200, 100, seed=2)
    q = export(
        tmp_path / "pruned",
        tmp_path / "p.int8.tflite",
        ExportConfig(format="tflite", quant="int8", calib_samples=64, per_channel=False),
        calib=calib,
    )
    got = run_batched(load_runner(q), ids)
    ref = p(torch.from_numpy(ids)).detach().numpy()
    assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.75


def test_refusals(tmp_path):
    with pytest.raises(UsageError, match="hub id.*never downloads"):
        import_hf("InstaDeepAI/nucleotide-transformer-500m", tmp_path / "x")
    _, d = bert(tmp_path)
    c = json.loads((d / "config.json").read_text())
    c["auto_map"] = {"AutoModel": "modeling_custom.Model"}
    (d / "config.json").write_text(json.dumps(c))
    with pytest.raises(UsageError, match="trust_remote_code"):
        import_hf(d, tmp_path / "x")
    c.pop("auto_map")
    c["model_type"] = "gpt2"
    (d / "config.json").write_text(json.dumps(c))
    with pytest.raises(UsageError, match="unsupported model_type 'gpt2'.*Supported: bert"):
        import_hf(d, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_bin_weights_load_with_weights_only(tmp_path):
    hf, d = bert(tmp_path)
    for f in d.glob("*.safetensors"):
        f.unlink()
    torch.save(hf.state_dict(), d / "pytorch_model.bin")
    import_hf(d, tmp_path / "out", max_len=30)
    # a pickle carrying code is refused, not executed
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (d / "pytorch_model.bin").write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(ModelFileError, match="weights_only=True"):
        import_hf(d, tmp_path / "out2")


@pytest.mark.slow
def test_finetune_imported_mlm_checkpoint_on_real_data(tmp_path):
    from edgegen.train import TrainConfig, train_teacher

    from .conftest import real_data

    _, d = bert(tmp_path, head=False)
    c = json.loads((d / "config.json").read_text())
    c["max_position_embeddings"] = 64
    import_hf(d, tmp_path / "imp", max_len=60)  # centre 60 nt of each 251 nt promoter window
    res = train_teacher(
        real_data("promoter_nontata_human"),
        tmp_path / "ft",
        TrainConfig(epochs=2, lr=1e-3, batch_size=64),
        init=tmp_path / "imp",
        show_progress=False,
    )
    assert res["test"]["accuracy"]["value"] > 0.6  # chance is 0.54: the new head and encoder learned
