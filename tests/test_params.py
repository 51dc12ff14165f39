"""params.yaml is checked by one typed model when read: each bad value is refused naming its key."""

import pytest
import yaml

from tasks.infra.errors import MlpipeError
from tasks.infra.params import ChecksParams, NetworkParams, load_params
from tasks.infra.settings import CODE_ROOT, Settings
from tasks.training.config import train_config
from tasks.types import TrainConfig


def _shipped() -> dict:
    return yaml.safe_load((CODE_ROOT / "params.yaml").read_text())


def test_the_shipped_params_pass_and_every_network_section_builds_its_config():
    params = load_params(Settings(root=CODE_ROOT))
    for modality, families in params.families.items():
        for family in ("cnn", "rnn", "transformer"):
            if getattr(families, family) is not None:
                config = train_config(params, modality, family, seed=1)
                assert isinstance(config, TrainConfig) and config.seed == 1 and config.max_epochs >= 1


def test_a_family_section_overrides_the_train_section_and_a_run_overrides_both(tmp_path):
    params = _set(_shipped(), "families.image.cnn", {"batch_size": 16, "learning_rate": 0.01, "channels": [4, 8]})
    params = _set(params, "train.max_epochs", 7)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    project = load_params(Settings(root=tmp_path))
    config = train_config(project, "image", "cnn", seed=3)
    assert (config.max_epochs, config.batch_size, config.optimiser, config.network) == (
        7,
        16,
        {"learning_rate": 0.01},
        {"channels": [4, 8]},
    )
    assert (config.monitor, config.class_weighting) == (TrainConfig.monitor, TrainConfig.class_weighting)
    chosen = train_config(project, "image", "cnn", seed=3, max_epochs=2, learning_rate=0.5, devices=2)
    assert (chosen.max_epochs, chosen.batch_size, chosen.optimiser, chosen.devices) == (
        2,
        16,
        {"learning_rate": 0.5},
        2,
    )


def test_a_section_left_out_takes_the_defaults_declared_once(tmp_path):
    params = _shipped()
    params.pop("validation", None)
    params["promotion"] = None  # null is as if unset
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    project = load_params(Settings(root=tmp_path))
    assert project.validation.checks == ChecksParams() and project.validation.drift.action == "fail"
    assert project.promotion.min_delta == 0.0 and project.selection.baseline and project.train.timeout_minutes == 240
    assert NetworkParams(dropout=0.1).network == {"dropout": 0.1}


def _set(params: dict, dotted: str, value) -> dict:
    *parents, last = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[last] = value
    return params


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("train.max_epochs", -1, "key 'train.max_epochs': Input should be greater than or equal to 1 (got -1)"),
        ("train.max_epoch", 3, "key 'train.max_epoch': Extra inputs are not permitted"),
        (
            "train.monitor",
            "val/acc",
            "key 'train.monitor': Input should be 'val/loss', 'val/accuracy' or 'val/f1_macro'",
        ),
        ("families.text.lstm", {"hidden": 3}, "key 'families.text.lstm': Extra inputs are not permitted"),
        ("families.video", {}, "key 'families.video.[key]': Input should be 'image', 'sequence', 'text' or 'audio'"),
        (
            "families.image.cnn.learning_rate",
            0,
            "key 'families.image.cnn.learning_rate': Input should be greater than 0",
        ),
        ("split.val_fraction", 1.5, "key 'split.val_fraction': Input should be less than 1 (got 1.5)"),
        ("validation.drift.action", "ignore", "key 'validation.drift.action': Input should be 'fail' or 'warn'"),
        ("promotion.confidence", 95, "key 'promotion.confidence': Input should be less than 1 (got 95)"),
        ("datasets.digits.models", "cnn,svm", "key 'datasets.digits.models': unknown families ['svm']"),
        (
            "families.text.cnn.learning_rate",
            "5e-4",
            "key 'families.text.cnn.learning_rate': Input should be a valid number",
        ),
        ("train.batch_size", "64", "key 'train.batch_size': Input should be a valid integer"),
        ("train.max_epochs", True, "key 'train.max_epochs': Input should be a valid integer"),
        ("train", {"max_epochs": 3, "batch_size": 8}, "key 'train.patience': Field required"),
    ],
)
def test_a_bad_value_is_refused_naming_its_key(key, value, message, tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_set(_shipped(), key, value)))
    with pytest.raises(MlpipeError) as refused:
        load_params(Settings(root=tmp_path))
    assert str(refused.value).startswith(f"{tmp_path / 'params.yaml'}: ") and message in str(refused.value)


