"""Data set specs and the file formats they read; every bad input is one clear MlpipeError."""

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import SHARED_DATASETS

from tasks.data.loading import load_spec
from tasks.data.splitting import split
from tasks.infra.errors import MlpipeError


def write_spec(folder, **keys):
    path = folder / f"{keys['name']}.yaml"
    path.write_text(yaml.safe_dump(keys))
    return path


def test_ucr_with_an_official_test_file(tmp_path):
    spec = write_spec(
        tmp_path,
        name="ecg200",
        modality="sequence",
        format="ucr",
        train=str(SHARED_DATASETS / "ecg200_train.txt"),
        test=str(SHARED_DATASETS / "ecg200_test.txt"),
    )
    dataset = load_spec(spec)

    assert len(dataset.frame) == 200 and len(dataset.feature_columns) == 96
    assert dataset.classes == [-1, 1]
    parts = split(dataset.frame["label"].to_numpy(), 0.2, 0.1, 0, 1, dataset.test_positions)
    np.testing.assert_array_equal(parts.test, np.arange(100, 200))
    assert len(parts.train) + len(parts.val) == 100


def test_tsv_text_without_quoting(tmp_path):
    spec = write_spec(
        tmp_path,
        name="sms",
        modality="text",
        format="tsv",
        train=str(SHARED_DATASETS / "sms_spam.tsv"),
        label_column="Label",
        text_column="SMS",
    )
    dataset = load_spec(spec)

    assert len(dataset.frame) == 5574  # a stray quote would merge lines
    assert dataset.frame["Label"].value_counts().to_dict() == {"ham": 4827, "spam": 747}
    assert dataset.feature_columns == ["SMS"]


def test_relative_paths_and_csv_image_tables(tmp_path, digits):
    digits.frame.head(200).to_csv(tmp_path / "pixels.csv", index=False)
    dataset = load_spec(write_spec(tmp_path, name="px", modality="image", format="csv", train="pixels.csv"))

    assert dataset.image_shape == (1, 8, 8)
    assert dataset.pixel_scale == 255.0  # not 0..1, so 8-bit unless the spec says otherwise


def test_npz_images(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "images.npz", x=rng.integers(0, 256, (30, 6, 6)), y=np.arange(30) % 3)
    dataset = load_spec(write_spec(tmp_path, name="npz", modality="image", format="npz", train="images.npz"))

    assert dataset.image_shape == (1, 6, 6) and len(dataset.frame) == 30 and dataset.classes == [0, 1, 2]


def test_image_folder_reads_class_subfolders_with_pillow(tmp_path, digits):
    from PIL import Image

    for i, row in digits.frame.head(40).iterrows():
        folder = tmp_path / "images" / f"digit{row['label']}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (row.drop("label").to_numpy().reshape(8, 8) * 15).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / f"{i}.png")
    dataset = load_spec(write_spec(tmp_path, name="imgs", modality="image", format="image-folder", train="images"))

    assert dataset.image_shape == (1, 8, 8) and len(dataset.frame) == 40
    assert dataset.frame.loc[0, "label"] == "digit0"
    assert dataset.frame.loc[0, "p10"] == digits.frame.loc[0, "pixel_10"] * 15


def _image_set(folder, images: dict[str, "np.ndarray"], mode: str | None = None):
    """Images in class sub-folders a and b (alternating), saved as PNG."""
    from PIL import Image

    for index, (name, pixels) in enumerate(images.items()):
        target = folder / "images" / "ab"[index % 2]
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels, mode=mode).save(target / f"{name}.png")
    return write_spec(folder, name="imgs", modality="image", format="image-folder", train="images")


def test_one_colour_image_makes_the_set_colour_never_the_reverse(tmp_path):
    grey = {f"g{i}": np.full((6, 6), 40 * i, np.uint8) for i in range(5)}
    red = np.zeros((6, 6, 3), np.uint8)
    red[..., 0] = 200
    dataset = load_spec(_image_set(tmp_path, {**grey, "z-red": red}))  # the colour file comes last

    assert dataset.image_shape == (3, 6, 6)
    row = dataset.frame.iloc[-1]  # z-red: its red channel kept, not averaged into grey
    assert row["p0"] == 200 and row["p36"] == 0 and row["p72"] == 0
    assert dataset.read_notes == [f"{tmp_path / 'images'}: grey images widened to RGB beside the colour ones"]


