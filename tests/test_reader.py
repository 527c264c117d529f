import pickle
import shutil

import cv2
import numpy as np
import pytest

from conftest import ROOT, clip
from paddlevideo import UserError, load_config
from paddlevideo.data import VideoDataset, build_loader, parse_list, segment_indices, unpack_batch
from paddlevideo.data.transforms import multi_scale_crop_box, normalize_pack
from paddlevideo.data.video import read_frames, read_frames_decord, read_frames_opencv, read_pkl


def legacy_loader(videolen, nsample, seglen, mode, randint):
    """The legacy PaddleVideo (1.6) sampling loop, transcribed."""
    average_dur = int(videolen / nsample)
    out = []
    for i in range(nsample):
        idx = 0
        if mode == "train":
            if average_dur >= seglen:
                idx = randint(0, average_dur - seglen)
                idx += i * average_dur
            elif average_dur >= 1:
                idx += i * average_dur
            else:
                idx = i
        else:
            if average_dur >= seglen:
                idx = (average_dur - seglen) // 2
                idx += i * average_dur
            elif average_dur >= 1:
                idx += i * average_dur
            else:
                idx = i
        for jj in range(idx, idx + seglen):
            out.append(int(jj % videolen))
    return out


class EdgeRng:
    """integers(lo, hi) -> lo or hi-1, alternating (numpy's exclusive upper bound)."""
    def __init__(self):
        self.k = 0

    def integers(self, lo, hi):
        self.k += 1
        return lo if self.k % 2 else hi - 1


@pytest.mark.parametrize("n", [1, 3, 7, 8, 25, 40, 131, 300])
@pytest.mark.parametrize("seg_num,seglen", [(8, 1), (3, 1), (7, 5), (25, 5)])
def test_sampling_matches_legacy(n, seg_num, seglen):
    assert segment_indices(n, seg_num, seglen, False) == legacy_loader(n, seg_num, seglen, "test", None)
    k = [0]

    def randint(a, b):  # legacy random.randint is inclusive; mirror EdgeRng
        k[0] += 1
        return a if k[0] % 2 else b
    assert segment_indices(n, seg_num, seglen, True, EdgeRng()) == legacy_loader(n, seg_num, seglen, "train", randint)


