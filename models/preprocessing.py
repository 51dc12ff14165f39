"""Raw inputs -> network inputs. Shared by training and the served model so they never drift."""

import numpy as np


def images_from_table(values: np.ndarray, image_shape: tuple[int, int, int], scale: float) -> np.ndarray:
    """(N, C*H*W) raw pixel values -> (N, C, H, W) float32 in [0, 1]."""
    return (np.asarray(values, dtype=np.float32) / scale).reshape(-1, *image_shape)
