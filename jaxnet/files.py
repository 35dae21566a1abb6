"""Whole-file writes: a file a later run reads (an eval JSON, a per-class file, a report page,
config.json, a figure) is written to a temporary file beside it and renamed over it, so a kill
or a full disk at any moment leaves the old file or the new one, never half of one."""
import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """`with atomic_path(path) as tmp:` write to `tmp` (same folder and suffix); on success it
    replaces `path` in one rename, on failure it is removed and `path` is left as it was."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(handle)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # as a plain write would leave it (mkstemp makes it 0600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path, text: str) -> Path:
    """Write `text` to `path` atomically (see atomic_path); returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_bytes(path, data: bytes) -> Path:
    """Write `data` to `path` atomically (see atomic_path); returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
