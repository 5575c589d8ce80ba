"""Captioned image datasets from the Hugging Face hub: an image, a caption and a class label per row.

- `mnist-captions`: kishore-s-15/mnist-qwen2.5-2B-captions, MNIST digits captioned by Qwen2.5; the label is
  the digit. Images (1, 28, 28).
- `animal-faces`: kishore-s-15/animal-faces-captioned, animal face photos with captions and their class;
  images (3, 64, 64) by default (`image_size`).

Both read `image`, `caption` and `label` columns (detected from candidate names; parameters override), keep
the dataset's splits (a missing val or test split is a seeded share of train) and tokenise the caption with
the benchmark's `tokenizer` (a vocabulary from the training captions by default). Labels are matched to
`class_names` by name when the dataset names its classes (ClassLabel or string labels).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from mmray.data.benchmarks.raw_input import image_file, stored, tokens
from mmray.data.hf import HFImageTextParams, class_indices, image_splits, load_hf, text_values
from mmray.data.spec import Benchmark, ModalitySpec, Note, SplitArrays
from mmray.data.text import text_spec, tokenize_splits

TEXT_COLUMNS = ("caption", "captions", "text", "description", "sentence")
LABEL_COLUMNS = ("label", "labels", "class", "digit", "target")


class CaptionParams(HFImageTextParams):
    text_column: str | None = Field(None, description="caption column (default: detected)")
    label_column: str | None = Field(None, description="class label column (default: detected)")
    channels: Literal[1, 3] = 3
    class_names: tuple[str, ...] = Field(min_length=2, description="the classes, in label order")


class CaptionedImages(Benchmark):
    """One implementation for every captioned-image dataset; subclasses name the dataset and its defaults."""

    hub_id: ClassVar[str]
    folder: ClassVar[str]  # its folder in the data mirror
    Params = CaptionParams

    def modalities(self, p: CaptionParams) -> tuple[ModalitySpec, ...]:
        return (ModalitySpec("image", "image", (p.channels, p.image_size, p.image_size)),
                text_spec("caption", p))

    def class_names(self, p: CaptionParams) -> tuple[str, ...]:
        return p.class_names

    def build(self, p: CaptionParams, raw) -> tuple[dict[str, SplitArrays], dict]:
        data = load_hf(raw, self.hub_id, self.folder, p.data_dir)
        text_column = data.pick_column("caption", TEXT_COLUMNS, p.text_column, "text_column")
        label_column = data.pick_column("label", LABEL_COLUMNS, p.label_column, "label_column")
        images, tables, extra = image_splits(data, p, raw, p.channels, self.name)
        captions = {s: text_values(data, t, text_column, "text_column") for s, t in tables.items()}
        tokens, tokenizer = tokenize_splits(captions, p)
        splits = {
            s: SplitArrays(class_indices(data, t, label_column, p.class_names, "class_names"),
                           {"image": images[s], "caption": tokens[s]})
            for s, t in tables.items()
        }
        extra["columns"].update(caption=text_column, label=label_column)
        extra["tokenizers"] = {"caption": tokenizer.state()}
        return splits, extra

    def preprocess(self, p: CaptionParams, modality: ModalitySpec, source, manifest: dict,
                   note: Note) -> np.ndarray:
        """An image file decoded as every dataset image is (converted to L or RGB, centre square crop, bicubic
        resize to `image_size`, pixels / 255), or a caption through the shard set's saved tokenizer
        (truncated to `max_length`, noted)."""
        spec = self.declared(p, modality)
        if spec.kind == "text":
            return tokens(source, spec, manifest, note)
        return stored(image_file(source, spec, note).astype(np.float32) / 255.0, spec)


class MNISTCaptionsParams(CaptionParams):
    image_size: int = Field(28, ge=8)
    channels: Literal[1, 3] = 1
    max_length: int = Field(16, ge=4)
    vocab_size: int = Field(1000, ge=8)  # digit captions use few words; rarer ones become <unk>
    class_names: tuple[str, ...] = Field(tuple(str(d) for d in range(10)), min_length=2)


class MNISTCaptions(CaptionedImages):
    name = "mnist-captions"
    Params = MNISTCaptionsParams
    hub_id = "kishore-s-15/mnist-qwen2.5-2B-captions"
    folder = "mnist-captions"


class AnimalFacesParams(CaptionParams):
    image_size: int = Field(64, ge=8)
    max_length: int = Field(64, ge=4)
    vocab_size: int = Field(5000, ge=8)
    class_names: tuple[str, ...] = Field(("cat", "dog", "wild"), min_length=2)  # AFHQ's classes


class AnimalFaces(CaptionedImages):
    name = "animal-faces"
    Params = AnimalFacesParams
    hub_id = "kishore-s-15/animal-faces-captioned"
    folder = "animal-faces"
