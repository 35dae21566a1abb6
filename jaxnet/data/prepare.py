"""Prepare a dataset once as tfds ArrayRecord files (no TensorFlow needed).

    python -m jaxnet prepare imagenet2012 --manual_dir=DIR [--data_dir=DIR]
    python -m jaxnet prepare ilsvrc2010   --manual_dir=DIR [--data_dir=DIR]
    python -m jaxnet prepare imagenette   [--data_dir=DIR]   # any tfds name: downloads

imagenet2012 reads ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from --manual_dir (the
licence forbids automatic download). Output: DATA_DIR/imagenet2012/5.1.0/*.array_record-*, read
back with tfds.data_source("imagenet2012", data_dir=DATA_DIR) and by `--config.data_dir=DATA_DIR`.
When ILSVRC2012_bbox_train_v2.tar.gz and ILSVRC2012_bbox_val_v3.tgz (the localization task's
PASCAL VOC boxes) are in --manual_dir too, every example also carries `boxes` and `box_labels`
(jaxnet.data.imagenet_boxes; train images without a box file have none).
ilsvrc2010 reads ILSVRC2010_images_{train,val,test}.tar, ILSVRC2010_devkit-1.0.tar.gz and
ILSVRC2010_test_ground_truth.txt from --manual_dir: DATA_DIR/ilsvrc2010/1.0.0 (train, validation,
test; label = ILSVRC2010_ID - 1 from the devkit's meta.mat), read by --config.dataset=ilsvrc2010.
An interrupted run leaves only a temporary `incomplete.*` directory: run the command again (it
removes that directory, saying so). imagenet2012 --classes=FILE keeps a subset of wnids, recorded
as the label names: re-running into the same --data_dir with another subset is refused.
"""
import contextlib
import io

import numpy as np
import PIL.Image

from jaxnet import JaxnetError
from jaxnet.data.imagenet import preparing


def tfds_builder(name: str, data_dir=None):
    """tfds's builder of dataset `name` writing ArrayRecord files; JaxnetError if tfds has none."""
    import tensorflow_datasets as tfds

    try:
        with quiet_tfds():
            return tfds.builder(name, data_dir=data_dir or None, file_format="array_record")
    except Exception as e:  # unknown name, or a builder module that cannot be imported
        raise JaxnetError(f"tfds has no dataset {name!r} usable here ({type(e).__name__}: {e})") from e


@contextlib.contextmanager
def quiet_tfds():
    """absl logging at ERROR within: tfds warns of missing or half-written dataset folders, which
    jaxnet checks itself and explains in one line."""
    from absl import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity(logging.ERROR if verbosity < logging.INFO else verbosity)  # --verbosity=0: all
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)


def prepare_tfds(name: str, data_dir: str = ""):
    """Download and prepare a tfds dataset by name as ArrayRecord files (needs network)."""
    builder = tfds_builder(name, data_dir)
    try:
        download_and_prepare(builder, data_dir)
    except Exception as e:  # no network, a moved URL, a full disk, ...
        first_line = str(e).splitlines()[0] if str(e) else ""
        raise JaxnetError(f"preparing {name} in {builder.data_dir} failed ({type(e).__name__}:"
                          f" {first_line}); run it again where the download works") from e
    return builder


def download_and_prepare(builder, data_dir=None) -> None:
    """builder.download_and_prepare() without TensorFlow: tfds encodes the images that a builder
    yields as arrays (cifar10, cifar100, ...) with TensorFlow, so a subclass of the builder hands
    them over already encoded, by Pillow, in the image feature's format (PNG unless it says JPEG)."""
    with preparing(builder):  # removes what a killed run left; refuses a concurrent one
        pillow_encoding(builder, data_dir).download_and_prepare()


def pillow_encoding(builder, data_dir=None):
    """The same dataset's builder, subclassed (unregistered, same name, config and version) so
    that its `_generate_examples`, the method tfds builders implement, yields encoded images."""
    images = image_features(builder.info.features)
    base = type(builder)

    class PillowEncoded(base, skip_registration=True):
        name = base.name

        def _generate_examples(self, *args, **kwargs):
            for key, example in super()._generate_examples(*args, **kwargs):
                yield key, {k: encode_array(v, images[k]) if k in images else v
                            for k, v in example.items()}

    return PillowEncoded(data_dir=data_dir or None, config=builder.builder_config,
                         version=builder.version, file_format="array_record")


def image_features(features) -> dict:
    """{name: "png" or "jpeg"} of the top-level image features of a tfds FeaturesDict."""
    import tensorflow_datasets as tfds

    return {name: (feature.encoding_format or "png") for name, feature in features.items()
            if isinstance(feature, tfds.features.Image)}


def encode_array(value, encoding: str):
    """A uint8 image array as PNG/JPEG bytes (Pillow); anything else (bytes, paths) unchanged."""
    if not isinstance(value, np.ndarray):
        return value
    out = io.BytesIO()
    pixels = value[..., 0] if value.ndim == 3 and value.shape[-1] == 1 else value
    if encoding == "jpeg":
        PIL.Image.fromarray(pixels).save(out, "JPEG", quality=95)
    else:
        PIL.Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()
