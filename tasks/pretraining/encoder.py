"""Pretrain a BERT-style encoder from scratch on a corpus and save it in the Hugging Face layout
(config.json, model.safetensors, tokenizer.json, tokenizer_config.json), which
`transformers.AutoModel.from_pretrained(folder)` and `AutoTokenizer.from_pretrained(folder)` load
offline."""

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tasks.infra.errors import MlpipeError
from tasks.infra.pretraining_params import PretrainingParams


@dataclass
class Pretrained:
    folder: Path  # the Hugging Face folder
    history: list[dict]  # per epoch: epoch, train/loss, val/loss
    train_texts: int
    val_texts: int
    vocab_size: int  # the pieces learned: at most params.vocab_size
    parameters: int
    seconds: float  # tokenizer and fit, wall clock
    stopped_by: str  # "max_epochs", or "timeout" when timeout_minutes ended the fit
    accelerator: str = ""
    settings: dict = field(default_factory=dict)  # the PretrainingParams it was trained with, and the seed

    @property
    def epochs(self) -> int:
        return len(self.history)

    @property
    def final_val_loss(self) -> float | None:
        return next((row["val/loss"] for row in reversed(self.history) if row["val/loss"] is not None), None)


def held_out(texts: list[str], seed: int) -> tuple[list[str], list[str]]:
    """(training texts, validation texts): a seeded 5 % (at least one text) held out for val/loss."""
    from tasks.pretraining.mlm import VAL_FRACTION

    if len(texts) < 2:
        raise MlpipeError(f"pretraining needs at least 2 distinct texts; the corpus has {len(texts)}")
    order = np.random.default_rng(seed).permutation(len(texts))
    cut = max(1, round(VAL_FRACTION * len(texts)))
    return [texts[i] for i in sorted(order[cut:])], [texts[i] for i in sorted(order[:cut])]


def pretrain(texts: list[str], params: PretrainingParams, seed: int, folder: Path) -> Pretrained:
    """Learn a WordPiece vocabulary on the training texts, then train BertForMaskedLM from scratch
    for params.max_epochs or params.timeout_minutes, whichever ends first; save it in `folder`."""
    import lightning as L
    from transformers import BertConfig, BertForMaskedLM

    from tasks.pretraining.mlm import MaskedLanguageModel, loaders
    from tasks.pretraining.tokenizer import train_wordpiece

    _quiet()
    started = time.perf_counter()
    L.seed_everything(seed, workers=True, verbose=False)
    train, val = held_out(texts, seed)
    tokenizer = train_wordpiece(train, params.vocab_size, params.max_length, params.lowercase)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=params.hidden,
        num_hidden_layers=params.layers,
        num_attention_heads=params.heads,
        intermediate_size=params.intermediate,
        max_position_embeddings=params.max_length,
        pad_token_id=tokenizer.pad_token_id,
    )
    optimiser = (params.learning_rate, params.weight_decay, params.warmup_fraction)
    module = MaskedLanguageModel(BertForMaskedLM(config), *optimiser)
    train_loader, val_loader = loaders(tokenizer, train, val, params.batch_size, params.mask_probability, seed)
    trainer = _trainer(params)
    try:
        trainer.fit(module, train_loader, val_loader)
    except SystemExit:
        if trainer.interrupted:  # Lightning turns Ctrl-C into exit(1): the caller should see the Ctrl-C
            raise KeyboardInterrupt from None
        raise
    folder.mkdir(parents=True, exist_ok=True)
    module.model.save_pretrained(folder)  # transformers 5 writes safetensors only
    tokenizer.save_pretrained(folder)
    return Pretrained(
        folder=folder,
        history=module.history,
        train_texts=len(train),
        val_texts=len(val),
        vocab_size=len(tokenizer),
        parameters=sum(p.numel() for p in module.model.parameters()),
        seconds=time.perf_counter() - started,
        stopped_by="max_epochs" if len(module.history) >= params.max_epochs else "timeout",
        accelerator=type(trainer.accelerator).__name__,
        settings={**params.model_dump(), "seed": seed},
    )


def _trainer(params: PretrainingParams):
    """Lightning's Trainer: the accelerator and precision training uses (bf16 on a CUDA device that
    takes it), bounded by max_epochs and by max_time, after which it validates and stops."""
    from datetime import timedelta

    import lightning as L

    from tasks.training.progress import EpochLines
    from tasks.training.trainer import quiet_lightning, trainer_settings

    quiet_lightning()
    return L.Trainer(
        max_epochs=params.max_epochs,
        callbacks=[EpochLines("pretrain")],
        max_time=timedelta(minutes=params.timeout_minutes),
        logger=False,
        enable_checkpointing=False,  # nothing resumes a pretraining: the saved folder is its result
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **trainer_settings(),
    )


def _quiet() -> None:
    """transformers' progress bars and load reports say nothing a run's log needs."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()
