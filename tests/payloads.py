"""What a tampered file holds: a pickle whose loading runs a command, which touches `marker`."""

import os
from pathlib import Path


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
