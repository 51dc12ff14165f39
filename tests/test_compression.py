"""Compression's parts on a trained CNN and RNN of digits: ONNX export checked in onnxruntime,
int8 variants, and what each costs on this CPU."""

import numpy as np
import pandas as pd
import pytest
import torch
from payloads import Payload

from models.preprocessing import model_inputs
from tasks.compression import measure, onnx_export, quantize
from tasks.infra.errors import MlpipeError


@pytest.fixture(scope="module")
def test_inputs(digits, digits_split):
    return digits.frame.iloc[digits_split.test]


def _torch_logits(network, inputs: np.ndarray) -> np.ndarray:
    with torch.no_grad(), quantize.without_transformer_fast_path():
        return network(torch.as_tensor(inputs)).numpy()


def test_the_onnx_export_gives_pytorchs_labels_and_probabilities(trained_cnn, test_inputs, tmp_path):
    inputs = model_inputs(test_inputs, trained_cnn.preprocessing).astype(np.float32)
    path = onnx_export.export(trained_cnn.network, inputs[:1], tmp_path / "cnn.onnx")
    session = onnx_export.session(path, threads=1)

    largest = onnx_export.check_against(_torch_logits(trained_cnn.network, inputs), session.logits(inputs), "ONNX")
    assert largest < onnx_export.TOLERANCE
    # Any batch size: the batch axis is dynamic.
    assert session.logits(inputs[:3]).shape == (3, 10)


def test_a_check_that_finds_other_labels_refuses_the_variant():
    reference = np.array([[2.0, 0.0], [0.0, 2.0]])
    with pytest.raises(MlpipeError, match="ONNX int8 differs from the PyTorch model on the test rows: 1 labels"):
        onnx_export.check_against(reference, np.array([[2.0, 0.0], [2.0, 0.0]]), "ONNX int8")


def test_int8_shrinks_the_linear_layers_and_keeps_the_labels(trained_cnn, test_inputs, tmp_path):
    network = trained_cnn.network
    inputs = model_inputs(test_inputs, trained_cnn.preprocessing).astype(np.float32)
    quantized = quantize.quantized_network(network)
    agree = (_torch_logits(quantized, inputs).argmax(1) == _torch_logits(network, inputs).argmax(1)).mean()
    assert agree > 0.98
    dynamic = "torch.ao.nn.quantized.dynamic"
    assert any(type(m).__module__.startswith(dynamic) for m in quantized.modules())
    assert not any(type(m).__module__.startswith(dynamic) for m in network.modules())  # a copy: the original stays

    fp32 = onnx_export.export(network, inputs[:1], tmp_path / "cnn.onnx")
    int8 = quantize.quantized_onnx(fp32, tmp_path / "cnn-int8.onnx")
    assert measure.folder_size(int8) < measure.folder_size(fp32) / 2


def test_a_quantized_lstm_is_saved_as_plain_tensors_and_loaded_as_the_served_model_loads_it(tmp_path):
    from models.networks import build_network
    from models.quantized import plain_state
    from tasks.registry.pyfunc_model import UntrustedMember, _load

    kwargs = {"in_channels": 1, "width": 8, "num_classes": 10, "hidden": 8, "layers": 1}
    network = build_network("image", "rnn", **kwargs).eval()
    torch.save(plain_state(quantize.quantized_network(network)), tmp_path / "member_0.pt")
    member = {"kind": "network", "quantization": "int8-dynamic", "family": "rnn", "network_kwargs": kwargs,
              "preprocessing": {"modality": "image"}}  # fmt: skip

    loaded = _load(member, str(tmp_path / "member_0.pt"))  # with weights_only=True: no pickle runs

    inputs = np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)
    assert np.array_equal(_torch_logits(loaded, inputs), _torch_logits(quantize.quantized_network(network), inputs))

    # The packed LSTM weights of before (TorchScript objects), or a file whose unpickling runs a command: refused.
    marker = tmp_path / "ran"
    for content in (quantize.quantized_network(network).state_dict(), {"weight": Payload(marker)}):
        torch.save(content, tmp_path / "member_0.pt")
        with pytest.raises(UntrustedMember, match=r"^member_0.pt is not plain tensors: run `mlpipe compress` again$"):
            _load(member, str(tmp_path / "member_0.pt"))
    assert not marker.exists()

    # An older cnn's int8 file is quantized tensors, which weights_only reads: refused all the same.
    cnn = {**member, "family": "cnn", "network_kwargs": {"in_channels": 1, "num_classes": 10}}
    torch.save(
        quantize.quantized_network(build_network("image", "cnn", **cnn["network_kwargs"])).state_dict(),
        tmp_path / "cnn.pt",
    )
    with pytest.raises(UntrustedMember, match=r"^cnn.pt is not plain tensors"):
        _load(cnn, str(tmp_path / "cnn.pt"))


