"""jepa's card: its params, the benchmarks it runs on and the pretrained weights it needs (the model:
mmray.methods.jepa.model)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from mmray.data.spec import ModalitySpec
from mmray.methods.card import MethodCard, MethodParams


class JepaParams(MethodParams):
    # Defaults: the MM-JEPA seed's (its README).
    lambda_align: float = Field(0.5, ge=0)
    lambda_ce: float = Field(1.0, ge=0)
    warmup_epochs: int = Field(1, ge=0, description="first epochs trained on the alignment loss alone")
    prefix_tokens: int = Field(8, ge=1, description="M visual prefix tokens, read before the prompt")
    lr_image: float | None = Field(3e-4, gt=0, description="image encoder + adapter; None: train.lr")
    lr_decoder: float | None = Field(3e-5, gt=0, description="decoder + prefix MLP; None: train.lr")
    adapter: bool = Field(True, description="linear adapter from the image embedding to the teacher's width")
    image_weights: str | None = Field("facebook/dinov2-small", description="hub name if cached; None: random")
    text_weights: str | None = Field("facebook/bart-base", description="hub name if cached; None: random")
    # Sizes of the random configs (used only without pretrained weights).
    image_dim: int = Field(128, ge=8)
    image_layers: int = Field(4, ge=1)
    image_heads: int = Field(4, ge=1)
    patch_size: int = Field(14, ge=1, description="DINOv2's 14 pixels")
    text_dim: int = Field(128, ge=8)
    text_layers: int = Field(2, ge=1)
    decoder_layers: int = Field(2, ge=1)
    text_heads: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _heads_divide_widths(self):
        for width, heads in (("image_dim", "image_heads"), ("text_dim", "text_heads")):
            if getattr(self, width) % getattr(self, heads):
                raise ValueError(f"{width} {getattr(self, width)} must be a multiple of {heads} "
                                 f"{getattr(self, heads)}")
        return self


def in_local_cache(name: str) -> bool:
    """Whether `name` (a hub id or a local folder) can be loaded offline, judged by its config.json."""
    from huggingface_hub import try_to_load_from_cache

    if Path(name).is_dir():
        return (Path(name) / "config.json").is_file()
    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except ValueError:  # not a valid hub id
        return False


class JepaCard(MethodCard):
    name = "jepa"
    Params = JepaParams
    model = "mmray.methods.jepa.model:Jepa"

    @classmethod
    def incompatibility(cls, modalities: tuple[ModalitySpec, ...]) -> str | None:
        kinds = {m.kind for m in modalities}
        missing = [what for what, kind in (("an image modality", "image"), ("a text modality", "text"))
                   if kind not in kinds]
        if missing:
            have = ", ".join(f"{m.name} ({m.kind})" for m in modalities)
            return f"needs {' and '.join(missing)} (token ids); the benchmark has {have}"
        if len({m.pad_id for m in modalities if m.kind == "text"}) > 1:
            return "needs one tokenizer for all text modalities (their pad ids differ)"
        return None

    @staticmethod
    def _weights_unfit(p: JepaParams, modalities) -> dict[str, str]:
        """Why a part's named weights cannot read this benchmark's inputs, by the param naming them."""
        unfit = {}
        image = next(m for m in modalities if m.kind == "image")
        if p.image_weights is not None and image.shape[0] not in (1, 3):
            unfit["image_weights"] = (f"pretrained encoders read RGB, {image.name!r} has {image.shape[0]} "
                                      "channels")
        foreign = [m for m in modalities if m.kind == "text" and m.tokenizer != p.text_weights]
        if p.text_weights is not None and foreign:  # pretrained BART reads only ids of its own tokenizer
            unfit["text_weights"] = (f"the text was tokenised by {foreign[0].tokenizer!r}, not by "
                                     f"{p.text_weights!r} (set the benchmark's tokenizer: {p.text_weights})")
        return unfit

    @classmethod
    def missing_weights(cls, params: JepaParams, modalities) -> list[str]:
        unfit, lines = cls._weights_unfit(params, modalities), []
        for field in ("image_weights", "text_weights"):
            name = getattr(params, field)
            if field in unfit:
                lines.append(f"{field} {name!r} cannot be used: {unfit[field]}")
            elif name is not None and not in_local_cache(name):
                lines.append(f"{field} {name!r} is not in the local Hugging Face cache (fetch it once online: "
                             f"hf download {name})")
        return lines

    @classmethod
    def generated_texts(cls, modalities) -> tuple[str, ...]:
        """The target text: the last text modality, as in __init__ (PathVQA: the answer)."""
        return tuple(m.name for m in modalities if m.kind == "text")[-1:]
