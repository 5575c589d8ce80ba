"""Text modalities: tokenisation that is part of a benchmark's configuration.

Two kinds of tokenizer, chosen by the benchmark parameter `tokenizer`:

- `"vocab"`: a word-level vocabulary built from the TRAINING split only (lower-cased words and punctuation
  marks; the `vocab_size - 4` most frequent words seen at least `min_freq` times), for small LSTM text
  encoders.
  Ids 0-3 are `<pad>`, `<unk>`, `<bos>`, `<eos>`; a text is `<bos> words <eos>` padded with 0. The modality's
  `vocab_size` is the parameter (the id range an embedding table needs), even when fewer words were seen.
- any Hugging Face tokenizer name (e.g. `"facebook/bart-base"`) or a local folder holding one, loaded with
  `transformers.AutoTokenizer` (the local HF cache first, then the hub); it adds its own special tokens and
  pads with its own pad id (BART: 1).

What decodes the ids again is saved in the manifest (`tokenizers.<modality>`: the word list, or the name), so

    tokenizer = load_tokenizer(prepared, "caption")
    tokenizer.decode(ids)        # (L,) ids -> one string; (N, L) -> a list of strings
    tokenizer.encode(texts)      # list of strings -> (N, max_length) int64, padded with tokenizer.pad_id

gives back text (for generations and BLEU) exactly as the shards were made.
"""

from __future__ import annotations

import functools
import os
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence

import numpy as np
from pydantic import Field

from mmray.data.spec import BenchmarkParams, ModalitySpec
from mmray.errors import DataError

VOCAB = "vocab"
SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(len(SPECIALS))
_WORD = re.compile(r"\w+|[^\w\s]")


class TextParams(BenchmarkParams):
    """Tokenisation parameters of a benchmark with text modalities (part of its cache key)."""

    tokenizer: str = Field(VOCAB, description="'vocab' (word vocabulary from the training split) or a "
                                              "Hugging Face tokenizer name such as facebook/bart-base")
    max_length: int = Field(32, ge=4, description="token ids per text, special tokens included")
    vocab_size: int = Field(10000, ge=8, description="vocab tokenizer: ids available, 4 specials included")
    min_freq: int = Field(1, ge=1, description="vocab tokenizer: keep words seen this often in train")


def normalise(text: str) -> str:
    """What the vocab tokenizer sees of a text: lower-case words and punctuation marks, single spaces."""
    return " ".join(_WORD.findall(text.lower()))


class Tokenizer(ABC):
    """Turns texts into fixed-length int64 id arrays and back."""

    name: str
    vocab_size: int
    pad_id: int
    bos_id: int | None
    eos_id: int | None

    @abstractmethod
    def encode(self, texts: Sequence[str], max_length: int) -> np.ndarray:
        """(N, max_length) int64 ids, truncated and padded with `pad_id`."""

    @abstractmethod
    def length(self, text: str) -> int:
        """Ids `text` takes untruncated, special tokens included (over max_length, `encode` truncates)."""

    @abstractmethod
    def _decode_rows(self, rows: np.ndarray) -> list[str]: ...

    @abstractmethod
    def state(self) -> dict:
        """What the manifest keeps so that `load_tokenizer` rebuilds this tokenizer."""

    def decode(self, ids) -> str | list[str]:
        """Text of one id sequence (L,), or of each row of (N, L); special and pad ids are dropped."""
        array = np.asarray(ids, dtype=np.int64)
        if array.ndim == 1:
            return self._decode_rows(array[None])[0]
        return self._decode_rows(array)


class VocabTokenizer(Tokenizer):
    """Word-level vocabulary; `words[i]` is the word of id i, the first four are SPECIALS."""

    name = VOCAB
    pad_id, bos_id, eos_id = PAD_ID, BOS_ID, EOS_ID

    def __init__(self, words: Sequence[str], vocab_size: int):
        if tuple(words[:len(SPECIALS)]) != SPECIALS or len(words) > vocab_size:
            raise DataError(f"a vocabulary must start with {list(SPECIALS)} and hold at most {vocab_size} "
                            "words; prepare the benchmark again (--force)")
        self.words = list(words)
        self.vocab_size = vocab_size
        self._ids = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def build(cls, train_texts: Sequence[str], vocab_size: int, min_freq: int = 1) -> VocabTokenizer:
        """The most frequent words of the training texts (ties broken alphabetically: deterministic)."""
        counts = Counter(word for text in train_texts for word in _WORD.findall(text.lower()))
        kept = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        return cls([*SPECIALS, *kept[:vocab_size - len(SPECIALS)]], vocab_size)

    def encode(self, texts: Sequence[str], max_length: int) -> np.ndarray:
        out = np.full((len(texts), max_length), PAD_ID, np.int64)
        for row, text in enumerate(texts):
            ids = [self._ids.get(word, UNK_ID) for word in _WORD.findall(text.lower())][:max_length - 2]
            out[row, :len(ids) + 2] = [BOS_ID, *ids, EOS_ID]
        return out

    def length(self, text: str) -> int:
        return len(_WORD.findall(text.lower())) + 2  # <bos> words <eos>

    def _decode_rows(self, rows: np.ndarray) -> list[str]:
        texts = []
        for row in rows:
            words = []
            for i in row.tolist():
                if i == EOS_ID:
                    break
                if i not in (PAD_ID, BOS_ID):
                    words.append(self.words[i] if 0 <= i < len(self.words) else SPECIALS[UNK_ID])
            texts.append(" ".join(words))
        return texts

    def state(self) -> dict:
        return {"tokenizer": VOCAB, "vocab_size": self.vocab_size, "words": self.words}


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


