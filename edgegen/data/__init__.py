"""Sequence data: labelled CSV/TSV, FASTA/FASTQ, synthetic tasks and data checks."""

from edgegen.data.readers import SequenceSet, load_split_dir, read_labelled, validate_sequence
from edgegen.data.reads import iter_reads

__all__ = ["SequenceSet", "iter_reads", "load_split_dir", "read_labelled", "validate_sequence"]
