"""Builds the optional C extension jaxnet.data._jpegcrop (region + reduced-scale JPEG decoding
with the system libjpeg-turbo: Debian `libjpeg62-turbo-dev`). Everything else is in
pyproject.toml. Without the JPEG headers the install still succeeds, with a warning, and the
transforms fall back to Pillow (slower)."""
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing when the extension cannot be compiled."""

    def run(self):
        try:
            super().run()
        except Exception as e:  # no compiler at all
            warnings.warn(f"jaxnet.data._jpegcrop not built ({e}): JPEGs are decoded with Pillow (slower)")

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as e:  # e.g. jpeglib.h missing: apt-get install libjpeg62-turbo-dev
            warnings.warn(f"{ext.name} not built ({e}): JPEGs are decoded with Pillow (slower);"
                          " install libjpeg62-turbo-dev (Debian) and reinstall for the fast path")


setup(
    ext_modules=[Extension("jaxnet.data._jpegcrop", ["jaxnet/data/_jpegcrop.c"], libraries=["jpeg"])],
    cmdclass={"build_ext": OptionalBuildExt},
)
