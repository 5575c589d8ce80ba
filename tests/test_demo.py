"""`mmray demo` (issue 23): a pavlov model from a real one-trial sweep on AV-MNIST (the mirror), shown against its
test examples: random examples and uploads answer with the model's own translations, neighbours and class; each
bad upload is one line in the page; and the served page, driven by headless Chromium, does both."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from mmray import cli
from mmray.demo.inputs import MAX_AUDIO_SECONDS, InputError, check_text
from mmray.demo.showcase import NEIGHBOURS, Showcase, image_picture, log_mel_picture
from mmray.models import load_model

pytestmark = pytest.mark.mirror

AVMNIST = {"max_train": 512, "max_eval": 200, "n_val_images": 200}
FSDD_TEST_RECORDING = "fsdd/recordings/7_george_0.wav"  # index 0: an FSDD test recording


def _quiet(*_):
    pass


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shards")


@pytest.fixture(scope="module")
def model_folder(mirror, cache, tmp_path_factory) -> Path:
    """pavlov on AV-MNIST from a real sweep of one trial on Ray, exported as `mmray export` does."""
    import ray
    import yaml

    from mmray import api
    from mmray.models.export import export_model
    from mmray.orchestration.sweep import ensure_ray

    tmp = tmp_path_factory.mktemp("demo")
    (tmp / "spec.yaml").write_text(yaml.safe_dump({
        "name": "demo-model",
        "benchmarks": [{"name": "avmnist", "params": AVMNIST}],
        "methods": ["pavlov"],
        "train": {"epochs": 1, "batch_size": 64, "probe_examples": 256},
        "method_params": {"pavlov": {"encoder_width": 8, "hidden_dim": 32, "latent_dim": 16}},
        "search": {"num_samples": 1, "metric": "val/fused_acc"},
        "scheduler": {"type": "none"},
    }))
    ensure_ray()
    try:
        out = api.run_sweep(api.load_spec(tmp / "spec.yaml"), mirror=mirror, cache_dir=cache,
                            results_dir=tmp / "results", report=False, log=_quiet)
    finally:
        ray.shutdown()
    return Path(export_model(out, "best", tmp / "model"))


@pytest.fixture(scope="module")
def showcase(model_folder, mirror, cache) -> Showcase:
    return Showcase.open(load_model(model_folder), mirror=mirror, cache_dir=cache, log=_quiet)


# --- what the page is filled with ----------------------------------------------------------------------------


@pytest.mark.ray
@pytest.mark.parametrize("source,other", [("image", "audio"), ("audio", "image")])
def test_a_random_example_shows_the_models_translations_neighbours_and_class(showcase, source, other):
    model, test = showcase.model, showcase.test
    assert len(test) == AVMNIST["max_eval"]  # the whole (capped) test split: under GALLERY_SIZE rows
    assert [p.key for p in showcase.panels(source)] == [
        "input", f"{source}->image", f"{source}->audio", f"neighbours:{other}"]
    for _ in range(3):
        answer = showcase.random_example(source)
        row = answer.row
        values = test.modalities[source][row]
        assert answer.true_class == model.class_names[test.labels[row]]
        assert answer.predicted == model.predict(**{source: [values]})[0]
        shown = answer.shown
        if source == "image":
            assert np.array_equal(shown["input"].picture, image_picture(values))
        else:
            assert np.array_equal(shown["input"].picture, log_mel_picture(values[0]))
        with torch.no_grad():
            tensor = torch.from_numpy(values[None])
            translated = {target: model.module.translate({source: tensor}, source, target)[0].numpy()
                          for target in ("image", "audio")}
        assert np.array_equal(shown[f"{source}->image"].picture, image_picture(translated["image"]))
        assert np.array_equal(shown[f"{source}->audio"].picture, log_mel_picture(translated["audio"][0]))
        rate, wave = shown[f"{source}->audio"].sound
        assert rate == 8000 and wave.shape == (200 * 39,) and np.abs(wave).max() > 1e-3  # hop x (frames - 1)
        # the neighbours: the most similar test inputs of the other modality, each input once, by cosine of
        # the embeddings the model gives them on their own
        neighbours = shown[f"neighbours:{other}"]
        assert len(neighbours) == NEIGHBOURS
        query = model.embed(**{source: [values]})[source][0]
        gallery = test.modalities[other]
        embedded = model.embed(**{other: list(gallery)})[other]
        cosine = embedded @ query / np.linalg.norm(embedded, axis=1) / np.linalg.norm(query)
        distinct = {gallery[r].tobytes(): r for r in range(len(gallery))}
        expected = sorted(cosine[list(distinct.values())], reverse=True)[:NEIGHBOURS]
        assert [n.similarity for n in neighbours] == pytest.approx(expected, abs=1e-5)
        assert len({gallery[n.row].tobytes() for n in neighbours}) == NEIGHBOURS
        for n in neighbours:
            assert n.label == model.class_names[test.labels[n.row]]
            assert n.similarity == pytest.approx(cosine[n.row], abs=1e-5)
            assert n.shown.sound is None  # pictures only: inverting five log-mels per answer is too slow


@pytest.mark.ray
def test_uploads_answer_as_the_model_predicts_them(showcase, mirror, tmp_path):
    model = showcase.model
    recording = mirror / FSDD_TEST_RECORDING
    answer = showcase.upload("audio", str(recording))
    assert answer.predicted == model.predict(audio=[recording])[0] and answer.row is None
    assert answer.notes == []  # 8 kHz mono, as FSDD: nothing converted
    log_mel = model.preprocess("audio", [recording])[0, 0].numpy()
    assert np.array_equal(answer.shown["input"].picture, log_mel_picture(log_mel))
    # the same recording as 16 kHz stereo: converted, and the page says so, naming the file by its own name
    wave, rate = sf.read(recording, dtype="float32")
    stereo = tmp_path / "seven stereo.wav"
    sf.write(stereo, np.stack([wave, wave], 1).repeat(2, axis=0), rate * 2)
    notes = showcase.upload("audio", str(stereo)).notes
    assert notes == ["audio file seven stereo.wav: mixed 2 channels to mono (their mean)",
                     "audio file seven stereo.wav: resampled from 16000 Hz to 8000 Hz (librosa, soxr_hq)"]
    with np.load(mirror / "mnist" / "test.npz") as mnist:
        digit = mnist["images"][0]
    png = tmp_path / "digit.png"
    Image.fromarray(digit).save(png)
    answer = showcase.upload("image", str(png))
    assert answer.predicted == model.predict(image=[png])[0]
    assert np.array_equal(answer.shown["input"].picture, image_picture(digit[None] / 255.0))
    assert set(answer.shown) == {"input", "image->image", "image->audio", "neighbours:audio"}


def _wav(path: Path, seconds: float, amplitude: float, rate: int = 8000) -> str:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    return str(path)


@pytest.mark.ray
def test_each_bad_upload_is_one_line_naming_the_file(showcase, tmp_path):
    (tmp_path / "notes.wav").write_text("these are words, not samples")
    (tmp_path / "digit.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)  # a PNG header, then junk
    cases = [
        ("audio", str(tmp_path / "notes.wav"), "notes.wav is not an audio file this demo reads"),
        ("audio", _wav(tmp_path / "quiet.wav", 1.0, 0.0), "quiet.wav is silent (RMS digital silence"),
        ("audio", _wav(tmp_path / "hum.wav", 1.0, 3e-4), "hum.wav is silent (RMS -73 dBFS, below -60 dBFS)"),
        ("audio", _wav(tmp_path / "long.wav", 600.0, 0.5),
         f"long.wav is 600 s long; the demo takes clips up to {MAX_AUDIO_SECONDS:.0f} s"),
        ("image", str(tmp_path / "digit.png"), "image file digit.png does not decode as an image"),
        ("image", None, "no file chosen: upload a file first"),
    ]
    for source, upload, expected in cases:
        with pytest.raises(InputError) as caught:
            showcase.upload(source, upload)
        message = str(caught.value)
        assert expected in message and "\n" not in message and str(tmp_path) not in message, message
    with pytest.raises(InputError, match="the text is empty"):
        check_text("  \n")
    # a loud clip inside the limit is used, not refused
    assert showcase.upload("audio", _wav(tmp_path / "tone.wav", 2.0, 0.5)).predicted in showcase.model.class_names


# --- the command line -------------------------------------------------------------------------------------


def test_demo_of_a_model_that_does_not_exist_is_one_line(capsys, tmp_path):
    assert cli.main(["demo", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"mmray: error: {tmp_path / 'nowhere'} does not exist (no model.json); export one with "
                   "`mmray export RESULTS --trial best --out FOLDER`")


def test_demo_on_a_port_in_use_is_one_line(capsys, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["demo", str(tmp_path / "nowhere"), "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"mmray: error: --port {port}: cannot listen on 127.0.0.1:{port}") and "\n" not in err


def test_without_gradio_the_demo_names_the_extra_and_nothing_else_needs_it(tmp_path):
    """sys.modules['gradio'] = None makes `import gradio` fail as where the extra is not installed."""
    script = ("import sys; sys.modules['gradio'] = None\n"
              "import mmray.cli, mmray.demo, mmray.models\n"
              f"sys.exit(mmray.cli.main(['demo', {str(tmp_path / 'model')!r}]))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == ("mmray: error: `mmray demo` needs Gradio, an optional extra: "
                                   "pip install 'mmray[demo]'")


def test_demo_help_says_where_it_listens(capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "default: 127.0.0.1, this machine only" in out and "--share" in out and "mmray[demo]" in out


# --- the page in a browser --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(model_folder, mirror, cache, tmp_path_factory):
    """`mmray demo` as a user starts it, in its own process; its URL and output."""
    port, log = _free_port(), tmp_path_factory.mktemp("served") / "demo.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "mmray", "demo", str(model_folder), "--port", str(port),
                                   "--mirror", str(mirror), "--cache", str(cache)],
                                  stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 240
        while True:
            try:
                urllib.request.urlopen(url, timeout=5).close()
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    pytest.fail(f"`mmray demo` served no page (exit {server.poll()}): {log.read_text()[-2000:]}")
                time.sleep(0.5)
        yield {"url": url, "log": log}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium, sync_playwright = None, None
    if chromium is None or sync_playwright is None:
        why = "chromium (apt-get install chromium) and playwright (the test extra)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"the demo's browser test needs {why} on CI")
        pytest.skip(f"the demo's browser test needs {why}")
    return chromium, sync_playwright


@pytest.mark.ray
def test_the_page_shows_a_random_example_and_a_bad_uploads_message(served, tmp_path):
    chromium, sync_playwright = _browser()
    corrupt = tmp_path / "broken digit.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    speech = tmp_path / "speech.wav"
    speech.write_text("words, not samples")
    elsewhere, errors = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()

            def local_only(route):  # the page must work, and ask nothing, beyond the demo's own server
                if route.request.url.startswith(served["url"]):
                    route.continue_()
                else:
                    elsewhere.append(route.request.url)
                    route.abort()

            page.route("**/*", local_only)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(served["url"])
            page.locator("#random-image").click()
            message = page.locator("#message-image")
            message.get_by_text("predicted class").wait_for(timeout=60_000)
            assert "true class" in message.inner_text()
            for panel in ("image-input", "image-image-image", "image-image-audio"):
                page.locator(f"#{panel} img").first.wait_for(timeout=30_000)
            page.locator("#image-image-audio-sound audio").first.wait_for(state="attached", timeout=30_000)
            neighbours = page.locator("#image-neighbours-audio img")
            neighbours.nth(NEIGHBOURS - 1).wait_for(timeout=30_000)
            assert neighbours.count() == NEIGHBOURS
            assert page.locator("#image-neighbours-audio").get_by_text("class ").count() >= NEIGHBOURS

            page.locator("#upload-image input[type=file]").set_input_files(str(corrupt))
            message.get_by_text("cannot use this input").wait_for(timeout=60_000)
            assert "image file broken digit.png does not decode as an image" in message.inner_text()
            assert page.locator("#image-input img").count() == 0  # the last answer is cleared, not left standing

            page.get_by_role("tab", name="audio (audio)").click()
            page.locator("#upload-audio input[type=file]").set_input_files(str(speech))
            page.locator("#message-audio").get_by_text("speech.wav is not an audio file").wait_for(timeout=60_000)
        finally:
            browser.close()
    assert not elsewhere, elsewhere
    assert not errors, errors
    log = served["log"].read_text()
    assert f"Running on local URL:  {served['url'].rstrip('/')}" in log and "public URL" not in log
    assert "Traceback" not in log, log
