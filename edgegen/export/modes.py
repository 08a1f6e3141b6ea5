"""Graph modes exporters switch a model into (and restore): the explicit attention path, gathered positions, the
CLS-row-only last layer, additive masks, ONNX Runtime's fused attention, and int8 lookup tables."""

from __future__ import annotations

import torch
from torch import nn

from edgegen.layers import Attention
from edgegen.model import GenomicTransformer


class export_mode:
    """Context manager for exporters, restored after: the explicit softmax(QK^T)V path instead of
    fused SDPA; learned positions looked up by a Gather on runtime position ids instead of a
    constant slice (ORT and PT2E quantize Gather/embedding tables to int8; a constant added to the
    activations would stay float in the file). Options, both exact:

    - ``cls_shortcut``: with CLS pooling the last layer computes only the CLS row the classifier
      reads (the other rows' queries, attention, FFN and norms are never used), e.g. 1.8x faster
      int8 for a 2-layer model on 200 tokens;
    - ``additive_mask``: padding masked by adding a (B, 1, 1, T) bias of 0/-1e9 to the scores
      instead of a Where over (B, H, T, T) (~12% of that model's int8 latency). Only for graphs whose
      attention scores stay float: a statically quantized Add would spend its int8 range on -1e9.
    - ``ort_attention`` (ONNX only): each layer's attention core as ONNX Runtime's fused
      ``com.microsoft.MultiHeadAttention`` (rotary layers keep the explicit path); the file then
      needs ONNX Runtime (``ExportConfig.fused_attention``).
    """

    def __init__(
        self, model: nn.Module, cls_shortcut: bool = False, additive_mask: bool = False, ort_attention: bool = False
    ):
        self.mods = [m for m in model.modules() if isinstance(m, Attention)]
        self.tops = [m for m in model.modules() if isinstance(m, GenomicTransformer)]
        self.cls_shortcut = cls_shortcut
        self.additive_mask = additive_mask
        self.ort_attention = ort_attention

    def __enter__(self):
        self.saved = [(m.fused, m.ort_fused) for m in self.mods]
        self.saved_top = [(m.gather_positions, m.cls_only_last, m.additive_mask) for m in self.tops]
        for m in self.mods:
            m.fused = False
            m.ort_fused = self.ort_attention
        for m in self.tops:
            m.gather_positions = True
            m.cls_only_last = self.cls_shortcut
            m.additive_mask = self.additive_mask
        return self

    def __exit__(self, *exc):
        for m, (f, o) in zip(self.mods, self.saved):
            m.fused, m.ort_fused = f, o
        for m, (g, c, a) in zip(self.tops, self.saved_top):
            m.gather_positions, m.cls_only_last, m.additive_mask = g, c, a


class Int8Table(nn.Module):
    """A lookup table stored as symmetric int8 with one float scale per row; rows are dequantized
    after the lookup. Quantizers should leave its multiply alone (the scale is not an activation)."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        w = w.detach().float()
        s = (w.abs().amax(1, keepdim=True) / 127).clamp_min(1e-12)
        self.register_buffer("q", torch.round(w / s).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", s)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.q[ids].float() * self.scale[ids]


class int8_embedding_tables:
    """Context manager: the token-embedding and additive position tables as weight-only int8
    (one scale per row), dequantized after the lookup, restored after.

    For converters that keep every constant feeding a lookup in float32 (litert-torch folds a
    PT2E-quantized embedding weight back to float): here the lookup itself reads int8 rows, so
    the file stores int8 tables. Rows change by at most half a quantization step (0.4% of the
    row's largest value).
    """

    def __init__(self, model: "GenomicTransformer"):
        self.model = model

    def __enter__(self):
        m = self.model
        tables = {"embed": Int8Table(m.embed.weight)}
        if m.pos is not None:
            tables["pos"] = Int8Table(m.pos[0])
        elif m.config.positions == "sinusoidal":
            tables["pos"] = Int8Table(m.pos_table[0])
        self.saved = m.int8_tables
        m.int8_tables = nn.ModuleDict(tables)
        return self

    def __exit__(self, *exc):
        self.model.int8_tables = self.saved  # the name exporters used before positions were gathered
