"""The pretrained family end to end on real shared data: a tiny BERT-style encoder and a tiny ResNet
that the tests build and save (nothing is downloaded), fine-tuned by `mlpipe run`, registered,
and served in a fresh process with HF_HUB_OFFLINE=1 after the backbone's folder is gone."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from backbones import tiny_bert, tiny_resnet
from conftest import SHARED_DATASETS, run_mlpipe

from tasks.infra.settings import CODE_ROOT, Settings


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def only_networks(workspace):
    """The workspace's params.yaml without the baseline and the ensemble: the run registers the
    pretrained candidate, whatever two epochs made of it."""
    params = yaml.safe_load((CODE_ROOT / "params.yaml").read_text())
    params["selection"] = {"baseline": False, "ensemble": False}
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    return workspace


@pytest.fixture
def sst2_small(workspace):
    """300 real SST-2 sentences, balanced, as a spec in the workspace."""
    rows = pd.read_csv(SHARED_DATASETS / "sst2_train.csv").groupby("label").head(150)
    rows.to_csv(workspace / "sst2_small.csv", index=False)
    spec = {"name": "sst2_small", "modality": "text", "format": "csv", "train": "sst2_small.csv"}
    spec |= {"text_column": "text", "label_column": "label", "test_fraction": 0.2}
    (workspace / "sst2_small.yaml").write_text(yaml.safe_dump(spec))
    return workspace / "sst2_small.yaml", rows


def _compare(settings, dataset: str) -> list[dict]:
    done = run_mlpipe(settings, "compare", "--dataset", dataset, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _predict(settings, dataset: str, rows: pd.DataFrame, tmp_path) -> pd.DataFrame:
    rows.to_csv(tmp_path / "batch.csv", index=False)
    # @challenger: two epochs of a random tiny backbone need not pass the promotion gate.
    done = run_mlpipe(settings, "predict", "--dataset", dataset, "--input", str(tmp_path / "batch.csv"),
                      "--output", str(tmp_path / "labelled.csv"), "--alias", "challenger")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return pd.read_csv(tmp_path / "labelled.csv")


def test_a_fine_tuned_text_encoder_is_registered_and_served_offline_without_its_folder(
    only_networks, sst2_small, tmp_path
):
    workspace = only_networks
    spec, rows = sst2_small
    backbone = tiny_bert(tmp_path / "tiny-bert", rows["text"].tolist())
    settings = Settings(root=workspace)

    done = run_mlpipe(settings, "run", "--dataset", str(spec), "--models", "pretrained",
                      "--backbone", str(backbone), "--max-epochs", "2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    shutil.rmtree(backbone)  # serving needs nothing of it: weights, config and tokenizer are in the version

    (row,) = _compare(settings, "sst2_small")
    assert (row["family"], row["init"], row["registered_version"]) == ("pretrained", str(backbone), 1)
    assert "challenger" in row["aliases"]  # @champion too if two epochs passed the promotion gate
    labelled = _predict(settings, "sst2_small", rows[["text"]].head(20), tmp_path)
    assert len(labelled) == 20 and set(labelled["predicted_label"]) <= {"negative", "positive"}

    import mlflow

    client = mlflow.MlflowClient(settings.tracking_uri)  # not the process's URI, which other tests' fixtures set
    folder = client.get_model_version_download_uri("sst2_small", "1").removeprefix("file://")
    assert list(Path(folder).rglob("member_0.safetensors"))  # the fine-tuned backbone's weights
    assert "transformers==" in (Path(folder) / "requirements.txt").read_text()
    tags = client.get_model_version("sst2_small", "1").tags
    assert tags["init"] == str(backbone)


@pytest.mark.slow  # ~45 s: the text encoder's test above runs the same path in `make test`
def test_a_fine_tuned_image_encoder_serves_offline(only_networks, small_datasets, tmp_path):
    workspace = only_networks
    settings = Settings(root=workspace)
    digits = small_datasets["image"]
    backbone = tiny_resnet(tmp_path / "tiny-resnet")
    spec = digits.spec_path

    done = run_mlpipe(settings, "run", "--dataset", str(spec), "--models", "pretrained",
                      "--backbone", str(backbone), "--max-epochs", "2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    shutil.rmtree(backbone)
    (row,) = _compare(settings, digits.name)
    assert (row["family"], row["init"], row["registered_version"]) == ("pretrained", str(backbone), 1)
    assert "challenger" in row["aliases"]  # @champion too if two epochs passed the promotion gate
    rows = digits.frame[digits.feature_columns].head(10)
    labelled = _predict(settings, digits.name, rows, tmp_path)
    assert len(labelled) == 10


def test_lora_adapters_merge_into_weights_that_give_the_same_outputs(tmp_path):
    from models.networks import build_network
    from tasks.training.initial import with_lora

    folder = tiny_bert(tmp_path / "bert", ["a good film", "a bad film", "not good at all"] * 10, vocab_size=60)
    config = json.loads((folder / "config.json").read_text())
    torch.manual_seed(0)
    network = build_network("text", "pretrained", backbone_config=config, num_classes=2, pad_id=0)
    network.encoder = with_lora(network.encoder, {"r": 4, "init_lora_weights": False})  # adapters that change outputs
    trainable = {n for n, p in network.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    tokens = torch.tensor([[2, 7, 9, 3, 0], [2, 5, 3, 0, 0]])
    network.eval()
    with torch.no_grad():
        adapted = network(tokens)
        merged = network.merge_adapters()
        plain = merged(tokens)
    torch.testing.assert_close(adapted, plain, atol=1e-5, rtol=1e-4)
    assert not any("lora_" in name for name in merged.state_dict())


def test_a_backbone_saved_in_half_precision_fine_tunes_in_fp32(tmp_path):
    from transformers import ViTConfig

    from models.networks import build_network

    config = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       image_size=32, patch_size=8, dtype="bfloat16").to_dict()  # fmt: skip
    network = build_network("image", "pretrained", backbone_config=config, num_classes=3, in_channels=1, image_size=16)
    assert {p.dtype for p in network.parameters()} == {torch.float32}
    assert network(torch.rand(2, 1, 8, 8)).shape == (2, 3)  # grey, 8x8, at 16x16: positions interpolated


def test_freezing_keeps_the_embeddings_and_first_blocks_and_decay_slows_the_lower_ones(tmp_path):
    from models.networks import build_network

    folder = tiny_bert(tmp_path / "bert", ["a good film", "a bad film"] * 10, vocab_size=50, layers=3)
    config = json.loads((folder / "config.json").read_text())
    network = build_network("text", "pretrained", backbone_config=config, num_classes=2, pad_id=0, freeze_layers=1)
    frozen = {n for n, p in network.named_parameters() if not p.requires_grad}
    assert any(n.startswith("encoder.embeddings.") for n in frozen)
    assert any(".layer.0." in n for n in frozen) and not any(".layer.1." in n for n in frozen)
    groups = network.parameter_groups(1e-3, 0.5, 0.01)
    rates = sorted({g["lr"] for g in groups})
    assert rates[-1] == pytest.approx(1e-3)  # the head
    assert rates[0] == pytest.approx(1e-3 * 0.5**3)  # block 1 of 3 (block 0 and the embeddings are frozen)
    assert all(g["weight_decay"] == 0.0 for g in groups if all(p.ndim == 1 for p in g["params"]))


def _without_tokenizer(folder: Path) -> Path:
    tiny_bert(folder, ["a good film", "a bad film"] * 10, vocab_size=50)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    return folder


def _too_large(folder: Path) -> Path:
    """Only a config: a 64-block, 8192-wide encoder (about 52 billion parameters) is refused from
    its parameter count before a weight is read."""
    from transformers import BertConfig

    BertConfig(hidden_size=8192, num_hidden_layers=64, num_attention_heads=64, intermediate_size=32768).save_pretrained(
        folder
    )
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    return folder


def _encoder_decoder(folder: Path) -> Path:
    from transformers import T5Config

    T5Config(d_model=16, d_ff=32, num_layers=1, num_heads=2, vocab_size=50).save_pretrained(folder)
    return folder


BAD_BACKBONES = {
    "not on disk nor in the cache": (
        lambda tmp: "no-such-org/no-such-model",
        "backbone 'no-such-org/no-such-model' is not a folder and not in the Hugging Face cache (HF_HUB_OFFLINE=1)",
    ),
    "a path that is no folder": (
        lambda tmp: str(tmp / "no-such-folder"),
        "no such folder (a Hugging Face layout: config.json, weights, tokenizer)",
    ),
    "a folder without a tokenizer": (
        lambda tmp: str(_without_tokenizer(tmp / "bert")),
        "no tokenizer in",
    ),
    "an image backbone for text": (lambda tmp: str(tiny_resnet(tmp / "resnet")), "is an image model; text data"),
    "far too large for the memory": (lambda tmp: str(_too_large(tmp / "huge")), "M parameters: fine-tuning needs"),
    "an encoder-decoder": (lambda tmp: str(_encoder_decoder(tmp / "t5")), "is an encoder-decoder (t5)"),
}


@pytest.mark.parametrize("kind", BAD_BACKBONES)
def test_a_bad_backbone_is_refused_in_one_line_before_anything_loads(kind, tmp_path):
    from tasks.infra.errors import MlpipeError
    from tasks.training.starting import start_of

    make, message = BAD_BACKBONES[kind]
    with pytest.raises(MlpipeError) as raised:
        start_of("pretrained", "text", make(tmp_path), None, Settings(root=tmp_path))
    assert message in str(raised.value) and "\n" not in str(raised.value)


# The same through `mlpipe run` (about 10 s each): exit code, one line, nothing trained or registered.
@pytest.mark.slow
@pytest.mark.parametrize("kind", BAD_BACKBONES)
def test_a_bad_backbone_stops_the_run_in_one_line_before_training(kind, prefect_api, sst2_small, workspace, tmp_path):
    spec, _ = sst2_small
    make, message = BAD_BACKBONES[kind]
    done = run_mlpipe(Settings(root=workspace), "run", "--dataset", str(spec), "--models", "pretrained",
                      "--backbone", make(tmp_path), "--max-epochs", "1")  # fmt: skip
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1 and len(errors) == 1, done.stderr[-2000:]
    assert message in errors[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert not list((workspace / "outputs").glob("*/training/pretrained-*"))  # nothing trained
    assert _registered_models(workspace) == []


def _registered_models(root: Path) -> list[str]:
    import mlflow

    if not (root / "mlflow" / "mlflow.db").exists():
        return []
    client = mlflow.MlflowClient(Settings(root=root).tracking_uri)
    return [m.name for m in client.search_registered_models()]


def test_a_registered_model_that_is_no_encoder_or_of_another_modality_is_refused(own_registry):
    from tasks.infra.errors import MlpipeError
    from tasks.training.starting import start_of
    from tasks.training.transfer import resolve_source

    settings, _ = own_registry
    before = _registered_models(settings.root)
    with pytest.raises(MlpipeError, match=r"backbone models:/digits/1 holds no Hugging Face model"):
        start_of("pretrained", "image", "models:/digits/1", None, settings)
    with pytest.raises(MlpipeError, match=r"--init-from models:/digits@champion: a model of image data; this data"):
        resolve_source("models:/digits@champion", "text", ["cnn"], settings)
    with pytest.raises(MlpipeError, match=r"has no rnn network to start from \(it has cnn\)"):
        resolve_source("models:/digits/1", "image", ["cnn", "rnn"], settings)
    with pytest.raises(MlpipeError, match=r"--init-from models:/digits/99: no such registered version"):
        resolve_source("models:/digits/99", "image", ["cnn"], settings)
    assert _registered_models(settings.root) == before
