"""Data sets: the spec, reading files, loading and splitting, DVC versions, and `mlpipe data add`."""
