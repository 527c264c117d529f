"""Dataset tools: lists from class folders, Kinetics CSVs, UCF101 and HMDB51 split files; frame
folders and legacy pkl clips read back by the reader with the video's own frames."""
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from conftest import ROOT, clip
from paddlevideo import build_model, load_config
from paddlevideo.data import VideoDataset, build_loader, parse_list, unpack_batch
from paddlevideo.data.video import read_frame_dir, read_frames_opencv, read_pkl

TOOLS = os.path.join(ROOT, "data", "dataset")
TSM_SMALL = os.path.join(ROOT, "configs", "tsm_small.yaml")


def tool(script, *args, code=0):
    p = subprocess.run([sys.executable, os.path.join(TOOLS, script)] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert p.returncode == code, (p.stdout[-2000:], p.stderr[-2000:])
    return p


def put(dst, name):
    os.makedirs(os.path.dirname(str(dst)), exist_ok=True)
    shutil.copy(clip(name), str(dst))


def one_training_step(list_path, num_classes, fmt="mp4", root=None):
    """The reader loads every entry of the list and a small TSM takes one SGD step on them."""
    cfg = load_config(TSM_SMALL, ["MODEL.num_classes={}".format(num_classes), "MODEL.format=" + fmt,
                                  "TRAIN.target_size=64", "TRAIN.short_size=72", "MODEL.seg_num=2"])
    m = cfg.mode("train")
    items = parse_list(list_path, num_classes, fmt, root=root)
    batch = next(iter(build_loader(VideoDataset(items, m), len(items))))
    clips, y, _, failed = unpack_batch(batch)
    assert len(failed) == 0 and len(y) == len(items)
    model = build_model(cfg)
    opt = paddle.optimizer.SGD(0.01, parameters=model.parameters())
    loss = F.cross_entropy(model(clips), paddle.to_tensor(y))
    loss.backward()
    opt.step()
    assert np.isfinite(float(loss))
    return items


def test_folder_lists_stratified_reproducible_relative_to_root(tmp_path):
    ds = tmp_path / "videos"
    put(ds / "arm wrestling" / "a.mp4", "arm_wrestling.mp4")
    put(ds / "arm wrestling" / "b.mp4", "mmaction2_test.mp4")
    put(ds / "other" / "deep" / "c.avi", "mmaction2_test.avi")
    put(ds / "other" / "d.avi", "paddlevideo_example.avi")
    put(ds / "stray.mp4", "eivideo_example.mp4")                            # in no class folder
    args = ["folder", ds, "--out", tmp_path / "lists", "--val_ratio", "0.5", "--root", ds, "--seed", "3"]
    p = tool("build_list.py", *args)
    assert "1 not listed" in p.stdout and "stray.mp4" in p.stdout
    assert (tmp_path / "lists" / "labels.txt").read_text() == "arm wrestling\nother\n"
    train = (tmp_path / "lists" / "train.list").read_text()
    val = (tmp_path / "lists" / "val.list").read_text()
    for text in (train, val):                                              # one of each class per split
        assert sorted(line.rsplit(None, 1)[1] for line in text.splitlines()) == ["0", "1"]
        assert not any(line.startswith("/") for line in text.splitlines())  # relative to --root
    assert "other/deep/c.avi 1" in train + val
    tool("build_list.py", *args)
    assert (tmp_path / "lists" / "train.list").read_text() == train        # reproducible
    one_training_step(str(tmp_path / "lists" / "train.list"), 2, root=str(ds))
    cfg = load_config(TSM_SMALL, ["TRAIN.data_root={}".format(ds)])           # the config names the root
    assert len(parse_list(str(tmp_path / "lists" / "val.list"), 2, root=cfg.mode("train").data_root)) == 2


def test_kinetics_csv_official_indices_missing_and_extra(tmp_path):
    v = tmp_path / "k400"
    put(v / "abc_000010_000020.mp4", "arm_wrestling.mp4")                  # the downloader's name
    put(v / "abseiling" / "xyz.mp4", "mmaction2_test.mp4")                   # {youtube_id} in a class folder
    put(v / "extra_clip.mp4", "eivideo_example.mp4")
    csv = tmp_path / "val.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split\n"
                   "zumba,nothere,0,10,val\n"
                   "arm wrestling,abc,10,20,val\n"
                   '"abseiling",xyz,3,13,val\n')
    p = tool("build_list.py", "kinetics", "--csv", csv, "--videos", v, "--out", tmp_path / "out" / "val.list")
    lines = (tmp_path / "out" / "val.list").read_text().splitlines()
    assert [line.rsplit(None, 1)[1] for line in lines] == ["6", "0"]     # official order, not row order
    assert "1 listed videos are missing" in p.stderr and "nothere_000000_000010" in p.stderr
    assert "extra_clip.mp4" in (tmp_path / "out" / "val.extra.txt").read_text()
    assert (tmp_path / "out" / "labels.txt").read_text().splitlines()[6] == "arm wrestling"
    one_training_step(str(tmp_path / "out" / "val.list"), 400)
    p = tool("build_list.py", "kinetics", "--csv", csv, "--videos", tmp_path / "nowhere",
             "--out", tmp_path / "o2.list", code=1)
    assert "none of the 3 listed videos was found; check --videos" in p.stderr
    p = tool("build_list.py", "kinetics", "--csv", csv, "--videos", v, "--out", tmp_path / "o3.list",
             "--label_list", "kinetics600", code=2)
    assert "does not ship" in p.stderr and "\n" == p.stderr[-1] and p.stderr.count("\n") == 1


