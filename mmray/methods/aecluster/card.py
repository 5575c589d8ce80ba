"""aecluster's card: its params and what it fills (the model: mmray.methods.aecluster.model)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from mmray.methods.card import MethodCard, MethodParams, pictured


class AEClusterParams(MethodParams):
    latent_dim_image: int = Field(16, ge=2, description="latent size of each image modality (the seed: 16)")
    latent_dim_audio: int = Field(32, ge=2, description="latent size of each audio modality (the seed: 32)")
    latent_dim: int | None = Field(None, ge=2, description="one latent size for every modality, overriding "
                                   "latent_dim_image and latent_dim_audio; None: each kind its own")
    encoder: Literal["mlp", "conv"] = "mlp"
    encoder_width: int = Field(256, ge=1)  # mlp: hidden width (layers 2w, w); conv: the CNN's channel width
    decoder_hidden: int = Field(256, ge=1)
    w_recon_image: float = Field(1.0, ge=0)  # weight of the reconstruction loss of each image modality
    w_recon_audio: float = Field(1.0, ge=0)  # ... and of each audio modality
    w_align: float = Field(0.0, ge=0)  # 0 keeps the autoencoders separate (the seed system)
    align_temperature: float = Field(0.5, gt=0)
    n_clusters: int | None = Field(None, ge=2, description="k-means k; None = the class count")

    def latent_size(self, kind: str) -> int:
        """The latent size of a modality of this kind."""
        return self.latent_dim if self.latent_dim is not None else getattr(self, f"latent_dim_{kind}")

    @model_validator(mode="after")
    def _align_needs_one_size(self):
        if self.w_align > 0 and self.latent_dim is None and self.latent_dim_image != self.latent_dim_audio:
            raise ValueError(f"w_align={self.w_align} compares paired latents, which needs one latent size: set "
                             f"latent_dim (latent_dim_image={self.latent_dim_image}, latent_dim_audio="
                             f"{self.latent_dim_audio} differ)")
        return self


class AEClusterCard(MethodCard):
    name = "aecluster"
    Params = AEClusterParams
    kinds = ("image", "audio")  # reconstructed by MSE: token ids are not
    model = "mmray.methods.aecluster.model:AECluster"

    @classmethod
    def translations(cls, modalities) -> tuple[tuple[str, str], ...]:
        """Same-modal only: each autoencoder reconstructs its own modality; the latent spaces are separate."""
        return tuple((m.name, m.name) for m in modalities if m.name in pictured(modalities))
