"""`python -m jaxnet prepare DATASET ...`: prepare a dataset once as tfds ArrayRecord files (see jaxnet.data.prepare)."""
import argparse
import sys
import time

from jaxnet import JaxnetError
from jaxnet.data import prepare
from jaxnet.data.ilsvrc2010 import prepare_ilsvrc2010
from jaxnet.data.imagenet import VALIDATION_LABELS_FILE, prepare_imagenet, read_lines
from jaxnet.data.prepare import prepare_tfds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxnet prepare", description=prepare.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="imagenet2012, ilsvrc2010, or any tfds dataset name"
                        " (imagenette, cifar10)")
    parser.add_argument("--manual_dir", default="", help="directory holding the ILSVRC2012 tars"
                        " (or the ILSVRC2010 download)")
    parser.add_argument("--data_dir", default="", help="output root (default: $JAXNET_DATA_DIR,"
                        " then ~/tensorflow_datasets); pass the same as --config.data_dir")
    parser.add_argument("--classes", default="", help="imagenet2012: file of wnids to keep (a"
                        " subset, e.g. for a quick try; default all 1000)")
    parser.add_argument("--validation_labels", default=str(VALIDATION_LABELS_FILE),
                        help="imagenet2012: one wnid per validation image, in file-name order")
    args = parser.parse_args(argv)
    start = time.time()
    try:
        if args.dataset == "imagenet2012":
            if not args.manual_dir:
                raise JaxnetError("imagenet2012 needs --manual_dir=DIR (where the two tars are)")
            classes = sorted(set(read_lines(args.classes))) if args.classes else None
            builder = prepare_imagenet(args.manual_dir, args.data_dir, classes,
                                       args.validation_labels)
            if builder.fixed:
                print(f"re-encoded as RGB JPEG (CMYK, greyscale or PNG): {len(builder.fixed)} images")
        elif args.dataset == "ilsvrc2010":
            if not args.manual_dir:
                raise JaxnetError("ilsvrc2010 needs --manual_dir=DIR (where the tars, the devkit"
                                  " and the test ground truth are)")
            builder = prepare_ilsvrc2010(args.manual_dir, args.data_dir)
            if builder.fixed:
                print(f"re-encoded as RGB JPEG (CMYK, greyscale, PNG or gzipped):"
                      f" {len(builder.fixed)} images")
        else:
            builder = prepare_tfds(args.dataset, args.data_dir)
    except JaxnetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    splits = ", ".join(f"{k}: {v.num_examples:,}" for k, v in builder.info.splits.items())
    print(f"{args.dataset} ready in {builder.data_dir} ({splits}) after {time.time() - start:.0f} s")
    return 0
