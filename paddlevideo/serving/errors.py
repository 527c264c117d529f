"""The server's request errors: :class:`ApiError` (an HTTP status and a one-line reason) and the ``--data_root`` rule
for paths named in requests."""
import os


class ApiError(Exception):
    """Answered as ``status`` with ``{"error": reason}``."""

    def __init__(self, status, reason, headers=None):
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers or {}


def data_path(path, roots):
    """``path`` (absolute, or relative to the first root) resolved with every symlink and ``..``; it must lie under
    one of ``roots`` (403 otherwise, also when no root was given) and be a file (404)."""
    if not isinstance(path, str) or not path or "\x00" in path:
        raise ApiError(400, "path must be a non-empty string")
    if not roots:
        raise ApiError(403, "this server reads no files by path: start it with --data_root DIR")
    real = os.path.realpath(path if os.path.isabs(path) else os.path.join(roots[0], path))
    for root in roots:
        root = os.path.realpath(root)
        if os.path.commonpath([real, root]) == root:
            if not os.path.isfile(real):
                raise ApiError(404, "{} is not a file under --data_root".format(path))
            return real
    raise ApiError(403, "{} lies outside the --data_root folders".format(path))
