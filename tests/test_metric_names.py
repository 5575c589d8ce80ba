"""The metric names a run can report are known before it runs: the suite's list of names matches what it emits,
and each method's declared generated texts and reconstructed images match what its hooks return."""

from __future__ import annotations

import pytest
import torch
from test_metrics import EMITTED

from mmray.data.spec import ModalitySpec
from mmray.engine.training import build_method
from mmray.eval.suite import metric_names
from mmray.methods import METHODS
from mmray.results import schema

IMAGE = ModalitySpec("image", "image", (1, 16, 16))
AUDIO = ModalitySpec("audio", "audio", (1, 16, 16))
RGB = ModalitySpec("image", "image", (3, 16, 16))
QUESTION = ModalitySpec("question", "text", (6,), vocab_size=30, tokenizer="hand-made", pad_id=1)
ANSWER = ModalitySpec("answer", "text", (4,), vocab_size=30, tokenizer="hand-made", pad_id=1)
TINY_JEPA = {"image_weights": None, "text_weights": None, "image_dim": 16, "image_layers": 1, "image_heads": 2,
             "patch_size": 4, "text_dim": 16, "text_layers": 1, "decoder_layers": 1, "text_heads": 2}


def test_metric_names_are_what_the_suite_emits():
    # EMITTED: the suite on image and audio embeddings with an answer generated and the image reconstructed
    assert sorted(metric_names(("image", "audio"), ("answer",), ("image",))) == sorted(EMITTED)
    assert len(set(metric_names(("image", "audio")))) == len(metric_names(("image", "audio")))  # no repeats


def test_metric_names_of_one_modality_have_no_pairs_or_missing_modality():
    names = set(metric_names(("audio",)))
    assert {"audio_acc", "fused_acc", "uniformity_audio", "nmi_fused"} <= names
    assert not [n for n in names if "_to_" in n or n.startswith(("alignment", "fused_acc_"))]


def test_every_listed_name_has_a_direction_in_the_schema():
    names = metric_names(("image", "audio", "answer"), ("answer",), ("image",))
    for name in names:
        assert schema.metric_info(f"val/{name}") is not None, name


@pytest.mark.parametrize("method, modalities, params", [
    ("pavlov", (IMAGE, AUDIO), {}),
    ("cpc", (IMAGE, AUDIO), {}),
    ("aecluster", (IMAGE, AUDIO), {}),
    ("fusion", (IMAGE, AUDIO, ANSWER), {"encoder_width": 4, "hidden_dim": 8}),
    ("jepa", (RGB, QUESTION, ANSWER), TINY_JEPA),
])
def test_declared_outputs_are_what_the_hooks_return(method, modalities, params):
    torch.manual_seed(0)
    model = build_method(method, modalities, 3, params).eval()
    batch = {m.name: (torch.randint(2, m.vocab_size, (4, *m.shape)) if m.kind == "text" else torch.randn(4, *m.shape))
             for m in modalities}
    batch["label"] = torch.arange(4) % 3
    with torch.no_grad():
        texts, images = model.generate_text(batch) or {}, model.reconstruct_images(batch) or {}
    cls = METHODS.get(method)
    assert set(cls.generated_texts(modalities)) == set(texts)
    assert set(cls.reconstructed_images(modalities)) == set(images)
