"""What makes one evaluation of a checkpoint differ from another besides its split, protocol and
step: the labels file it is scored against, config fields that change the numbers (compute dtype,
input size and normalization), the ensemble's members. They are recorded in the eval file as
`options` and, when any is set, keyed into its name (`<split>[_<protocol>]_<key>_step<N>.json`),
so two evaluations that can differ never overwrite each other; the plain case keeps the plain
name."""
import hashlib
import json
from pathlib import Path

from jaxnet import JaxnetError
from jaxnet.evaluation.multilabel import load_label_lists

# config fields that change an evaluation's numbers when they differ from the trained config's
RESULT_FIELDS = ("dtype", "image_size", "eval_resize", "mean", "std")


def file_sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_labels_file(path, num_examples: int, num_classes: int) -> list:
    """The label lists of a ReaL-format labels file, refused in one line when missing, malformed
    or without any label at all (it would score nothing)."""
    lists = load_label_lists(path, num_examples, num_classes)
    if not any(lists):
        raise JaxnetError(f"labels file {path} holds only empty label lists: it would score no"
                          " example; nothing was evaluated")
    return lists


def eval_options(config, trained: dict | None, labels_file=None, members=()) -> dict:
    """The options of an evaluation of `config` (the trained run's resolved config `trained`, a
    dict, None if unknown): each RESULT_FIELDS value that differs from the trained one, the labels
    file (path and sha256) and the ensemble members [(workdir, step)]."""
    options = {}
    for field in RESULT_FIELDS:
        value = json.loads(json.dumps(config.to_dict().get(field)))  # tuples as lists
        if trained is not None and field in trained and trained[field] != value:
            options[field] = value
    if labels_file:
        options["labels_file"] = str(Path(labels_file).absolute())
        options["labels_sha256"] = file_sha256(labels_file)
    if members:
        options["members"] = [{"workdir": str(Path(w).absolute()), "step": int(s)} for w, s in members]
    return options


def options_key(options: dict) -> str:
    """'' for no options, else 8 hex digits naming them (in the eval file's name)."""
    if not options:
        return ""
    return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:8]
