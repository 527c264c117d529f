"""Alias: ``paddlevideo.engine.parallel`` is :mod:`paddlevideo.runtime.parallel` (see :mod:`paddlevideo.engine`)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("paddlevideo.runtime.parallel")
