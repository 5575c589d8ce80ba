"""PathVQA: pathology images with questions and answers (He et al., 2020), from the Hugging Face hub.

Source: flaviagiammarino/path-vqa (MIT): columns `image`, `question`, `answer`; splits train (19,654 pairs),
validation (6,259) and test (6,719), kept as train / val / test. About 5,000 images carry several questions
each; each distinct image is decoded once.

Modalities: the image (3, S, S) (centre square crop, resized to `image_size`, pixels / 255), the question and
the answer as token ids (`tokenizer`: a vocabulary per text modality from the training split, or a Hugging
Face tokenizer such as facebook/bart-base). The label says what kind of question it is: 0 = yes/no (the
answer is "yes" or "no"), 1 = open.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from mmray.data.benchmarks.raw_input import image_file, stored, tokens
from mmray.data.hf import HFImageTextParams, image_splits, load_hf, text_values
from mmray.data.spec import Benchmark, ModalitySpec, Note, SplitArrays
from mmray.data.text import normalise, text_spec, tokenize_splits

HUB_ID = "flaviagiammarino/path-vqa"
FOLDER = "pathvqa"
CLASS_NAMES = ("yes/no", "open")
CLOSED_ANSWERS = ("yes", "no")


class PathVQAParams(HFImageTextParams):
    image_size: int = Field(224, ge=8, description="DINOv2's native 224 (16 x 16 patches of 14 pixels)")
    max_length: int = Field(32, ge=4, description="question token ids, special tokens included")
    answer_max_length: int = Field(16, ge=4, description="answer token ids, special tokens included")
    question_column: str | None = Field(None, description="question column (default: detected)")
    answer_column: str | None = Field(None, description="answer column (default: detected)")


def question_types(answers: list[str]) -> np.ndarray:
    """0 for a yes/no question (its answer is yes or no), 1 for an open one."""
    return np.array([0 if normalise(a) in CLOSED_ANSWERS else 1 for a in answers], np.int64)


class PathVQA(Benchmark):
    name = "pathvqa"
    Params = PathVQAParams

    def modalities(self, p: PathVQAParams) -> tuple[ModalitySpec, ...]:
        return (ModalitySpec("image", "image", (3, p.image_size, p.image_size)),
                text_spec("question", p), text_spec("answer", p, p.answer_max_length))

    def class_names(self, p: PathVQAParams) -> tuple[str, ...]:
        return CLASS_NAMES

    def build(self, p: PathVQAParams, raw) -> tuple[dict[str, SplitArrays], dict]:
        data = load_hf(raw, HUB_ID, FOLDER, p.data_dir)
        columns = {
            "question": data.pick_column("question", ("question", "query"), p.question_column,
                                         "question_column"),
            "answer": data.pick_column("answer", ("answer", "answers"), p.answer_column, "answer_column"),
        }
        images, tables, extra = image_splits(data, p, raw, 3, self.name)
        texts = {role: {s: text_values(data, t, column, f"{role}_column") for s, t in tables.items()}
                 for role, column in columns.items()}
        questions, question_tokenizer = tokenize_splits(texts["question"], p)
        answers, answer_tokenizer = tokenize_splits(texts["answer"], p, p.answer_max_length)
        splits = {s: SplitArrays(question_types(texts["answer"][s]),
                                 {"image": images[s], "question": questions[s], "answer": answers[s]})
                  for s in tables}
        extra["columns"].update(columns)
        extra["tokenizers"] = {"question": question_tokenizer.state(), "answer": answer_tokenizer.state()}
        return splits, extra

    def preprocess(self, p: PathVQAParams, modality: ModalitySpec, source, manifest: dict,
                   note: Note) -> np.ndarray:
        """An image file decoded as every PathVQA image is (RGB, centre square crop, bicubic resize to
        `image_size`, pixels / 255), or a question / answer through the shard set's saved tokenizer for it
        (truncated to `max_length` / `answer_max_length`, noted)."""
        spec = self.declared(p, modality)
        if spec.kind == "text":
            return tokens(source, spec, manifest, note)
        return stored(image_file(source, spec, note).astype(np.float32) / 255.0, spec)
