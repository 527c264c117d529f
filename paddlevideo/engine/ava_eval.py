"""Alias: ``paddlevideo.engine.ava_eval`` is :mod:`paddlevideo.metrics.ava` (see :mod:`paddlevideo.engine`)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("paddlevideo.metrics.ava")
