"""Alias: ``paddlevideo.engine.curves`` is :mod:`paddlevideo.training.curves` (see :mod:`paddlevideo.engine`)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("paddlevideo.training.curves")
