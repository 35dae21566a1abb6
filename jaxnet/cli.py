"""What train.py and eval.py share: flags, config loading, and turning user errors into messages."""
import sys
from pathlib import Path

from absl import flags, logging
from ml_collections import config_flags

from jaxnet import JaxnetError

CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Path to an ml_collections config file (configs/*.py).", lock_config=True)
WORKDIR = flags.DEFINE_string(
    "workdir", None, "Where checkpoints, metrics and config.json go (default: workdirs/CONFIG_NAME).")


def parse_flags(argv):
    """absl's parser, but an unknown or ill-typed --config.FIELD exits 2 with a one-line message."""
    try:
        return flags.FLAGS(argv)
    except (AttributeError, KeyError) as e:
        bad = [a for a in argv[1:] if a.startswith("--config.")]
        field = str(e).strip("\"'")
        print(f"error: unknown config field {field!r} (in {' '.join(bad)}); the valid fields are"
              " those printed at the start of training, listed in jaxnet/config.py",
              file=sys.stderr)
    except flags.Error as e:
        print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


def workdir_or_default() -> Path:
    if WORKDIR.value:
        return Path(WORKDIR.value)
    return Path("workdirs") / Path(flags.FLAGS["config"].config_filename).stem


def run_reporting_errors(fn):
    """Call fn(); a JaxnetError (bad config, missing data, ...) exits 1 with its message only."""
    logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
    try:
        return fn()
    except JaxnetError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
