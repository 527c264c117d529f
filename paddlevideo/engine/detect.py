"""Alias: ``paddlevideo.engine.detect`` is :mod:`paddlevideo.apps.detect` (see :mod:`paddlevideo.engine`)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("paddlevideo.apps.detect")
