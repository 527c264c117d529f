"""Alias: ``paddlevideo.engine.train`` is :mod:`paddlevideo.training.loop` (see :mod:`paddlevideo.engine`)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("paddlevideo.training.loop")
