"""Aliases of the modules ``engine/`` held before it was split by job (kept so that earlier code and commands
work): ``paddlevideo.engine.X`` *is* the module that now does X — ``train`` → :mod:`paddlevideo.training.loop`,
``checkpoint``/``curves`` → :mod:`paddlevideo.training`, ``backends``/``quantize``/``parallel``/``records`` →
:mod:`paddlevideo.runtime`, ``evaluate``/``predict``/``detect``/``timeline``/``online``/``stream`` →
:mod:`paddlevideo.apps`, ``ava_eval`` → :mod:`paddlevideo.metrics.ava`, ``tasks`` → :mod:`paddlevideo.tasks`,
``cli`` → :mod:`paddlevideo.cli`; ``common`` re-exports the helpers it held from their new homes.
New code imports the new names."""
