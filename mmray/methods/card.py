"""What a sweep's driver knows of a method without importing torch: its params, the benchmarks it runs on, the
metrics it fills and the weights it needs. The model itself (`Method`, an nn.Module that inherits its card) is
imported only where a model is built: in a trial's worker, `fit_local`, an exported model's loader.

Importing torch costs a process ~125 MiB of its own memory and ~1.4 s: the driver checks a spec and runs Tune
without it (benchmarks/perf, the overhead section's peak memory)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from mmray.data.spec import ModalitySpec
from mmray.errors import MissingWeightsError
from mmray.registry import import_attribute


def second_view(modality: str) -> str:
    """The batch key of a modality's second augmented view (training batches of a method that wants two views,
    with `augment.views: 2`; mmray.augment)."""
    return f"{modality}#view2"


def pictured(modalities: tuple[ModalitySpec, ...]) -> set[str]:
    """The modalities held as pictures (C, H, W): images and log-mels, whose translations are scored by SSIM and
    drawn; a raw waveform (C, samples) is neither (its reconstruction shows in the training loss)."""
    return {m.name for m in modalities if m.kind != "text" and len(m.shape) == 3}


class MethodParams(BaseModel):
    """A method's knobs, each a typed field with its default; a sweep may search any of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MethodCard:
    """A method's description: the registry holds it; its model class (`model`, "module:Class") inherits it."""

    name: ClassVar[str]
    model: ClassVar[str]  # "module:Class" of its nn.Module
    Params: ClassVar[type[MethodParams]] = MethodParams
    min_modalities: ClassVar[int] = 2
    kinds: ClassVar[tuple[str, ...]] = ("image", "audio", "text")  # modality kinds it has encoders for
    # True: its losses use a second augmented view of each modality (batch[second_view(name)]) where the
    # training batches have one; the sweep refuses `augment.views: 2` for a method without it
    wants_two_views: ClassVar[bool] = False

    @classmethod
    def model_class(cls) -> type:
        """Its nn.Module class (imports torch)."""
        return import_attribute(cls.model)

    @classmethod
    def incompatibility(cls, modalities: tuple[ModalitySpec, ...]) -> str | None:
        """Why this method cannot run on a benchmark with these modalities, or None if it can."""
        for m in modalities:
            if m.kind not in cls.kinds:
                return f"handles {' and '.join(cls.kinds)} modalities only; {m.name!r} is {m.kind}"
        if len(modalities) < cls.min_modalities:
            return f"needs at least {cls.min_modalities} modalities, the benchmark has {len(modalities)}"
        return None

    # What the model's optional evaluation hooks (Method.generate_text, Method.translate) fill on a benchmark
    # with these modalities, known before a model is built, so a sweep's search metric (e.g. val/bleu_caption) is
    # checked before it runs. Default: nothing.

    @classmethod
    def generated_texts(cls, modalities: tuple[ModalitySpec, ...]) -> tuple[str, ...]:
        """The text modalities `generate_text` can return."""
        return ()

    @classmethod
    def translations(cls, modalities: tuple[ModalitySpec, ...]) -> tuple[tuple[str, str], ...]:
        """The (source, target) pairs `translate` fills on a benchmark with these modalities."""
        return ()

    @classmethod
    def missing_weights(cls, params: MethodParams, modalities: tuple[ModalitySpec, ...]) -> list[str]:
        """What keeps the pretrained weights these params name from loading here, one line each (not in the
        local cache, or unfit for the benchmark's inputs). `build_method` refuses to build while any is left,
        unless random weights are allowed (the spec's allow_random_weights). Default: none named."""
        return []

    @classmethod
    def check_weights(cls, params: MethodParams, modalities: tuple[ModalitySpec, ...]) -> None:
        """Stop, naming each missing part and its fix, when pretrained weights the params name cannot load."""
        missing = cls.missing_weights(params, modalities)
        if missing:
            raise MissingWeightsError(f"{cls.name}: {'; '.join(missing)}. Or set those weights to null for "
                                      "random initialisation, or allow_random_weights: true (tests)")

    @classmethod
    def modalities_used(cls, params: MethodParams, modalities: tuple[ModalitySpec, ...]) -> tuple[ModalitySpec, ...]:
        """The benchmark's modalities a model with these params trains on and embeds (ValueError naming the valid
        ones for a bad choice). Default: all of them."""
        return modalities
