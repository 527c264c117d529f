"""Alias: ``paddlevideo.engine.predict`` is :mod:`paddlevideo.apps.predict` (see :mod:`paddlevideo.engine`)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("paddlevideo.apps.predict")
