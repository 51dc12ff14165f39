"""Batch inference with a registered model: a file of raw rows in, the same rows with a label out."""

import csv
import os
from pathlib import Path

import pandas as pd

from tasks.infra.errors import MlpipeError
from tasks.infra.files import replaced_whole
from tasks.infra.settings import Settings

READERS = {
    ".csv": lambda p: pd.read_csv(p),
    ".tsv": lambda p: pd.read_csv(p, sep="\t", quoting=csv.QUOTE_NONE),
    ".parquet": pd.read_parquet,
    ".jsonl": lambda p: pd.read_json(p, lines=True),
}
WRITERS = {
    ".csv": lambda f, p: f.to_csv(p, index=False),
    ".tsv": lambda f, p: f.to_csv(p, sep="\t", index=False, quoting=csv.QUOTE_NONE, escapechar="\\"),
    ".parquet": lambda f, p: f.to_parquet(p, index=False),
    ".jsonl": lambda f, p: f.to_json(p, orient="records", lines=True),
}


PREDICTIONS_DIR = "MLPIPE_PREDICTIONS_DIR"  # where the `predict` deployment may write, if not outputs/
INPUT_ROOT = "MLPIPE_INPUT_ROOT"  # where the `predict` deployment may read, if not the project
MAX_INPUT_BYTES = 4 * 1024**3  # the largest file a deployment's run reads


def confined_output(path: str | Path, settings: Settings) -> Path:
    """The output path of a deployment's run, which anyone who reaches the Prefect API may set:
    under outputs/ (or MLPIPE_PREDICTIONS_DIR) only, never the data or the registry's files,
    after following links. Relative paths are relative to the project."""
    allowed = (settings.root / (os.environ.get(PREDICTIONS_DIR) or settings.outputs_dir)).resolve()
    target = (settings.root / path).resolve()
    protected = [settings.data_dir, settings.mlflow_dir]
    if not target.is_relative_to(allowed) or any(target.is_relative_to(p.resolve()) for p in protected):
        raise MlpipeError(
            f"{path}: predictions are written under {allowed} only, never under data/ or mlflow/ "
            f"(set {PREDICTIONS_DIR} for another folder)"
        )
    return target


def confined_input(path: str | Path, settings: Settings) -> Path:
    """The input of a deployment's run, which anyone who reaches the Prefect API may name: a
    regular file under the project (or MLPIPE_INPUT_ROOT), after following links, outside its
    hidden folders (.prefect/ holds the cache secret, .git/ and .dvc/ their config) and mlflow/,
    and at most MAX_INPUT_BYTES. Relative paths are relative to the project."""
    allowed = Path(os.environ.get(INPUT_ROOT) or settings.root).resolve()
    target = (settings.root / path).resolve()
    inside = target.relative_to(allowed).parts if target.is_relative_to(allowed) else None
    hidden = inside is not None and any(part.startswith(".") for part in inside)
    if inside is None or hidden or target.is_relative_to(settings.mlflow_dir.resolve()):
        raise MlpipeError(
            f"{path}: a deployment reads input under {allowed} only, never hidden folders or mlflow/ "
            f"(set {INPUT_ROOT} for another folder)"
        )
    if target.exists() and not target.is_file():
        raise MlpipeError(f"{path}: not a regular file")
    if target.exists() and target.stat().st_size > MAX_INPUT_BYTES:
        raise MlpipeError(f"{path}: {target.stat().st_size:,} bytes, over the {MAX_INPUT_BYTES:,} a run reads")
    return target


def read_rows(path: Path) -> pd.DataFrame:
    if path.suffix not in READERS:
        raise MlpipeError(f"{path}: input must be one of {', '.join(READERS)}")
    if not path.exists():
        raise MlpipeError(f"{path} does not exist")
    try:
        frame = READERS[path.suffix](path)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise MlpipeError(f"{path} cannot be read: {' '.join(str(error).split())}") from None
    if frame.empty:
        raise MlpipeError(f"{path} has no rows")
    return frame


def predict_file(
    dataset: str, input_path: Path, output_path: Path, settings: Settings, alias: str = "champion"
) -> dict:
    """Predict every row of input_path with models:/<dataset>@<alias>; write rows + label + probability."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from tasks.registry.store import connect

    if output_path.suffix not in WRITERS:
        raise MlpipeError(f"{output_path}: output must be one of {', '.join(WRITERS)}")
    rows = read_rows(input_path)
    if connect(settings, dataset, create=False) is None:
        raise MlpipeError(f"no model for data set {dataset!r} in {settings.shown_tracking_uri}: run `mlpipe run` first")
    client = mlflow.MlflowClient()
    try:
        version = client.get_model_version_by_alias(dataset, alias)
    except MlflowException:
        raise MlpipeError(f"{dataset} has no @{alias} version") from None
    try:  # a member file that would run code, or holds what mlpipe never writes, is refused there
        model = mlflow.pyfunc.load_model(f"models:/{dataset}/{version.version}")
    except ValueError as error:
        raise MlpipeError(f"{dataset} v{version.version} cannot be loaded: {error}") from None
    schema = model.metadata.get_input_schema()
    missing = [c for c in (schema.input_names() if schema else []) if c not in rows.columns]
    if missing:
        raise MlpipeError(
            f"{input_path} does not fit {dataset} v{version.version}: "
            f"{len(missing)} columns missing ({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})"
        )
    try:
        predicted = model.predict(_sound_files_resolved(rows, model, input_path))
    except (MlflowException, ValueError) as error:  # ValueError: a sound file that cannot be read
        message = str(error).strip().splitlines()[0][:200]
        raise MlpipeError(f"{input_path} does not fit {dataset} v{version.version}: {message}") from None
    result = pd.concat([rows.reset_index(drop=True), predicted.add_prefix("predicted_")], axis=1)
    with replaced_whole(output_path) as partial:  # a reader never sees half a file
        WRITERS[output_path.suffix](result, partial)
    counts = predicted["label"].astype(str).value_counts().to_dict()
    return {
        "dataset": dataset,
        "version": str(version.version),
        "alias": alias,
        "run_id": version.run_id,
        "output": str(output_path),
        "rows": len(result),
        "labels": counts,
    }


def _sound_files_resolved(rows: pd.DataFrame, model, input_path: Path) -> pd.DataFrame:
    """For a model of sound, the rows with their files made absolute (tasks/data/audio.py)."""
    from tasks.data.audio import with_absolute_files
    from tasks.registry.packaging import AUDIO_PATH_COLUMN

    column = (model.metadata.metadata or {}).get(AUDIO_PATH_COLUMN)
    return rows if column is None else with_absolute_files(rows, column, input_path)
