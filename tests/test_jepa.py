"""jepa: its pure pieces, a frozen teacher, the warm-up, learning on a PathVQA-shaped fixture, generation."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch
from test_sweep_ray import ray_session  # noqa: F401 - the module-scoped local Ray fixture

from mmray.data.spec import ModalitySpec
from mmray.engine.training import build_method, train_epoch
from mmray.errors import MissingWeightsError
from mmray.methods.jepa.card import JepaParams
from mmray.methods.jepa.model import Jepa, alignment_text, masked_mean, target_mask
from mmray.methods.losses import cosine_alignment, token_cross_entropy

PAD, VOCAB = 0, 40
WORDS = ["<pad>", *(f"w{i}" for i in range(1, VOCAB))]  # the fixture's tokenizer: id -> word
# lr_image/lr_decoder None: the tiny models learn at train.lr, not the seed's 3e-4 / 3e-5
TINY = {"image_weights": None, "text_weights": None, "lr_image": None, "lr_decoder": None, "image_dim": 32,
        "image_layers": 1, "image_heads": 2, "patch_size": 4, "text_dim": 32, "text_layers": 1, "decoder_layers": 1, "text_heads": 2}
# the words of tests/hf_fixtures.pathvqa, for a word-level Hugging Face tokenizer laid out like BART's
FIXTURE_WORDS = ["is", "there", "train", "validation", "test", "tissue", "number", "what", "does", "the",
                 "slide", "show", "?", "yes", "no", "finding", *(str(i) for i in range(60))]
PATHVQA_TINY = {"image_size": 16, "max_length": 12, "answer_max_length": 6, "vocab_size": 64}


def pathvqa_like(n: int, classes: int = 4, seed: int = 0) -> tuple[tuple[ModalitySpec, ...], dict]:
    """Tiny PathVQA-shaped pairs: a 16x16 image whose colours show its class, a 10-token question whose first
    words name what is asked about that class, a 1-3 token answer that the class decides."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    palette = torch.rand(classes, 3, 1, 1, generator=g)
    images = palette[labels] + 0.3 * torch.randn(n, 3, 16, 16, generator=g)
    questions = torch.randint(20, VOCAB, (n, 10), generator=g)  # filler words
    questions[:, 0] = 1 + labels  # "what organ ..." style opening words, per class
    questions[:, 1] = 5 + labels
    questions[:, 8:] = PAD
    answers = torch.full((n, 4), PAD)
    for k in range(classes):
        words = torch.tensor([10 + k, 14 + k, 18][: 1 + k % 3])
        answers[labels == k, : len(words)] = words
    modalities = (ModalitySpec("image", "image", (3, 16, 16)),
                  ModalitySpec("question", "text", (10,), vocab_size=VOCAB, tokenizer="fixture", pad_id=PAD),
                  ModalitySpec("answer", "text", (4,), vocab_size=VOCAB, tokenizer="fixture", pad_id=PAD))
    return modalities, {"image": images, "question": questions, "answer": answers, "label": labels}


def batches(data: dict, size: int):
    return [{k: v[i:i + size] for k, v in data.items()} for i in range(0, len(data["label"]), size)]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # The models are tiny: a second thread only waits on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_jepa(modalities, allow_random_weights: bool = False, **params) -> Jepa:
    torch.manual_seed(0)
    return build_method("jepa", modalities, 4, {**TINY, **params}, allow_random_weights=allow_random_weights)


def decode(ids: torch.Tensor) -> list[str]:
    return [" ".join(WORDS[i] for i in row if i != PAD) for row in ids.tolist()]


# --- pure functions -----------------------------------------------------------------------------------------

def test_cosine_alignment_is_zero_aligned_one_orthogonal_two_opposite_and_scale_free():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert cosine_alignment(a, 3 * a).item() == pytest.approx(0.0, abs=1e-6)
    assert cosine_alignment(a, -a).item() == pytest.approx(2.0)
    assert cosine_alignment(a, a.flip(1)).item() == pytest.approx(1.0)
    assert cosine_alignment(a, torch.tensor([[1.0, 1.0], [0.0, 1.0]])).item() == pytest.approx(
        (1 - 2 ** -0.5) / 2)


def test_cosine_alignment_pulls_the_prediction_never_the_target():
    prediction = torch.randn(4, 3, requires_grad=True)
    target = torch.randn(4, 3, requires_grad=True)
    cosine_alignment(prediction, target).backward()
    assert prediction.grad.abs().sum() > 0 and target.grad is None