def test_ucf101_splits(tmp_path):
    sp, v = tmp_path / "ucfTrainTestlist", tmp_path / "UCF-101"
    sp.mkdir()
    (sp / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    (sp / "trainlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g08_c01.avi 2\n")
    (sp / "testlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\nArchery/v_Archery_g01_c01.avi\n")
    put(v / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01.avi", "mmaction2_test.avi")
    put(v / "Archery" / "v_Archery_g08_c01.avi", "paddlevideo_example.avi")
    put(v / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.avi", "mmaction2_test.avi")
    p = tool("build_list.py", "ucf101", "--splits", sp, "--videos", v, "--split", 1, "--out", tmp_path / "out")
    assert (tmp_path / "out" / "labels.txt").read_text() == "ApplyEyeMakeup\nArchery\n"
    train = (tmp_path / "out" / "train.list").read_text().splitlines()
    assert [line.rsplit(None, 1)[1] for line in train] == ["0", "1"]            # 1-based → 0-based
    assert (tmp_path / "out" / "test.list").read_text().splitlines()[0].endswith("v_ApplyEyeMakeup_g01_c01.avi 0")
    assert "Archery/v_Archery_g01_c01.avi" in p.stderr                       # listed but missing
    one_training_step(str(tmp_path / "out" / "train.list"), 2)


def test_hmdb51_splits(tmp_path):
    sp, v = tmp_path / "splits", tmp_path / "hmdb51"
    sp.mkdir()
    (sp / "cartwheel_test_split2.txt").write_text("c1.avi 1\nc2.avi 2\nc3.avi 0\n")
    (sp / "brush_hair_test_split2.txt").write_text("b1.avi 1 \nb2.avi 2 \n")
    (sp / "brush_hair_test_split1.txt").write_text("zz.avi 1\n")             # another split: ignored
    for name, src in (("cartwheel/c1.avi", "mmaction2_test.avi"), ("cartwheel/c2.avi", "paddlevideo_example.avi"),
                      ("cartwheel/c3.avi", "mmaction2_test.avi"), ("brush_hair/b1.avi", "paddlevideo_example.avi"),
                      ("brush_hair/b2.avi", "mmaction2_test.avi")):
        put(v / name, src)
    p = tool("build_list.py", "hmdb51", "--splits", sp, "--videos", v, "--split", 2, "--out", tmp_path / "out",
             "--check")
    assert (tmp_path / "out" / "labels.txt").read_text() == "brush_hair\ncartwheel\n"   # classes sorted
    train = (tmp_path / "out" / "train.list").read_text().splitlines()
    test = (tmp_path / "out" / "test.list").read_text().splitlines()
    assert [os.path.basename(t).replace(" ", ":") for t in train] == ["b1.avi:0", "c1.avi:1"]
    assert [os.path.basename(t).replace(" ", ":") for t in test] == ["b2.avi:0", "c2.avi:1"]
    assert "1 not listed" in p.stdout and "c3.avi" in p.stdout                 # 0 = unused
    assert "all 2 videos" in p.stdout                                           # --check decoded them
    one_training_step(str(tmp_path / "out" / "test.list"), 2)


@pytest.fixture(scope="module")
def small_list(tmp_path_factory):
    d = tmp_path_factory.mktemp("conv")
    lst = d / "train.list"
    lst.write_text("{} 3\n{} 1\n".format(clip("mmaction2_test.avi"), clip("paddlevideo_example.avi")))
    return d, lst


def test_extract_frames_read_back_like_the_video(small_list):
    d, lst = small_list
    out = d / "frames"
    p = tool("extract_frames.py", lst, "--out", out, "--workers", 2)
    assert "0 already extracted, 2 to do" in p.stdout
    lines = (out / "frames.list").read_text().splitlines()
    assert lines == ["mmaction2_test 164 3", "paddlevideo_example 131 1"]
    idx = [0, 50, 163]
    a = read_frame_dir(str(out / "mmaction2_test"), lambda n: idx).astype(float)
    b = read_frames_opencv(clip("mmaction2_test.avi"), lambda n: idx).astype(float)   # sequential decode
    assert a.shape == b.shape and np.abs(a - b).mean() < 3.0                  # JPEG tolerance
    assert "2 already extracted, 0 to do" in tool("extract_frames.py", lst, "--out", out).stdout   # resumable
    shutil.rmtree(out / "paddlevideo_example")
    assert "1 already extracted, 1 to do" in tool("extract_frames.py", lst, "--out", out).stdout
    items = one_training_step(str(out / "frames.list"), 5, fmt="frames")
    assert [y for _, y in items] == [3, 1]


def test_video2pkl_legacy_format_read_back(small_list):
    d, lst = small_list
    out = d / "pkl"
    tool("video2pkl.py", lst, "--out", out, "--workers", 2)
    assert (out / "pkl.list").read_text() == "mmaction2_test.pkl 3\npaddlevideo_example.pkl 1\n"
    with open(out / "paddlevideo_example.pkl", "rb") as f:
        vid, label, jpegs = pickle.load(f)
    assert vid == "paddlevideo_example" and label == 1 and len(jpegs) == 131 and jpegs[0][:2] == b"\xff\xd8"
    idx = [0, 64, 130]
    a, lab = read_pkl(str(out / "paddlevideo_example.pkl"), lambda n: idx)
    b = read_frames_opencv(clip("paddlevideo_example.avi"), lambda n: idx)
    assert lab == 1 and np.abs(a.astype(float) - b).mean() < 3.0
    assert "2 already converted, 0 to do" in tool("video2pkl.py", lst, "--out", out).stdout
    one_training_step(str(out / "pkl.list"), 5, fmt="pkl")
