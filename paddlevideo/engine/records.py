"""Alias: ``paddlevideo.engine.records`` is :mod:`paddlevideo.runtime.records` (see :mod:`paddlevideo.engine`)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("paddlevideo.runtime.records")