def test_token_cross_entropy_ignores_unmasked_positions_and_is_log_v_for_uniform_logits():
    targets = torch.tensor([[3, 4, 0, 0]])
    mask = targets != 0
    uniform = torch.zeros(1, 4, 7)
    assert token_cross_entropy(uniform, targets, mask).item() == pytest.approx(math.log(7))
    noisy = uniform.clone()
    noisy[0, 2:] = torch.randn(2, 7) * 10  # only padding positions change
    assert token_cross_entropy(noisy, targets, mask).item() == pytest.approx(
        token_cross_entropy(uniform, targets, mask).item())
    empty = token_cross_entropy(torch.randn(1, 4, 7, requires_grad=True), targets, torch.zeros_like(mask))
    assert empty.item() == 0.0 and empty.requires_grad


def test_target_mask_keeps_tokens_and_only_the_first_pad_as_the_end():
    ids = torch.tensor([[5, 6, 0, 0], [5, 6, 7, 8], [0, 0, 0, 0]])
    assert target_mask(ids, 0).tolist() == [[True, True, True, False], [True] * 4,
                                            [True, False, False, False]]


def test_masked_mean_averages_only_kept_positions():
    states = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    assert masked_mean(states, mask).tolist() == [[2.0], [0.0]]


# --- the module ---------------------------------------------------------------------------------------------

def test_incompatibility_names_what_is_missing():
    modalities, _ = pathvqa_like(4)
    assert Jepa.incompatibility(modalities) is None
    audio = ModalitySpec("audio", "audio", (1, 8, 8))
    assert "a text modality" in Jepa.incompatibility((modalities[0], audio))
    assert "an image modality" in Jepa.incompatibility(modalities[1:])
    other_pad = ModalitySpec("answer", "text", (4,), vocab_size=VOCAB, tokenizer="other", pad_id=1)
    assert "pad ids differ" in Jepa.incompatibility(modalities[:2] + (other_pad,))


def test_params_refuse_a_width_that_the_heads_do_not_divide():
    with pytest.raises(ValueError, match="text_dim 30 must be a multiple of text_heads 4"):
        JepaParams(text_dim=30, text_heads=4)


def test_named_weights_that_are_not_cached_stop_the_build_with_how_to_get_them():
    modalities, _ = pathvqa_like(4)
    with pytest.raises(MissingWeightsError) as error:
        tiny_jepa(modalities, image_weights="no-such-org/no-such-model", text_weights="facebook/bart-base")
    message = str(error.value)
    assert "\n" not in message
    assert ("jepa: image_weights 'no-such-org/no-such-model' is not in the local Hugging Face cache (fetch it "
            "once online: hf download no-such-org/no-such-model)") in message
    assert ("text_weights 'facebook/bart-base' cannot be used: the text was tokenised by 'fixture', not by "
            "'facebook/bart-base' (set the benchmark's tokenizer: facebook/bart-base)") in message
    assert message.endswith("allow_random_weights: true (tests)")


def test_random_init_fallback_when_allowed_is_logged_loudly_and_recorded(caplog):
    modalities, _ = pathvqa_like(4)
    with caplog.at_level(logging.WARNING, logger="mmray.methods.jepa"):
        model = tiny_jepa(modalities, allow_random_weights=True, image_weights="no-such-org/no-such-model")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("image encoder: RANDOMLY INITIALISED" in w and "no-such-org/no-such-model" in w
               for w in warnings)
    assert any("text teacher and decoder: RANDOMLY INITIALISED" in w for w in warnings)
    assert model.provenance["image_encoder"].startswith("random-init Dinov2Config")
    assert "not in the local Hugging Face cache" in model.provenance["image_encoder"]
    assert model.provenance["text_teacher_decoder"].startswith("random-init BartConfig")


def test_pretrained_bart_is_refused_for_ids_of_another_tokenizer():
    modalities, _ = pathvqa_like(4)
    model = tiny_jepa(modalities, allow_random_weights=True, text_weights="facebook/bart-base")
    assert "tokenised by 'fixture', not by 'facebook/bart-base'" in model.provenance["text_teacher_decoder"]


