import lightning as L


class MetricHistory(L.Callback):
    """Keeps each epoch's logged metrics, so callers can log learning curves anywhere."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning runs validation before this hook, so train/* and val/* are both present.
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
        self.epochs.append({"epoch": trainer.current_epoch, **metrics})
