"""`mmray demo MODEL`: an exported model live in the browser. showcase.py does what the model does (examples,
translations, neighbours, predictions, checks on uploads) with no web framework; app.py lays it out with Gradio,
the optional extra `mmray[demo]`, imported only here."""

from __future__ import annotations

import socket
import time

import torch

from mmray.demo.showcase import GALLERY_SIZE, Showcase
from mmray.errors import MmrayError


def run_demo(model_path, *, host: str = "127.0.0.1", port: int | None = None, share: bool = False,
             gallery_size: int | None = None, mirror=None, cache_dir=None, block: bool = True, log=print):
    """Check what is asked, load the model and its test examples, then serve the page (until interrupted,
    unless block=False: then the running Gradio app is returned)."""
    from mmray.demo.app import import_gradio, serve
    from mmray.models import load_model

    gallery_size = GALLERY_SIZE if gallery_size is None else gallery_size
    if gallery_size < 1:
        raise MmrayError(f"--gallery {gallery_size}: give at least 1 test row")
    import_gradio()  # before anything slow: a missing extra, or a port in use, is the first thing to hear about
    if port is not None:
        check_port(host, port)
    # One example at a time gains nothing from intra-op threads, and where other processes share the CPUs
    # torch's waiting threads cost it ~100x (1 s instead of 10 ms per answer on 2 busy cores). The demo owns
    # its process, so this is its setting, not a caller's.
    torch.set_num_threads(1)
    started = time.perf_counter()
    model = load_model(model_path)
    showcase = Showcase.open(model, mirror=mirror, cache_dir=cache_dir, gallery_size=gallery_size, log=log)
    log(f"[mmray] {model!r}: {len(showcase.test)} test examples ready in {time.perf_counter() - started:.1f} s")
    return serve(showcase, host=host, port=port, share=share, block=block)


def check_port(host: str, port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise MmrayError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror or exc}); choose "
                             "another port, or leave --port out for the first free one from 7860") from None


__all__ = ["Showcase", "run_demo"]
