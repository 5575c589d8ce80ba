"""cpc's card: its params and what it fills (the model: mmray.methods.cpc.model)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mmray.data.spec import ModalitySpec
from mmray.methods.card import MethodCard, MethodParams

NegativeMode = Literal["inbatch", "queue", "queue+synthetic", "crossmodal", "queue+crossmodal",
                       "queue+synthetic+crossmodal"]


class CPCParams(MethodParams):
    negatives: NegativeMode = "inbatch"
    queue_size: int = Field(1024, ge=1)
    momentum: float = Field(0.99, ge=0, lt=1, description="queue modes: EMA rate of the encoders whose latents "
                                                           "are queued; 0: the online encoders' own")
    modalities: list[str] | None = Field(None, description="the benchmark's modalities to train and embed; "
                                                           "None: all")
    z_dim: int = Field(64, ge=2)
    c_dim: int = Field(256, ge=2)
    prediction_steps: int = Field(4, ge=1)
    temperature: float = Field(0.1, gt=0)
    noise_scale: float = Field(0.1, ge=0)  # std of the noise on a normalised positive (queue+synthetic)
    patch_size: int = Field(8, ge=1)
    encoder_width: int = Field(32, ge=1)
    w_cpc: float = Field(1.0, ge=0)
    w_align: float = Field(1.0, ge=0)
    align_temperature: float = Field(0.5, gt=0)  # high: pairs share only a label (see pavlov)
    w_views: float = Field(1.0, ge=0, description="InfoNCE between two augmented views of each example "
                                                  "(with augment.views: 2)")


class CPCCard(MethodCard):
    name = "cpc"
    Params = CPCParams
    min_modalities = 1
    kinds = ("image", "audio")  # sequence encoders over audio frames and image patches
    wants_two_views = True
    model = "mmray.methods.cpc.model:CPC"

    @classmethod
    def modalities_used(cls, params: CPCParams, modalities: tuple[ModalitySpec, ...]) -> tuple[ModalitySpec, ...]:
        if params.modalities is None:
            return modalities
        names = [m.name for m in modalities]
        unknown = [n for n in params.modalities if n not in names]
        if unknown or not params.modalities:
            raise ValueError(f"cpc: modalities {params.modalities} must name some of the benchmark's "
                             f"modalities {names}")
        return tuple(m for m in modalities if m.name in params.modalities)