def test_decord_reads_real_clips_rgb():
    for name, shape in [("arm_wrestling.mp4", (256, 340)), ("mmaction2_test.avi", (240, 320)),
                        ("eivideo_example.mp4", (480, 640))]:
        f = read_frames_decord(clip(name), lambda n: [0, n // 2, n - 1, 0])
        assert f.shape == (4,) + shape + (3,) and f.dtype == np.uint8
        np.testing.assert_array_equal(f[0], f[3])
    # RGB order: compare with OpenCV's BGR first frame
    cap = cv2.VideoCapture(clip("arm_wrestling.mp4"))
    ok, bgr = cap.read()
    cap.release()
    f = read_frames(clip("arm_wrestling.mp4"), lambda n: [0])[0]
    assert np.abs(f.astype(int) - bgr[:, :, ::-1].astype(int)).mean() < 3


def test_opencv_fallback_agrees_with_decord():
    pick = lambda n: [1, n // 3, n - 2]  # noqa: E731
    a = read_frames_decord(clip("mmaction2_test.avi"), pick)
    b = read_frames_opencv(clip("mmaction2_test.avi"), pick)
    assert a.shape == b.shape
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 3


def test_fallback_used_when_decord_cannot_open(tmp_path, monkeypatch):
    import paddlevideo.data.video as video
    def broken(path, choose):
        raise RuntimeError("decord cannot open")
    monkeypatch.setattr(video, "read_frames_decord", broken)
    f = video.read_frames(clip("paddlevideo_example.avi"), lambda n: [0, 5])
    assert f.shape[0] == 2
    with pytest.raises(video.VideoError, match="decord cannot open"):
        p = tmp_path / "bad.mp4"
        p.write_bytes(b"not a video")
        video.read_frames(str(p), lambda n: [0])


def test_legacy_pkl_format(tmp_path):
    frames = read_frames(clip("paddlevideo_example.avi"), lambda n: list(range(20)))
    jpegs = [cv2.imencode(".jpg", f[:, :, ::-1])[1].tobytes() for f in frames]
    p = tmp_path / "v.pkl"
    with open(p, "wb") as fh:
        pickle.dump(("vid0", 3, jpegs), fh, protocol=2)
    got, label = read_pkl(str(p), lambda n: [0, 19])
    assert label == 3 and got.shape == (2, 240, 320, 3)
    assert np.abs(got.astype(int) - frames[[0, 19]].astype(int)).mean() < 4
    cfg = load_config(ROOT + "/configs/tsm_small.yaml", ["MODEL.format=pkl", "MODEL.num_classes=5"])
    lst = tmp_path / "pkl.list"
    lst.write_text("v.pkl\n")
    items = parse_list(str(lst), 5, "pkl")
    clip_, lab, _ = VideoDataset(items, cfg.mode("test"))[0]
    assert lab == 3 and clip_.shape == (8, 3, 112, 112)


def test_list_paths_relative_with_spaces(tmp_path):
    d = tmp_path / "my videos"
    d.mkdir()
    shutil.copy(clip("arm_wrestling.mp4"), d / "arm wrestling.mp4")
    lst = tmp_path / "train.list"
    lst.write_text("my videos/arm wrestling.mp4 2\n{} 0\n\n".format(clip("mmaction2_test.avi")))
    items = parse_list(str(lst), 5)
    assert items == [(str(d / "arm wrestling.mp4"), 2), (clip("mmaction2_test.avi"), 0)]


def test_bad_lines_reported_together(tmp_path, write_list):
    lst = write_list([clip("arm_wrestling.mp4") + " 1", clip("arm_wrestling.mp4"),
                      clip("arm_wrestling.mp4") + " x", clip("arm_wrestling.mp4") + " 9",
                      "/nope/missing.mp4 0"])
    with pytest.raises(UserError) as e:
        parse_list(lst, 5)
    msg = str(e.value)
    for line in (":2:", ":3:", ":4:", ":5:"):
        assert line in msg
    assert "4 bad line" in msg and "\n" not in msg
    assert parse_list(lst, 5, skip_bad=True) == [(clip("arm_wrestling.mp4"), 1)]
    with pytest.raises(UserError, match="not found"):
        parse_list(str(tmp_path / "none.list"), 5)


def test_multi_scale_crop_offsets():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(400):
        x, y, cw, ch = multi_scale_crop_box(256, 340, 256, rng)
        assert 0 <= x <= 340 - cw and 0 <= y <= 256 - ch
        assert cw in (256, 224, 192, 168) and ch in (256, 224, 192, 168)
        seen.add((cw, ch))
    assert (256, 168) not in seen and (256, 224) in seen        # max_distort 1


def test_pack_is_frame_major():
    frames = np.zeros((6, 2, 2, 3), np.uint8)
    for k in range(6):
        frames[k] = [[[10 * k, 10 * k + 1, 10 * k + 2]] * 2] * 2
    out = normalize_pack(frames, 2, 3, [0, 0, 0], [1 / 255.0] * 3)
    assert out.shape == (2, 9, 2, 2)
    np.testing.assert_allclose(out[1, :, 0, 0], [30, 31, 32, 40, 41, 42, 50, 51, 52], atol=1e-3)


def test_loader_with_workers_outputs_clips(write_list):
    cfg = load_config(ROOT + "/configs/tsm_small.yaml")
    lst = write_list(["{} {}".format(clip(n), i) for i, n in enumerate(
        ["arm_wrestling.mp4", "mmaction2_test.avi", "eivideo_example.mp4"])])
    ds = VideoDataset(parse_list(lst, 5), cfg.mode("train"), seed=3)
    loader = build_loader(ds, 2, shuffle=True, num_workers=2)
    seen = []
    for batch in loader:
        clips, labels, idx, failed = unpack_batch(batch)
        assert clips.shape[1:] == [8, 3, 112, 112] and str(clips.dtype).endswith("float32")
        assert len(failed) == 0
        for c, i in zip(clips.numpy(), idx):       # same sample as the dataset gives directly
            np.testing.assert_array_equal(c, ds[(0, int(i))][0])
        seen += list(labels)
    assert sorted(seen) == [0, 1, 2]
    assert abs(float(clips.numpy().mean())) < 2.0


def test_decord_last_frame_after_a_seek_is_the_real_last_frame():
    """decord's get_batch([0, 50, 163]) on this MPEG-4 AVI returned frame 50 again for 163; the
    reader must give the frames a sequential decode gives."""
    idx = [0, 50, 163, 50]
    got = read_frames_decord(clip("mmaction2_test.avi"), lambda n: idx).astype(float)
    ref = read_frames_opencv(clip("mmaction2_test.avi"), lambda n: idx).astype(float)
    assert np.abs(got - ref).mean(axis=(1, 2, 3)).max() < 1.0
