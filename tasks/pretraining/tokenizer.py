"""A BERT WordPiece tokenizer learned from the corpus, saved so that `AutoTokenizer` loads it."""

SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # [PAD] is 0: BertConfig's pad_token_id


def train_wordpiece(texts: list[str], vocab_size: int, max_length: int, lowercase: bool):
    """A `PreTrainedTokenizerFast` (transformers) over a WordPiece model trained on `texts`: BERT's
    normaliser and pre-tokenizer, "[CLS] text [SEP]" around every text, cut to `max_length`."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    from tasks.training.features import wordpiece

    tokenizer = wordpiece(texts, vocab_size, lowercase, SPECIAL)
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
