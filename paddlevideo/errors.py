"""User-facing errors.

A :class:`UserError` is a mistake the user can fix (a config key, a missing file, a bad list
line).  The command-line entry points print its message as one line and exit with status 2;
``--debug`` shows the traceback instead.
"""
import sys
import traceback


class UserError(Exception):
    """A problem caused by user input; the message names what is wrong and how to fix it."""


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
    except OSError as e:  # unwritable save_dir, full disk, ...: the file and the reason, one line
        if debug:
            traceback.print_exc()
        where = " {}".format(e.filename) if getattr(e, "filename", None) else ""
        print("error: cannot access{}: {} (check the path and its permissions, or the free disk space)".format(
            where, e.strerror or e), file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
