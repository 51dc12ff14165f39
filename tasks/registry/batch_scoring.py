"""Batch inference with a registered model: a file of raw rows in, the same rows with a label out."""

import collections
import csv
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.infra.errors import MlpipeError
from tasks.infra.files import replaced_whole
from tasks.infra.settings import Settings

SUFFIXES = (".csv", ".tsv", ".parquet", ".jsonl")
CHUNK_ROWS = 50_000  # rows read, labelled and written at a time: memory stays flat however long the file
TSV = {"sep": "\t", "quoting": csv.QUOTE_NONE}


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


def check_input(path: Path) -> None:
    """A file predict can read, or one line saying why not."""
    if path.suffix not in SUFFIXES:
        raise MlpipeError(f"{path}: input must be one of {', '.join(SUFFIXES)}")
    if not path.exists():
        raise MlpipeError(f"{path} does not exist")


def read_chunks(path: Path, text_columns: list[str] = ()) -> Iterator[pd.DataFrame]:
    """The rows of a .csv, .tsv, .parquet (by row group batches) or .jsonl file, CHUNK_ROWS at a
    time, empty chunks left out. `text_columns` are read as text whatever a chunk's values look
    like (ids, codes): each chunk's types are guessed from its own rows."""
    check_input(path)
    text = {column: str for column in text_columns}
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            chunks = (batch.to_pandas() for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS))
        elif path.suffix == ".jsonl":
            chunks = pd.read_json(path, lines=True, chunksize=CHUNK_ROWS, dtype=text or None)
        else:
            options = TSV if path.suffix == ".tsv" else {}
            chunks = pd.read_csv(path, chunksize=CHUNK_ROWS, dtype=text or None, **options)
        for chunk in chunks:
            if not chunk.empty:
                yield chunk
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise MlpipeError(f"{path} cannot be read: {' '.join(str(error).split())}") from None


class ChunkWriter:
    """Rows written as they come, in the output's format: one header and the first rows' column
    order (JSON lines name their keys row by row), one Parquet schema."""

    def __init__(self, path: Path):
        self.path, self.parquet, self.columns = path, None, None
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        first, suffix = self.rows == 0, self.path.suffix
        if self.columns is None:
            self.columns = list(frame.columns)
        elif set(frame.columns) != set(self.columns):
            other = sorted(set(frame.columns) ^ set(self.columns))[:3]
            raise MlpipeError(f"the rows after row {self.rows:,} have other columns than the first ({other})")
        frame = frame[self.columns]
        if suffix == ".parquet":
            self._write_parquet(frame)
        elif suffix == ".jsonl":
            with self.path.open("a") as output:
                frame.to_json(output, orient="records", lines=True)
        else:
            options = {**TSV, "escapechar": "\\"} if suffix == ".tsv" else {}
            frame.to_csv(self.path, mode="w" if first else "a", header=first, index=False, **options)
        self.rows += len(frame)

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.parquet is None:  # a column empty in the first rows is text, not "null"
            fields = [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
            self.parquet = pq.ParquetWriter(self.path, pa.schema(fields))
        try:
            table = table.cast(self.parquet.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
            changed = [f.name for f in table.schema if f.type != self.parquet.schema.field(f.name).type]
            raise MlpipeError(
                f"column {changed[0] if changed else '?'!r} changes type after row {self.rows:,} of the input: "
                "write .csv instead of .parquet"
            ) from None
        self.parquet.write_table(table)

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()


def predict_file(
    dataset: str,
    input_path: Path,
    output_path: Path,
    settings: Settings,
    alias: str = "champion",
    watch_for: Callable[[str], Any] | None = None,
) -> dict:
    """Predict every row of input_path with models:/<dataset>@<alias>; write rows + label +
    probability. The file is read once, CHUNK_ROWS at a time. `watch_for(run_id)`: monitoring's
    watch of the served version (tasks/monitoring/watch.py, a later stage), which sees every chunk
    as the model read it and gives summary["watched"]."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from tasks.registry.store import connect

    if output_path.suffix not in SUFFIXES:
        raise MlpipeError(f"{output_path}: output must be one of {', '.join(SUFFIXES)}")
    check_input(input_path)
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
    served = f"{dataset} v{version.version}"
    watch = watch_for(version.run_id) if watch_for is not None else None
    counts: collections.Counter = collections.Counter()
    with replaced_whole(output_path) as partial:  # a reader never sees half a file
        writer = ChunkWriter(partial)
        try:
            for rows in read_chunks(input_path, _text_columns(model)):
                rows = _sound_files_resolved(rows.reset_index(drop=True), model, input_path)
                predicted = _predicted(model, rows, input_path, served, writer.rows)
                writer.write(pd.concat([rows, predicted.add_prefix("predicted_")], axis=1))
                counts.update(predicted["label"].astype(str).value_counts().to_dict())
                if watch is not None and not watch.add_or_give_up(rows):  # as the model read them
                    logging.getLogger("mlpipe.monitoring").warning("%s: %s", input_path, watch.failure)
        finally:
            writer.close()
        if writer.rows == 0:
            raise MlpipeError(f"{input_path} has no rows")
    summary = {
        "dataset": dataset,
        "version": str(version.version),
        "alias": alias,
        "run_id": version.run_id,
        "output": str(output_path),
        "rows": writer.rows,
        "labels": dict(counts.most_common()),
    }
    if watch is not None:
        summary["watched"] = watch.result(summary["labels"], (dataset, summary["version"], alias))
    return summary


def _text_columns(model) -> list[str]:
    """The input columns the model's signature says are text."""
    from mlflow.types import DataType

    schema = model.metadata.get_input_schema()
    return [c.name for c in (schema.inputs if schema else []) if getattr(c, "type", None) == DataType.string]


def _predicted(model, rows: pd.DataFrame, input_path: Path, served: str, before: int) -> pd.DataFrame:
    """The model's label and probability of a chunk's rows, or one line on rows that do not fit."""
    from mlflow.exceptions import MlflowException

    schema = model.metadata.get_input_schema()
    missing = [c for c in (schema.input_names() if schema else []) if c not in rows.columns]
    if missing:
        raise MlpipeError(
            f"{input_path} does not fit {served}: "
            f"{len(missing)} columns missing ({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})"
        )
    try:
        return model.predict(rows)
    except (MlflowException, ValueError) as error:  # ValueError: a sound file that cannot be read
        message = str(error).strip().splitlines()[0][:200]
        at = f" (rows from {before + 1:,})" if before else ""
        raise MlpipeError(f"{input_path} does not fit {served}{at}: {message}") from None


def _sound_files_resolved(rows: pd.DataFrame, model, input_path: Path) -> pd.DataFrame:
    """For a model of sound, the rows with their files made absolute (tasks/data/sound_files.py)."""
    from tasks.data.sound_files import with_absolute_files
    from tasks.registry.packaging import AUDIO_PATH_COLUMN

    column = (model.metadata.metadata or {}).get(AUDIO_PATH_COLUMN)
    return rows if column is None else with_absolute_files(rows, column, input_path)
