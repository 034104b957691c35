"""lineworks-reconciler: LINE WORKS external messaging as code.

The package is a library first; `reconciler.cli` is a thin shell over it.
"""

__version__ = "0.1.0"
