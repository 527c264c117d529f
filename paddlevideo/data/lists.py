"""List files: ``path label`` lines (or ``frame_dir [num_frames] label``), checked in one pass.  No Paddle, no
OpenCV: the dataset tools read lists without a deep-learning stack."""
import os
import sys

from ..errors import UserError


def _resolve(path, list_dir, root=None):
    if os.path.isabs(path):
        return path
    if root:
        return os.path.normpath(os.path.join(root, path))
    here = os.path.join(list_dir, path)
    if os.path.exists(here) or not os.path.exists(path):
        return os.path.normpath(here)
    return os.path.abspath(path)


def parse_list(list_path, num_classes=None, fmt="mp4", need_label=True, skip_bad=False,
               check_exists=True, problems=None, root=None):
    """Read a list file; return ``[(path, label)]`` (label -1 when absent).

    Relative paths are taken against ``root`` (the config's ``data_root``) when given, else the
    list file's folder, else the working directory.  ``fmt: frames`` lines are ``frame_dir
    [num_frames] label`` (the frame count is optional; the reader counts the files).

    Every problem (missing label, non-integer or out-of-range label, missing file) is collected
    in one pass; unless ``skip_bad`` they are raised together as one :class:`UserError`, else
    the bad lines are skipped with a warning (or appended to ``problems`` when a list is given).
    """
    if not list_path:
        raise UserError("no list file given; set filelist in the config section or pass --filelist")
    if not os.path.isfile(list_path):
        raise UserError("list file {} not found; check the filelist key of the config "
                        "(or --filelist)".format(list_path))
    list_dir = os.path.dirname(os.path.abspath(list_path))
    collect = problems
    items, problems = [], []
    with open(list_path, encoding="utf-8", errors="replace") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            where = "{}:{}".format(list_path, lineno)
            path, label, err, written = line, -1, None, False
            if fmt == "frames":
                three = line.rsplit(None, 2)
                if len(three) == 3 and _is_int(three[1]) and _is_int(three[2]):
                    line = "{} {}".format(three[0], three[2])            # drop the optional frame count
            parts = line.rsplit(None, 1)
            if fmt == "pkl" and not (len(parts) == 2 and _is_int(parts[1])):
                path = line
            elif len(parts) == 2 and _is_int(parts[1]):
                path, label, written = parts[0], int(parts[1]), True
            elif need_label:
                if len(parts) == 1 or os.path.exists(_resolve(line, list_dir, root)):
                    err = "no label; write 'path label' with an integer class id"
                else:
                    err = "label {!r} is not an integer".format(parts[1])
            full = _resolve(path, list_dir, root)
            if err is None and label >= 0 and num_classes and label >= num_classes:
                err = "label {} is outside [0, {}) (MODEL.num_classes)".format(label, num_classes)
            if err is None and (label < -1 or (label == -1 and need_label and written)):
                err = "label {} is negative; labels are class ids 0..num_classes-1".format(label)
            if err is None and check_exists and not os.path.exists(full):
                err = "file {} does not exist".format(full)
            if err:
                problems.append("{}: {}".format(where, err))
            else:
                items.append((full, label))
    if problems and not skip_bad:
        more = "" if len(problems) <= 20 else "; ... {} more".format(len(problems) - 20)
        raise UserError("{} bad line(s) in {}: {}{} (fix them, or skip them with --skip_bad_lines)"
                        .format(len(problems), list_path, "; ".join(problems[:20]), more))
    if collect is not None:
        collect.extend(problems)
    else:
        for p in problems:
            print("warning: skipped {}".format(p), file=sys.stderr)
    if not items and collect is None:
        raise UserError("list file {} has no usable entries; write one 'path label' per line"
                        .format(list_path))
    return items


def _is_int(s):
    try:
        int(s)
        return True
    except ValueError:
        return False