def test_alpha_and_16_bit_images_are_converted_and_said(tmp_path):
    from PIL import Image

    transparent = np.zeros((4, 4, 4), np.uint8)  # fully transparent black: white once composited
    deep = np.full((4, 4), 65535, np.uint16)  # 16-bit white: 255, not clipped from a wrong scale
    target = tmp_path / "images"
    for name, pixels, folder in (("t", transparent, "a"), ("d", deep, "b"), ("t2", transparent, "b")):
        (target / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(target / folder / f"{name}.png")
    dataset = load_spec(write_spec(tmp_path, name="imgs", modality="image", format="image-folder", train="images"))

    assert dataset.image_shape == (3, 4, 4)
    assert (dataset.frame[dataset.feature_columns].to_numpy() == 255).all()
    assert dataset.read_notes == [
        f"{target}: 1 images of 16 bits scaled to 8",
        f"{target}: 2 images with an alpha channel composited onto white",
        f"{target}: grey images widened to RGB beside the colour ones",
    ]


def test_a_size_that_differs_anywhere_in_the_set_is_named(tmp_path):
    images = {f"i{i}": np.zeros((8, 8), np.uint8) for i in range(6)}
    images["i3"] = np.zeros((9, 8), np.uint8)
    with pytest.raises(MlpipeError, match=r"i3.png is 9x8, others are 8x8: set image_size"):
        load_spec(_image_set(tmp_path, images))


def test_images_too_large_for_a_pixel_table_are_refused_with_a_hint(tmp_path):
    images = {f"i{i}": np.zeros((224, 224, 3), np.uint8) for i in range(2)}
    with pytest.raises(MlpipeError) as refused:
        load_spec(_image_set(tmp_path, images))
    message = str(refused.value)
    assert "224x224 colour images make 150,528 pixel columns, more than 16,384" in message
    assert "set image_size (e.g. [73, 73]) in the spec" in message


@pytest.mark.parametrize(
    ("keys", "files", "message"),
    [
        ({"colour": "red"}, {}, "key 'colour': Extra inputs are not permitted"),
        ({"modality": "video"}, {}, "key 'modality': Input should be 'image', 'sequence', 'text' or 'audio'"),
        ({"format": "ucr", "modality": "text"}, {}, "format 'ucr' does not fit modality 'text'"),
        ({"text_column": None}, {}, "text data sets need text_column"),
        ({"train": "missing.csv"}, {}, "missing.csv does not exist"),
        ({}, {"data.csv": ""}, "data.csv is empty"),
        ({}, {"data.csv": "text,label\n"}, "data.csv has no rows"),
        ({}, {"data.csv": "body,label\nhello,a\nbye,b\n"}, "has no text column 'text'"),
        ({}, {"data.csv": "text,kind\nhello,a\nbye,b\n"}, "has no label column 'label'"),
        ({}, {"data.csv": "text,label\nhello,a\nbye,a\n"}, "a single class ('a')"),
        ({}, {"data.csv": b"text,label\n\xff\xfe,a\nbye,b\n"}, "cannot be read as csv"),
    ],
)
def test_bad_specs_and_files_name_the_problem(tmp_path, keys, files, message):
    for name, content in files.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    base = {"name": "bad", "modality": "text", "format": "csv", "train": "data.csv", "text_column": "text"}
    if not files and "train" not in keys:
        (tmp_path / "data.csv").write_text("text,label\nhello,a\nbye,b\n")
    with pytest.raises(MlpipeError, match=None) as error:
        load_spec(write_spec(tmp_path, **{**base, **keys}))
    assert message in str(error.value)


def test_spec_must_exist_and_be_a_mapping(tmp_path):
    with pytest.raises(MlpipeError, match="does not exist"):
        load_spec(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(MlpipeError, match="must be a mapping"):
        load_spec(tmp_path / "list.yaml")


def test_a_test_file_with_other_columns_is_refused(tmp_path):
    pd.DataFrame({"text": ["a", "b"], "label": [0, 1]}).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"body": ["a"], "label": [0]}).to_csv(tmp_path / "test.csv", index=False)
    spec = write_spec(
        tmp_path, name="t", modality="text", format="csv", train="train.csv", test="test.csv", text_column="text"
    )
    with pytest.raises(MlpipeError, match="has no text column 'text'"):
        load_spec(spec)


def test_a_spec_card_section_is_what_users_fill_and_is_checked(tmp_path):
    from tasks.data.spec import read_spec

    spec = {"name": "sms", "modality": "text", "format": "csv", "train": "sms.csv", "text_column": "SMS"}
    spec["card"] = {"intended_use": "Flag spam in a support inbox", "limitations": ["English only"]}
    (tmp_path / "sms.csv").write_text("SMS,label\nhello,ham\n")
    (tmp_path / "sms.yaml").write_text(yaml.safe_dump(spec))
    assert read_spec(tmp_path / "sms.yaml").card.limitations == ["English only"]

    spec["card"] = {"intended": "typo"}
    (tmp_path / "sms.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(MlpipeError, match="card.intended"):
        read_spec(tmp_path / "sms.yaml")
