"""Networks and training logic (torch and Lightning only).

Importing this package is cheap: the Lightning pieces live in `models.classifier` and
`models.datamodule`, which callers import where they need them.
"""
