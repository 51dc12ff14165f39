"""Stops a trial early when its validation figure trails the study's earlier trials at the same
epoch (Optuna's pruner decides): the figure Lightning logs each epoch, `val/accuracy`."""

import optuna
from lightning.pytorch.callbacks import Callback


class PruneOnValidation(Callback):
    """What optuna-integration's PyTorchLightningPruningCallback does for one device, without
    its dependency: report each epoch's figure, raise TrialPruned when the pruner says so."""

    def __init__(self, trial: optuna.Trial, monitor: str = "val/accuracy") -> None:
        self.trial, self.monitor = trial, monitor

    def on_validation_end(self, trainer, pl_module) -> None:
        score = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or score is None:
            return
        epoch = trainer.current_epoch
        self.trial.report(float(score), step=epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"epoch {epoch}: {self.monitor} {float(score):.4f} trails the study")
