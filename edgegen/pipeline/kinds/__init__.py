"""The built-in stage kinds, one module each; importing this package registers them."""

from edgegen.pipeline.kinds import audit, bench, distill, export, prune, student, teacher  # noqa: F401
