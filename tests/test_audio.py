"""The audio modality on real sound files: small WAV and FLAC files the tests write with soundfile,
and the shared spoken digits, read, checked, trained on, registered and served from files and arrays."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
import yaml
from conftest import SHARED_DATASETS, run_mlpipe

from tasks.data.loading import load_spec
from tasks.infra.errors import MlpipeError
from tasks.infra.settings import CODE_ROOT, Settings
from tasks.validation.checking import check_dataset

FSDD = SHARED_DATASETS / "fsdd"


def tone(hz: float, seconds: float, rate: int, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def write_folder(root: Path, clips: int = 6) -> Path:
    """Two classes of tones, low and high, in class sub-folders: 8 kHz 16-bit WAV mostly, and one of
    each of 16 kHz 24-bit, 8 kHz float, 8 kHz FLAC and 8 kHz stereo."""
    for label, hz in (("low", 220.0), ("high", 1200.0)):
        folder = root / label
        folder.mkdir(parents=True)
        for i in range(clips):
            soundfile.write(folder / f"{i}.wav", tone(hz + 10 * i, 0.4 + 0.05 * i, 8000), 8000, subtype="PCM_16")
        soundfile.write(folder / "wide.wav", tone(hz, 0.5, 16000), 16000, subtype="PCM_24")
        soundfile.write(folder / "float.wav", tone(hz, 0.5, 8000), 8000, subtype="FLOAT")
        soundfile.write(folder / "lossless.flac", tone(hz, 0.5, 8000), 8000)
        soundfile.write(folder / "stereo.wav", np.stack([tone(hz, 0.5, 8000)] * 2, axis=1), 8000)
    return root


def write_spec(path: Path, **keys) -> Path:
    spec = {"name": "sounds", "modality": "audio", "format": "audio-folder", "train": "sounds"} | keys
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_folder_of_mixed_rates_and_encodings_is_read_at_one_rate_and_length_said_in_the_report(tmp_path):
    write_folder(tmp_path / "sounds")
    dataset = load_spec(write_spec(tmp_path / "sounds.yaml"))

    assert dataset.audio == {"sample_rate": 8000, "clip_samples": 5200, "align": "start", "path_column": "path"}
    assert len(dataset.frame) == 20 and dataset.classes == ["high", "low"]
    assert dataset.feature_columns[0] == "s0" and len(dataset.feature_columns) == 5200
    notes = " ".join(dataset.read_notes)
    assert "2 at 16000 Hz resampled to 8000 Hz" in notes and "clips of 0.65 s" in notes
    assert dataset.frame["path"].iloc[0] == str(tmp_path.resolve() / "sounds" / "high" / "0.wav")  # absolute
    wide = dataset.frame.index[dataset.frame["path"].str.endswith("low/wide.wav")][0]
    assert dataset.frame.loc[wide, "source_rate_hz"] == 16000 and dataset.frame.loc[wide, "duration_s"] == 0.5
    samples = dataset.frame.loc[wide, dataset.feature_columns].to_numpy(dtype=np.float32)
    assert np.abs(samples[:3900] - tone(220.0, 0.5, 8000)[:3900]).max() < 0.02  # resampled, same tone
    assert not samples[4000:].any()  # padded with silence at the end

    centred = load_spec(
        write_spec(tmp_path / "centred.yaml", clip_seconds=0.25, clip_align="center", sample_rate=16000)
    )
    assert centred.audio["clip_samples"] == 4000 and len(centred.feature_columns) == 4000


def test_a_manifest_keeps_its_other_columns_and_its_sound_files_are_part_of_the_data_version(tmp_path):
    write_folder(tmp_path / "sounds")
    manifest = pd.DataFrame(
        {"file": [f"sounds/{c}/{i}.wav" for c in ("low", "high") for i in range(6)], "speaker": ["ann", "bob"] * 6}
    )
    manifest["label"] = [f.split("/")[1] for f in manifest["file"]]
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    spec = write_spec(tmp_path / "listed.yaml", format="csv", train="manifest.csv", path_column="file")

    first = load_spec(spec)
    assert first.frame["speaker"].tolist() == manifest["speaker"].tolist()
    assert "speaker" not in first.feature_columns
    soundfile.write(
        tmp_path / "sounds" / "low" / "3.wav", tone(300.0, 0.5, 8000), 8000
    )  # a file changes, not the table
    assert load_spec(spec).data_hash != first.data_hash


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("garbage", "low/0.wav is not a readable sound file"),
        ("truncated", "low/0.wav is truncated: its header promises"),
        ("missing", "row 0: 'sounds/low/0.wav' does not exist"),
        ("outside", "row 0: '../elsewhere.wav' leaves the data folder"),
        ("absolute", "leaves the data folder"),
        ("empty", "manifest.csv has no rows"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_in_one_line_naming_it(damage, message, tmp_path):
    data = tmp_path / "data"  # the manifest's folder: its files must lie under it
    write_folder(data / "sounds")
    manifest = pd.DataFrame({"file": [f"sounds/low/{i}.wav" for i in range(6)] + ["sounds/high/0.wav"] * 6})
    manifest["label"] = ["low"] * 6 + ["high"] * 6
    target = data / "sounds" / "low" / "0.wav"
    if damage == "garbage":
        target.write_bytes(b"RIFF not a wave at all" * 10)
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[:2000])
    elif damage == "missing":
        target.unlink()
    elif damage == "outside":
        soundfile.write(tmp_path / "elsewhere.wav", tone(100, 0.5, 8000), 8000)
        manifest.loc[0, "file"] = "../elsewhere.wav"
    elif damage == "absolute":  # under the folder, but a copy of the data set would not find it
        manifest.loc[0, "file"] = str(target)
    else:
        manifest = manifest.head(0)
    manifest.to_csv(data / "manifest.csv", index=False)
    spec = write_spec(data / "listed.yaml", format="csv", train="manifest.csv", path_column="file")
    with pytest.raises(MlpipeError) as refused:
        load_spec(spec)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def _damaged(tmp_path: Path, name: str, samples: np.ndarray, rate: int) -> Path:
    write_folder(tmp_path / "sounds")
    soundfile.write(tmp_path / "sounds" / "low" / name, samples, rate, subtype="FLOAT")
    return write_spec(tmp_path / "sounds.yaml")


@pytest.mark.parametrize(
    ("check", "name", "samples", "rate", "words"),
    [
        ("silent_clips", "quiet.wav", np.zeros(4000, np.float32), 8000, "1 of 21 clips are silent or empty"),
        ("clipped_clips", "loud.wav", np.clip(tone(220, 0.5, 8000, 3.0), -1, 1), 8000, "1 of 21 clips are clipped"),
        ("sample_rates", "odd.wav", tone(220, 0.5, 44100), 44100, "at a rate more than 4x off the usual 8000 Hz"),
        ("clip_durations", "long.wav", tone(220, 70.0, 8000), 8000, "lasts 70.00 s, more than max_clip_seconds 60"),
    ],
)
def test_a_bad_clip_fails_its_check_naming_the_file(check, name, samples, rate, words, tmp_path):
    params = {"checks": {"max_clipped_fraction": 0.0}} if check == "clipped_clips" else {}
    from tasks.infra.validation_params import ValidationParams

    dataset = load_spec(_damaged(tmp_path, name, samples, rate))
    report = check_dataset(dataset, Settings(root=tmp_path), ValidationParams(**params))
    failed = [line for line in report.failures if line.startswith(f"{check}:")]
    assert not report.success and len(failed) == 1
    assert words in failed[0] and f"low/{name}" in failed[0]


@pytest.fixture
def spoken_digits(workspace):
    """Three of the shared data set's speakers, 5 recordings of each digit each; its own test split."""
    spec = {"name": "digits_spoken", "modality": "audio", "format": "csv", "path_column": "file"}
    for part in ("train", "test"):
        rows = pd.read_csv(FSDD / f"fsdd_{part}.csv")
        rows = (
            rows[rows["speaker"].isin(["george", "jackson", "lucas"])]
            .groupby(["digit", "speaker"])
            .head(5 if part == "train" else 2)
        )
        for file in rows["file"]:  # beside the manifest: its files must lie under its folder
            (workspace / file).parent.mkdir(exist_ok=True)
            (workspace / file).write_bytes((FSDD / file).read_bytes())
        rows.to_csv(workspace / f"spoken_{part}.csv", index=False)
        spec[part] = f"spoken_{part}.csv"
    spec["label_column"] = "digit"
    params = yaml.safe_load((CODE_ROOT / "params.yaml").read_text())
    params["selection"]["cv_below"] = 0  # chosen on its 15 validation rows: cross-validation is tested elsewhere
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    (workspace / "spoken.yaml").write_text(yaml.safe_dump(spec))
    return workspace / "spoken.yaml"


