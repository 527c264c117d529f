"""Download on demand into a weights cache, the way legacy PaddleVideo did, made robust.

``fetch(url)`` returns a local path (the extracted directory for a .tar.gz).  Cache:
``--cache_dir``, else ``$PADDLEVIDEO_WEIGHTS_HOME``, else ``~/.paddle/weights`` (Paddle's
``WEIGHTS_HOME``).  What ``paddle.utils.download.get_path_from_url`` lacks and this adds: resume of
a dropped transfer with HTTP Range, retries with backoff, a one-line error naming the URL and
where to put the file by hand, and no partial or corrupt file ever left under the final name.
Tar archives are extracted with Python's ``data`` filter (no absolute paths, no ``..``, no links
out of the directory).
"""
import hashlib
import os
import shutil
import sys
import tarfile
import zipfile
import time
import urllib.error
import urllib.parse
import urllib.request

from tqdm import tqdm

from .errors import UserError

CHUNK = 1 << 16


def cache_dir(override=None):
    d = override or os.environ.get("PADDLEVIDEO_WEIGHTS_HOME") or os.path.join("~", ".paddle", "weights")
    return os.path.abspath(os.path.expanduser(d))


def is_url(s):
    return isinstance(s, str) and s.split("://", 1)[0] in ("http", "https", "ftp")


def _md5(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _is_tar(name):
    """An archive that is extracted after the download (tar, tar.gz, zip: PaddleDetection's exported models)."""
    return name.endswith((".tar.gz", ".tgz", ".tar", ".zip"))


def _extracted_dir(dest):
    for ext in (".tar.gz", ".tgz", ".tar", ".zip"):
        if dest.endswith(ext):
            return dest[:-len(ext)]
    return dest


def safe_extract(archive, target_dir):
    """Extract ``archive`` into ``target_dir`` refusing members that escape it."""
    os.makedirs(target_dir, exist_ok=True)
    root = os.path.realpath(target_dir)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                dest = os.path.realpath(os.path.join(root, name))
                if os.path.isabs(name) or not (dest == root or dest.startswith(root + os.sep)):
                    raise UserError("archive {} has an unsafe member {!r}; refusing to extract it".format(archive, name))
            z.extractall(root)
        return
    with tarfile.open(archive) as tar:
        for m in tar.getmembers():
            dest = os.path.realpath(os.path.join(root, m.name))
            if os.path.isabs(m.name) or not (dest == root or dest.startswith(root + os.sep)) \
                    or m.issym() or m.islnk() or m.isdev():
                raise UserError("archive {} has an unsafe member {!r}; refusing to extract it".format(archive, m.name))
        if hasattr(tarfile, "data_filter"):
            tar.extractall(root, filter="data")
        else:  # pragma: no cover - Python without extraction filters; members were checked above
            tar.extractall(root)


def _transfer(url, part, timeout):
    """Append to ``part`` from where it stops (HTTP Range); return True when the file is complete."""
    have = os.path.getsize(part) if os.path.exists(part) else 0
    req = urllib.request.Request(url, headers={"User-Agent": "paddlevideo"})
    if have:
        req.add_header("Range", "bytes={}-".format(have))
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to send: we have it all
            return True
        raise
    with resp:
        if have and resp.status != 206:  # server ignored the Range header: start over
            have = 0
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        mode = "ab" if have else "wb"
        with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                         desc=os.path.basename(part[:-5]), leave=False, mininterval=1) as bar:
            while True:
                block = resp.read(CHUNK)
                if not block:
                    break
                f.write(block)
                bar.update(len(block))
        size = os.path.getsize(part)
    if total is not None and size < total:
        raise ConnectionError("connection closed after {} of {} bytes".format(size, total))
    return True


def fetch(url, cache=None, md5=None, retries=4, timeout=30, backoff=1.0):
    """Download ``url`` into the cache (once) and return the local file, or the extracted
    directory for a tar archive.  Raises :class:`UserError` with a one-line reason."""
    root = cache_dir(cache)
    name = os.path.basename(urllib.parse.urlparse(url).path) or "download"
    dest = os.path.join(root, name)
    target = _extracted_dir(dest) if _is_tar(name) else dest
    if os.path.exists(target) and (md5 is None or _is_tar(name) or _md5(dest) == md5):
        return target
    os.makedirs(root, exist_ok=True)
    part = dest + ".part"
    hint = "download it by hand and put it at {} (or pass a local file with --weights / --pretrain)".format(dest)
    error = None
    for attempt in range(retries):
        try:
            _transfer(url, part, timeout)
            error = None
            break
        except urllib.error.HTTPError as e:
            error = "HTTP {} {}".format(e.code, e.reason)
            if e.code in (401, 403, 404, 410):
                break
        except (urllib.error.URLError, ConnectionError, OSError, TimeoutError) as e:
            error = str(getattr(e, "reason", e)) or type(e).__name__
        if attempt + 1 < retries:
            time.sleep(backoff * 2 ** attempt)
    if error is not None:
        if os.path.exists(part):
            os.remove(part)
        raise UserError("download of {} failed ({}); {}".format(url, error, hint))
    if md5 is not None:
        got = _md5(part)
        if got != md5:
            os.remove(part)
            raise UserError("download of {} is corrupt (md5 {} != expected {}); {}".format(url, got, md5, hint))
    if _is_tar(name):
        tmp = target + ".extracting"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            safe_extract(part, tmp)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            os.remove(part)
            raise UserError("download of {} is not a valid archive ({}); {}".format(url, e, hint))
        except UserError:
            shutil.rmtree(tmp, ignore_errors=True)
            os.remove(part)
            raise
        inner = os.listdir(tmp)
        src = os.path.join(tmp, inner[0]) if len(inner) == 1 and os.path.isdir(os.path.join(tmp, inner[0])) else tmp
        shutil.rmtree(target, ignore_errors=True)
        os.replace(src, target)
        shutil.rmtree(tmp, ignore_errors=True)
    os.replace(part, dest)
    print("downloaded {} -> {}".format(url, target), file=sys.stderr)
    return target


def resolve(path_or_url, cache=None, md5=None):
    """A local path for a weights argument: URLs are fetched, paths are returned as they are."""
    if is_url(path_or_url):
        return fetch(path_or_url, cache=cache, md5=md5)
    return path_or_url
