"""Fit what turns raw rows into network inputs on the training rows only."""

import numpy as np

from tasks.types import Dataset, Split


def fit_preprocessing(dataset: Dataset, split: Split, text_params: dict | None = None) -> dict:
    info = dataset.preprocessing()
    if dataset.modality == "text":
        texts = dataset.frame[dataset.feature_columns[0]].iloc[split.train].tolist()
        info |= train_tokenizer(texts, **(text_params or {}))
    if dataset.modality == "audio":  # the log-mel bands' statistics, which the networks normalise by
        from models.audio import band_statistics
        from models.preprocessing import audio_inputs

        info |= band_statistics(audio_inputs(dataset.frame.iloc[split.train], info), info["sample_rate"])
    return info


def train_tokenizer(texts: list[str], vocab_size: int = 8000, max_length: int = 0, lowercase: bool = True) -> dict:
    """A WordPiece tokenizer learned from the training texts (nothing is downloaded).

    A small vocabulary makes pieces close to characters, which keep spellings, digits and case
    (strong signals in spam); max_length 0 picks the 99th percentile of the training token counts."""
    tokenizer = wordpiece(texts, vocab_size, lowercase, special=("[PAD]", "[UNK]"))
    if not max_length:
        lengths = [len(e.ids) for e in tokenizer.encode_batch(texts)]
        max_length = int(np.clip(np.percentile(lengths, 99), 8, 512))
    return {"tokenizer": tokenizer.to_str(), "vocab_size": tokenizer.get_vocab_size(), "max_length": max_length}


def wordpiece(texts: list[str], vocab_size: int, lowercase: bool, special: tuple[str, ...]):
    """A WordPiece `tokenizers.Tokenizer` trained on `texts` with BERT's normaliser and
    pre-tokenizer; `special` tokens first ([PAD] is 0)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    # The trainer numbers "##x" pieces in hash-map order, which breaks ties between merges
    # differently from run to run (huggingface/tokenizers#1794). Naming them up front, sorted,
    # makes the vocabulary, and so a seeded training, repeatable.
    continuing = sorted(
        {
            f"##{char}"
            for text in texts
            for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(tokenizer.normalizer.normalize_str(text))
            for char in word[1:]
        }
    )
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[*special, *continuing])
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse-frequency weights, normalised to mean 1, square-rooted so that a rare class
    gains recall without costing the common class much precision."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.sqrt(counts.sum() / np.maximum(counts, 1) / num_classes)
    return (weights / weights.mean()).astype(np.float32)
