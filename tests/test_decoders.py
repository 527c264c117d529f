"""decoder: auto (the cheaper exact path) returns exactly the frames decoder: decord returns, on a varied clip set:
the real test clips plus clips made here with the bundled ffmpeg (H.264 with and without B-frames, short and open
GOPs, B-pyramid, full range, Matroska, MPEG-TS, MPEG-4 in AVI and MP4, VP9, VP8, HEVC, variable frame rate, an
edit list, rotation metadata, 4:4:4, MPEG-2, a truncated file, 5-frame and 1-frame clips): every sampled frame equal
bit for bit, or the video routed to decord — and the fast path really taken where it should be."""
import os
import subprocess

import numpy as np
import pytest

from conftest import DATA
from paddlevideo import UserError, load_config
from paddlevideo.data.sampling import dense_indices, segment_indices
from paddlevideo.data.video import VideoError, read_frames, read_frames_fast

REAL = ["arm_wrestling.mp4", "eivideo_example.mp4", "mmaction2_test.mp4", "mmaction2_test.avi",
        "paddlevideo_example.avi"]
SRC = ["-i", os.path.join(DATA, "arm_wrestling.mp4"), "-t", "2", "-an"]
SCALE = ["-vf", "scale=170:128"]
X264 = ["-c:v", "libx264", "-preset", "veryfast"]
MADE = {   # name: (ffmpeg arguments after the input, the fast path must be taken)
    "h264_bframes.mp4": (SCALE + X264 + ["-bf", "3", "-movflags", "+faststart"], True),
    "h264_no_b.mp4": (SCALE + X264 + ["-bf", "0"], True),
    "h264_gop12.mp4": (SCALE + X264 + ["-g", "12", "-bf", "2"], True),
    "h264_pyramid.mp4": (SCALE + X264 + ["-x264-params", "bframes=3:b-pyramid=normal"], True),
    "h264_open_gop.mp4": (SCALE + X264 + ["-x264-params", "open-gop=1:keyint=20:bframes=3"], False),
    "h264_full_range.mp4": (SCALE + X264 + ["-pix_fmt", "yuvj420p"], False),
    "h264.mkv": (SCALE + X264, None),
    "h264.ts": (SCALE + X264 + ["-f", "mpegts"], None),
    "mpeg4_b.avi": (SCALE + ["-c:v", "mpeg4", "-q:v", "4", "-bf", "2"], False),
    "mpeg4_b.mp4": (SCALE + ["-c:v", "mpeg4", "-q:v", "4", "-bf", "2"], False),     # IDCT not bit-exact: decord
    "vp9.webm": (SCALE + ["-c:v", "libvpx-vp9", "-b:v", "300k", "-deadline", "realtime", "-cpu-used", "8"], True),
    "vp8.webm": (SCALE + ["-c:v", "libvpx", "-b:v", "300k", "-deadline", "realtime", "-cpu-used", "8"], None),
    "hevc.mp4": (SCALE + ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error",
                          "-tag:v", "hvc1"], None),
    "vfr.mp4": (["-vf", "scale=170:128,setpts='if(lt(N,30),N,30+(N-30)*2)/(30*TB)'", "-fps_mode", "vfr"] + X264,
                None),
    "yuv444.mp4": (SCALE + X264 + ["-pix_fmt", "yuv444p"], False),
    "mpeg2.mpg": (SCALE + ["-c:v", "mpeg2video", "-q:v", "4", "-bf", "2"], False),
    "short5.mp4": (SCALE + X264 + ["-frames:v", "5"], True),
    "one_frame.mp4": (SCALE + X264 + ["-frames:v", "1"], True),
}


def _ffmpeg(*args):
    import imageio_ffmpeg
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y"] + [str(a) for a in args],
                   check=True, timeout=120)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("decoders")
    out = {n: (os.path.join(DATA, n), None) for n in REAL}
    for name, (args, fast) in MADE.items():
        _ffmpeg(*(SRC + args + [d / name]))
        out[name] = (str(d / name), fast)
    src = d / "h264_bframes.mp4"
    _ffmpeg("-ss", "0.7", "-i", src, "-t", "1.0", "-c", "copy", d / "edit_list.mp4")      # an edit list
    _ffmpeg("-display_rotation", "90", "-i", src, "-c", "copy", d / "rotated.mp4")        # rotation metadata
    data = src.read_bytes()
    (d / "truncated.mp4").write_bytes(data[:len(data) * 6 // 10])                        # header first, cut mdat
    out.update({"edit_list.mp4": (str(d / "edit_list.mp4"), None), "rotated.mp4": (str(d / "rotated.mp4"), False),
                "truncated.mp4": (str(d / "truncated.mp4"), None)})
    assert len(out) >= 20
    return out


SAMPLINGS = {
    "segments (TSM test)": lambda n: segment_indices(n, 8, 1, False),
    "dense 32x2 (SlowFast)": lambda n: dense_indices(n, 32, 2, False),
    "first and last": lambda n: [0, n - 1],
    "repeated and unsorted": lambda n: [n // 2, 0, n // 2, max(n - 2, 0)],
}


def _read(path, choose, decoder):
    try:
        return read_frames(path, choose, decoder)
    except VideoError as e:
        return e


@pytest.mark.parametrize("sampling", list(SAMPLINGS))
def test_auto_returns_exactly_decords_frames(clips, sampling):
    choose = SAMPLINGS[sampling]
    fast_used, unstable = [], []
    for name, (path, must_be_fast) in sorted(clips.items()):
        ref, got = _read(path, choose, "decord"), _read(path, choose, "auto")
        if isinstance(ref, VideoError):
            assert isinstance(got, VideoError), name
            continue
        assert isinstance(got, np.ndarray) and got.dtype == np.uint8 and got.shape == ref.shape, name
        try:
            fast = read_frames_fast(path, choose) is not None
        except Exception:  # noqa: BLE001  (read_frames routes such files to decord; it is counted as not fast)
            fast = False
        if not fast and not (np.array_equal(got, ref) and all(np.array_equal(ref, _read(path, choose, "decord"))
                                                               for _ in range(2))):
            unstable.append(name)    # routed to decord, and decord disagrees with itself on this file (seen: MPEG-2
            continue                 # PS, MPEG-4 AVI: the frames differ between calls in one process)
        assert np.array_equal(got, ref), "{}: frames differ from decord's ({})".format(name, sampling)
        if must_be_fast is not None:
            assert fast == must_be_fast, "{}: fast path {} (expected {})".format(name, fast, must_be_fast)
        fast_used.append(name) if fast else None
    assert len(fast_used) >= 10, fast_used              # the cheaper path carries most of the set
    assert set(unstable) <= {"mpeg2.mpg", "mmaction2_test.avi", "mpeg4_b.avi"}, unstable


def test_decoder_is_a_reader_key():
    cfg = load_config(os.path.join(os.path.dirname(DATA), "..", "configs", "tsm.yaml"), ["INFER.decoder=decord"])
    assert cfg.mode("infer").decoder == "decord" and cfg.mode("test").decoder == "auto"
    with pytest.raises(UserError) as e:
        load_config(os.path.join(os.path.dirname(DATA), "..", "configs", "tsm.yaml"), ["TEST.decoder=pyav"])
    assert "decoder" in str(e.value)
