"""`mlpipe pretrain` on a few hundred real SST-2 sentences: a tiny BERT-style encoder pretrained from
scratch, registered as `<name>-encoder` and loadable offline by transformers; the test rows never
reach its corpus."""

import os

import pandas as pd
import pytest
import yaml
from conftest import SHARED_DATASETS, make_workspace, run_mlpipe

from tasks.infra.settings import CODE_ROOT, Settings

TINY = {"vocab_size": 500, "hidden": 32, "layers": 2, "heads": 2, "intermediate": 64, "batch_size": 32}


def _sst2_project(root):
    """A project whose params.yaml pretrains a tiny encoder, with a spec of 300 training rows and an
    explicit test file of 100, and a file of unlabelled texts (other SST-2 rows and blank lines)."""
    params = yaml.safe_load((CODE_ROOT / "params.yaml").read_text())
    params["pretraining"] = {**params.get("pretraining", {}), **TINY}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    data = root / "sst2"
    data.mkdir()
    train = pd.read_csv(SHARED_DATASETS / "sst2_train.csv")
    train.head(300).to_csv(data / "train.csv", index=False)
    pd.read_csv(SHARED_DATASETS / "sst2_test.csv").head(100).to_csv(data / "test.csv", index=False)
    spec = {"name": "sst2_small", "modality": "text", "format": "csv", "train": "train.csv", "test": "test.csv"}
    spec |= {"label_column": "label", "text_column": "text"}
    (data / "sst2_small.yaml").write_text(yaml.safe_dump(spec))
    (root / "unlabelled.txt").write_text("\n\n".join(train["text"].iloc[300:400]) + "\n   \n")
    return data / "sst2_small.yaml"


@pytest.fixture(scope="module")
def pretrained(prefect_api, tmp_path_factory):
    """`mlpipe pretrain` once, for the module's tests: (settings, the spec, the finished process)."""
    root = make_workspace(tmp_path_factory.mktemp("pretrain") / "project")
    spec = _sst2_project(root)
    settings = Settings(root=root)
    done = run_mlpipe(settings, "pretrain", "--dataset", str(spec), "--texts", "unlabelled.txt", "--max-epochs", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    return settings, spec, done


@pytest.fixture
def registry(pretrained):
    import mlflow

    return mlflow.MlflowClient(pretrained[0].tracking_uri)


def test_pretrain_registers_the_encoder_and_prints_the_backbone_uri(pretrained, registry):
    _, spec, done = pretrained

    assert "Backbone: models:/sst2_small-encoder/1" in done.stdout
    assert f"mlpipe run --dataset {spec} --models pretrained --backbone models:/sst2_small-encoder/1" in done.stdout
    assert "2 epochs" in done.stdout and "final val/loss" in done.stdout
    assert "pretrain: epoch 1/2, val/loss" in done.stderr and "pretrain: epoch 2/2, val/loss" in done.stderr  # progress
    version = registry.get_model_version("sst2_small-encoder", "1")
    assert version.tags["mlpipe.role"] == "pretraining" and version.tags["dataset"] == "sst2_small"
    assert version.tags["data_hash"]


def test_the_run_has_the_loss_of_each_epoch_and_the_settings(registry):
    run = registry.get_run(registry.get_model_version("sst2_small-encoder", "1").run_id)

    assert run.info.run_name == "pretrain-sst2_small" and run.data.tags["mlpipe.role"] == "pretraining"
    for name in ("train/loss", "val/loss"):
        assert [m.step for m in registry.get_metric_history(run.info.run_id, name)] == [0, 1]
    params = run.data.params  # every setting of params.yaml's `pretraining`, as the run used it
    assert (params["hidden"], params["max_epochs"], params["mask_probability"]) == ("32", "2", "0.15")
    assert "unlabelled.txt (100 lines)" in params["corpus.files"] and params["corpus.dataset_rows"] == "300"
    assert "loss_curve.png" in {a.path for a in registry.list_artifacts(run.info.run_id)}


def test_the_registered_encoder_is_a_hugging_face_folder_that_loads_offline(pretrained, tmp_path, monkeypatch):
    import mlflow
    import torch
    from transformers import AutoModel, AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # The store's own URI, not the process's, which other tests' fixtures set.
    source = mlflow.MlflowClient(pretrained[0].tracking_uri).get_model_version_download_uri("sst2_small-encoder", "1")
    downloaded = mlflow.artifacts.download_artifacts(source, dst_path=str(tmp_path))

    (config,) = [path for path in _walk(downloaded) if os.path.basename(path) == "config.json"]
    folder = os.path.dirname(config)
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(os.listdir(folder))
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder)
    inputs = tokenizer(["a stirring , funny film", "dull"], padding=True, return_tensors="pt")
    assert inputs["input_ids"][0, 0] == tokenizer.cls_token_id and tokenizer.pad_token_id == 0
    with torch.no_grad():
        assert model(**inputs).last_hidden_state.shape[-1] == 32
    served = mlflow.pyfunc.load_model(source)  # the pyfunc: mean-pooled embeddings
    assert served.predict(pd.DataFrame({"text": ["a stirring , funny film", "dull", ""]})).shape == (3, 32)


