"""Frame sources: decord, an OpenCV fallback, a cheaper exact path (PyAV), and the legacy pkl format.

Every source decodes only the frames asked for and returns them as ``[K, H, W, 3]`` uint8 RGB.
A file that no decoder can read raises :class:`VideoError` (the reader counts and skips it).

``decoder: auto`` (the default) first tries :func:`read_frames_fast`: the frame index decord builds (count and
timestamps) decides which frames are wanted, exactly as today; PyAV then decodes only what those frames need —
from the last keyframe before each wanted frame (nothing between two such stretches is decoded, as decord's seeks
do), with the decoder told to drop the non-reference frames that are not wanted (the B-frames nobody needs,
typically half of an H.264 file's frames) — and stops after the last wanted frame.  It is used only where it is
exact: the codec and pixel format on the list below (each checked bit for bit against decord on the test clips),
every packet with a timestamp, and PyAV's frame timestamps equal to decord's index one for one; anything else
(an AVI without timestamps, an edit list that shifts them, another codec or pixel format, an open GOP, rotation
metadata, a file over 256 MB, a missing PyAV) goes to decord as before.  ``decoder: decord`` is today's reader (decord, then OpenCV).
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


FAST_CODECS = {"h264", "hevc", "vp9", "vp8"}    # bit-exact by their standards; checked against decord (tests/test_decoders.py)
FAST_PIX_FMTS = {"yuv420p"}
FAST_MAX_BYTES = 256 << 20    # larger files: decord's seeks read less of the file than this path's two passes


def _nal_types(data, codec, length_size):
    """The NAL unit types of one H.264/HEVC packet (length-prefixed as in MP4/Matroska, or Annex B start codes)."""
    shift, mask = (1, 0x3F) if codec == "hevc" else (0, 0x1F)
    out = []
    if length_size and not data.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")):
        i = 0
        while i + length_size < len(data):
            size = int.from_bytes(data[i:i + length_size], "big")
            i += length_size
            if size <= 0 or i + size > len(data):
                break
            out.append((data[i] >> shift) & mask)
            i += size
        return out
    for part in data.split(b"\x00\x00\x01")[1:]:
        if part:
            out.append((part[0] >> shift) & mask)
    return out


def _closed_keyframe(data, codec, length_size):
    """Whether decoding can start at this keyframe with every later frame exact (an IDR picture; VP8/VP9 keyframes
    always are) — an open GOP's I picture (H.264 non-IDR, HEVC CRA/BLA) is not: such videos stay with decord."""
    if codec == "h264":
        return 5 in _nal_types(data, codec, length_size)
    if codec == "hevc":
        return bool({19, 20} & set(_nal_types(data, codec, length_size)))
    return True


def _keyframe_before(keys, pos, pts, t):
    """The decode position of the last keyframe at or before decode position ``pos`` whose timestamp is not after
    ``t`` (a frame shown before its keyframe — an open GOP's leading picture — needs the keyframe before)."""
    for k in reversed(keys):
        if k <= pos and pts[k] <= t:
            return k
    return None


class _Rotated(Exception):
    pass


