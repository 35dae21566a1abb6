"""A download is prepared whole or not at all: the examples a preparation reads are counted as
they stream by, and at the end of a split a missing class archive, missing files or a wrong
image count stop it with one line naming what is missing (tfds then keeps nothing of it),
instead of a partial dataset that trains without a word."""
from jaxnet import JaxnetError


def complete(images, path, split: str, total=None, classes=None, names=None, shown: int = 5):
    """Pass the (file name, data, class) items of `images` through, then check them: `total`
    items (None: any number), at least one of each class in `classes` ({class: what to call it};
    None: not checked), every file name in `names` (None: not checked)."""
    count, seen_classes, seen_names = 0, set(), set()
    for item in images:
        count += 1
        seen_classes.add(item[2])
        if names is not None:
            seen_names.add(item[0])
        yield item
    problems = []
    if total is not None and count != total:
        problems.append(f"{count:,} images where the dataset has {total:,}")
    if classes is not None:
        missing = [name for key, name in classes.items() if key not in seen_classes]
        if missing:
            problems.append(f"no archive (or no image) of {len(missing)} of the {len(classes)}"
                            f" classes: {_listed(missing, shown)}")
    if names is not None:
        missing = sorted(set(names) - seen_names)
        if missing:
            problems.append(f"{len(missing)} of its {len(names):,} labelled files missing:"
                            f" {_listed(missing, shown)}")
    if problems:
        raise JaxnetError(f"{path} is incomplete ({split}: {'; '.join(problems)}); nothing was"
                          " prepared: download it again")


def _listed(items, shown: int) -> str:
    return ", ".join(items[:shown]) + (f" and {len(items) - shown} more" if len(items) > shown else "")
