import numpy as np
import pytest

from edgegen.alphabet import default_vocab
from edgegen.dna_tokenizer import Tokenizer
from edgegen.errors import ConfigError, ModelFileError


def test_char_tokens_case_and_padding():
    tok = Tokenizer(kind="char", max_len=6)
    ids = tok.encode(["acgTn", "ACGTNA"])
    v = tok.vocab
    assert ids.dtype == np.int32 and ids.shape == (2, 7)
    assert ids[0].tolist() == [v["[CLS]"], v["A"], v["C"], v["G"], v["T"], v["N"], v["[PAD]"]]
    assert ids[1, -1] == v["A"]


def test_overlapping_kmers_match_dnabert_definition():
    tok = Tokenizer(kind="kmer", k=3, max_len=8, add_sep=True)
    seq = "ACGTTGCA"
    ids = tok.encode([seq])[0]
    expect = [tok.vocab["[CLS]"]] + [tok.vocab[seq[i : i + 3]] for i in range(6)] + [tok.vocab["[SEP]"]]
    assert ids.tolist() == expect
    assert tok.seq_len == 8


def test_kmer_with_n_is_unk_and_short_sequence_padded():
    tok = Tokenizer(kind="kmer", k=3, max_len=8)
    ids = tok.encode(["ACNTA"])[0]
    unk, pad = tok.vocab["[UNK]"], tok.pad_id
    assert ids[1:4].tolist() == [unk, unk, unk]
    assert (ids[4:] == pad).all()


def test_nonoverlapping_kmers_with_single_letter_tail():
    tok = Tokenizer(kind="kmer_nonoverlap", k=3, max_len=8)
    ids = tok.encode(["ACGTTGCA"])[0]
    v = tok.vocab
    assert ids.tolist() == [v["[CLS]"], v["ACG"], v["TTG"], v["C"], v["A"]]


def test_center_crop_keeps_the_middle():
    tok = Tokenizer(kind="char", max_len=4, add_cls=False)
    ids = tok.encode(["AAACGTAA"])[0]  # middle 4: ACGT
    assert ids.tolist() == [tok.vocab[c] for c in "ACGT"]


def test_invalid_letter_raises():
    with pytest.raises(ValueError, match="'X'"):
        Tokenizer(kind="char", max_len=5).encode(["ACXGT"])


def test_json_round_trip(tmp_path):
    tok = Tokenizer(kind="kmer", k=4, max_len=50, add_sep=True)
    tok.save(tmp_path / "tokenizer.json")
    back = Tokenizer.load(tmp_path / "tokenizer.json")
    assert back.to_dict() == tok.to_dict()
    seqs = ["ACGT" * 12 + "NN"]
    assert (back.encode(seqs) == tok.encode(seqs)).all()


def test_bad_tokenizer_file_and_kind(tmp_path):
    (tmp_path / "t.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="t.json"):
        Tokenizer.load(tmp_path / "t.json")
    with pytest.raises(ConfigError):
        Tokenizer(kind="bpe")


def test_default_vocab_sizes():
    assert len(default_vocab("char", 1)) == 10
    assert len(default_vocab("kmer", 3)) == 5 + 64
    assert len(default_vocab("kmer_nonoverlap", 6)) == 5 + 4096 + 5
