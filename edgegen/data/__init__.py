"""Sequence data: labelled CSV/TSV, FASTA/FASTQ, synthetic tasks and data checks."""

from edgegen.data.readers import (
    SequenceSet,
    iter_reads,
    load_split_dir,
    read_labelled,
    validate_sequence,
)

__all__ = ["SequenceSet", "iter_reads", "load_split_dir", "read_labelled", "validate_sequence"]
