"""Keep native libraries' own messages off the user's terminal (the CLIs' default; ``--debug`` keeps them).

Decoders print "moov atom not found" or decord's "ERROR opening ..." for every bad video, and the
exporters print their progress; the toolkit prints its own one-line message instead.  FFmpeg's log
level is set to quiet where a library exposes it (OpenCV here, decord in ``data.video``); what no
setting reaches is kept away by pointing file descriptors 1/2 at /dev/null while such a call runs —
Python's ``sys.stdout``/``sys.stderr`` move to copies of the terminal's descriptors first, so no
message of ours is lost.
"""
import contextlib
import os
import sys
import threading

_STATE = {"on": False, "depth": {1: 0, 2: 0}, "saved": {}, "generation": 0}
_LOCK = threading.Lock()


def enabled():
    return _STATE["on"]


def enable():
    """Turn quiet mode on for this process (and the reader workers it forks)."""
    if _STATE["on"]:
        return
    os.environ["OPENCV_FFMPEG_LOGLEVEL"] = "-8"
    os.environ["OPENCV_LOG_LEVEL"] = "SILENT"
    try:
        import cv2
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except (ImportError, AttributeError):
        pass
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        stream.flush()
        setattr(sys, name, os.fdopen(os.dup(fd), "w", buffering=1,
                                     encoding=getattr(stream, "encoding", None) or "utf-8", errors="backslashreplace"))
    _STATE["on"] = True


@contextlib.contextmanager
def hidden(fds=(2,)):
    """While active (in quiet mode), C-level writes to the descriptors ``fds`` go to /dev/null."""
    if not _STATE["on"]:
        yield
        return
    with _LOCK:
        generation = _STATE["generation"]
        for fd in fds:
            if _STATE["depth"][fd] == 0:
                _STATE["saved"][fd] = os.dup(fd)
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, fd)
                os.close(null)
            _STATE["depth"][fd] += 1
    try:
        yield
    finally:
        with _LOCK:
            if generation == _STATE["generation"]:      # else release() already gave the descriptors back
                for fd in fds:
                    _STATE["depth"][fd] -= 1
                    if _STATE["depth"][fd] == 0:
                        os.dup2(_STATE["saved"][fd], fd)
                        os.close(_STATE["saved"].pop(fd))


def release():
    """Give descriptors 1/2 back to the terminal now, whatever ``hidden()`` blocks are still open (a decode
    abandoned at its timeout keeps running in its thread); those blocks then leave the descriptors alone."""
    with _LOCK:
        for fd, saved in list(_STATE["saved"].items()):
            os.dup2(saved, fd)
            os.close(_STATE["saved"].pop(fd))
            _STATE["depth"][fd] = 0
        _STATE["generation"] += 1


def onnxruntime_logs():
    """ONNX Runtime's own log (graph-optimizer warnings such as "Removing initializer ...") at errors only,
    unless ``--debug``."""
    if _STATE["on"]:
        import onnxruntime
        onnxruntime.set_default_logger_severity(3)
