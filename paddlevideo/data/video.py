"""Frame sources: decord, an OpenCV fallback, and the legacy pkl format.

Every source decodes only the frames asked for and returns them as ``[K, H, W, 3]`` uint8 RGB.
A file that no decoder can read raises :class:`VideoError` (the reader counts and skips it).
"""
import os
import pickle
import threading

import cv2
import numpy as np

from .. import quiet

cv2.setNumThreads(1)


class VideoError(Exception):
    """A video that cannot be opened or decoded."""


def read_frames_decord(path, choose_indices):
    """Decode with decord.  ``choose_indices(num_frames) -> list of int`` picks the frames."""
    import decord
    if quiet.enabled():
        decord.logging.set_level(decord.logging.QUIET)
    vr = decord.VideoReader(path, num_threads=1)
    n = len(vr)
    if n < 1:
        raise VideoError("no frames")
    idx = choose_indices(n)
    uniq, inverse = np.unique(np.asarray(idx, dtype=np.int64), return_inverse=True)
    frames = vr.get_batch(uniq.tolist()).asnumpy()
    if len(uniq) > 1 and uniq[-1] == n - 1:
        # decord can return a stale frame for the last one after a seek (an MPEG-4 AVI: get_batch([0, 50, 163])
        # of 164 frames gave frame 50 for 163); read it alone on a fresh reader, which is exact
        frames[-1] = decord.VideoReader(path, num_threads=1).get_batch([n - 1]).asnumpy()[0]
    return frames[inverse]


def read_frames_opencv(path, choose_indices):
    """Decode with OpenCV: one pass counts frames (grab only), a second retrieves the chosen ones."""
    cap = cv2.VideoCapture(path)
    try:
        if not cap.isOpened():
            raise VideoError("OpenCV cannot open it")
        n = 0
        while cap.grab():
            n += 1
    finally:
        cap.release()
    if n < 1:
        raise VideoError("no decodable frames")
    idx = choose_indices(n)
    wanted = set(int(i) for i in idx)
    got = {}
    cap = cv2.VideoCapture(path)
    try:
        i = 0
        last = max(wanted)
        while i <= last and cap.grab():
            if i in wanted:
                ok, frame = cap.retrieve()
                if not ok:
                    raise VideoError("frame {} does not decode".format(i))
                got[i] = _to_rgb(frame)
            i += 1
    finally:
        cap.release()
    missing = wanted - set(got)
    if missing:
        raise VideoError("frames {} do not decode".format(sorted(missing)[:5]))
    return np.stack([got[int(i)] for i in idx])


def _to_rgb(frame):
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


IMAGE_MAGIC = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
               b"BM": "a BMP image"}


def sniff(path):
    """Reject what is certainly not a video before any decoder sees it (empty files, images)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise VideoError("cannot read the file ({})".format(e.strerror or e))
    if size == 0:
        raise VideoError("empty file (0 bytes)")
    for magic, what in IMAGE_MAGIC.items():
        if head.startswith(magic):
            raise VideoError("the file is {}, not a video".format(what))


def decode_errors():
    """The exception types a decoder raises for a file it cannot read (decord's DECORDError, OpenCV's
    cv2.error, RuntimeError, OSError) — a TypeError or IndexError is a bug and is not caught as one."""
    kinds = (VideoError, RuntimeError, OSError, cv2.error)
    try:
        from decord._ffi.base import DECORDError
        return kinds + (DECORDError,)
    except ImportError:
        return kinds


def read_frames(path, choose_indices):
    """Decode the frames chosen by ``choose_indices(num_frames)`` from a video file.

    decord first; OpenCV for files decord cannot open or decode (it counts the frames that really
    decode, so a header that promises more frames than the file holds is handled).  Returns
    ``[K, H, W, 3]`` uint8 RGB; raises :class:`VideoError`.
    """
    if os.path.exists(path) and not os.path.isfile(path):
        raise VideoError("not a regular file")
    sniff(path)
    errors = []
    for reader in (read_frames_decord, read_frames_opencv):
        try:
            with quiet.hidden():
                frames = reader(path, choose_indices)
            if frames.ndim != 4 or frames.shape[-1] != 3:
                raise VideoError("unexpected frame shape {}".format(frames.shape))
            return frames
        except decode_errors() as e:  # what decoders raise for bad files; anything else is a bug and propagates
            errors.append("{}: {}".format(reader.__name__.replace("read_frames_", ""),
                                          str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__))
    raise VideoError("; ".join(errors))


FRAME_PATTERN = "img_{:05d}.jpg"


def read_image_folder(path, prefix, choose_indices, load, what):
    """Items ``choose_indices(n)`` of a folder of numbered files ``<prefix>00001.jpg ...``, each
    read once by ``load(i)`` (0-based; None when unreadable): ``[K, ...]``."""
    if not os.path.isdir(path):
        raise VideoError("not a {} folder".format(what))
    n = sum(1 for name in os.listdir(path) if name.startswith(prefix) and name.endswith(".jpg"))
    if n < 1:
        raise VideoError("no {}NNNNN.jpg files in the folder".format(prefix))
    out, cache = [], {}
    for i in choose_indices(n):
        i = int(i)
        if i not in cache:
            cache[i] = load(i)
            if cache[i] is None:
                raise VideoError("{} {} is missing or not a decodable image".format(what, i + 1))
        out.append(cache[i])
    return np.stack(out)


def read_frame_dir(path, choose_indices):
    """A folder of extracted frames ``img_00001.jpg, img_00002.jpg, ...`` (data/dataset/extract_frames.py,
    the layout of PaddleVideo's and mmaction2's frame datasets).  Returns ``[K, H, W, 3]`` uint8 RGB."""
    def load(i):
        img = cv2.imread(os.path.join(path, FRAME_PATTERN.format(i + 1)), cv2.IMREAD_COLOR)
        return None if img is None else _to_rgb(img)
    return read_image_folder(path, "img_", choose_indices, load, "frame")


def read_pkl(path, choose_indices):
    """Legacy pkl clip: a pickle of ``(video_id, label, [jpeg bytes per frame])``.

    Returns ``(frames [K, H, W, 3] uint8 RGB, label)``.
    """
    try:
        with open(path, "rb") as f:
            data = pickle.load(f, encoding="bytes")
        label, jpegs = data[1], data[2]
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError, AttributeError,
            ImportError, UnicodeDecodeError) as e:      # what a file that is not (or no longer) a pkl clip raises
        raise VideoError("not a legacy pkl clip ({})".format(e))
    if len(jpegs) < 1:
        raise VideoError("no frames")
    idx = choose_indices(len(jpegs))
    out = []
    cache = {}
    for i in idx:
        i = int(i)
        if i not in cache:
            img = cv2.imdecode(np.frombuffer(jpegs[i], np.uint8), cv2.IMREAD_COLOR)
            if img is None:
                raise VideoError("frame {} is not a decodable image".format(i))
            cache[i] = _to_rgb(img)
        out.append(cache[i])
    return np.stack(out), int(label)


def call_with_timeout(fn, timeout):
    """Run ``fn()`` in a daemon thread; raise :class:`VideoError` if it takes longer than
    ``timeout`` seconds (a decoder stuck in native code must not hang the run; the stuck thread is
    abandoned and dies with its process)."""
    if not timeout or timeout <= 0:
        return fn()
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the caller below
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        quiet.release()          # the stuck call may hold stderr on /dev/null: give it back to the run
        raise VideoError("decoding took longer than {:g}s (decode_timeout); skipped".format(timeout))
    if "error" in box:
        raise box["error"]
    return box["value"]