def test_measure_reports_size_latency_and_throughput(trained_cnn, test_inputs, tmp_path):
    import time

    inputs = model_inputs(test_inputs, trained_cnn.preprocessing).astype(np.float32)
    parameters = sum(p.numel() for p in trained_cnn.network.parameters())
    # Sizes on disk: a file's bytes, and a folder's as the sum of its files' (an MLflow model's).
    torch.save(trained_cnn.network.state_dict(), tmp_path / "cnn.pt")
    (tmp_path / "model" / "data").mkdir(parents=True)
    (tmp_path / "model" / "data" / "a.bin").write_bytes(b"x" * 1000)
    (tmp_path / "model" / "MLmodel").write_bytes(b"y" * 234)
    assert measure.folder_size(tmp_path / "model") == 1234
    size = measure.folder_size(tmp_path / "cnn.pt")
    assert size == len((tmp_path / "cnn.pt").read_bytes()) > 4 * parameters  # float32 weights and more
    # Every call timed here as well, inside measure's own timing of it.
    one_row, batches = [], []

    def predict(x):
        started = time.perf_counter()
        logits = _torch_logits(trained_cnn.network, x)
        (one_row if len(x) == 1 else batches).append((len(x), time.perf_counter() - started))
        return logits

    cost = measure.measure(predict, inputs, size, parameters)

    assert (cost.size_bytes, cost.parameters) == (size, parameters)
    # Latency: the batch-1 calls after the warm-up, their median and 95th percentile in ms.
    single = [seconds * 1e3 for _, seconds in one_row[measure.WARMUP :]]
    assert len(single) == measure.SINGLE_ROWS and {n for n, _ in one_row} == {1}
    p50, p95 = np.percentile(single, [50, 95])  # each call as timed here: a little less than measure's
    assert 0 < p50 <= cost.p50_ms + 1e-4 and cost.p50_ms < p50 + 1.0  # (measure rounds to 4 decimals)
    assert p95 <= cost.p95_ms + 1e-4 and cost.p50_ms <= cost.p95_ms
    # Throughput: the rows of the batches of 256 done in THROUGHPUT_SECONDS, or a little more.
    assert {n for n, _ in batches} == {measure.BATCH}
    done = len(batches) * measure.BATCH
    longest = max(seconds for _, seconds in batches)
    assert done / (measure.THROUGHPUT_SECONDS + longest + 0.2) <= cost.rows_per_second <= done
    # and as many as the time one batch takes here allows, give or take what the loop adds.
    per_batch = sum(seconds for _, seconds in batches) / len(batches)
    assert 0.5 * measure.BATCH / per_batch <= cost.rows_per_second <= measure.BATCH / per_batch
    assert cost.metrics() == {
        "compression/size_bytes": size,
        "compression/parameters": parameters,
        "compression/p50_ms": cost.p50_ms,
        "compression/p95_ms": cost.p95_ms,
        "compression/rows_per_second": cost.rows_per_second,
    }


def test_the_soft_loss_is_zero_when_the_student_matches_the_teacher_and_weights_mix_the_two():
    from models.classifier import Classifier

    classifier = Classifier(torch.nn.Identity(), num_classes=3, temperature=2.0, soft_weight=0.5)
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]])
    teacher = torch.softmax(logits, dim=1)
    assert float(classifier.soft_loss(logits, teacher)) == pytest.approx(0.0, abs=1e-6)
    other = torch.softmax(-logits, dim=1)
    assert float(classifier.soft_loss(logits, other)) > 0.1
    labels = torch.tensor([0, 1])
    hard = float(classifier.loss(logits, labels))
    mixed = float(classifier._step((logits, labels, other), "train"))
    assert mixed == pytest.approx(0.5 * hard + 0.5 * float(classifier.soft_loss(logits, other)))


