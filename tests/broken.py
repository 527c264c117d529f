"""Build broken / unusual inputs from the real clips in tests/data (used by the robustness tests)."""
import os
import shutil
import struct

import cv2
import numpy as np

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


def _boxes(data, start, end):
    i = start
    while i + 8 <= end:
        size, typ = struct.unpack(">I4s", data[i:i + 8])
        if size < 8:
            break
        yield typ, i, size
        i += size


def _shift_chunk_offsets(moov, delta):
    """Add ``delta`` to every stco/co64 chunk offset inside a moov box (bytearray, in place)."""
    def walk(start, end):
        for typ, i, size in _boxes(moov, start, end):
            if typ in CONTAINERS:
                walk(i + 8, i + size)
            elif typ == b"stco":
                n = struct.unpack(">I", moov[i + 12:i + 16])[0]
                for k in range(n):
                    p = i + 16 + 4 * k
                    moov[p:p + 4] = struct.pack(">I", struct.unpack(">I", moov[p:p + 4])[0] + delta)
            elif typ == b"co64":
                n = struct.unpack(">I", moov[i + 12:i + 16])[0]
                for k in range(n):
                    p = i + 16 + 8 * k
                    moov[p:p + 8] = struct.pack(">Q", struct.unpack(">Q", moov[p:p + 8])[0] + delta)
    walk(8, len(moov))


def header_longer_than_data(src, dst, keep=0.5):
    """An mp4 whose header (moov, moved to the front) lists every frame but whose media data is cut:
    the frame count in the header is larger than what decodes."""
    data = open(src, "rb").read()
    boxes = {typ: (i, size) for typ, i, size in _boxes(data, 0, len(data))}
    mi, ms = boxes[b"moov"]
    di, ds = boxes[b"mdat"]
    moov = bytearray(data[mi:mi + ms])
    head = data[:di] if di < mi else data[:mi]
    _shift_chunk_offsets(moov, len(moov) if di < mi else 0)
    out = head + bytes(moov) + data[di:di + ds]
    with open(dst, "wb") as f:
        f.write(out[:len(head) + len(moov) + int(ds * keep)])


def write_video(path, frames, fps=25, color=True):
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h), color)
    for f in frames:
        vw.write(f)
    vw.release()


def make_corpus(src_dir, out_dir):
    """Write the broken and unusual files; return ``{kind: path}``."""
    os.makedirs(out_dir, exist_ok=True)
    good = os.path.join(src_dir, "arm_wrestling.mp4")
    raw = open(good, "rb").read()
    cap = cv2.VideoCapture(good)
    frames = []
    while len(frames) < 40:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    p = {k: os.path.join(out_dir, k + ext) for k, ext in [
        ("zero_bytes", ".mp4"), ("truncated", ".mp4"), ("random_bytes", ".mp4"), ("text", ".mp4"),
        ("image", ".mp4"), ("avi_named_mp4", ".mp4"), ("short", ".mp4"), ("grayscale", ".mp4"),
        ("odd_size", ".mp4"), ("large", ".mp4"), ("header_longer", ".mp4")]}
    open(p["zero_bytes"], "wb").close()
    open(p["truncated"], "wb").write(raw[:len(raw) // 3])
    open(p["random_bytes"], "wb").write(np.random.RandomState(0).bytes(50000))
    open(p["text"], "w").write("this is not a video\n" * 20)
    ok, png = cv2.imencode(".png", frames[0])
    open(p["image"], "wb").write(png.tobytes())
    shutil.copy(os.path.join(src_dir, "mmaction2_test.avi"), p["avi_named_mp4"])
    write_video(p["short"], [cv2.resize(f, (64, 48)) for f in frames[:3]])
    write_video(p["grayscale"], [cv2.cvtColor(cv2.resize(f, (64, 48)), cv2.COLOR_BGR2GRAY) for f in frames[:20]],
                color=False)
    write_video(p["odd_size"], [cv2.resize(f, (33, 17)) for f in frames[:20]])
    write_video(p["large"], [cv2.resize(f, (1920, 1080)) for f in frames[:6]])
    header_longer_than_data(good, p["header_longer"])
    return p


BROKEN = ("zero_bytes", "truncated", "random_bytes", "text", "image")
READABLE = ("avi_named_mp4", "short", "grayscale", "odd_size", "large", "header_longer")
