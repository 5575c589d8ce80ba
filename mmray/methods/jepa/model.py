"""jepa: an MM-JEPA seed system - an image encoder aligned to a frozen text teacher, plus an answer decoder.

Parts (transformers classes, pretrained when in the local Hugging Face cache, else small random configs of
the same classes, said in a warning and recorded in `provenance`):
    image encoder  Dinov2Model (the DINOv2 ViT), trained; its pooled CLS state v is the image embedding
    teacher        the encoder of a BartModel, FROZEN (no gradients, always in eval mode)
    decoder        the decoder of that BartModel with its own token embedding and output head, trained
Alignment: the target t is the teacher's masked mean of the prompt tokens' states, L2-normalised, and
    L_align = 1 - cos(A v, t), with A a linear adapter to the teacher's width.
Generation: an MLP maps v to M visual prefix tokens, put BEFORE the teacher's states of the prompt; the
    decoder cross-attends to [prefix; prompt states] and predicts the target tokens with teacher forcing:
    L_ce = token cross-entropy over the target's tokens and its end (the first pad), ignoring the other pads.
Total: λ_align L_align + λ_ce L_ce, with λ_ce = 0 in the first `warmup_epochs` epochs (alignment only).

Text modalities: the prompt, which is also the alignment target, is the first of question > caption > answer >
text the benchmark has (the seed's order; else its first text modality); the target is the last (PathVQA: the
question and the answer). A single text modality (a caption) is both the alignment target and the generated
text; the decoder then reads only the visual prefix, since with the caption's own states in its memory it could
copy instead of describing. The prefix tokens pass a LayerNorm, as in the seed.
With one vocabulary per text modality (the `vocab` tokenizer) the decoder's own embeddings and head learn the
target's words; the frozen teacher reads every text modality with its one table, a fixed arbitrary code.
Images are expected in [0, 1] (the image+text benchmarks divide pixels by 255); a pretrained DINOv2 gets
them standardised with the ImageNet statistics it was trained with.
"""

from __future__ import annotations

import copy
import json
import logging

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BartConfig, BartModel, Dinov2Config, Dinov2Model

from mmray.data.spec import ModalitySpec
from mmray.methods.base import Batch, Method
from mmray.methods.jepa.card import JepaCard, JepaParams
from mmray.methods.losses import cosine_alignment, token_cross_entropy

log = logging.getLogger(__name__)
ALIGNMENT_TEXTS = ("question", "caption", "answer", "text")  # the seed's order of preference
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # DINOv2's image preprocessing


def alignment_text(texts: list[ModalitySpec]) -> ModalitySpec:
    """The text modality the image is aligned to: the first of ALIGNMENT_TEXTS present, else the first."""
    by_name = {m.name: m for m in texts}
    return next((by_name[name] for name in ALIGNMENT_TEXTS if name in by_name), texts[0])


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of (B, T, D) states over the positions where the (B, T) mask is true; zeros for an empty row."""
    weights = mask.to(states.dtype).unsqueeze(-1)
    return (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def target_mask(ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Positions a decoder is trained to predict: every token and the first pad after them, which marks the
    end (so generation can stop on pad whatever the tokenizer's own end symbol is)."""
    tokens = ids != pad_id
    first_pad = (~tokens) & (tokens.long().cumsum(1) == tokens.long().sum(1, keepdim=True))
    first_pad &= first_pad.long().cumsum(1) == 1
    return tokens | first_pad


def _cached(model_class, name: str) -> tuple[nn.Module | None, str]:
    """The pretrained model `name` if the local Hugging Face cache has it (never downloaded), else why not."""
    try:
        return model_class.from_pretrained(name, local_files_only=True), name
    except OSError as error:  # huggingface_hub's "not in the cache" errors are OSErrors
        return None, f"{name} is not in the local Hugging Face cache ({type(error).__name__})"


def _random_init_warning(part: str, config: str, reason: str) -> str:
    line = f"random-init {config}: {reason}"
    log.warning("[mmray] jepa: %s: RANDOMLY INITIALISED weights (%s), not a pretrained model", part, line)
    return line


