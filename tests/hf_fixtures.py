"""Small Hugging Face datasets in the true hub schema, written as the hub stores them (Parquet under data/).

Each is made with the `datasets` library itself (`Image` features become {"bytes": PNG, "path": ...}
structs, `ClassLabel` names go into the files' `huggingface` metadata), so the loaders read exactly what a
download of flaviagiammarino/path-vqa, kishore-s-15/mnist-qwen2.5-2B-captions or
kishore-s-15/animal-faces-captioned holds.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from datasets import ClassLabel, Dataset, Features, Image, Value

ANIMALS = ("cat", "dog", "wild")


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def image_cell(rng: np.random.Generator, shape: tuple[int, ...], name: str) -> dict:
    return {"bytes": png(rng.integers(0, 256, shape, dtype=np.uint8)), "path": name}


def write_splits(folder: Path, features: Features, splits: dict[str, dict[str, list]]) -> Path:
    """data/<split>-00000-of-00001.parquet per split, as `push_to_hub` lays them out."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for split, columns in splits.items():
        Dataset.from_dict(columns, features=features).to_parquet(
            str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    return folder


def pathvqa(folder: Path, rows: dict[str, int] | None = None, seed: int = 0) -> Path:
    """PathVQA: image, question, answer; train/validation/test. Every third answer is yes or no, and each
    image is asked three questions (as in the real set, where ~5,000 images carry ~32,800 questions)."""
    rows = rows or {"train": 18, "validation": 9, "test": 9}
    rng = np.random.default_rng(seed)
    features = Features({"image": Image(), "question": Value("string"), "answer": Value("string")})
    splits = {}
    for split, n in rows.items():
        images = [image_cell(rng, (40, 56, 3), f"{split}_{i}.jpg") for i in range(0, n, 3)]
        questions, answers = [], []
        for i in range(n):
            if i % 3 == 0:
                questions.append(f"Is there {split} tissue number {i}?")
                answers.append("Yes" if i % 2 else "no")
            else:
                questions.append(f"What does the {split} slide {i} show?")
                answers.append(f"{split} finding {i % 5}")
        splits[split] = {"image": [images[i // 3] for i in range(n)], "question": questions,
                         "answer": answers}
    return write_splits(folder, features, splits)


def captioned(folder: Path, class_names: tuple[str, ...], image_shape: tuple[int, ...],
              rows: dict[str, int], seed: int = 0, text_column: str = "caption",
              corrupt: dict[str, int] | None = None) -> Path:
    """A captioned image set: image, caption, label (ClassLabel); labels cycle through the classes.
    `corrupt` maps a split to a row whose image bytes are not an image."""
    rng = np.random.default_rng(seed)
    features = Features({"image": Image(), text_column: Value("string"),
                         "label": ClassLabel(names=list(class_names))})
    splits = {}
    for split, n in rows.items():
        labels = [i % len(class_names) for i in range(n)]
        splits[split] = {
            "image": [image_cell(rng, image_shape, f"{split}/{i}.png") for i in range(n)],
            text_column: [f"A picture of a {class_names[y]}, {split} example {i}."
                          for i, y in enumerate(labels)],
            "label": labels,
        }
    for split, row in (corrupt or {}).items():
        splits[split]["image"][row] = {"bytes": b"\x89PNG but not really", "path": f"{split}/{row}.png"}
    return write_splits(folder, features, splits)


def mnist_captions(folder: Path, rows: dict[str, int] | None = None, **kwargs) -> Path:
    """MNIST with captions: 28x28 grayscale digits; the hub set has train and test only (val is carved)."""
    digits = tuple(str(d) for d in range(10))
    return captioned(folder, digits, (28, 28), rows or {"train": 40, "test": 20}, **kwargs)


def animal_faces(folder: Path, rows: dict[str, int] | None = None, **kwargs) -> Path:
    """Animal faces with captions: RGB photos (larger than the benchmark's size, so they are resized)."""
    return captioned(folder, ANIMALS, (96, 80, 3), rows or {"train": 30}, **kwargs)


def word_tokenizer(folder: Path, words: list[str]) -> Path:
    """A Hugging Face tokenizer saved in `folder` (what `AutoTokenizer.from_pretrained(folder)` loads), with
    BART's special-token layout: <s> 0, <pad> 1, </s> 2, <unk> 3, then lower-cased words; texts become
    <s> words </s>. Stands in for facebook/bart-base, which needs the hub."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    vocab = {token: i for i, token in enumerate([*specials, *words])}
    core = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(single="<s> $A </s>",
                                                        special_tokens=[("<s>", 0), ("</s>", 2)])
    PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(str(folder))
    return folder


def write_mirror(root: Path) -> Path:
    """A data mirror holding the three datasets where the benchmarks look: <root>/<folder>."""
    pathvqa(root / "pathvqa")
    mnist_captions(root / "mnist-captions")
    animal_faces(root / "animal-faces")
    return root