def test_a_small_student_learns_from_the_teachers_probabilities(trained_cnn, digits, digits_split, tmp_path):
    from tasks.compression.distill import distill
    from tasks.types import TrainConfig

    teacher = trained_cnn.predict_proba(digits.frame.iloc[digits_split.train])
    config = TrainConfig(family="cnn", max_epochs=4, batch_size=64, patience=5, seed=1,
                         optimiser={"learning_rate": 0.005}, network={"channels": 8})  # fmt: skip

    student = distill(digits, digits_split, teacher, config, tmp_path / "student", temperature=4.0, soft_weight=0.7)

    teacher_size = sum(p.numel() for p in trained_cnn.network.parameters())
    assert sum(p.numel() for p in student.network.parameters()) < teacher_size / 2
    test = digits.frame.iloc[digits_split.test]
    accuracy = (student.predict_proba(test).argmax(1) == digits.class_indices(digits_split.test)).mean()
    assert accuracy > 0.5  # ten classes; a bench, not this test, says how close it comes to the teacher
    with pytest.raises(ValueError, match="do not fit the training rows"):
        distill(digits, digits_split, teacher[:5], config, tmp_path / "bad", temperature=4.0, soft_weight=0.7)


def test_a_variant_that_agrees_with_the_champion_is_non_inferior_and_one_that_loses_rows_is_not():
    from tasks.compression.gate import non_inferior

    rng = np.random.default_rng(0)
    champion = rng.random(2000) < 0.95
    same = non_inferior(champion.copy(), champion, margin=0.005)
    assert same.passed and same.delta == 0 and same.tags()["compression.decision"] == "non-inferior"

    worse = champion.copy()
    worse[np.flatnonzero(worse)[:40]] = False  # 2 points lost
    verdict = non_inferior(worse, champion, margin=0.005)
    assert not verdict.passed and verdict.delta == pytest.approx(-0.02)
    assert (
        verdict.reason.startswith("not registered: test/accuracy 0.9")
        and "it may lose more than 0.005" in verdict.reason
    )
    with pytest.raises(ValueError, match="same, non-empty test rows"):
        non_inferior(worse[:10], champion, margin=0.005)


