"""PaddleVideo-style video understanding on Paddle 3.x: TSN, TSM, StNet, I3D, SlowFast, AVA detection, online TSM.

Public API::

    from paddlevideo import load_config, build_model, load_weights
    model = build_model(load_config("configs/tsm.yaml"))   # [N, T, 3*seglen, H, W] -> logits

Importing the package imports no Paddle and changes no process state (threads, warning filters, stdout): the names
above load their modules on first use, and the command-line entry points set the process up
(:func:`paddlevideo.cli.configure_process`).

Packages by job: :mod:`.data` (lists, decoding, transforms, datasets), :mod:`.annotations` (file formats, no
Paddle), :mod:`.models`, :mod:`.tasks` (classification vs detection), :mod:`.metrics` (NumPy), :mod:`.runtime`
(runners, export, quantization, collectives, part files), :mod:`.training`, :mod:`.apps` (what a user runs);
:mod:`.engine` holds aliases of the modules it held before the split.
"""
import importlib

_API = {"load_config": "config", "UserError": "errors", "build_model": "models", "load_weights": "weights"}

__all__ = ["load_config", "build_model", "load_weights", "UserError"]


def __getattr__(name):
    if name in _API:
        return getattr(importlib.import_module("." + _API[name], __name__), name)
    raise AttributeError("module 'paddlevideo' has no attribute {!r}".format(name))
