"""The Gradio page of `mmray demo`: a tab per input modality laid out from `Showcase.panels`, each filled from an
`Answer`. Everything the model does is in showcase.py; this module only places it."""

from __future__ import annotations

import os

import numpy as np

from mmray.demo.inputs import InputError
from mmray.demo.showcase import Answer, Panel, Showcase, Shown, neighbour_caption
from mmray.errors import MmrayError

UPLOAD_HINT = {"image": "upload a PNG or JPEG image", "audio": "upload a WAV or FLAC recording"}
INSTALL = "pip install 'mmray[demo]'"


def import_gradio():
    """Gradio, with its telemetry and update check off (the page must work, and stay silent, offline)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError:
        raise MmrayError(f"`mmray demo` needs Gradio, an optional extra: {INSTALL}") from None
    return gradio


def build_page(showcase: Showcase):
    gr = import_gradio()
    model = showcase.model
    # every answer writes its pictures and WAV files to Gradio's cache: an hour-old one is no longer on a page
    with gr.Blocks(title=f"mmray demo: {model.info['method']} on {model.benchmark}", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as page:
        gr.Markdown(f"## {model.info['method']} on {model.benchmark}\n"
                    f"Epoch {model.info['epoch']} of trial {(model.info.get('trial') or {}).get('trial_id', '-')}; "
                    f"examples and neighbours from the first {len(showcase.test)} test rows.")
        for source, modality in showcase.modalities.items():
            with gr.Tab(f"{source} ({modality.kind})", elem_id=f"tab-{source}"):
                _tab(gr, showcase, source, modality.kind)
    return page


def _tab(gr, showcase: Showcase, source: str, kind: str) -> None:
    with gr.Row():
        random = gr.Button("random test example", variant="primary", elem_id=f"random-{source}")
        if kind == "text":
            upload = gr.Textbox(label=f"or type a {source} text", elem_id=f"upload-{source}")
            send = gr.Button("show", elem_id=f"send-{source}")
        elif showcase.takes_files:
            upload = gr.File(label=f"or {UPLOAD_HINT[kind]}", elem_id=f"upload-{source}")
        else:
            upload = None
            gr.Markdown(f"{showcase.model.benchmark} generates its {source} examples: there are no files to upload")
    message = gr.Markdown(elem_id=f"message-{source}")
    panels = sorted(showcase.panels(source), key=lambda panel: panel.neighbours)  # neighbours last
    outputs = [message]
    with gr.Row():  # the input and what the method makes of it
        for panel in panels:
            if not panel.neighbours:
                with gr.Column(min_width=200):
                    outputs.extend(_components(gr, source, panel))
    for panel in panels:  # then the neighbours, a full-width row each
        if panel.neighbours:
            outputs.extend(_components(gr, source, panel))

    def fill(answer: Answer) -> list:
        predicted = (f"**predicted class: {answer.predicted}** (the probe of {source} alone)"
                     if answer.predicted is not None else f"(the model has no probe of {source} alone)")
        lines = [predicted + (f"; true class: {answer.true_class}" if answer.true_class is not None else "")]
        lines += [f"- {note}" for note in answer.notes]
        values = ["\n".join(lines)]
        for panel in panels:
            values.extend(_values(panel, answer.shown.get(panel.key)))
        return values

    def refuse(error: InputError) -> list:
        return [f"**cannot use this input:** {error}"] + [None] * (len(outputs) - 1)

    def on_random():
        return fill(showcase.random_example(source))

    def on_upload(value):
        try:
            return fill(showcase.upload(source, value))
        except InputError as error:
            return refuse(error)

    random.click(on_random, outputs=outputs, api_name=f"random_{source}", queue=False)
    if kind == "text":
        send.click(on_upload, inputs=upload, outputs=outputs, api_name=f"text_{source}")
        upload.submit(on_upload, inputs=upload, outputs=outputs)
    elif upload is not None:
        upload.upload(on_upload, inputs=upload, outputs=outputs, api_name=f"upload_{source}")


def _components(gr, source: str, panel: Panel) -> list:
    key = f"{source}-{panel.key}".replace(":", "-").replace(">", "")  # e.g. image-image-audio, image-neighbours-audio
    if panel.neighbours and panel.kind == "text":
        return [gr.Markdown(label=panel.title, elem_id=key)]
    if panel.neighbours:  # PNG, as the other pictures: Gallery's default WebP takes 2.5x as long to encode
        return [gr.Gallery(label=panel.title, columns=5, height="auto", format="png", elem_id=key)]
    if panel.kind == "image":
        return [gr.Image(label=panel.title, interactive=False, format="png", elem_id=key)]
    if panel.kind == "audio":
        return [gr.Image(label=f"{panel.title}: log-mel", interactive=False, format="png", elem_id=key),
                gr.Audio(label=f"{panel.title}: listen", interactive=False, elem_id=f"{key}-sound")]
    return [gr.Textbox(label=panel.title, interactive=False, elem_id=key)]


def _values(panel: Panel, shown: Shown | list | None) -> list:
    if panel.neighbours:
        if shown is None:
            return [None]
        if panel.kind == "text":
            return [f"**{panel.title}**\n" + "\n".join(f"- {n.shown.text} ({neighbour_caption(n)})" for n in shown)]
        return [[(n.shown.picture, neighbour_caption(n)) for n in shown]]
    if panel.kind == "audio":
        if shown is None:
            return [None, None]
        return [shown.picture, None if shown.sound is None else _playable(*shown.sound)]
    if shown is None:
        return [None]
    return [shown.picture if panel.kind == "image" else shown.text]


def _playable(rate: int, wave: np.ndarray) -> tuple[int, np.ndarray]:
    """16-bit samples (waveform_from_log_mel keeps its peak within full scale), which Gradio sends as is."""
    return rate, (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16)


def serve(showcase: Showcase, host: str = "127.0.0.1", port: int | None = None, share: bool = False,
          block: bool = True):
    """Serve the page (on 127.0.0.1 unless told otherwise; a public share link only with share=True)."""
    page = build_page(showcase)
    page.queue(default_concurrency_limit=1)
    page.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
                show_error=False, quiet=False, run_history=False)
    return page
