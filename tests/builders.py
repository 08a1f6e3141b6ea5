"""Inputs the tests and the bad-input campaign build: small checkpoints in a published layout."""

from __future__ import annotations

from pathlib import Path


def write_bert_weights(folder: Path, hidden: int = 8, layers: int = 1, nan: bool = False) -> None:
    """A BERT checkpoint (vocab 9, 16 positions, FFN 16; one layer unless ``layers``) of zeros and ones, as HF names
    its tensors (``nan``: one NaN in the first query weight)."""
    import torch
    from safetensors.torch import save_file

    H = hidden
    t = {
        "bert.embeddings.word_embeddings.weight": torch.zeros(9, H),
        "bert.embeddings.position_embeddings.weight": torch.zeros(16, H),
        "bert.embeddings.token_type_embeddings.weight": torch.zeros(2, H),
        "bert.embeddings.LayerNorm.weight": torch.ones(H),
        "bert.embeddings.LayerNorm.bias": torch.zeros(H),
    }
    for i in range(layers):
        for name, shape in [
            ("attention.self.query", (H, H)),
            ("attention.self.key", (H, H)),
            ("attention.self.value", (H, H)),
            ("attention.output.dense", (H, H)),
            ("intermediate.dense", (16, H)),
            ("output.dense", (H, 16)),
        ]:
            t[f"bert.encoder.layer.{i}.{name}.weight"] = torch.zeros(shape)
            t[f"bert.encoder.layer.{i}.{name}.bias"] = torch.zeros(shape[0])
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[f"bert.encoder.layer.{i}.{ln}.weight"] = torch.ones(H)
            t[f"bert.encoder.layer.{i}.{ln}.bias"] = torch.zeros(H)
    if nan:
        t["bert.encoder.layer.0.attention.self.query.weight"][0, 0] = float("nan")
    save_file(t, str(folder / "model.safetensors"))
