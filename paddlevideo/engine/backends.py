"""Alias: ``paddlevideo.engine.backends`` is :mod:`paddlevideo.runtime.backends` (see :mod:`paddlevideo.engine`)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("paddlevideo.runtime.backends")