def test_pretrained_weights_in_a_local_folder_are_loaded_and_recorded(tmp_path, caplog):
    """A folder holding a BART model and its tokenizer stands in for the cached facebook/bart-base (the hub
    is out of reach here): the text is tokenised by that folder, so the teacher may read it."""
    from hf_fixtures import word_tokenizer
    from transformers import BartConfig, BartModel, Dinov2Config, Dinov2Model

    bart_folder = word_tokenizer(tmp_path / "bart", FIXTURE_WORDS)
    torch.manual_seed(1)
    BartModel(BartConfig(vocab_size=len(FIXTURE_WORDS) + 4, d_model=16, encoder_layers=1, decoder_layers=1,
                         encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                         decoder_ffn_dim=32, max_position_embeddings=32)).save_pretrained(bart_folder)
    Dinov2Model(Dinov2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=16,
                             patch_size=4)).save_pretrained(tmp_path / "dinov2")
    saved = BartModel.from_pretrained(bart_folder).encoder.state_dict()
    image = ModalitySpec("image", "image", (1, 16, 16))  # grey: repeated to the pretrained encoder's RGB
    texts = tuple(ModalitySpec(name, "text", (length,), vocab_size=len(FIXTURE_WORDS) + 4,
                               tokenizer=str(bart_folder), pad_id=1)
                  for name, length in (("question", 8), ("answer", 4)))
    with caplog.at_level(logging.WARNING, logger="mmray.methods.jepa"):
        model = tiny_jepa((image, *texts), image_weights=str(tmp_path / "dinov2"),
                          text_weights=str(bart_folder))
    assert not [r for r in caplog.records if "RANDOMLY" in r.getMessage()]
    assert model.provenance == {"image_encoder": str(tmp_path / "dinov2"),
                                "text_teacher_decoder": str(bart_folder)}
    assert model.pixel_mean is not None  # a pretrained DINOv2 sees ImageNet-standardised RGB
    assert all(torch.equal(saved[k], v) for k, v in model.teacher.state_dict().items())
    assert model.start_id == 2  # BART's decoder start token, not the pad
    batch = {"image": torch.rand(4, 1, 16, 16), "question": torch.randint(4, 20, (4, 8)),
             "answer": torch.tensor([[0, 5, 2, 1]] * 4), "label": torch.zeros(4, dtype=torch.long)}
    model.set_epoch(2)
    model.losses(batch)["loss"].backward()
    assert model.generate_text(batch)["answer"].shape == (4, 4)


def test_teacher_is_frozen_gets_no_gradient_and_is_unchanged_by_a_step():
    modalities, data = pathvqa_like(16)
    model = tiny_jepa(modalities, warmup_epochs=0)
    before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    optimizer = torch.optim.AdamW(model.param_groups(1e-2), weight_decay=0.1)
    train_epoch(model, batches(data, 8), optimizer)
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.teacher.state_dict().items())
    assert not model.teacher.training  # no dropout: the targets stay deterministic in training mode
    # the decoder learns its own token embeddings: they moved, the teacher's did not
    assert not torch.equal(model.decoder.embed_tokens.weight, model.teacher.embed_tokens.weight)


