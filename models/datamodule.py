"""Lightning's data module over in-memory arrays: what every network's fit reads."""

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset


class ArrayDataModule(L.LightningDataModule):
    """Training and validation loaders over in-memory arrays (features already normalised)."""

    def __init__(
        self,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_val: np.ndarray,
        y_val: np.ndarray,
        batch_size: int = 64,
        seed: int = 0,
        soft_train: np.ndarray | None = None,  # a teacher's probabilities of the training rows
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.seed = seed
        self.train = _tensors(x_train, y_train, soft_train)
        self.val = _tensors(x_val, y_val)

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True, generator=generator)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=4 * self.batch_size)


def _tensors(x: np.ndarray, y: np.ndarray, soft: np.ndarray | None = None) -> TensorDataset:
    # torch.tensor copies: arrays from pandas may be read-only views. Token ids stay integers.
    x_type = torch.long if np.issubdtype(x.dtype, np.integer) else torch.float32
    tensors = [torch.tensor(x, dtype=x_type), torch.tensor(y, dtype=torch.long)]
    if soft is not None:
        tensors.append(torch.tensor(soft, dtype=torch.float32))
    return TensorDataset(*tensors)
