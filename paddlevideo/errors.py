"""User-facing errors.

A :class:`UserError` is a mistake the user can fix (a config key, a missing file, a bad list
line).  The command-line entry points print its message as one line and exit with status 2;
``--debug`` shows the traceback instead.
"""
import errno
import sys
import traceback


class UserError(Exception):
    """A problem caused by user input; the message names what is wrong and how to fix it."""


HINTS = {errno.ENOENT: "it does not exist", errno.EACCES: "permission denied", errno.EPERM: "permission denied",
         errno.ENOSPC: "no space left on the device", errno.EROFS: "the file system is read-only",
         errno.EISDIR: "it is a folder, not a file", errno.ENOTDIR: "a part of the path is not a folder",
         errno.EDQUOT: "disk quota exceeded", errno.EMFILE: "too many open files (raise ulimit -n)"}


def describe_os_error(e):
    """One line saying which file and what failed, e.g. ``cannot write out/x.json: no space left on the device``."""
    where = " {}".format(e.filename) if getattr(e, "filename", None) else ""
    if getattr(e, "filename2", None):
        where += " -> {}".format(e.filename2)
    what = HINTS.get(e.errno, e.strerror or str(e))
    return "cannot access{}: {}{}".format(where, what, "" if what == (e.strerror or "") else
                                          " ({})".format(e.strerror) if e.strerror else "")


def run_cli(main, argv=None):
    """Run ``main(argv)``; turn a :class:`UserError` (or Ctrl-C) into a one-line message."""
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    if not debug:            # decoders' own messages stay hidden; --debug shows everything
        from . import quiet
        quiet.enable()
    try:
        code = main(argv)
    except UserError as e:
        if debug:
            traceback.print_exc()
        print("error: {}".format(e), file=sys.stderr)
        sys.exit(2)
    except OSError as e:  # unwritable save_dir, full disk, ...: the file and what failed, one line
        if debug:
            traceback.print_exc()
        print("error: {}".format(describe_os_error(e)), file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001  (a bug, not the user's input: say so in one line)
        if debug:
            traceback.print_exc()
        print("error: internal error ({}: {}) — a bug, not your input; rerun with --debug for the traceback and "
              "report it".format(type(e).__name__, str(e).strip().splitlines()[0] if str(e).strip() else ""),
              file=sys.stderr)
        sys.exit(1)
    sys.exit(code or 0)
