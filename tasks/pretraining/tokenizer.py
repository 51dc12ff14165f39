"""A BERT WordPiece tokenizer learned from the corpus, saved so that `AutoTokenizer` loads it."""

SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # [PAD] is 0: BertConfig's pad_token_id


def train_wordpiece(texts: list[str], vocab_size: int, max_length: int, lowercase: bool):
    """A `PreTrainedTokenizerFast` (transformers) over a WordPiece model trained on `texts`: BERT's
    normaliser and pre-tokenizer, "[CLS] text [SEP]" around every text, cut to `max_length`."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    # As tasks/training/features.py: the trainer numbers "##x" pieces in hash-map order
    # (huggingface/tokenizers#1794); naming them up front, sorted, makes the vocabulary repeatable.
    continuing = sorted(
        {
            f"##{char}"
            for text in texts
            for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(tokenizer.normalizer.normalize_str(text))
            for char in word[1:]
        }
    )
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[*SPECIAL, *continuing])
    tokenizer.train_from_iterator(texts, trainer=trainer)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_length,
    )
