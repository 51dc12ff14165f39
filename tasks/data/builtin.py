"""The data sets mlpipe ships: scikit-learn's digits, written to data/digits by dvc.yaml's first stage."""

from pathlib import Path

from tasks.infra.files import replaced_whole, write_atomic

BUILT_IN = ("digits",)

DIGITS_SPEC = {
    "name": "digits",
    "modality": "image",
    "format": "parquet",
    "train": "digits/digits.parquet",
    "image_shape": [1, 8, 8],
    "pixel_scale": 16.0,
    "description": "scikit-learn's 8x8 handwritten digits (UCI), 1797 images of 10 classes",
}


def write_digits(folder: Path) -> Path:
    """scikit-learn's 8x8 digits as one Parquet table (pixel_0..pixel_63, 0..16, and label), and
    its spec beside the folder unless there is one."""
    import pandas as pd
    from sklearn.datasets import load_digits

    digits = load_digits()
    frame = pd.DataFrame(digits.data.astype("int64"), columns=[f"pixel_{i}" for i in range(64)])
    frame["label"] = digits.target.astype("int64")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "digits.parquet"
    with replaced_whole(path) as partial:  # whole or not at all: a run started beside this one reads it
        frame.to_parquet(partial, index=False)
    write_digits_spec(folder)
    return path


def write_digits_spec(folder: Path) -> Path:
    """data/digits.yaml (tracked in git in mlpipe's own checkout), unless there is one."""
    import yaml

    spec = folder.with_suffix(".yaml")
    if not spec.exists():
        write_atomic(spec, yaml.safe_dump(DIGITS_SPEC, sort_keys=False))
    return spec
