"""Person-detector plugins that misbehave, for tests/test_live.py (loaded by predict.py --detector)."""
import numpy as np


class Garbage:
    """A detector plugin that returns NaN and inverted boxes next to real ones."""

    def __call__(self, frame):
        return np.array([[np.nan, 1, 2, 3, 0.9], [50, 50, 10, 10, 0.9], [5, 5, 45, 60, 0.95]])


class Boom:
    def __init__(self):
        self.n = 0

    def __call__(self, frame):
        self.n += 1
        if self.n > 6:
            raise RuntimeError("the plugin broke")
        return np.array([[5, 5, 45, 60, 0.95]])


class Fixed:
    """One person box in the middle of every frame (the server's detection tests)."""

    def __call__(self, frame):
        h, w = frame.shape[:2]
        return np.array([[w * 0.25, h * 0.2, w * 0.75, h * 0.9, 0.95]])
