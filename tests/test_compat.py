"""Pins what jaxnet.compat relies on in its dependencies' internals (see its docstring)."""
import io

import numpy as np
import PIL.Image
import pytest

from jaxnet.compat import decode_top_rows, detected_cluster


def jpeg(height=120, width=90) -> bytes:
    rng = np.random.default_rng(0)
    pixels = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    out = io.BytesIO()
    PIL.Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.mark.parametrize("rows", [1, 37, 119, 120, 500])
def test_top_rows_are_exactly_a_full_decodes(rows):
    data = jpeg()
    full = np.asarray(PIL.Image.open(io.BytesIO(data)).convert("RGB"))
    image = PIL.Image.open(io.BytesIO(data))
    decode_top_rows(image, rows)
    kept = min(rows, 120)
    assert image.size == (90, kept)
    np.testing.assert_array_equal(np.asarray(image.convert("RGB")), full[:kept])


def test_jax_cluster_registry_detects_slurm_and_nothing_here(monkeypatch):
    for var in ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID",
                "SLURM_LOCALID", "OMPI_MCA_orte_hnp_uri", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(var, raising=False)
    assert detected_cluster() is None
    for var, value in {"SLURM_JOB_ID": "1", "SLURM_STEP_NODELIST": "n[1-3]", "SLURM_NTASKS": "3",
                       "SLURM_PROCID": "0", "SLURM_LOCALID": "0"}.items():
        monkeypatch.setenv(var, value)
    assert detected_cluster() == ("slurm", 3)
