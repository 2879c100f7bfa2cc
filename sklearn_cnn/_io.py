"""Writing files so that nothing on disk is ever half-written."""

import glob
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "remove_stale_temps"]


def _temp_prefix(path):
    return f".{path.name}."


def remove_stale_temps(path):
    """Remove temp files that a killed :func:`atomic_write` of ``path`` left behind.

    A SIGKILL between creating the temp file and renaming it leaves a hidden
    ``.<name>.<random><suffix>`` beside ``path``; nothing else writes such names.
    """
    path = Path(path)
    pattern = os.path.join(glob.escape(str(path.parent)),
                           glob.escape(_temp_prefix(path)) + "*" + glob.escape(path.suffix))
    for stale in glob.glob(pattern):
        try:
            os.unlink(stale)
        except FileNotFoundError:  # another process cleaned it first
            pass


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. platforms that cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write):
    """Call ``write(tmp_path)`` on a temp file beside ``path``, then rename it over ``path``.

    The temp file is flushed to disk (fsync) before the rename, and the
    directory after it, so that a crash leaves either the old or the new file,
    never a truncated one. Temp files left by an earlier killed write of the
    same ``path`` are removed first. The file gets the usual permissions (0666
    minus the umask), not mkstemp's 0600. If ``write`` raises (a full disk, an
    interrupt), ``path`` is left as it was and the temp file is removed.
    """
    path = Path(path)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(suffix=path.suffix, dir=path.parent, prefix=_temp_prefix(path))
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path
