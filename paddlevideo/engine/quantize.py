"""Alias: ``paddlevideo.engine.quantize`` is :mod:`paddlevideo.runtime.quantize` (see :mod:`paddlevideo.engine`)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("paddlevideo.runtime.quantize")
