import json

import pytest
import torch

from tasks.data.splitting import split
from tasks.training.network import train
from tasks.training.trainer import trainer_settings
from tasks.types import TrainConfig


def test_training_keeps_the_best_checkpoint_and_learning_curves(trained_cnn):
    assert trained_cnn.checkpoint_path.exists()
    assert trained_cnn.checkpoint_path.name == "best.ckpt"
    assert len(trained_cnn.history) == trained_cnn.epochs_run == 3
    for epoch in trained_cnn.history:
        assert {"train/loss", "val/loss", "val/accuracy", "val/f1_macro"} <= set(epoch)
    best = min(trained_cnn.history, key=lambda e: e["val/loss"])
    assert trained_cnn.best_epoch == best["epoch"]
    assert trained_cnn.history[-1]["val/loss"] < trained_cnn.history[0]["train/loss"]
    assert not trained_cnn.network.training


def test_the_kept_network_holds_the_best_checkpoint_weights(trained_cnn):
    checkpoint = torch.load(trained_cnn.checkpoint_path, map_location="cpu", weights_only=True)
    saved = {k.removeprefix("network."): v for k, v in checkpoint["state_dict"].items() if k.startswith("network.")}
    for name, value in trained_cnn.network.state_dict().items():
        torch.testing.assert_close(value, saved[name])


@pytest.mark.parametrize(("modality", "family"), [("image", "cnn"), ("sequence", "rnn"), ("text", "transformer")])
def test_a_seeded_run_on_the_cpu_is_repeatable(small_datasets, modality, family, tmp_path):
    """Without torch's deterministic mode (16 times slower convolutions): the same weights and curves."""
    dataset = small_datasets[modality]
    parts = split(dataset.frame[dataset.label_column].to_numpy(), 0.2, 0.2, 0, 0)
    config = TrainConfig(family=family, max_epochs=2, batch_size=32, patience=2, seed=7)
    first = train(dataset, parts, config, tmp_path / "a")
    second = train(dataset, parts, config, tmp_path / "b")

    for a, b in zip(first.network.state_dict().values(), second.network.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert first.history == second.history


def test_the_accelerator_is_chosen_automatically():
    settings = trainer_settings()
    assert settings["accelerator"] == "auto"
    if torch.cuda.is_available():
        assert settings["precision"] in ("bf16-mixed", "16-mixed")
    else:
        assert settings["precision"] == "32-true"  # repeatable all the same (the test above)


def test_a_result_cut_short_by_a_kill_is_treated_as_absent(digits, digits_split, tmp_path):
    config = TrainConfig(family="cnn", max_epochs=1, batch_size=128, patience=1, seed=7, network={"channels": 8})
    first = train(digits, digits_split, config, tmp_path / "fit")
    result = tmp_path / "fit" / "result.json"
    result.write_text(result.read_text()[:20])  # a kill mid-write, before writes were atomic

    again = train(digits, digits_split, config, tmp_path / "fit")  # no crash: trained again from last.ckpt

    assert json.loads(result.read_text())["epochs_run"] == 1
    assert again.epochs_run == first.epochs_run and not list((tmp_path / "fit").glob(".*partial*"))


def test_two_identical_fits_at_once_do_not_share_a_half_written_folder(digits, digits_split, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    config = TrainConfig(family="cnn", max_epochs=2, batch_size=128, patience=1, seed=7, network={"channels": 8})
    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(lambda _: train(digits, digits_split, config, tmp_path / "fit"), range(2))

    # One trained; the other waited for the folder and took its finished result.
    assert first.fit_seconds == second.fit_seconds and first.history == second.history
    assert len(first.history) == 2 and (tmp_path / "fit" / "best.ckpt").exists()


def test_an_unreachable_prefect_api_costs_the_progress_bar_not_the_training(digits, digits_split, tmp_path):
    import logging

    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    from tasks.training.tasks import train_model

    config = TrainConfig(family="cnn", max_epochs=2, batch_size=128, patience=1, seed=7, network={"channels": 8})
    # The discard port: nothing answers there, as when the API goes down mid-run.
    # A handler of its own, not caplog's on the root logger: Prefect's logging set-up, the first
    # time this process calls its client, replaces the root logger's handlers.
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("mlpipe.training")
    logger.addHandler(handler)
    try:
        with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api", PREFECT_CLIENT_MAX_RETRIES: 0}):
            model = train_model.fn(digits, digits_split, config, tmp_path / "fit")
    finally:
        logger.removeHandler(handler)

    assert model.epochs_run == 2
    warnings = [r.getMessage() for r in records if "progress not shown" in r.getMessage()]
    assert len(warnings) == 1  # said once, not once per epoch
