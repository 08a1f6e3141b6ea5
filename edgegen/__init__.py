"""edgegen: make genomic transformers small and fast enough for field devices.

Importing this package is cheap: torch and the export stacks are imported only
by the functions that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
