"""Masked-language modelling in Lightning: the loss of a Hugging Face masked-LM on batches that
`DataCollatorForLanguageModeling` masked, its optimiser and its schedule, and the texts as batches.

Imported by tasks/pretraining/encoder.py when it trains: Lightning is the base class here."""

import lightning as L
import torch

VAL_FRACTION = 0.05  # of the corpus, held out (seeded) for val/loss


class MaskedLanguageModel(L.LightningModule):
    """AdamW (no decay on biases and LayerNorm) with a linear warm-up, then a linear decay to zero.

    `train/loss` and `val/loss` are the mean loss per masked token over the epoch; steps only add
    to running sums and each epoch logs its means once (as models/classifier.py does). `history`
    keeps one row per epoch: {"epoch", "train/loss", "val/loss"}."""

    def __init__(self, model, learning_rate: float, weight_decay: float, warmup_fraction: float) -> None:
        super().__init__()
        self.model = model  # a transformers *ForMaskedLM: batch (input_ids, attention_mask, labels) -> .loss
        self.learning_rate, self.weight_decay, self.warmup_fraction = learning_rate, weight_decay, warmup_fraction
        self.sums: dict[str, list] = {}
        self.history: list[dict] = []

    def _step(self, batch: dict, stage: str) -> torch.Tensor | None:
        masked = (batch["labels"] != -100).sum()
        if not int(masked):  # a batch of one short text may have no masked token: its loss is NaN
            return None  # Lightning skips the step
        loss = self.model(**batch).loss  # mean over the masked tokens
        total, count = self.sums.get(stage, (0.0, 0))
        self.sums[stage] = (total + loss.detach().float() * masked, count + masked)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def _epoch_mean(self, stage: str) -> float | None:
        total, count = self.sums.pop(stage, (0.0, 0))
        return float(total / count) if int(count) else None

    def on_validation_epoch_end(self) -> None:
        self.val_loss = self._epoch_mean("val")

    def on_train_epoch_end(self) -> None:
        # Lightning validates at the end of the training epoch, before this hook (also when
        # max_time stops it early), so the epoch's val/loss is known here.
        row = {"epoch": self.current_epoch, "train/loss": self._epoch_mean("train")}
        row["val/loss"] = getattr(self, "val_loss", None)
        self.val_loss = None
        self.history.append(row)
        self.log_dict({k: v for k, v in row.items() if k != "epoch" and v is not None})

    def configure_optimizers(self):
        from transformers import get_linear_schedule_with_warmup

        decay = [p for n, p in self.model.named_parameters() if p.ndim > 1]  # weights, not biases or norms
        no_decay = [p for n, p in self.model.named_parameters() if p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": self.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW(groups, lr=self.learning_rate)
        steps = int(self.trainer.estimated_stepping_batches)
        schedule = get_linear_schedule_with_warmup(optimizer, int(self.warmup_fraction * steps), steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def loaders(tokenizer, train: list[str], val: list[str], batch_size: int, mask_probability: float, seed: int):
    """(train loader, val loader): tokenized texts cut to the tokenizer's max length; the training
    batches masked anew each epoch, the validation batches masked once, so that every epoch's
    val/loss is measured on the same masked tokens."""
    from torch.utils.data import DataLoader
    from transformers import DataCollatorForLanguageModeling

    def encoded(texts: list[str]) -> list[dict]:
        found = tokenizer(texts, truncation=True, return_special_tokens_mask=True, return_attention_mask=False)
        pairs = zip(found["input_ids"], found["special_tokens_mask"], strict=True)
        return [{"input_ids": ids, "special_tokens_mask": special} for ids, special in pairs]

    masking = {"mlm_probability": mask_probability}
    train_collator = DataCollatorForLanguageModeling(tokenizer, seed=seed, **masking)
    shuffle = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(encoded(train), batch_size, shuffle=True, generator=shuffle, collate_fn=train_collator)
    val_collator = DataCollatorForLanguageModeling(tokenizer, seed=seed + 1, **masking)
    rows = encoded(val)
    val_batches = [val_collator(rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)]
    return train_loader, DataLoader(val_batches, batch_size=None)
