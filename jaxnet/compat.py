"""The two places jaxnet relies on a dependency's internals, kept here and pinned by
tests/test_compat.py, so an upgrade that changes them fails a test instead of breaking silently.

- `detected_cluster`: whether `jax.distributed.initialize()` would find a multi-process job
  (TPU pod, Slurm, Open MPI, ...). JAX has no public way to ask without joining, and joining a
  one-process "cluster" starts a coordinator for nothing; so JAX's own cluster registry is read.
- `decode_top_rows`: decode only the top rows of a JPEG with Pillow (the fallback path for an
  install without jaxnet's C decoder, and for CMYK JPEGs). Pillow has no API for it; its tile
  is shortened.
"""
import PIL.Image

from jaxnet import JaxnetError


def detected_cluster():
    """(name, process count) of the cluster JAX's auto-detection sees, or None."""
    from jax._src import clusters  # noqa: F401  (importing registers the cluster types)

    for env in clusters.ClusterEnv._cluster_types:
        try:
            if not env.opt_in_only_method and env.is_env_present():
                return env.name, int(env.get_process_count())
        except Exception:  # a half-configured environment is not a cluster to join
            continue
    return None


def decode_top_rows(image: PIL.Image.Image, rows: int) -> None:
    """Decode only the top `rows` rows of a (lazily opened) JPEG: libjpeg produces scanlines
    top to bottom, so stopping early skips the rest of the work. The image becomes `rows` high.

    The "broken data stream" that libjpeg reports at the end (it was stopped before the last
    scanline) is expected and ignored; the rows read are exact (tested against a full decode).
    """
    if rows >= image.size[1] or len(image.tile) != 1:
        return load(image)
    tile = image.tile[0]
    x0, y0, x1, _ = tile.extents
    image.tile = [tile._replace(extents=(x0, y0, x1, y0 + rows))]
    image._size = (image.size[0], rows)
    try:
        image.load()
    except OSError as e:
        if "broken data stream" not in str(e):
            raise JaxnetError(f"cannot decode image: {e}") from e
        PIL.Image.Image.load(image)


def load(image: PIL.Image.Image) -> None:
    try:
        image.load()
    except OSError as e:
        raise JaxnetError(f"cannot decode image: {e}") from e
