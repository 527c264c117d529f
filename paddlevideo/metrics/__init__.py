"""Metrics in pure NumPy: classification (:mod:`.classification`: top-k, per-class, confusion, view combination),
the AVA frame-mAP by the official rules (:mod:`.ava`) and their plots (:mod:`.plots`, matplotlib imported when a
plot is drawn).  Imports neither Paddle nor :mod:`paddlevideo.data`."""
