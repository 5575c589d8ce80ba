"""The method contract every method follows; evaluation only needs `embed`, so every metric fits every method."""

from __future__ import annotations

import torch
from torch import nn

from mmray.data.spec import ModalitySpec
from mmray.methods.card import MethodCard, MethodParams

Batch = dict[str, torch.Tensor]  # modality name -> (B, *shape) float tensor, plus "label" -> (B,) long


class Method(MethodCard, nn.Module):
    """A plain nn.Module: built from the benchmark's modality specs, no Ray inside. A method's model class
    inherits its card (`class Pavlov(PavlovCard, Method)`), so its params and hooks are the card's."""

    def __init__(self, modalities: tuple[ModalitySpec, ...], num_classes: int, params: MethodParams):
        super().__init__()
        self.modalities = modalities
        self.num_classes = num_classes
        self.params = params
        self.provenance: dict[str, str] = {}  # pretrained parts: where their weights came from

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        # Training calls the module itself so that DistributedDataParallel's hooks see the pass.
        return self.losses(batch)

    def losses(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Named loss terms for a batch; the key 'loss' holds the weighted total to minimise."""
        raise NotImplementedError

    def embed(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Per-modality embeddings (keyed by modality name) and their fusion (key 'fused'), each (B, D).

        A batch may lack modalities: embed every modality present and fuse only those (evaluation calls embed
        with each modality removed in turn to measure missing-modality robustness). At least one modality is
        always present.
        """
        raise NotImplementedError

    # Optional hooks; the defaults suit a method without a schedule or pretrained parts.
    def architecture(self) -> dict:
        """What decides the shapes of this model's weights beyond its params and the modalities (jepa: the
        configurations of the pretrained parts the local cache held when it was built). An exported model keeps
        it, and the method's constructor, given it as `architecture=`, rebuilds exactly those shapes without
        looking at any cache. Default: nothing."""
        return {}

    def set_epoch(self, epoch: int) -> None:
        """Called with the 1-based epoch before each training epoch (warm-up schedules); default: nothing."""

    def param_groups(self, lr: float) -> list[dict]:
        """Optimizer parameter groups of the trainable parameters; default: one group at `lr`."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr}]

    # Optional evaluation hooks: the worker calls them in eval mode under torch.no_grad() on the first rows of
    # the val and test splits (mmray.eval.suite.GENERATION_EXAMPLES) at every epoch; None = not supported.

    def generate_text(self, batch: Batch) -> dict[str, torch.Tensor] | None:
        """Text generated for the batch: {text modality name: (B, L) long token ids in that modality's
        tokenizer, padded with its pad_id after each row's end}, generated without reading that modality of the
        batch (e.g. a caption from the image, an answer from the image and the question). The worker decodes
        them and the batch's own ids of that modality with the shard set's tokenizer (mmray.data.text) and
        scores BLEU, exact match and token accuracy (mmray.eval.generation). Default: None."""
        return None

    def translate(self, batch: Batch, source: str, target: str) -> torch.Tensor | None:
        """Modality `target` decoded from modality `source` of the batch alone (source == target: same-modal
        reconstruction): (B, *target shape) on target's standardised scale, computed without reading
        batch[target] when source != target. None where the method cannot. The worker scores each pair of
        `translations` by SSIM against batch[target] (mmray.eval.generation) and keeps a few as per-trial
        artifacts (audio targets also as waveforms). Text targets are `generate_text`'s. Default: None."""
        return None

    @property
    def n_clusters(self) -> int:
        """k of the k-means of each modality's test embeddings whose cross-modal relationship tables, relations
        and zones a trial keeps as artifacts of its last epoch (mmray.eval.clustering). Default: the classes."""
        return self.num_classes

    def rotations(self) -> dict[str, torch.Tensor] | None:
        """Square matrices the method applies per modality (pavlov: its rotations in SO(k)), stored as a
        per-trial artifact at the final epoch. Default: None."""
        return None
