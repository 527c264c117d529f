"""Alias: ``paddlevideo.engine.cli`` is :mod:`paddlevideo.cli` (see :mod:`paddlevideo.engine`)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("paddlevideo.cli")
