"""Alias: ``paddlevideo.engine.checkpoint`` is :mod:`paddlevideo.training.checkpoint` (see :mod:`paddlevideo.engine`)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("paddlevideo.training.checkpoint")
