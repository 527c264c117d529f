"""Alias: ``paddlevideo.engine.evaluate`` is :mod:`paddlevideo.apps.evaluate` (see :mod:`paddlevideo.engine`)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("paddlevideo.apps.evaluate")
