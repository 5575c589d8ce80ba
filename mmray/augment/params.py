"""The augmentation knobs of one trial, per modality kind; torch-free, so a sweep spec is read and checked fast.

Every knob is a spec parameter (`augment.<kind>.<knob>`) that `search_space` may search; the defaults switch
everything off, so a trial without an `augment` section trains on its shards' examples exactly."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AudioAugment(BaseModel):
    """On standardised log-mels (1, mels, frames); each draw is per example, uniform within the range given."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    shift: float = Field(0.0, ge=0, le=0.5, description="largest time shift, a fraction of the frames, either way")
    gain_db: float = Field(0.0, ge=0, le=40, description="largest gain change in dB, either way")
    noise_p: float = Field(0.0, ge=0, le=1, description="chance an example gets white noise at noise_snr_db")
    noise_snr_db: float = Field(20.0, ge=-10, le=60, description="signal-to-noise ratio of the added noise, dB")
    speed: float = Field(0.0, ge=0, le=0.3, description="largest relative speed change, either way: tempo and "
                         "pitch together, as resampling the waveform does (approximated on the log-mel)")
    pitch_semitones: float = Field(0.0, ge=0, le=12, description="largest pitch shift, either way (log-mel warp)")
    time_masks: int = Field(0, ge=0, le=8, description="SpecAugment: masked stretches of frames per example")
    time_mask_frames: int = Field(8, ge=1, description="widest time mask, frames")
    freq_masks: int = Field(0, ge=0, le=8, description="SpecAugment: masked bands of mel bins per example")
    freq_mask_bins: int = Field(6, ge=1, description="widest frequency mask, mel bins")

    @property
    def active(self) -> bool:
        return bool(self.shift or self.gain_db or self.noise_p or self.speed or self.pitch_semitones
                    or self.time_masks or self.freq_masks)


class ImageAugment(BaseModel):
    """On (C, H, W) images; colour jitter only touches colour (3-channel) images."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    translate: float = Field(0.0, ge=0, le=0.5, description="largest shift, a fraction of the side, either way")
    rotate_degrees: float = Field(0.0, ge=0, le=180, description="largest rotation, either way")
    crop_scale: float = Field(1.0, gt=0, le=1, description="smallest area fraction of a random crop, resized "
                              "back to the full size; 1 = no crop")
    brightness: float = Field(0.0, ge=0, lt=1, description="colour images: largest brightness factor change")
    contrast: float = Field(0.0, ge=0, lt=1, description="colour images: largest contrast factor change")
    saturation: float = Field(0.0, ge=0, lt=1, description="colour images: largest saturation factor change")

    @property
    def active(self) -> bool:
        return bool(self.translate or self.rotate_degrees or self.crop_scale < 1 or self.brightness
                    or self.contrast or self.saturation)


class TextAugment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    token_dropout: float = Field(0.0, ge=0, lt=1, description="chance a token (not the first) becomes padding")

    @property
    def active(self) -> bool:
        return self.token_dropout > 0


class AugmentParams(BaseModel):
    """What a trial's training batches go through, per modality kind. Never applied at evaluation."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    audio: AudioAugment = AudioAugment()
    image: ImageAugment = ImageAugment()
    text: TextAugment = TextAugment()
    views: Literal[1, 2] = Field(1, description="2: also a second, independently augmented view of every "
                                 "example, for methods whose contrastive term uses it (MethodCard.wants_two_views)")

    def active(self, kind: str) -> bool:
        return getattr(self, kind).active

    def flat(self) -> dict[str, object]:
        """Every knob as '<kind>.<knob>' (and 'views'): how results tables and search keys name them."""
        out: dict[str, object] = {"views": self.views}
        for kind in KINDS:
            out.update({f"{kind}.{name}": value for name, value in getattr(self, kind).model_dump().items()})
        return out


KINDS = ("audio", "image", "text")
