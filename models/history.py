import json
from pathlib import Path

import lightning as L


class MetricHistory(L.Callback):
    """Writes each epoch's logged metrics to a JSON file.

    A file, not an attribute, because with a spawned or forked DDP strategy the callback runs
    in worker processes and only what rank zero writes to disk comes back.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.epochs: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning runs validation before this hook, so train/* and val/* are both present.
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
        self.epochs.append({"epoch": trainer.current_epoch, **metrics})
        if trainer.is_global_zero:
            self.path.write_text(json.dumps(self.epochs))

    def read(self) -> list[dict[str, float]]:
        return json.loads(self.path.read_text()) if self.path.exists() else []
