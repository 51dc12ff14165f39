import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

STAGES = ("train", "val", "test")


class Classifier(L.LightningModule):
    """Loss, metrics and optimiser for any network that maps a batch to class logits."""

    def __init__(
        self,
        network: nn.Module,
        num_classes: int,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        class_weights: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["network", "class_weights"])
        self.network = network
        self.loss = nn.CrossEntropyLoss(weight=class_weights)
        # One collection per stage, since torchmetrics keeps state between updates. The keys get
        # a suffix because nn.Module already has an attribute named `train`.
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_metrics": MetricCollection(
                    {
                        "accuracy": MulticlassAccuracy(num_classes, average="micro"),
                        "f1_macro": MulticlassF1Score(num_classes, average="macro"),
                    },
                    prefix=f"{stage}/",
                )
                for stage in STAGES
            }
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        logits = self(x)  # (B, num_classes)
        loss = self.loss(logits, y)
        metrics = self.metrics[f"{stage}_metrics"]
        metrics.update(logits.argmax(dim=1), y)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log_dict(metrics, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            self.parameters(),
            lr=self.hparams.learning_rate,
            weight_decay=self.hparams.weight_decay,
        )
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=self.hparams.learning_rate,
            total_steps=self.trainer.estimated_stepping_batches,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
