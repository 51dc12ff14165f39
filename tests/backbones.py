"""Tiny pretrained backbones the tests build and save themselves (nothing is downloaded): a
BERT-style text encoder beside its WordPiece tokenizer, and a ResNet, each in Hugging Face layout."""

from pathlib import Path


def tiny_bert(folder: Path, texts: list[str], vocab_size: int = 400, layers: int = 2, **config) -> Path:
    """A BertModel of `layers` blocks, width 32, and its tokenizer, trained on `texts`."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=128,
    )  # fmt: skip
    fast.save_pretrained(folder)
    settings = {"hidden_size": 32, "num_hidden_layers": layers, "num_attention_heads": 2, "intermediate_size": 64}
    settings |= {"max_position_embeddings": 130} | config
    BertModel(BertConfig(vocab_size=len(fast), **settings)).save_pretrained(folder)
    return folder


def tiny_resnet(folder: Path) -> Path:
    """A two-stage ResNet of 8 and 16 channels, with an image processor's size and normalisation."""
    import json

    from transformers import ResNetConfig, ResNetModel

    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_channels=3)
    ResNetModel(config).save_pretrained(folder)
    processor = {"size": {"shortest_edge": 32}, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    return folder
