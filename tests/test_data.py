import gzip

import numpy as np
import pytest

from edgegen.data import load_split_dir, read_labelled
from edgegen.data.checks import check_lengths, data_report
from edgegen.data.reads import ReadStats, iter_reads
from edgegen.data.synthetic import make_task
from edgegen.errors import DataError

from .conftest import real_data


def test_reads_csv_tsv_and_gzip(tmp_path):
    (tmp_path / "a.csv").write_text("sequence,label\nacgt,0\nACGN,1\n")
    (tmp_path / "b.tsv").write_text("label\tsequence\n1\tAAAA\n")
    with gzip.open(tmp_path / "c.csv.gz", "wt") as fh:
        fh.write("sequence,label\nACGT,1\n")
    a = read_labelled(tmp_path / "a.csv")
    assert a.sequences == ["ACGT", "ACGN"] and a.labels.tolist() == [0, 1]
    assert read_labelled(tmp_path / "b.tsv").sequences == ["AAAA"]
    assert read_labelled(tmp_path / "c.csv.gz").labels.tolist() == [1]


@pytest.mark.parametrize(
    "content,match",
    [
        ("", "empty"),
        ("sequence,label\n", "no records"),
        ("seq,label\nACGT,0\n", "missing column 'sequence'"),
        ("sequence,label\nACGT,0\nACXT,1\n", r":3: invalid character 'X' at position 3"),
        ("sequence,label\nACGT,promoter\n", r":2: label 'promoter' is not an integer"),
        ("sequence,label\nACGT,-1\n", "unknown label -1"),
    ],
)
def test_bad_tables_name_file_and_line(tmp_path, content, match):
    f = tmp_path / "bad.csv"
    f.write_text(content)
    with pytest.raises(DataError, match=match) as e:
        read_labelled(f)
    assert "bad.csv" in str(e.value)


def test_unknown_label_for_model_and_min_len(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("sequence,label\nACGT,3\n")
    with pytest.raises(DataError, match="unknown label 3"):
        read_labelled(f, num_classes=2)
    with pytest.raises(DataError, match="shorter than the minimum 10"):
        read_labelled(f, min_len=10)


def test_missing_path_and_missing_split(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_labelled(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="no train.csv"):
        load_split_dir(tmp_path)


def test_fasta_fastq_streaming_and_bad_records(tmp_path):
    fa = tmp_path / "r.fa"
    fa.write_text(">r1 desc\nacgt\nAC\n>r2\nACXT\n>r3\nNNAC\n")
    stats = ReadStats()
    reads = list(iter_reads(fa, on_bad_record="skip", stats=stats))
    assert [(r.id, r.sequence) for r in reads] == [("r1", "ACGTAC"), ("r3", "NNAC")]
    assert stats.bad == 1 and stats.bad_ids == ["r2"]
    with pytest.raises(DataError, match=r"record 2 \('r2'\): invalid character 'X'"):
        list(iter_reads(fa))
    fq = tmp_path / "r.fastq.gz"
    with gzip.open(fq, "wt") as fh:
        fh.write("@q1\nACGT\n+\nIIII\n@q2\nGG\n+\nII\n")
    assert [r.sequence for r in iter_reads(fq)] == ["ACGT", "GG"]


def test_malformed_and_truncated_fastq(tmp_path):
    bad = tmp_path / "bad.fastq"
    bad.write_text("@q1\nACGT\n+\nIII\n")
    with pytest.raises(DataError, match="bad.fastq"):
        list(iter_reads(bad))
    data = gzip.compress(b"@q1\nACGT\n+\nIIII\n" * 2000)
    trunc = tmp_path / "t.fastq.gz"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="t.fastq.gz"):
        list(iter_reads(trunc))


def test_length_difference_between_classes_is_loud(tmp_path, caplog):
    f = tmp_path / "len.csv"
    f.write_text("sequence,label\n" + "".join(f"{'A' * 30},1\n{'C' * 28},0\n" for _ in range(5)))
    msg = check_lengths(read_labelled(f))
    assert msg and "lengths differ between classes" in msg and "28-28" in msg and "30-30" in msg
    same = make_task("promoter", 50, 100)
    assert check_lengths(same) is None


def test_synthetic_is_deterministic_and_balanced():
    a, b = make_task("splice", 300, 120, seed=3), make_task("splice", 300, 120, seed=3)
    assert a.sequences == b.sequences and (a.labels == b.labels).all()
    assert set(np.unique(a.labels)) == {0, 1, 2}
    assert {len(s) for s in a.sequences} == {120}
    assert make_task("splice", 300, 120, seed=4).sequences != a.sequences


def test_data_report_finds_leakage_on_real_data():
    d = real_data("promoter_core_human")
    splits = load_split_dir(d)
    rep = data_report(splits)
    assert rep["splits"]["train"]["n"] == 47356
    # SOURCE.md documents duplicates across the official splits of this set
    assert rep["exact_overlap_train_test"] > 0
    assert any("leakage" in w for w in rep["warnings"])
