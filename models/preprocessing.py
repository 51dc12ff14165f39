"""Raw rows -> network inputs. Shared by training and the served model so they never drift.

`info` is the JSON-able description a trained model carries: modality, feature or text column,
image shape and pixel scale, or the tokenizer trained on the training split.
"""

import functools

import numpy as np
import pandas as pd


def images_from_table(values: np.ndarray, image_shape: tuple[int, int, int], scale: float) -> np.ndarray:
    """(N, C*H*W) raw pixel values -> (N, C, H, W) float32 in [0, 1]."""
    return (np.asarray(values, dtype=np.float32) / scale).reshape(-1, *image_shape)


def sequences_from_table(values: np.ndarray, channels: int = 1) -> np.ndarray:
    """(N, T*C) raw values -> (N, T, C) float32, each series and channel z-normalised."""
    x = np.asarray(values, dtype=np.float32).reshape(len(values), -1, channels)
    mean = x.mean(axis=1, keepdims=True)
    std = x.std(axis=1, keepdims=True)
    return (x - mean) / np.maximum(std, 1e-6)


def token_ids(
    texts: list[str], tokenizer_json: str, max_length: int, pad_id: int = 0, pad_token: str = "[PAD]"
) -> np.ndarray:
    """Strings -> (N, max_length) int64 token ids, padded with pad_id, truncated at max_length.
    A pretrained backbone's tokenizer adds its own special tokens ([CLS] ... [SEP]) and padding id."""
    tokenizer = _tokenizer(tokenizer_json, max_length, pad_id, pad_token)
    return np.asarray([e.ids for e in tokenizer.encode_batch([str(t) for t in texts])], dtype=np.int64)


@functools.lru_cache(maxsize=8)
def _tokenizer(tokenizer_json: str, max_length: int, pad_id: int, pad_token: str):
    """Parsed once per model: reading the JSON of an 8000-word vocabulary took longer than the
    network's whole forward pass of one row."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer_json)
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token, length=max_length)
    return tokenizer


def model_inputs(frame: pd.DataFrame, info: dict) -> np.ndarray:
    modality = info["modality"]
    if modality == "image":
        return images_from_table(
            frame[info["feature_columns"]].to_numpy(), tuple(info["image_shape"]), info["pixel_scale"]
        )
    if modality == "sequence":
        return sequences_from_table(frame[info["feature_columns"]].to_numpy(), info.get("channels", 1))
    if modality == "audio":
        return audio_inputs(frame, info)
    if modality == "text":
        texts = frame[info["text_column"]].tolist()
        padding = {"pad_id": info.get("pad_id", 0), "pad_token": info.get("pad_token", "[PAD]")}
        return token_ids(texts, info["tokenizer"], info["max_length"], **padding)
    raise ValueError(f"unknown modality {modality!r}")


def audio_inputs(frame: pd.DataFrame, info: dict, files: bool = False) -> np.ndarray:
    """(N, clip_samples) float32 waveforms: the sample columns a data set was read into (unless
    `files`: each model reads the files in its own format), else the sound files of the path
    column, else arrays of samples in an `audio` column (served rows)."""
    from models.waveforms import from_arrays, from_files

    columns = info["feature_columns"]
    if not files and columns[0] in frame.columns:
        return np.ascontiguousarray(frame[columns].to_numpy(dtype=np.float32))
    if info["path_column"] in frame.columns:
        return from_files(frame[info["path_column"]].tolist(), info)
    if AUDIO_COLUMN in frame.columns:
        return from_arrays(frame[AUDIO_COLUMN].tolist(), info)
    raise ValueError(f"audio rows need sound files in {info['path_column']!r} or arrays of samples in {AUDIO_COLUMN!r}")


AUDIO_COLUMN = "audio"  # served rows may carry each clip's samples (at the model's sample rate) here


def baseline_inputs(frame: pd.DataFrame, info: dict) -> np.ndarray | list[str]:
    """Raw rows -> what the classical baseline reads: the networks' scaled pixels or z-normalised
    series flattened to (N, features), each log-mel band's mean and spread over a clip, or the raw
    strings (its TF-IDF vectoriser tokenises them)."""
    if info["modality"] == "text":
        return [str(t) for t in frame[info["text_column"]].tolist()]
    if info["modality"] == "audio":
        from models.audio import band_features

        return band_features(audio_inputs(frame, info), info["sample_rate"], info)
    x = model_inputs(frame, info)
    return x.reshape(len(x), -1)
