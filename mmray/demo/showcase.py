"""The model side of `mmray demo`, free of any web framework: one input of one modality (a random test example
or an upload) in; out come what it looks like, the method's same-modal and cross-modal translations of it, its
nearest neighbours among the test examples of every other modality, and the class the trial's probe predicts."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import torch

from mmray.data import prepare
from mmray.data.audio import playable_stats, waveform_from_log_mel
from mmray.data.prepare import resolve_params
from mmray.data.shards import read_split
from mmray.data.spec import ModalitySpec, SplitArrays
from mmray.data.text import tokenizer_from_state
from mmray.demo.inputs import InputError, check_audio, check_text, own_name, uploaded_file
from mmray.errors import DataError, MmrayError
from mmray.eval.probes import l2_normalize
from mmray.eval.retrieval import content_ids
from mmray.models.evaluate import misfit
from mmray.models.load import TrainedModel

# Test rows whose inputs the demo draws examples from and searches for neighbours: 1,000 embed in about a second
# at start-up, and a search among them is a (1, D) x (D, 1000) product, nothing next to decoding the outputs.
GALLERY_SIZE = 1000
NEIGHBOURS = 5
PIXELS_ON_SCREEN = 160  # small inputs (28x28 digits, 40x40 log-mels) are enlarged to about this, nearest-neighbour
LOG_MEL_RANGE = 3.0  # standardised log-mels are drawn from -3 (black) to +3 (white) standard deviations


@dataclass(frozen=True)
class Shown:
    """One modality's value as a page shows it: a picture (images; log-mels as a spectrogram), a waveform to
    play (audio, where the benchmark's log-mels can be inverted), a text."""

    picture: np.ndarray | None = None  # uint8 (H, W) or (H, W, 3)
    sound: tuple[int, np.ndarray] | None = None  # (sample rate, float32 waveform)
    text: str | None = None


@dataclass(frozen=True)
class Neighbour:
    row: int  # test split row
    label: str
    similarity: float  # cosine
    shown: Shown


@dataclass(frozen=True)
class Panel:
    """One place on the page for an answer about inputs of one modality."""

    key: str
    title: str
    kind: str  # of the modality shown
    modality: str
    neighbours: bool = False  # a list of test examples, not one value


@dataclass
class Answer:
    source: str
    shown: dict[str, Shown | list[Neighbour]]  # Panel.key -> what it shows
    predicted: str | None  # by the probe of the source modality alone
    row: int | None = None  # the test split row of a random example
    true_class: str | None = None
    notes: list[str] = field(default_factory=list)


class Showcase:
    """An exported model with the test examples it is shown against (the first GALLERY_SIZE rows of its
    benchmark's test split) and their embeddings, computed once."""

    def __init__(self, model: TrainedModel, test: SplitArrays, seed: int = 0):
        self.model, self.test = model, test
        self.modalities = {m.name: m for m in model.modalities}
        self.benchmark, self.params = resolve_params(model.benchmark, model.info["data"]["params"])
        self.audio_stats = playable_stats(self.params, model.info["data"])
        self.rng = np.random.default_rng(seed)
        self._lock = threading.Lock()  # the model's notes are per call; the page may call from two tabs at once
        first = {name: self._tensor(name, values[:1]) for name, values in test.modalities.items()}
        with torch.no_grad():  # declared pairs whose decoder is switched off (a zero loss weight) give None
            self.translations = tuple((a, b) for a, b in type(model.module).translations(model.modalities)
                                      if model.module.translate({a: first[a]}, a, b) is not None)
        self.generated = tuple(type(model.module).generated_texts(model.modalities))
        # a recording paired with many images (AV-MNIST) is one neighbour, not many copies of one
        self.unique_rows = {name: np.unique(content_ids([values]), return_index=True)[1]
                            for name, values in test.modalities.items()}
        self.gallery = {name: l2_normalize(model.embed(**{name: list(test.modalities[name][rows])})[name])
                        for name, rows in self.unique_rows.items()}

    @classmethod
    def open(cls, model: TrainedModel, *, mirror=None, cache_dir=None, gallery_size: int = GALLERY_SIZE,
             log=print) -> Showcase:
        """The model with the test split of its own benchmark (its preprocessing parameters), prepared into
        the shard cache if it is not there yet (from the mirror or a download)."""
        data = model.info["data"]
        try:
            prepared = prepare(model.benchmark, data["params"], mirror=mirror, cache_dir=cache_dir, log=log)
        except DataError as exc:
            raise MmrayError(f"the demo shows test examples of {model.benchmark}, which cannot be prepared here "
                             f"({str(exc).splitlines()[0]}); pass --mirror DIR or set MMRAY_DATA_MIRROR") from None
        problem = misfit(model, prepared)
        if problem:
            raise MmrayError(f"{prepared.path} does not fit the model: {problem}")
        return cls(model, read_split(prepared, "test", limit=gallery_size))

    @property
    def takes_files(self) -> bool:
        """Whether the benchmark preprocesses raw files (a generated one, e.g. synthetic-av, has none to take)."""
        from mmray.data.spec import Benchmark

        return type(self.benchmark).preprocess is not Benchmark.preprocess

    # --- what the page holds --------------------------------------------------------------------------------

    def panels(self, source: str) -> list[Panel]:
        """The places an answer about a `source` input fills, in page order: the input, each translation and
        generated text, the neighbours in each other modality."""
        kind = {name: m.kind for name, m in self.modalities.items()}
        out = [Panel("input", f"input ({source})", kind[source], source)]
        for a, b in self.translations:
            if a == source:
                what = "reconstruction" if a == b else "translation"
                out.append(Panel(f"{a}->{b}", f"{b} from {a} ({what})", kind[b], b))
        for name in self.generated:
            if name != source:
                out.append(Panel(f"generated:{name}", f"{name} generated (random test examples)", "text", name))
        for name in self.searchable(source):
            out.append(Panel(f"neighbours:{name}", f"nearest {name} test examples", kind[name], name, True))
        return out

    def searchable(self, source: str) -> list[str]:
        """The other modalities whose embeddings share the source's space (width), to search neighbours in: a
        method of separate per-modality spaces (aecluster) may give them other widths."""
        width = self.gallery[source].shape[1]
        return [name for name in self.modalities if name != source and self.gallery[name].shape[1] == width]

    # --- answers --------------------------------------------------------------------------------------------

    def random_example(self, source: str) -> Answer:
        row = int(self.rng.integers(len(self.test)))
        inputs = {name: self._tensor(name, values[row:row + 1]) for name, values in self.test.modalities.items()}
        answer = self._answer(source, inputs[source], inputs)
        answer.row, answer.true_class = row, self.model.class_names[int(self.test.labels[row])]
        answer.notes.insert(0, f"test example {row} of {self.model.benchmark}")
        return answer

    def upload(self, source: str, value) -> Answer:
        """An answer for a file (image, audio) or a text (text) given to `source`; an InputError whose one
        line names the upload by its own name when it cannot be used."""
        modality = self._modality(source)
        path = None if modality.kind == "text" else uploaded_file(value)
        try:
            rate = getattr(self.params, "sample_rate", None)
            if modality.kind == "audio" and rate is not None:  # else the benchmark's preprocess refuses files
                check_audio(path, rate)
            raw = check_text(value) if modality.kind == "text" else path
            with self._lock:
                self.model.notes.clear()
                tensor = self.model.preprocess(source, [raw])
                notes = list(self.model.notes)
        except DataError as exc:
            raise InputError(own_name(str(exc).strip().splitlines()[0], path)) from None
        answer = self._answer(source, tensor, None)
        answer.notes.extend(own_name(note, path) for note in notes)
        return answer

    @torch.no_grad()
    def _answer(self, source: str, tensor: torch.Tensor, row: dict[str, torch.Tensor] | None) -> Answer:
        module = self.model.module
        with self._lock:
            embedded = self.model.embed_batch({source: tensor})
            shown: dict[str, Shown | list[Neighbour]] = {"input": self.show(source, tensor[0])}
            for a, b in self.translations:
                out = module.translate({source: tensor}, a, b) if a == source else None
                if out is not None:
                    shown[f"{a}->{b}"] = self.show(b, out[0])
            texts = module.generate_text(row) if row is not None and self.generated else None
            for name, ids in (texts or {}).items():
                if name != source:
                    shown[f"generated:{name}"] = self.show(name, ids[0])
        query = l2_normalize(embedded[source])[0]
        for name in self.searchable(source):
            shown[f"neighbours:{name}"] = self.neighbours(query, name)
        # every method's trial fits a probe per modality it embeds alone; a model without one predicts nothing
        predicted = self.model.predict_embeddings(embedded, (source,))[0] if source in self.model.probes else None
        return Answer(source, shown, predicted)

    def neighbours(self, query: np.ndarray, modality: str, k: int = NEIGHBOURS) -> list[Neighbour]:
        """The k test examples of `modality` most similar (cosine) to the unit embedding `query`."""
        similarity = self.gallery[modality] @ query
        best = np.argsort(-similarity, kind="stable")[:k]
        rows = self.unique_rows[modality][best]
        return [Neighbour(int(r), self.model.class_names[int(self.test.labels[r])], float(similarity[i]),
                          self.show(modality, torch.from_numpy(self.test.modalities[modality][r]), playable=False))
                for i, r in zip(best, rows)]

    # --- from model values to what a page shows ----------------------------------------------------------------

    def show(self, modality: str, values: torch.Tensor, playable: bool = True) -> Shown:
        """How `values` of `modality` look; audio also as a waveform unless playable=False (a gallery shows
        pictures only, and inverting a log-mel is the slowest step of an answer)."""
        kind = self.modalities[modality].kind
        array = values.detach().float().cpu().numpy() if kind != "text" else values.cpu().numpy()
        if kind == "image":
            return Shown(picture=image_picture(array))
        if kind == "audio":
            wave = None
            if playable and self.audio_stats is not None:
                wave = (self.params.sample_rate, waveform_from_log_mel(array[0], self.params, self.audio_stats))
            return Shown(picture=log_mel_picture(array[0]), sound=wave)
        return Shown(text=self._tokenizer(modality).decode(array.tolist()))

    def _tokenizer(self, modality: str):
        return tokenizer_from_state(self.model.info["data"]["tokenizers"][modality])

    def _modality(self, name: str) -> ModalitySpec:
        if name not in self.modalities:
            raise MmrayError(f"the model has no modality {name!r}; its modalities: {', '.join(self.modalities)}")
        return self.modalities[name]

    def _tensor(self, name: str, values: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(values))
        return tensor.long() if self.modalities[name].kind == "text" else tensor.float()


def image_picture(values: np.ndarray) -> np.ndarray:
    """uint8 pixels of a (C, H, W) image modality value. Every image benchmark stores pixels / 255 (its
    manifest's normalization.image), so this is the inverse, clipped: a decoder's output may overshoot."""
    pixels = (np.clip(values, 0.0, 1.0) * 255).round().astype(np.uint8)
    pixels = pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)
    return enlarge(pixels)


def log_mel_picture(values: np.ndarray) -> np.ndarray:
    """A standardised (n_mels, frames) log-mel as a grey spectrogram, low frequencies at the bottom."""
    scaled = (np.clip(values, -LOG_MEL_RANGE, LOG_MEL_RANGE) + LOG_MEL_RANGE) / (2 * LOG_MEL_RANGE)
    return enlarge((scaled[::-1] * 255).round().astype(np.uint8))


def enlarge(pixels: np.ndarray) -> np.ndarray:
    factor = max(1, PIXELS_ON_SCREEN // max(pixels.shape[:2]))
    return np.repeat(np.repeat(pixels, factor, axis=0), factor, axis=1)


def neighbour_caption(neighbour: Neighbour) -> str:
    return f"class {neighbour.label} · cos {neighbour.similarity:.2f} · test row {neighbour.row}"


__all__ = ["Answer", "Neighbour", "Panel", "Showcase", "Shown", "neighbour_caption"]
