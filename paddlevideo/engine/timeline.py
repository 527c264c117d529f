"""Alias: ``paddlevideo.engine.timeline`` is :mod:`paddlevideo.apps.timeline` (see :mod:`paddlevideo.engine`)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("paddlevideo.apps.timeline")
