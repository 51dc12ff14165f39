"""The `mlpipe` command line: one module per group of commands, each a short adapter over a use case."""