def test_spoken_digits_are_trained_on_registered_and_served_from_files_and_from_arrays(
    workspace, spoken_digits, tmp_path, prefect_api, monkeypatch
):
    settings = Settings(root=workspace)
    done = run_mlpipe(
        settings, "run", "--dataset", str(spoken_digits), "--models", "cnn,rnn,transformer", "--max-epochs", "1"
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(run_mlpipe(settings, "compare", "--dataset", "digits_spoken", "--format", "json").stdout)
    assert {"cnn", "rnn", "transformer", "baseline"} <= {row["family"] for row in rows}
    chosen = next(row for row in rows if row["selected"])

    # Batch inference on a manifest of files, paths relative to the manifest's folder.
    test = pd.read_csv(workspace / "spoken_test.csv")
    batch = tmp_path / "batch"
    batch.mkdir()
    for f in test["file"]:
        (batch / Path(f).name).write_bytes((workspace / f).read_bytes())
    test.assign(file=[Path(f).name for f in test["file"]])[["file"]].to_csv(batch / "clips.csv", index=False)
    done = run_mlpipe(settings, "predict", "--dataset", "digits_spoken", "--input", str(batch / "clips.csv"),
                      "--output", str(tmp_path / "labelled.csv"), "--alias", "challenger")  # fmt: skip
    assert done.returncode == 0, done.stderr
    from_files = pd.read_csv(tmp_path / "labelled.csv")["predicted_label"].tolist()
    accuracy = float(np.mean(np.asarray(from_files) == test["digit"].to_numpy()))
    assert accuracy == pytest.approx(chosen["test_accuracy"], abs=1e-6)  # the same labels as the evaluation

    # A fresh process, arrays of samples in an `audio` column: the same labels again.
    script = f"""
import json, sys, mlflow, pandas as pd, soundfile
mlflow.set_tracking_uri({Settings(root=workspace).tracking_uri!r})
model = mlflow.pyfunc.load_model("models:/digits_spoken@challenger")
clips = [soundfile.read(f, dtype="float32")[0] for f in {[str(workspace / f) for f in test["file"]]!r}]
print(json.dumps([int(x) for x in model.predict(pd.DataFrame({{"audio": clips}}))["label"]]))
"""
    served = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert served.returncode == 0, served.stderr
    assert json.loads(served.stdout.splitlines()[-1]) == from_files

    # Batch inference's monitoring reads the files again: much louder clips are far from the training ones.
    from flows.inference import batch_inference

    monkeypatch.setenv("MLPIPE_ROOT", str(workspace))
    loud = workspace / "outputs" / "loud"
    loud.mkdir(parents=True)
    for f in test["file"]:
        samples, rate = soundfile.read(workspace / f, dtype="float32")
        soundfile.write(loud / Path(f).name, np.clip(samples * 3, -1, 1), rate, subtype="FLOAT")
    test.assign(file=[Path(f).name for f in test["file"]])[["file"]].to_csv(loud / "clips.csv", index=False)
    summary = batch_inference("digits_spoken", "outputs/loud/clips.csv", "outputs/loud-labelled.csv", "challenger")
    checks = {c["check"]: c for c in summary["monitoring"]["checks"]}
    assert checks["drift.feature_psi"]["observed"] > 0.25 and "'rms'" in checks["drift.feature_psi"]["message"]


@pytest.mark.parametrize("listed", [False, True], ids=["folder", "manifest"])
def test_data_add_versions_the_sound_files_with_the_table_that_lists_them(listed, workspace, tmp_path):
    write_folder(tmp_path / "incoming" / "sounds")
    source, keys = tmp_path / "incoming" / "sounds", []
    if listed:
        files = sorted(str(f.relative_to(tmp_path / "incoming")) for f in source.rglob("*.*"))
        manifest = pd.DataFrame({"clip": files, "label": [Path(f).parent.name for f in files]})
        manifest.to_csv(tmp_path / "incoming" / "clips.csv", index=False)
        source, keys = tmp_path / "incoming" / "clips.csv", ["--path-column", "clip"]
    settings = Settings(root=workspace)
    done = run_mlpipe(settings, "data", "add", str(source), "--name", "tones", "--modality", "audio", *keys)
    assert done.returncode == 0, done.stderr
    assert "tones: version" in done.stdout and "(20 rows)" in done.stdout

    from tasks.data.loading import load

    (tmp_path / "incoming").rename(tmp_path / "gone")  # the project's copy is all it reads now
    dataset = load("tones", settings)
    assert len(dataset.frame) == 20 and dataset.audio["sample_rate"] == 8000
    copied = [f for f in (workspace / "data" / "tones").rglob("*") if f.suffix in (".wav", ".flac")]
    assert len(copied) == 20


def test_the_log_mel_front_end_is_torch_stfts_spectrum_and_exports_to_onnx(tmp_path):
    import torch

    from models.audio import AudioCNN, LogMel
    from tasks.compression import onnx_export

    front = LogMel(16000, mean=[0.0] * 40, std=[1.0] * 40).eval()
    waves = torch.from_numpy(np.stack([tone(440, 0.5, 16000), tone(3000, 0.5, 16000)]))
    power = torch.stft(waves, front.n_fft, front.hop, front.win_length, torch.hann_window(front.win_length),
                       return_complex=True).abs().square()  # fmt: skip
    expected = torch.log(torch.einsum("bft,fm->bmt", power, front.filters) + 1e-6)
    assert torch.allclose(front(waves), expected, atol=1e-3)
    assert front(waves)[0].mean(dim=1).argmax() < front(waves)[1].mean(dim=1).argmax()  # the higher tone, higher

    network = AudioCNN(2, 16000, [0.0] * 40, [1.0] * 40).eval()  # the compression student's family
    exported = onnx_export.export(network, waves[:1].numpy(), tmp_path / "audio.onnx")
    with torch.no_grad():
        reference = torch.softmax(network(waves), dim=1).numpy()
    onnx_export.check_against(reference, onnx_export.session(exported).probabilities(waves.numpy()), "audio in ONNX")


def test_a_run_on_a_set_with_a_silent_clip_stops_in_one_line_and_registers_nothing(workspace):
    write_folder(workspace / "sounds")
    soundfile.write(workspace / "sounds" / "low" / "quiet.wav", np.zeros(4000, np.float32), 8000)
    settings = Settings(root=workspace)
    done = run_mlpipe(settings, "run", "--dataset", str(write_spec(workspace / "sounds.yaml")), "--models", "cnn")
    assert done.returncode != 0
    (line,) = done.stderr.strip().splitlines()[-1:]
    assert line.startswith("error:") and "silent_clips: 1 of 21 clips are silent" in line and "low/quiet.wav" in line
    import mlflow

    assert mlflow.MlflowClient(settings.tracking_uri).search_registered_models() == []


def test_a_starting_suite_bounds_each_clips_figures_and_passes_its_own_data(tmp_path):
    from tasks.validation.suites import build_suite

    write_folder(tmp_path / "sounds")
    dataset = load_spec(write_spec(tmp_path / "sounds.yaml"))
    suite = build_suite(dataset)
    between = [e for e in suite["expectations"] if e["type"] == "expect_column_values_to_be_between"]
    bounded = {e["kwargs"]["column"] for e in between}
    assert bounded == {"duration_s", "source_rate_hz", "rms", "peak", "clipped_share"}
    assert len(suite["expectations"]) < 30  # not one per sample column
    settings = Settings(root=tmp_path)
    settings.expectation_suite_path("sounds").parent.mkdir(parents=True, exist_ok=True)
    settings.expectation_suite_path("sounds").write_text(json.dumps(suite))
    assert check_dataset(dataset, settings).success


def test_served_arrays_may_be_integer_pcm_or_channels_first_but_never_a_path():
    from models.waveforms import from_arrays

    info = {"sample_rate": 8000, "clip_samples": 4000, "align": "start"}
    clip = tone(220, 0.5, 8000)
    pcm = np.round(clip * 32767).astype(np.int16)
    stereo = np.stack([clip, clip])  # (channels, samples)
    rows = from_arrays([clip, pcm, stereo, stereo.T, clip.tolist()], info)
    assert np.abs(rows - clip).max() < 1e-3
    with pytest.raises(ValueError, match="row 0 of the audio column holds str, not samples"):
        from_arrays(["/etc/passwd"], info)


def test_drift_reads_a_new_version_of_another_clip_length_in_the_champions_format(tmp_path):
    from tasks.validation.drift import compare, profile

    write_folder(tmp_path / "sounds")
    champion = load_spec(write_spec(tmp_path / "sounds.yaml"))
    longer = load_spec(write_spec(tmp_path / "longer.yaml", clip_seconds=1.0, sample_rate=16000))
    same = {c.name: c for c in compare(profile(champion), champion)}
    moved = {c.name: c for c in compare(profile(champion), longer)}
    assert same["drift.feature_psi"].observed < 0.01  # the same clips, the same figures
    assert moved["drift.feature_psi"].observed < 0.01  # read again as the champion reads them: no drift