def test_param_groups_split_image_and_decoder_learning_rates_and_cover_every_trainable_parameter():
    modalities, _ = pathvqa_like(4)
    model = tiny_jepa(modalities, lr_image=1e-4, lr_decoder=3e-3)
    image, decoder = model.param_groups(1e-3)
    assert (image["lr"], decoder["lr"]) == (1e-4, 3e-3)
    ids = [id(p) for group in (image, decoder) for p in group["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters() if p.requires_grad)
    assert {id(p) for p in model.image_encoder.parameters()} <= {id(p) for p in image["params"]}
    assert {id(p) for p in model.prefix.parameters()} <= {id(p) for p in decoder["params"]}
    assert [g["lr"] for g in tiny_jepa(modalities).param_groups(1e-3)] == [1e-3, 1e-3]  # None: train.lr
    seed_defaults = {"lr_image": JepaParams().lr_image, "lr_decoder": JepaParams().lr_decoder}
    assert [g["lr"] for g in tiny_jepa(modalities, **seed_defaults).param_groups(1e-3)] == [3e-4, 3e-5]


def test_warmup_epochs_give_the_cross_entropy_zero_weight():
    modalities, data = pathvqa_like(8)
    model = tiny_jepa(modalities, warmup_epochs=2, lambda_align=0.5, lambda_ce=2.0)
    for epoch, weight in ((1, 0.0), (2, 0.0), (3, 2.0)):
        model.set_epoch(epoch)
        model.zero_grad()
        losses = model.losses(data)
        assert losses["ce_weight"].item() == weight and losses["ce"].item() > 0
        expected = 0.5 * losses["align"].item() + weight * losses["ce"].item()
        assert losses["loss"].item() == pytest.approx(expected)
        losses["loss"].backward()
        decoder_grad = sum(p.grad.abs().sum().item() for p in model.decoder.layers.parameters())
        assert (decoder_grad > 0) == (weight > 0), epoch


def test_embed_works_with_a_modality_missing():
    modalities, data = pathvqa_like(6)
    model = tiny_jepa(modalities)
    full = model.embed(data)
    assert set(full) == {"image", "question", "answer", "fused"} and full["fused"].shape == (6, 32)
    image_only = model.embed({"image": data["image"]})
    assert set(image_only) == {"image", "fused"}
    assert torch.allclose(image_only["image"], full["image"], atol=1e-6)
    assert set(model.embed({"question": data["question"]})) == {"question", "fused"}


@pytest.fixture(scope="module")
def trained():
    """A tiny jepa trained on the fixture for 8 epochs x 4 steps (1 warm-up epoch), with its loss history."""
    modalities, data = pathvqa_like(64)
    model = tiny_jepa(modalities, warmup_epochs=1)
    with torch.no_grad():
        untrained = {k: v.item() for k, v in model.losses(data).items()}
    optimizer = torch.optim.AdamW(model.param_groups(1e-2))
    history = []
    for epoch in range(1, 9):
        model.set_epoch(epoch)
        history.append(train_epoch(model, batches(data, 16), optimizer, grad_clip=5.0))
    return model.eval(), data, untrained, history


def test_both_losses_fall_on_a_pathvqa_shaped_fixture(trained):
    _, _, untrained, history = trained
    assert history[0]["ce_weight"] == 0 and history[-1]["ce_weight"] == 1
    assert history[-1]["align"] < 0.5 * untrained["align"], history
    assert history[-1]["ce"] < 0.25 * untrained["ce"], history  # ln(40) = 3.7 for a uniform guess


def test_generation_runs_end_to_end_and_learns_the_answers(trained):
    model, data, _, _ = trained
    ids = model.generate(data, max_new_tokens=5)
    assert ids.shape == (64, 5) and ids.dtype == torch.long and ((ids >= 0) & (ids < VOCAB)).all()
    ended = ids == PAD
    assert (ended.long().cummax(1).values.bool() == ended).all()  # nothing but pad after a row's end
    assert sum(g == t for g, t in zip(decode(ids), decode(data["answer"]))) >= 48  # of 64
    assert model.generate({"image": data["image"][:4]}, max_new_tokens=3).shape == (4, 3)  # no question
    # the evaluation hook: the answer, at the answer's length, never read from the batch's own answer
    hook = model.generate_text(data)
    assert set(hook) == {"answer"} and hook["answer"].shape == (64, 4)
    assert torch.equal(hook["answer"], ids[:, :4])
    assert torch.equal(model.generate_text(data | {"answer": torch.zeros_like(data["answer"])})["answer"],
                       hook["answer"])
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(data, max_new_tokens=1000)


def test_a_single_caption_is_both_the_alignment_target_and_the_generated_text():
    modalities, data = pathvqa_like(8)
    caption = ModalitySpec("caption", "text", (4,), vocab_size=VOCAB, tokenizer="fixture", pad_id=PAD)
    captioned = (modalities[0], caption)
    model = tiny_jepa(captioned, warmup_epochs=0)
    batch = {"image": data["image"], "caption": data["answer"], "label": data["label"]}
    memory, _ = model.memory(model.image_embedding(batch["image"]), batch)
    assert memory.shape[1] == model.params.prefix_tokens  # the decoder cannot read the caption it must write
    assert set(model.losses(batch)) == {"loss", "align", "ce", "ce_weight"}


# --- the real pathvqa benchmark, built from a PathVQA-schema fixture ----------------------------------------


@pytest.fixture(scope="module")
def pathvqa_folder(tmp_path_factory):
    from hf_fixtures import pathvqa

    rows = {"train": 48, "validation": 12, "test": 12}
    return pathvqa(tmp_path_factory.mktemp("pathvqa") / "data", rows=rows)


@pytest.mark.parametrize("tokenizer", ["vocab", "bart-layout"])
def test_trains_on_pathvqa_and_generates_answers_its_tokenizer_decodes(pathvqa_folder, tmp_path, tokenizer):
    from hf_fixtures import word_tokenizer

    from mmray.data import prepare
    from mmray.data.shards import read_split
    from mmray.data.text import load_tokenizer

    if tokenizer != "vocab":  # a Hugging Face tokenizer that pads with 1, as BART's does
        tokenizer = str(word_tokenizer(tmp_path / "tokenizer", FIXTURE_WORDS))
    prepared = prepare("pathvqa", {**PATHVQA_TINY, "data_dir": str(pathvqa_folder), "tokenizer": tokenizer},
                       cache_dir=tmp_path / "cache", log=lambda *_: None)
    train = read_split(prepared, "train")
    data = {k: torch.tensor(v) for k, v in train.modalities.items()} | {"label": torch.tensor(train.labels)}
    model = tiny_jepa(prepared.modalities, warmup_epochs=1)
    assert model.pad_id == (0 if tokenizer == "vocab" else 1)
    optimizer = torch.optim.AdamW(model.param_groups(1e-2))
    history = []
    for epoch in range(1, 11):
        model.set_epoch(epoch)
        history.append(train_epoch(model, batches(data, 16), optimizer, grad_clip=5.0))
    assert history[-1]["align"] < 0.5 * history[0]["align"] and history[-1]["ce"] < 0.25 * history[1]["ce"]

    answers = load_tokenizer(prepared, "answer")
    generated = answers.decode(model.eval().generate(data, max_new_tokens=6).numpy())
    assert len(generated) == 48 and all(isinstance(text, str) for text in generated)
    # well-formed answers: most are answers of the training set, word for word
    assert sum(text in set(answers.decode(train.modalities["answer"])) for text in generated) >= 36, generated


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_one_real_ray_trial_on_pathvqa_records_both_losses_and_the_warmup(pathvqa_folder, tmp_path):
    from mmray import api
    from mmray.results import schema

    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(f"""
name: jepa-tiny
benchmarks:
  - name: pathvqa
    params: {{{", ".join(f"{k}: {v}" for k, v in PATHVQA_TINY.items())}, data_dir: {pathvqa_folder}}}
methods: [jepa]
train: {{epochs: 2, batch_size: 8, probe_examples: 100, lr: 0.01}}
method_params: {{jepa: {TINY | {"warmup_epochs": 1}}}}
search: {{num_samples: 1}}
scheduler: {{type: none}}
""".replace("None", "null"))
    out = api.run_sweep(api.load_spec(spec_file), cache_dir=tmp_path / "cache",
                        results_dir=tmp_path / "results", report=False, log=lambda *_: None)
    results = api.load_results(out)
    trial, epochs = results.trials.iloc[0], results.epochs.sort_values(schema.EPOCH)
    assert trial[schema.STATUS] == schema.STATUS_COMPLETED, trial[schema.ERROR]
    assert trial[schema.EPOCHS_RUN] == 2
    # the worker told the method its epoch: alignment only in epoch 1, both losses in epoch 2
    assert epochs["train/ce_weight"].tolist() == [0.0, 1.0]
    assert (epochs["train/align"] > 0).all() and (epochs["train/ce"] > 0).all()
    assert trial["final/test/image_acc"] >= 0 and trial["final/test/fused_acc"] >= 0
    # generated answers were decoded and scored through the method's generate_text hook
    assert 0 <= trial["final/val/exact_match_answer"] <= 1 and 0 <= trial["final/test/bleu_answer"] <= 100
    # random-init weights are said in the results table, not only in the log
    assert "random-init" in json.loads(trial[schema.WEIGHTS])["image_encoder"]


def test_the_alignment_text_is_the_first_of_question_caption_answer_text():
    def texts(*names):
        return [ModalitySpec(name, "text", (4,), vocab_size=VOCAB, tokenizer="fixture", pad_id=PAD) for name in names]

    assert alignment_text(texts("answer", "question")).name == "question"
    assert alignment_text(texts("text", "answer", "caption")).name == "caption"
    assert alignment_text(texts("text", "answer")).name == "answer"
    assert alignment_text(texts("notes", "text")).name == "text"
    assert alignment_text(texts("notes", "remarks")).name == "notes"  # none of the seed's names: the first
