"""Alias: ``paddlevideo.engine.stream`` is :mod:`paddlevideo.apps.stream` (see :mod:`paddlevideo.engine`)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("paddlevideo.apps.stream")
