"""What this machine has to compute with."""

import os


def capacity(gpus: bool = False) -> tuple[int, str]:
    """(how many, of what): its CUDA GPUs when asked and there are any, else its CPUs."""
    if gpus:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.device_count(), "GPUs"
    return os.cpu_count() or 1, "CPUs"
