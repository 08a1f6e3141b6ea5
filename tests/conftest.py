"""Shared fixtures: tiny models trained in seconds on synthetic data, and the
real datasets beside the checkout (../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EDGEGEN_SHARED_DATA", ROOT.parent / "shared" / "data"))


SHARED_FIXTURES = Path(os.environ.get("EDGEGEN_SHARED_FIXTURES", ROOT.parent / "shared" / "fixtures"))


def shared_path(base: Path, name: str, what: str) -> Path:
    """A path in ../shared; in CI its absence is a failure, elsewhere a skip."""
    p = base / name
    if not p.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{what} missing: {p}")
        pytest.skip(f"{what} not found at {p}")
    return p


def real_data(name: str) -> Path:
    """Path of a real dataset (``../shared/data/NAME``)."""
    return shared_path(SHARED_DATA, name, "real dataset")


@pytest.fixture(scope="session")
def torch_threads():
    import torch

    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def syn_dir(tmp_path_factory) -> Path:
    from edgegen.data.synthetic import write_task_dir

    return write_task_dir(tmp_path_factory.mktemp("syn") / "promoter", "promoter", n=1500, length=120, seed=0)


@pytest.fixture(scope="session")
def syn_splits(syn_dir):
    from edgegen.data import load_split_dir

    return load_split_dir(syn_dir)


TINY = dict(
    tokenizer="kmer_nonoverlap", k=3, d_model=32, n_layers=2, n_heads=4, ffn_dim=64, epochs=6, lr=2e-3, batch_size=32
)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, syn_dir, torch_threads) -> Path:
    """A 2-layer d32 teacher trained for a few seconds on the synthetic promoter task."""
    from edgegen.train import TrainConfig, train_teacher

    out = tmp_path_factory.mktemp("models") / "tiny"
    train_teacher(syn_dir, out, TrainConfig(**TINY), show_progress=False)
    return out


@pytest.fixture()
def rng():
    return np.random.default_rng(0)


REAL_TEACHER = dict(
    tokenizer="kmer_nonoverlap",
    k=3,
    d_model=64,
    n_layers=2,
    n_heads=4,
    ffn_dim=128,
    epochs=6,
    lr=1e-3,
    batch_size=64,
    seed=0,
)


@pytest.fixture(scope="session")
def real_splits():
    from edgegen.data import load_split_dir

    return load_split_dir(real_data("promoter_nontata_human"))


@pytest.fixture(scope="session")
def real_teacher(tmp_path_factory, torch_threads) -> dict:
    """A teacher trained on promoter_nontata_human (≈1-2 min on 2 cores)."""
    from edgegen.train import TrainConfig, train_teacher

    d = real_data("promoter_nontata_human")
    out = tmp_path_factory.mktemp("real") / "teacher"
    res = train_teacher(d, out, TrainConfig(**REAL_TEACHER), show_progress=False)
    res["dir"] = out
    return res