class Jepa(JepaCard, Method):
    def __init__(self, modalities, num_classes: int, params: JepaParams, architecture: dict | None = None):
        super().__init__(modalities, num_classes, params)
        p = params
        self.image = next(m for m in modalities if m.kind == "image")
        texts = [m for m in modalities if m.kind == "text"]
        self.prompt, self.target = alignment_text(texts), texts[-1]
        self.pad_id = self.target.pad_id
        if architecture:  # an exported model: exactly its shapes, whatever the local cache holds now
            self.image_encoder = Dinov2Model(Dinov2Config.from_dict(architecture["image_encoder"]))
            bart = BartModel(BartConfig.from_dict(architecture["text"]))
            self.provenance = dict(architecture["provenance"])
            pretrained_image, pretrained_text = architecture["image_pretrained"], architecture["text_pretrained"]
        else:
            self.image_encoder, image_source = self._image_encoder(p)
            bart, text_source = self._bart(p, texts)
            self.provenance = {"image_encoder": image_source, "text_teacher_decoder": text_source}
            pretrained_image, pretrained_text = image_source == p.image_weights, text_source == p.text_weights
        self.pretrained = {"image": pretrained_image, "text": pretrained_text}

        self.teacher = bart.encoder.requires_grad_(False).eval()
        self.decoder = bart.decoder
        # The decoder learns its own token embeddings (tied to its output head, as in BART), untied from the
        # frozen teacher's.
        self.decoder.embed_tokens = copy.deepcopy(bart.encoder.embed_tokens).requires_grad_(True)
        width, vocab = bart.config.d_model, bart.config.vocab_size
        self.lm_head = nn.Linear(width, vocab)
        self.lm_head.weight = self.decoder.embed_tokens.weight
        nn.init.zeros_(self.lm_head.bias)
        # A random decoder starts from pad (T5's convention: every tokenizer has one); BART from its own.
        self.start_id = bart.config.decoder_start_token_id if pretrained_text else self.pad_id

        image_width = self.image_encoder.config.hidden_size
        if not p.adapter and image_width != width:
            raise ValueError(f"jepa: adapter=False needs the image width ({image_width}) to equal the "
                             f"teacher's ({width})")
        self.adapter = nn.Linear(image_width, width) if p.adapter else nn.Identity()
        self.prefix = nn.Sequential(nn.Linear(image_width, width), nn.GELU(),
                                    nn.Linear(width, p.prefix_tokens * width))
        # On the scale of the teacher's states the prefix sits beside in the decoder's memory (as the seed).
        self.prefix_norm = nn.LayerNorm(width)
        for name, stats in (("pixel_mean", IMAGENET_MEAN), ("pixel_std", IMAGENET_STD)):
            self.register_buffer(name, torch.tensor(stats).view(1, 3, 1, 1) if pretrained_image else None)
        self.epoch = 1


    def _pretrained(self, model_class, field: str) -> tuple[nn.Module | None, str]:
        """The part's pretrained model from the local cache, or None and why not."""
        name, unfit = getattr(self.params, field), self._weights_unfit(self.params, self.modalities).get(field)
        if name is None or unfit:
            return None, unfit or f"{field} is None"
        return _cached(model_class, name)

    def _image_encoder(self, p: JepaParams) -> tuple[Dinov2Model, str]:
        channels, size = self.image.shape[0], self.image.shape[-1]
        model, reason = self._pretrained(Dinov2Model, "image_weights")
        if model is not None:
            return model, reason
        config = Dinov2Config(hidden_size=p.image_dim, num_hidden_layers=p.image_layers,
                              num_attention_heads=p.image_heads, image_size=size, patch_size=p.patch_size,
                              num_channels=channels)
        described = f"Dinov2Config(hidden {p.image_dim}, {p.image_layers} layers, patch {p.patch_size})"
        return Dinov2Model(config), _random_init_warning("image encoder", described, reason)

    def _bart(self, p: JepaParams, texts: list[ModalitySpec]) -> tuple[BartModel, str]:
        model, reason = self._pretrained(BartModel, "text_weights")
        if model is not None:
            return model, reason
        longest = max(m.shape[0] for m in texts)
        config = BartConfig(vocab_size=max(m.vocab_size for m in texts), pad_token_id=self.pad_id,
                            d_model=p.text_dim, encoder_layers=p.text_layers, decoder_layers=p.decoder_layers,
                            encoder_attention_heads=p.text_heads, decoder_attention_heads=p.text_heads,
                            encoder_ffn_dim=4 * p.text_dim, decoder_ffn_dim=4 * p.text_dim,
                            max_position_embeddings=max(64, longest + 1))
        described = (f"BartConfig(d_model {p.text_dim}, {p.text_layers}+{p.decoder_layers} layers, "
                     f"vocab {config.vocab_size})")
        return BartModel(config), _random_init_warning("text teacher and decoder", described, reason)

    def architecture(self) -> dict:
        return {"image_encoder": json.loads(self.image_encoder.config.to_json_string()),
                "text": json.loads(self.teacher.config.to_json_string()),
                "image_pretrained": self.pretrained["image"], "text_pretrained": self.pretrained["text"],
                "provenance": dict(self.provenance)}

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # frozen: no dropout either, so its targets are deterministic
        return self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def param_groups(self, lr: float) -> list[dict]:
        p = self.params
        image = {id(q) for q in [*self.image_encoder.parameters(), *self.adapter.parameters()]}
        trainable = [q for q in self.parameters() if q.requires_grad]
        return [{"params": [q for q in trainable if id(q) in image], "lr": p.lr_image or lr},
                {"params": [q for q in trainable if id(q) not in image], "lr": p.lr_decoder or lr}]

    # --- pieces -------------------------------------------------------------------------------------------

    def image_embedding(self, images: torch.Tensor) -> torch.Tensor:
        if self.pixel_mean is not None:  # pretrained: RGB standardised as in DINOv2's training
            images = (images.expand(-1, 3, -1, -1) - self.pixel_mean) / self.pixel_std
        return self.image_encoder(pixel_values=images).pooler_output

    @torch.no_grad()
    def teacher_states(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = ids != self.pad_id
        return self.teacher(input_ids=ids, attention_mask=mask.long()).last_hidden_state, mask

    def text_embedding(self, ids: torch.Tensor) -> torch.Tensor:
        """The teacher's masked mean of the tokens' states, L2-normalised: the alignment target."""
        return F.normalize(masked_mean(*self.teacher_states(ids)), dim=-1)

    def memory(self, image_embedding: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """What the decoder cross-attends to: M visual prefix tokens, then the prompt's teacher states."""
        prefix = self.prefix_norm(self.prefix(image_embedding).view(len(image_embedding),
                                                                     self.params.prefix_tokens, -1))
        parts, masks = [prefix], [torch.ones(prefix.shape[:2], dtype=torch.bool, device=prefix.device)]
        if self.prompt is not self.target and self.prompt.name in batch:
            states, mask = self.teacher_states(batch[self.prompt.name])
            parts.append(states)
            masks.append(mask)
        return torch.cat(parts, 1), torch.cat(masks, 1)

    def logits(self, decoder_ids: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor
               ) -> torch.Tensor:
        states = self.decoder(input_ids=decoder_ids, encoder_hidden_states=memory,
                              encoder_attention_mask=memory_mask.long()).last_hidden_state
        return self.lm_head(states)

    def ce_weight(self) -> float:
        return self.params.lambda_ce if self.epoch > self.params.warmup_epochs else 0.0

    # --- the method contract ------------------------------------------------------------------------------

    def losses(self, batch: Batch) -> dict[str, torch.Tensor]:
        p = self.params
        v = self.image_embedding(batch[self.image.name])
        align = cosine_alignment(self.adapter(v), self.text_embedding(batch[self.prompt.name]))
        answer = batch[self.target.name]
        start = torch.full_like(answer[:, :1], self.start_id)
        logits = self.logits(torch.cat([start, answer[:, :-1]], 1), *self.memory(v, batch))
        ce = token_cross_entropy(logits, answer, target_mask(answer, self.pad_id))
        # Kept in the graph at weight 0 during warm-up so every trainable parameter gets a gradient (DDP).
        total = p.lambda_align * align + self.ce_weight() * ce
        return {"loss": total, "align": align, "ce": ce, "ce_weight": torch.tensor(self.ce_weight())}

    def embed(self, batch: Batch) -> dict[str, torch.Tensor]:
        out = {}
        if self.image.name in batch:
            v = self.image_embedding(batch[self.image.name])
            out[self.image.name] = F.normalize(self.adapter(v), dim=-1)
        for m in self.modalities:
            if m.kind == "text" and m.name in batch:
                out[m.name] = self.text_embedding(batch[m.name])
        out["fused"] = torch.stack(list(out.values())).mean(0)
        return out

    def generate_text(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Evaluation hook: the target text (PathVQA: the answer), generated from the image and the prompt."""
        without_target = {k: v for k, v in batch.items() if k != self.target.name}
        return {self.target.name: self.generate(without_target, self.target.shape[0])}

    @torch.no_grad()
    def generate(self, batch: Batch, max_new_tokens: int) -> torch.Tensor:
        """Greedy decoding of the target text: (B, max_new_tokens) token ids, pad after each row's end."""
        limit = self.decoder.config.max_position_embeddings
        if max_new_tokens > limit:
            raise ValueError(f"jepa: max_new_tokens {max_new_tokens} exceeds the decoder's {limit} positions")
        memory, memory_mask = self.memory(self.image_embedding(batch[self.image.name]), batch)
        ids = torch.full((len(memory), 1), self.start_id, dtype=torch.long, device=memory.device)
        ended = torch.zeros(len(memory), dtype=torch.bool, device=memory.device)
        for _ in range(max_new_tokens):
            step = self.logits(ids, memory, memory_mask)[:, -1].argmax(-1)
            step = step.masked_fill(ended, self.pad_id)
            ended |= step == self.pad_id
            ids = torch.cat([ids, step[:, None]], 1)
            if ended.all():
                break
        out = torch.full((len(ids), max_new_tokens), self.pad_id, dtype=torch.long, device=ids.device)
        out[:, :ids.shape[1] - 1] = ids[:, 1:]
        return out