@functools.lru_cache(maxsize=8)
def _auto_tokenizer(name: str):
    """A transformers tokenizer: the local cache (or folder) first, then the hub unless HF_HUB_OFFLINE."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    except OSError:
        if _offline():
            problem = "HF_HUB_OFFLINE is set"
        else:
            try:
                return AutoTokenizer.from_pretrained(name)
            except Exception as exc:  # hub/network errors come in many types; all mean "not here"
                problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    raise DataError(f"tokenizer {name!r} is not in the local Hugging Face cache and could not be downloaded "
                    f"({problem}); run once online to cache it, or use tokenizer: vocab")


class HFTokenizer(Tokenizer):
    """A Hugging Face tokenizer by hub name or local folder; its own special tokens and pad id."""

    def __init__(self, name: str):
        self.name = name
        self._tokenizer = _auto_tokenizer(name)
        if self._tokenizer.pad_token is None:  # GPT-2 style: no pad token; padding with eos is the convention
            if self._tokenizer.eos_token is None:
                raise DataError(f"tokenizer {name!r} has neither a pad nor an eos token to pad with; choose "
                                "another or use tokenizer: vocab")
            self._tokenizer.pad_token = self._tokenizer.eos_token
        self.pad_id = int(self._tokenizer.pad_token_id)
        self.bos_id = self._tokenizer.bos_token_id
        self.eos_id = self._tokenizer.eos_token_id
        self.vocab_size = len(self._tokenizer)

    def encode(self, texts: Sequence[str], max_length: int) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, max_length), np.int64)
        ids = self._tokenizer(list(texts), max_length=max_length, truncation=True, padding="max_length")
        return np.asarray(ids["input_ids"], dtype=np.int64)

    def length(self, text: str) -> int:
        return len(self._tokenizer(text)["input_ids"])

    def _decode_rows(self, rows: np.ndarray) -> list[str]:
        texts = self._tokenizer.batch_decode(rows.tolist(), skip_special_tokens=True)
        return [text.strip() for text in texts]

    def state(self) -> dict:
        return {"tokenizer": self.name}


def text_spec(name: str, params: TextParams, max_length: int | None = None) -> ModalitySpec:
    """The spec of a text modality tokenised by `params.tokenizer` (an HF one is loaded to size it)."""
    length = max_length or params.max_length
    if params.tokenizer == VOCAB:
        return ModalitySpec(name, "text", (length,), vocab_size=params.vocab_size, tokenizer=VOCAB,
                            pad_id=PAD_ID)
    tokenizer = HFTokenizer(params.tokenizer)
    return ModalitySpec(name, "text", (length,), vocab_size=tokenizer.vocab_size, tokenizer=tokenizer.name,
                        pad_id=tokenizer.pad_id)


def tokenize_splits(texts: dict[str, Sequence[str]], params: TextParams,
                    max_length: int | None = None) -> tuple[dict[str, np.ndarray], Tokenizer]:
    """Encode every split's texts; a vocabulary is built from `texts["train"]` only."""
    if params.tokenizer == VOCAB:
        tokenizer: Tokenizer = VocabTokenizer.build(texts["train"], params.vocab_size, params.min_freq)
    else:
        tokenizer = HFTokenizer(params.tokenizer)
    length = max_length or params.max_length
    return {split: tokenizer.encode(values, length) for split, values in texts.items()}, tokenizer


def encode_text(tokenizer: Tokenizer, text: str, max_length: int, note, what: str = "text") -> np.ndarray:
    """(max_length,) ids of one text, as `encode` makes every split's; `note` is told when it is truncated."""
    needed = tokenizer.length(text)
    if needed > max_length:
        shown = text if len(text) <= 40 else text[:37] + "..."
        note(f"{what} {shown!r}: truncated {needed - max_length} tokens to max_length={max_length} "
             f"({needed} with special tokens, {tokenizer.name} tokenizer)")
    return tokenizer.encode([text], max_length)[0]


def tokenizer_from_state(state: dict) -> Tokenizer:
    if state.get("tokenizer") == VOCAB:
        return VocabTokenizer(state["words"], state["vocab_size"])
    return HFTokenizer(state["tokenizer"])


def load_tokenizer(prepared, modality: str) -> Tokenizer:
    """The tokenizer that made text modality `modality` of a prepared shard set (PreparedData)."""
    saved = prepared.manifest.get("tokenizers", {})
    if modality not in saved:
        raise DataError(f"{prepared.path}: no tokenizer saved for modality {modality!r} (text modalities "
                        f"with one: {sorted(saved)}); is it a text modality of "
                        f"{prepared.manifest['benchmark']}?")
    return tokenizer_from_state(saved[modality])
