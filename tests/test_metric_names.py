"""The metric names a run can report are known before it runs: the suite's list of names matches what it emits,
and each method's declared generated texts and translations match what its hooks return."""

from __future__ import annotations

import itertools

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
    # EMITTED: the suite on image and audio embeddings with an answer generated and the image translated from
    # itself and from the audio
    translations = (("image", "image"), ("audio", "image"))
    assert sorted(metric_names(("image", "audio"), ("answer",), translations)) == sorted(EMITTED)
    assert len(set(metric_names(("image", "audio")))) == len(metric_names(("image", "audio")))  # no repeats


def test_metric_names_of_one_modality_have_no_pairs_or_missing_modality():
    names = set(metric_names(("audio",)))
    assert {"audio_acc", "fused_acc", "uniformity_audio", "nmi_fused"} <= names
    assert not [n for n in names if "_to_" in n or n.startswith(("alignment", "fused_acc_"))]


def test_every_listed_name_has_a_direction_in_the_schema():
    names = metric_names(("image", "audio", "answer"), ("answer",), (("image", "image"), ("answer", "audio")))
    for name in names:
        assert schema.metric_info(f"val/{name}") is not None, name


@pytest.mark.parametrize("method, modalities, params", [
    ("pavlov", (IMAGE, AUDIO), {}),
    ("cpc", (IMAGE, AUDIO), {}),
    ("aecluster", (IMAGE, AUDIO), {}),
    ("fusion", (IMAGE, AUDIO, ANSWER), {"encoder_width": 4, "hidden_dim": 8, "w_audio": 1.0}),
    ("jepa", (RGB, QUESTION, ANSWER), TINY_JEPA),
])
def test_declared_outputs_are_what_the_hooks_return(method, modalities, params):
    torch.manual_seed(0)
    model = build_method(method, modalities, 3, params).eval()
    batch = {m.name: (torch.randint(2, m.vocab_size, (4, *m.shape)) if m.kind == "text" else torch.randn(4, *m.shape))
             for m in modalities}
    batch["label"] = torch.arange(4) % 3
    filled = {}
    with torch.no_grad():
        texts = model.generate_text(batch) or {}
        for source, target in itertools.product([m.name for m in modalities], repeat=2):
            # a cross-modal translation gets a batch without its target: it must not need it
            given = batch if source == target else {k: v for k, v in batch.items() if k != target}
            if (output := model.translate(given, source, target)) is not None:
                filled[source, target] = output
    cls = METHODS.get(method)
    assert set(cls.generated_texts(modalities)) == set(texts)
    assert set(cls.translations(modalities)) == set(filled)
    for (source, target), output in filled.items():
        assert output.shape == batch[target].shape, (source, target)


def test_fusion_fills_only_the_targets_it_has_decoders_for():
    model = build_method("fusion", (IMAGE, AUDIO, ANSWER), 3, {"encoder_width": 4, "hidden_dim": 8}).eval()
    batch = {"image": torch.randn(2, *IMAGE.shape), "answer": torch.randint(2, 30, (2, *ANSWER.shape))}
    with torch.no_grad():
        assert model.translate(batch, "answer", "image").shape == (2, *IMAGE.shape)  # the text alone
        assert model.translate(batch, "image", "audio") is None  # w_audio is 0 by default: no audio decoder
        assert model.translate(batch, "audio", "image") is None  # the source is not in the batch