@pytest.fixture(scope="module")
def compressed(prefect_api, registered, tmp_path_factory):
    """`compression_pipeline` on a copy of the registry, whose digits champion is v2 (a CNN of 16
    channels), once for this module's tests, which run in order."""
    import shutil

    from flows.compression import compression_pipeline
    from tasks.infra.settings import Settings

    source, _ = registered
    root = tmp_path_factory.mktemp("compress") / "project"
    shutil.copytree(source.root, root, symlinks=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLPIPE_ROOT", str(root))
        yield Settings(root=root), compression_pipeline(dataset="digits", max_epochs=4, seed=1)


def test_compress_weighs_every_variant_and_registers_a_non_inferior_one_as_compact(compressed):
    import mlflow

    settings, result = compressed
    client = mlflow.MlflowClient(settings.tracking_uri)
    names = [row["variant"] for row in result.rows]
    assert names == ["champion", "student", "student-int8", "student-onnx", "student-onnx-int8",
                     "champion-int8", "champion-onnx", "champion-onnx-int8"]  # fmt: skip
    champion = result.rows[0]
    assert champion["decision"] == "reference" and champion["size_bytes"] > 0
    for row in result.rows:
        assert 0 < row["p50_ms"] <= row["p95_ms"] and row["rows_per_second"] > 0
    assert result.version is not None, result.reason
    version = client.get_model_version_by_alias("digits", "compact")
    assert str(version.version) == result.version and version.tags["compact_of"] == result.champion_version == "2"
    assert version.tags["compression.decision"] == "non-inferior" and float(version.tags["compression.ci_low"]) > -0.005
    chosen = next(row for row in result.rows if row["variant"] == version.tags["variant"])
    assert chosen["size_bytes"] < champion["size_bytes"] and chosen["p50_ms"] < champion["p50_ms"]
    for tag in ("family", "data_hash", "git_sha", "prefect_flow_run_id", "validation"):
        assert version.tags.get(tag), tag
    # The champion is untouched; every variant is a child run of the compression run.
    assert str(client.get_model_version_by_alias("digits", "champion").version) == "2"
    children = mlflow.search_runs(
        experiment_ids=[client.get_run(result.parent_run_id).info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'",
        output_format="list",
    )
    assert sorted(r.data.tags["variant"] for r in children) == sorted(names)


def test_the_compact_version_predicts_from_the_command_line_and_shows_in_compare(compressed, tmp_path):
    import json

    from conftest import run_mlpipe

    from tasks.data.loading import load

    settings, result = compressed
    rows = load("digits", settings).frame.drop(columns=["label"]).head(20)
    source, target = settings.root / "new.csv", settings.root / "outputs" / "compact.csv"
    rows.to_csv(source, index=False)
    done = run_mlpipe(settings, "predict", "--dataset", "digits", "--alias", "compact",
                      "--input", str(source), "--output", str(target))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"labelled by digits v{result.version}" in done.stdout
    labelled = pd.read_csv(target)
    assert len(labelled) == 20 and labelled["predicted_label"].notna().all()

    shown = run_mlpipe(settings, "compare", "--dataset", "digits", "--format", "json")
    board = json.loads(shown.stdout)
    variants = [r for r in board if r["variant"]]
    assert {r["variant"] for r in variants} == {row["variant"] for row in result.rows}
    compact = next(r for r in variants if r["registered_version"] == int(result.version))
    assert "compact" in compact["aliases"] and compact["size_bytes"] > 0 and compact["p50_ms"] > 0
    table = run_mlpipe(settings, "compare", "--dataset", "digits")
    assert "size_KB" in table.stdout and "p50_ms" in table.stdout

    refused = run_mlpipe(settings, "compress", "--dataset", "digits", "--family", "mlp", "--margin", "0.01")
    (line,) = refused.stderr.strip().splitlines()  # one line, and nothing ran
    assert refused.returncode != 0 and line.startswith("error: Invalid value for '--family'") and "'cnn'" in line


def test_an_identical_rerun_registers_nothing_new_and_a_variant_that_may_lose_is_not_registered(compressed):
    import mlflow

    from flows.compression import compression_pipeline
    from tasks.registry.aliases import move_champion

    settings, result = compressed
    again = compression_pipeline(dataset="digits", max_epochs=4, seed=1)
    assert again.reused and again.version == result.version

    client = mlflow.MlflowClient(settings.tracking_uri)
    versions = len(client.search_model_versions("name = 'digits'"))
    # A zero margin: only a variant whose lower bound is above 0 (surely better) would pass.
    strict = compression_pipeline(dataset="digits", max_epochs=1, seed=2, margin=0.0)
    assert strict.version is None and "no variant is non-inferior" in strict.reason
    assert {row["decision"] for row in strict.rows[1:]} == {"inferior"}
    assert len(client.search_model_versions("name = 'digits'")) == versions  # the registry as it was
    aliases = client.get_registered_model("digits").aliases
    assert str(aliases["champion"]) == "2" and str(aliases["compact"]) == result.version

    # Another champion: @compact was judged against v2, so it goes until compress runs again.
    move_champion(client, "digits", "1")
    assert set(client.get_registered_model("digits").aliases) == {"champion", "challenger"}


def test_the_student_is_the_widest_of_its_family_that_fits_the_champions_budget(digits):
    from tasks.compression.student import parameters_of, sized
    from tasks.types import TrainConfig

    config = TrainConfig(family="cnn", max_epochs=1, batch_size=64, patience=1, seed=1, network={"channels": 32})
    full = parameters_of(digits, config)
    student = sized(digits, config, full // 4)
    assert parameters_of(digits, student) <= full // 4 < parameters_of(digits, sized(digits, config, full // 2))
    assert student.network["channels"] == 12 and config.network["channels"] == 32  # 32 x 0.375; a copy
    transformer = TrainConfig(family="transformer", max_epochs=1, batch_size=64, patience=1, seed=1,
                              network={"dim": 64, "heads": 4, "patch": 2})  # fmt: skip
    assert sized(digits, transformer, 10_000).network["dim"] % 4 == 0  # a multiple of its heads
    assert sized(digits, config, 1).network["channels"] == 4  # nothing fits: the smallest
