"""fusion's card: its params and what it fills (the model: mmray.methods.fusion.model)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from mmray.methods.card import MethodCard, MethodParams


class FusionParams(MethodParams):
    fusion: Literal["attention", "concat"] = "attention"
    latent_dim: int = Field(64, ge=2)
    hidden_dim: int = Field(128, ge=2, description="width of every modality's tokens and of the fusion")
    encoder_width: int = Field(32, ge=2)
    heads: int = Field(4, ge=1, description="attention heads of the cross-attention (divides hidden_dim)")
    modality_dropout: float = Field(0.5, ge=0.0, lt=1.0, description="chance a training example loses a modality")
    # high: pairs often share only a label (AV-MNIST), so instance-level uniformity would fight alignment
    temperature: float = Field(0.5, gt=0.0)
    w_contrastive: float = Field(1.0, ge=0.0)
    w_classifier: float = Field(1.0, ge=0.0)
    w_image: float = Field(1.0, ge=0.0, description="image decoder (MSE from the fused embedding)")
    w_text: float = Field(1.0, ge=0.0, description="text decoder (token cross-entropy from the fused embedding)")
    w_audio: float = Field(0.0, ge=0.0, description="audio decoder (MSE); 0 builds none")

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.fusion == "attention" and self.hidden_dim % self.heads:
            raise ValueError(f"hidden_dim {self.hidden_dim} must be a multiple of heads {self.heads}")
        return self


class FusionCard(MethodCard):
    name = "fusion"
    Params = FusionParams
    model = "mmray.methods.fusion.model:Fusion"

    @classmethod
    def generated_texts(cls, modalities) -> tuple[str, ...]:
        return tuple(m.name for m in modalities if m.kind == "text")  # each one, while w_text > 0

    @classmethod
    def translations(cls, modalities) -> tuple[tuple[str, str], ...]:
        """Each image or audio modality from each single modality (itself included: same-modal), e.g. an image
        from its caption alone. Each one while its decoder's weight (w_image, w_audio; w_audio is 0 by
        default) is above 0: `translate` returns None for a target without a decoder."""
        return tuple((source.name, target.name) for target in modalities if target.kind in ("image", "audio")
                     for source in modalities)