def _walk(folder: str) -> list[str]:
    return [os.path.join(where, name) for where, _, names in os.walk(folder) for name in names]


def test_the_corpus_holds_training_and_validation_texts_and_never_a_test_rows(pretrained):
    from tasks.data.loading import load_spec
    from tasks.data.splitting import split_parts
    from tasks.infra.params import load_params
    from tasks.pretraining.corpus import build_corpus

    settings, spec, _ = pretrained
    dataset = load_spec(spec)
    parts = split_parts(dataset, load_params(settings).split, seed=1)
    texts = dataset.frame["text"]
    leaky = settings.root / "leaky.txt"  # unlabelled texts that include two of the test rows
    leaky.write_text("\n".join([texts.iloc[parts.test[0]], "a new sentence", texts.iloc[parts.test[1]]]))

    corpus = build_corpus(dataset, parts, [leaky])

    test_texts = set(texts.iloc[parts.test].str.strip())
    assert len(parts.test) == 100 and not test_texts & set(corpus.texts)
    assert set(texts.iloc[parts.train].str.strip()) | set(texts.iloc[parts.val].str.strip()) <= set(corpus.texts)
    assert "a new sentence" in corpus.texts and corpus.dropped_as_test >= 2
    assert corpus.dataset_rows == 300 and len(corpus.texts) == len(set(corpus.texts))


def test_a_missing_texts_file_fails_in_one_line_and_registers_nothing(pretrained, registry):
    settings, spec, _ = pretrained

    done = run_mlpipe(settings, "pretrain", "--dataset", str(spec), "--texts", "unlabelled.txt,nowhere.txt")

    assert done.returncode != 0 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "no text file 'nowhere.txt'" in line
    assert [str(v.version) for v in registry.search_model_versions("name = 'sst2_small-encoder'")] == ["1"]


def test_the_encoder_is_refused_as_a_backbone_where_its_data_sets_test_rows_differ(pretrained):
    from tasks.data.loading import load_spec
    from tasks.data.splitting import split_parts, test_rows_digest
    from tasks.infra.errors import MlpipeError
    from tasks.infra.params import load_params
    from tasks.training.starting import start_of

    settings, spec, _ = pretrained
    dataset = load_spec(spec)
    parts = split_parts(dataset, load_params(settings).split, 42)
    own = (dataset.name, test_rows_digest(dataset, parts))
    assert start_of("pretrained", "text", "models:/sst2_small-encoder/1", None, settings, own)["version"] == "1"
    with pytest.raises(MlpipeError, match="was pretrained on sst2_small with other test rows"):
        start_of("pretrained", "text", "models:/sst2_small-encoder/1", None, settings, (dataset.name, "another"))


@pytest.mark.slow  # ~40 s; the fine-tuning path itself runs in make test (tests/test_pretrained.py)
def test_the_encoder_fine_tunes_on_its_data_set_as_a_backbone(pretrained, registry):
    settings, spec, _ = pretrained
    done = run_mlpipe(settings, "run", "--dataset", str(spec), "--models", "pretrained",
                      "--backbone", "models:/sst2_small-encoder/1", "--max-epochs", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (candidate,) = registry.search_runs(
        [registry.get_experiment_by_name("sst2_small").experiment_id],
        "tags.`mlpipe.role` = 'candidate' and tags.family = 'pretrained'",
    )
    encoder = registry.get_model_version("sst2_small-encoder", "1")
    assert candidate.data.tags["init"] == "models:/sst2_small-encoder/1"
    assert candidate.data.tags["init_from.run_id"] == encoder.run_id
