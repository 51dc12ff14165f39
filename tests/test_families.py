"""Every family on every modality trains, evaluates and keeps its preprocessing (small data)."""

import numpy as np
import pandas as pd
import pytest
import torch

from models.networks import build_network, shape_kwargs
from models.preprocessing import model_inputs
from tasks.data.splitting import split
from tasks.evaluation.scoring import evaluate
from tasks.infra.vocabulary import NETWORK_FAMILIES
from tasks.training.features import class_weights, train_tokenizer
from tasks.training.network import train
from tasks.types import TrainConfig


@pytest.mark.parametrize("modality", ["image", "sequence", "text"])
@pytest.mark.parametrize("family", NETWORK_FAMILIES)
def test_each_family_trains_on_each_modality(small_datasets, modality, family, tmp_path):
    dataset = small_datasets[modality]
    parts = split(dataset.frame[dataset.label_column].to_numpy(), 0.25, 0.2, 0, 0)
    config = TrainConfig(family=family, max_epochs=2, batch_size=32, patience=5, seed=0, text={"vocab_size": 500})

    model = train(dataset, parts, config, tmp_path)
    evaluation = evaluate(model, dataset, parts, tmp_path)

    assert len(model.history) == 2
    assert np.isfinite(model.history[-1]["val/loss"])
    assert evaluation.predictions.shape == (len(parts.test),)
    assert 0.0 <= evaluation.metrics["test/accuracy"] <= 1.0
    # The network rebuilt from what the registry stores gives the same outputs.
    rebuilt = build_network(modality, family, **model.network_kwargs)
    rebuilt.load_state_dict(model.network.state_dict())
    rebuilt.eval()
    x = torch.as_tensor(model_inputs(dataset.frame.iloc[parts.test[:4]], model.preprocessing))
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model.network(x))


def test_network_shapes_follow_the_docstrings():
    image = build_network(
        "image", "transformer", **shape_kwargs({"modality": "image", "image_shape": [3, 8, 12]}, "transformer", 5)
    )
    assert image(torch.zeros(2, 3, 8, 12)).shape == (2, 5)
    sequence = build_network("sequence", "transformer", **shape_kwargs({"modality": "sequence"}, "transformer", 2))
    assert sequence(torch.zeros(3, 97, 1)).shape == (3, 2)  # a length the patch size does not divide
    long = {"modality": "sequence", "feature_columns": [f"t{i}" for i in range(427)]}
    rnn = build_network("sequence", "rnn", **shape_kwargs(long, "rnn", 6))
    assert rnn.patch == 7  # 427 steps read as 61 patches of 7, at most max_steps (64)
    assert rnn(torch.zeros(3, 427, 1)).shape == (3, 6)
    text = build_network("text", "rnn", **shape_kwargs({"modality": "text", "vocab_size": 50}, "rnn", 4))
    assert text(torch.tensor([[5, 6, 0, 0], [7, 0, 0, 0]])).shape == (2, 4)


@pytest.mark.parametrize("options", [{}, {"ngram_buckets": 97, "word_dropout": 0.5}])
def test_padding_does_not_change_a_text_prediction(options):
    torch.manual_seed(0)
    for family in NETWORK_FAMILIES:
        network = build_network("text", family, vocab_size=30, num_classes=2, **options).eval()
        short = torch.tensor([[3, 4, 5]])
        padded = torch.tensor([[3, 4, 5, 0, 0, 0, 0]])
        with torch.no_grad():
            torch.testing.assert_close(network(short), network(padded), atol=1e-5, rtol=1e-4, msg=family)


def test_a_text_of_padding_only_gives_finite_logits_and_gradients():
    torch.manual_seed(0)
    for family in NETWORK_FAMILIES:
        network = build_network("text", family, vocab_size=30, num_classes=2, ngram_buckets=97)
        tokens = torch.tensor([[0, 0, 0, 0], [3, 4, 0, 0]])  # a blank text beside a real one
        for training in (True, False):
            network.train(training)
            logits = network(tokens)
            assert torch.isfinite(logits).all(), (family, training, logits)
        logits.sum().backward()
        grads = [p.grad for p in network.parameters() if p.grad is not None]
        assert all(torch.isfinite(g).all() for g in grads), family


def test_the_tokenizer_learns_from_training_texts_only():
    info = train_tokenizer(["free prize call now", "call me later", "free free prize"] * 5, vocab_size=60)
    ids = model_inputs(pd.DataFrame({"t": ["free prize", "zyzzyva"]}), {"modality": "text", "text_column": "t", **info})

    assert ids.shape == (2, info["max_length"]) and ids.dtype == np.int64
    assert ids[0, 0] > 1 and ids[0, 2] == 0  # known word pieces, then padding
    assert 1 in ids[1]  # [UNK] for characters never seen in training


def test_class_weights_favour_the_rare_class():
    weights = class_weights(np.array([0] * 90 + [1] * 10), 2)
    assert weights[1] == pytest.approx(3 * weights[0])
    assert weights.mean() == pytest.approx(1.0)


def test_word_dropout_acts_while_training_only_and_the_ngram_bag_sees_word_order():
    from models.layers import UNKNOWN_ID, NgramBag, drop_words

    tokens = torch.tensor([[5, 6, 7, 8, 0, 0]])
    assert torch.equal(drop_words(tokens, 0.9, training=False), tokens)
    dropped = drop_words(tokens.repeat(200, 1), 0.5, training=True)
    assert set(dropped[:, :4].unique().tolist()) <= {5, 6, 7, 8, UNKNOWN_ID} and (dropped[:, 4:] == 0).all()
    assert 0.3 < (dropped[:, :4] == UNKNOWN_ID).float().mean() < 0.7
    bag = NgramBag(buckets=1000, dim=8)
    assert bag(tokens).shape == (1, 8)
    assert not torch.allclose(bag(tokens), bag(torch.tensor([[8, 7, 6, 5, 0, 0]])))  # bigrams, not a bag of words