def read_frames_fast(path, choose_indices):
    """The frames decord's index-based reader returns, decoding less (see the module doc); None when this video is
    not one the fast path is exact for (the caller then reads it with decord)."""
    try:
        import av
        import decord
    except ImportError:
        return None
    if os.path.getsize(path) > FAST_MAX_BYTES:
        return None
    with av.open(path) as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        cc = stream.codec_context
        if cc.name not in FAST_CODECS or cc.format is None or cc.format.name not in FAST_PIX_FMTS:
            return None
        stream.thread_type = "SLICE"
        cc.thread_count = 1
        extra = cc.extradata or b""
        length_size = ((extra[4] & 3) + 1 if cc.name == "h264" and len(extra) > 4 and extra[0] == 1 else
                       (extra[21] & 3) + 1 if cc.name == "hevc" and len(extra) > 22 and extra[0] == 1 else 0)
        pts, keys = [], []
        for pkt in container.demux(stream):
            if pkt.size == 0:
                continue
            if pkt.pts is None:
                return None
            if pkt.is_keyframe:
                if not _closed_keyframe(bytes(pkt), cc.name, length_size):
                    return None
                keys.append(len(pts))
            pts.append(int(pkt.pts))
        time_base = float(stream.time_base)
    # decord's index (only for a file this path can take: decord is not touched for the others, whose frames then
    # come from decord exactly as with decoder: decord)
    if quiet.enabled():
        decord.logging.set_level(decord.logging.QUIET)
    vr = decord.VideoReader(path, num_threads=1)
    n = len(vr)
    stamps = vr.get_frame_timestamp(list(range(n)))[:, 0] if n else None
    del vr
    order = sorted(pts)
    if len(order) != n or len(set(order)) != n or not keys:
        return None
    if not n or not np.allclose(np.asarray(order, np.float64) * time_base, stamps, atol=1e-4, rtol=0):
        return None                                   # an edit list or a timestamp quirk: decord's index
    idx = [int(i) for i in choose_indices(n)]
    wanted = {order[i]: i for i in set(idx)}
    position = {p: k for k, p in enumerate(pts)}      # timestamp -> decode position
    spans = []
    for t in sorted(wanted, key=position.get):
        end = position[t]
        start = _keyframe_before(keys, end, pts, t)
        if start is None:
            return None
        if spans and start <= spans[-1][1] + 1:
            spans[-1] = [min(spans[-1][0], start), max(spans[-1][1], end)]
        else:
            spans.append([start, end])
    feed = np.zeros(len(pts), bool)
    for a, b in spans:
        feed[a:b + 1] = True
    got = {}
    try:
        _decode_spans(av, path, spans, feed, wanted, got)
    except _Rotated:
        return None
    if len(got) != len(wanted):
        return None
    return np.stack([got[i] for i in idx])


def _av_errors():
    try:
        import av
        return (av.error.FFmpegError, ValueError)
    except ImportError:
        return ()


def _decode_spans(av, path, spans, feed, wanted, got):
    """The second pass: feed the decoder the packets of ``feed`` (decode positions), dropping the non-reference
    frames that are not wanted; ``got[index] = RGB frame`` for the wanted timestamps (``wanted``: pts -> index)."""
    def take(frames):
        for f in frames:
            if f.rotation:                                # decord ignores rotation metadata; keep its frames exactly
                raise _Rotated()
            i = wanted.get(f.pts)
            if i is not None and i not in got:
                got[i] = f.to_ndarray(format="rgb24")
    with av.open(path) as container:                      # from the start again (no seek semantics involved)
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        cc = stream.codec_context
        cc.thread_count = 1
        k, fed_last = -1, False
        for pkt in container.demux(stream):
            if pkt.size == 0:
                continue
            k += 1
            if k > spans[-1][1]:
                break
            if not feed[k]:
                if fed_last:                              # a gap: finish the stretch, forget its references
                    take(cc.decode(None))
                    cc.flush_buffers()
                fed_last = False
                continue
            cc.skip_frame = "DEFAULT" if pkt.pts in wanted else "NONREF"
            take(cc.decode(pkt))
            fed_last = True
        cc.skip_frame = "DEFAULT"
        take(cc.decode(None))


def read_frames(path, choose_indices, decoder="auto"):
    """Decode the frames chosen by ``choose_indices(num_frames)`` from a video file.

    ``decoder`` auto: :func:`read_frames_fast` where it is exact, else as decord; decord: decord first, OpenCV for
    files decord cannot open or decode (it counts the frames that really decode, so a header that promises more
    frames than the file holds is handled).  Returns ``[K, H, W, 3]`` uint8 RGB; raises :class:`VideoError`.
    """
    if os.path.exists(path) and not os.path.isfile(path):
        raise VideoError("not a regular file")
    sniff(path)
    if decoder == "auto":
        try:
            with quiet.hidden():
                frames = read_frames_fast(path, choose_indices)
            if frames is not None:
                return frames
        except decode_errors() + _av_errors():            # decord decides, and reports, what PyAV could not read
            pass
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
