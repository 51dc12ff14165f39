"""Progress a person can watch while a long stage runs: per candidate, epoch i/N with the latest
validation accuracy and the time left; per tuned family, trial i/N with the best so far. On a
terminal, one tqdm line per candidate updated in place; elsewhere (CI logs, a file), one log line
per epoch or trial, which the Prefect UI shows with the run's logs too."""

import sys
import time

import lightning as L

from tasks.infra.runs import run_logger

SHOWN = ("val/accuracy", "val/loss", "train/loss")  # the first of these an epoch has is shown


def _bar(label: str, total: int, done: int, unit: str):
    """A tqdm line on a terminal, None elsewhere (a bar redrawn into a log file is noise)."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    # A short bar, so that the figures after it fit a narrow terminal; tqdm estimates the time left.
    shape = f"{{desc}}: {unit} {{n_fmt}}/{{total_fmt}} |{{bar:20}}|{{postfix}} [{{elapsed}}<{{remaining}}]"
    return tqdm(total=total, initial=done, desc=label, file=sys.stderr, bar_format=shape, leave=True)


def clock(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"


class EpochLines(L.Callback):
    """Epoch i/N of one fit, its latest validation metric and, from the epochs so far, the time
    left if it runs all N (early stopping may end it sooner). Said once the epoch has ended for
    the module too: a module may log its epoch's figures in its own on_train_epoch_end, which
    Lightning calls after the callbacks'."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar = None
        self.ended: int | None = None  # the epoch that ended and is not said yet

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.started, self.first = time.monotonic(), trainer.current_epoch  # a resumed fit starts later
            self.bar = _bar(self.label, trainer.max_epochs, trainer.current_epoch, "epoch")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.ended = trainer.current_epoch + 1

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._say(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._say(trainer)
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _say(self, trainer: L.Trainer) -> None:
        if self.ended is None:
            return
        done, total, self.ended = self.ended, trainer.max_epochs, None
        metrics = trainer.callback_metrics
        shown = next((f"{name} {float(metrics[name]):.4f}" for name in SHOWN if name in metrics), "")
        if self.bar is not None:
            self.bar.set_postfix_str(shown, refresh=False)
            self.bar.update(1)
            return
        left = (time.monotonic() - self.started) / (done - self.first) * (total - done)
        until = f", {clock(left)} left at most" if done < total else ""
        run_logger("mlpipe.training").info("%s: epoch %d/%d, %s%s", self.label, done, total, shown, until)


class TrialLines:
    """An Optuna callback: trial i/N of a study and the best value so far."""

    def __init__(self, label: str, total: int, done: int) -> None:
        self.label, self.total = label, total
        self.bar = _bar(label, total, done, "trial")

    def __call__(self, study, trial) -> None:
        from optuna.trial import TrialState

        ended = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
        done = min(len(ended), self.total)  # every worker's trials of the study
        finished = any(t.state == TrialState.COMPLETE for t in ended)
        best = f"best so far {study.best_value:.4f} (trial {study.best_trial.number})" if finished else "none finished"
        if self.bar is not None:
            self.bar.set_postfix_str(best, refresh=False)
            self.bar.update(done - self.bar.n)
            return
        state = trial.state.name.lower()
        run_logger("mlpipe.tuning").info("%s: trial %d/%d %s, %s", self.label, done, self.total, state, best)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
