import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

EVAL_STAGES = ("val",)  # the test rows are scored outside Lightning (tasks/evaluation)


class Classifier(L.LightningModule):
    """Loss, metrics and optimiser for any network that maps a batch to class logits.

    Logged once per epoch, under the same names for every network: train/loss, train/accuracy,
    val/loss, val/accuracy, val/f1_macro. Lightning's `self.log` costs about a
    millisecond a call here, as much as a small network's whole training step on a CPU, so steps
    only add to running sums (tensors: no device sync) and each epoch logs its means once.
    """

    def __init__(
        self,
        network: nn.Module,
        num_classes: int,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        class_weights: Tensor | None = None,
        temperature: float = 1.0,
        soft_weight: float = 0.0,
        schedule: str = "one_cycle",  # or "linear": warm-up then linear decay, fine-tuning's usual one
        warmup_fraction: float = 0.1,  # of the steps, for the linear schedule
        layer_decay: float = 1.0,  # a pretrained network's blocks: each below the head learns this much slower
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["network", "class_weights"])
        self.network = network
        self.loss = nn.CrossEntropyLoss(weight=class_weights)
        # Distillation: a training batch may carry a teacher's probabilities as a third tensor.
        self.temperature, self.soft_weight = temperature, soft_weight
        # One collection per stage, since torchmetrics keeps state between updates.
        self.metrics = nn.ModuleDict(
            {
                stage: MetricCollection(
                    {
                        "accuracy": MulticlassAccuracy(num_classes, average="micro"),
                        "f1_macro": MulticlassF1Score(num_classes, average="macro"),
                    },
                    prefix=f"{stage}/",
                )
                for stage in EVAL_STAGES
            }
        )
        self._sums: dict[str, list[Tensor | int]] = {}  # stage -> [loss x samples, correct, samples]

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

    def _step(self, batch: tuple[Tensor, ...], stage: str) -> Tensor:
        x, y, *teacher = batch
        logits = self(x)  # (B, num_classes)
        loss = self.loss(logits, y)
        if teacher:
            loss = (1 - self.soft_weight) * loss + self.soft_weight * self.soft_loss(logits, teacher[0])
        predicted = logits.argmax(dim=1)
        sums = self._sums.setdefault(stage, [0, 0, 0])
        sums[0] = sums[0] + loss.detach() * len(y)
        sums[2] += len(y)
        if stage in EVAL_STAGES:
            self.metrics[stage].update(predicted, y)  # accuracy and F1 from torchmetrics
        else:
            sums[1] = sums[1] + (predicted == y).sum()
        return loss

    def soft_loss(self, logits: Tensor, teacher_probabilities: Tensor) -> Tensor:
        """Hinton et al.'s distillation term: KL divergence from the teacher's probabilities softened
        by the temperature T, times T^2 so that its gradients keep their scale as T changes."""
        t = self.temperature
        targets = torch.softmax(torch.log(teacher_probabilities.clamp_min(1e-12)) / t, dim=1)
        log_student = torch.log_softmax(logits / t, dim=1)
        return nn.functional.kl_div(log_student, targets, reduction="batchmean") * t * t

    def _log_epoch(self, stage: str) -> None:
        loss_sum, correct, samples = self._sums.pop(stage, (0, 0, 0))
        if not samples:
            return
        values = {f"{stage}/loss": loss_sum / samples}
        if stage in EVAL_STAGES:
            values |= self.metrics[stage].compute()  # torchmetrics gathers every process's state itself
            self.metrics[stage].reset()
        else:
            values[f"{stage}/accuracy"] = correct / samples
        # Means of the processes' means: equal shards under DDP, so the epoch's mean.
        self.log_dict(values, prog_bar=stage == "val", sync_dist=True)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def configure_optimizers(self):
        hp = self.hparams
        if hasattr(self.network, "parameter_groups"):  # a pretrained backbone: a learning rate per depth
            groups = self.network.parameter_groups(hp.learning_rate, hp.layer_decay, hp.weight_decay)
        else:
            groups = [{"params": self.parameters(), "lr": hp.learning_rate, "weight_decay": hp.weight_decay}]
        optimizer = torch.optim.AdamW(groups)
        steps = self.trainer.estimated_stepping_batches
        if hp.schedule == "linear":
            warmup = max(1, int(hp.warmup_fraction * steps))
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / max(1, steps - warmup)))
            )
        else:
            peaks = [group["lr"] for group in optimizer.param_groups]
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