def test_a_family_cannot_set_what_only_the_train_section_sets(tmp_path):
    params = _set(_shipped(), "families.image.cnn.timeout_minutes", 5)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(MlpipeError, match=r"key 'families.image.cnn.timeout_minutes' is not a setting"):
        train_config(load_params(Settings(root=tmp_path)), "image", "cnn", seed=0)


def test_a_misspelt_network_setting_is_refused_before_training(tmp_path):
    params = _set(_shipped(), "families.text.cnn.dropuot", 0.5)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    loaded = load_params(Settings(root=tmp_path))  # network keys belong to the network: checked when built
    with pytest.raises(
        MlpipeError, match=r"key 'families.text.cnn.dropuot' is not a setting of the text cnn \(it takes"
    ):
        train_config(loaded, "text", "cnn", seed=0)


def test_workers_and_devices_are_capped_by_the_machine_that_runs_the_flow(monkeypatch, workspace):
    """A flow run may turn its deployment's schema off; the flow's own check still holds."""
    from flows.parameters import PipelineParams, TuneParams

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert TuneParams.checked(dataset="digits", workers=2).workers == 2
    with pytest.raises(MlpipeError, match=r"^parameter 'workers': this machine has 2 CPUs \(got 64\)$"):
        TuneParams.checked(dataset="digits", workers=64)
    with pytest.raises(MlpipeError, match=r"^parameter 'devices': this machine has 2 CPUs \(got 3\)$"):
        PipelineParams.checked(dataset="digits", devices=3)
    # Parallel candidates train on Dask's workers, whose devices are theirs.
    assert PipelineParams.checked(dataset="digits", devices=3, parallel=True).devices == 3


def test_data_add_lists_a_data_set_in_params_yaml_keeping_every_comment(tmp_path):
    """`mlpipe data add` edits params.yaml through ruamel.yaml's round trip: the file stays as written
    (comments, quotes, nulls) with one line more in `datasets`; a file without the block gets one."""
    from tasks.data.catalog import _list_in_params

    params = tmp_path / "params.yaml"
    original = (CODE_ROOT / "params.yaml").read_text()
    params.write_text(original)
    _list_in_params(params, "sms", "text")
    _list_in_params(params, "sms", "text")  # listed once
    line = "  sms: {modality: text, models: 'cnn,rnn,transformer', backbone: '', init_from: ''}\n"
    assert params.read_text() == original + line
    assert yaml.safe_load(params.read_text())["datasets"]["sms"]["backbone"] == ""

    bare = tmp_path / "bare.yaml"
    bare.write_text("train:\n  max_epochs: 3  # short\n")
    _list_in_params(bare, "sms", "text")
    assert bare.read_text() == "train:\n  max_epochs: 3  # short\ndatasets:\n" + line

    # A section after `datasets`: its heading stays its own, after the new entry (ruamel keeps it
    # on the block's last entry).
    first = "datasets:\n  digits: {modality: image}  # built in\n"
    following = "\n# what the training stage reads\ntrain:\n  max_epochs: 3\n"
    middle = tmp_path / "middle.yaml"
    middle.write_text(first + following)
    _list_in_params(middle, "sms", "text")
    assert middle.read_text() == first + line + following
