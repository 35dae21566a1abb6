"""Class hierarchies (WordNet 3.0 or a tree file any dataset brings) and hierarchy-aware metrics.

WordNet. Debian's `wordnet-base` installs `/usr/share/wordnet/data.noun`. An ImageNet wnid such as
`n01440764` is `n` + the synset's 8-digit byte offset in that file, so a synset is read by seeking
to its offset. Hypernyms are the pointers `@` (hypernym) and `@i` (instance hypernym); a synset may
have several (dog: canine and domestic animal), so WordNet is a DAG, not a tree.

Class-tree file (JSON; `ClassTree.load` / `ClassTree.save`):

    {"format": "jaxnet.class_tree/1",
     "classes": ["tshirt_top", "trouser", ...],        # node id of each label index, in order
     "parent":  {"tshirt_top": "tops", "tops": "clothing", ...},   # child -> parent (or a list
                                                       # of parents, for multiple inheritance)
     "names":   {"tshirt_top": "T-shirt/top", ...}}    # optional display names

A node without a `parent` entry is a root. If the dataset's classes reach more than one root, a
virtual root `__root__` is put above them, so every two classes have a common ancestor.

Heights and the lowest common ancestor (LCA), as ILSVRC-2010/11 scored them:
- The graph is restricted to the dataset's classes and all their ancestors.
- A node's height is the longest path from it down to a leaf of that restricted graph; leaves 0.
- Multiple inheritance: the common ancestors of classes a and b are all nodes that lie on some
  hypernym path of a and on some hypernym path of b (each class counts as its own ancestor). The
  LCA height is the smallest height among them. It is symmetric, and equals the plain tree LCA
  height when every node has one parent.
- A correct prediction costs 0, also for a class that is an ancestor of another class.

`HierarchyMetric` follows the evaluator's metric protocol (`sums` inside jit, `finalize` on the
host): `hier_cost_top5` (ILSVRC-2010/11: min over the top 5 guesses of the LCA height, averaged over
images), `hier_cost_top1`, `mistake_severity` (Bertinetto et al. 2020: mean LCA height over top-1
mistakes) and `mistake_within_parent` (the share of top-1 mistakes whose prediction lies under a
parent of the true class).
"""
from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet import JaxnetError

WORDNET_NOUNS = "/usr/share/wordnet/data.noun"
TREE_FORMAT = "jaxnet.class_tree/1"
VIRTUAL_ROOT = "__root__"
TREES_DIR = Path(__file__).parent / "trees"
_WNID = re.compile(r"^n(\d{8})$")


# ----------------------------------------------------------------------------------- WordNet
@functools.lru_cache(maxsize=4)
def _read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise JaxnetError(f"cannot read WordNet nouns {path!r} ({e.strerror}); install Debian's "
                          f"wordnet-base") from None


@functools.lru_cache(maxsize=65536)
def wordnet_synset(wnid: str, data_noun: str = WORDNET_NOUNS) -> dict:
    """The synset of `wnid` from `data.noun`: {"wnid", "lemmas" (spaces, not underscores),
    "hypernyms" (wnids of `@` and `@i` pointers, in file order), "gloss"}."""
    m = _WNID.match(wnid)
    if not m:
        raise JaxnetError(f"{wnid!r} is not a WordNet noun id (n + 8 digits)")
    data, offset = _read_bytes(data_noun), int(m.group(1))
    end = data.find(b"\n", offset)
    line = data[offset:end if end >= 0 else len(data)].decode("utf-8", "replace")
    if offset >= len(data) or not line.startswith(m.group(1) + " "):
        raise JaxnetError(f"{wnid} is not a synset of {data_noun} (no synset at that offset)")
    fields, _, gloss = line.partition(" | ")
    f = fields.split()
    n_words = int(f[3], 16)
    lemmas = [f[4 + 2 * i].replace("_", " ") for i in range(n_words)]
    pos = 4 + 2 * n_words
    n_ptrs = int(f[pos])
    hypernyms = []
    for i in range(n_ptrs):
        symbol, target, target_pos = f[pos + 1 + 4 * i: pos + 4 + 4 * i]
        if symbol in ("@", "@i") and target_pos == "n":
            hypernyms.append("n" + target)
    return {"wnid": wnid, "lemmas": lemmas, "hypernyms": hypernyms, "gloss": gloss.strip()}


def wordnet_lemmas(wnid: str, data_noun: str = WORDNET_NOUNS) -> list[str]:
    """All lemmas of a synset, e.g. n02084071 -> ['dog', 'domestic dog', 'Canis familiaris']."""
    return list(wordnet_synset(wnid, data_noun)["lemmas"])


def wordnet_name(wnid: str, data_noun: str = WORDNET_NOUNS) -> str:
    """A class name for a wnid: its first lemma (n01440764 -> 'tench')."""
    return wordnet_synset(wnid, data_noun)["lemmas"][0]


def hypernym_paths(wnid: str, data_noun: str = WORDNET_NOUNS) -> list[list[str]]:
    """Every hypernym path of a synset, each from the root (entity, n00001740) down to `wnid`."""
    hypernyms = wordnet_synset(wnid, data_noun)["hypernyms"]
    if not hypernyms:
        return [[wnid]]
    return [p + [wnid] for h in hypernyms for p in hypernym_paths(h, data_noun)]


def hypernym_path(wnid: str, data_noun: str = WORDNET_NOUNS) -> list[str]:
    """One hypernym path, root first: at each step the first-listed hypernym (WordNet's primary)."""
    path = [wnid]
    while hypernyms := wordnet_synset(path[-1], data_noun)["hypernyms"]:
        path.append(hypernyms[0])
    return path[::-1]


# ----------------------------------------------------------------------------------- trees
class ClassTree:
    """A class hierarchy (a tree or a DAG) over a dataset's classes, in label-index order.

    `classes`: the node id of each label index. `parents`: node -> list of parent nodes (roots
    have none or are absent). `names`: node -> display name (defaults to the id).
    """

    def __init__(self, classes: Sequence[str], parents: Mapping[str, Sequence[str]],
                 names: Mapping[str, str] | None = None):
        self.classes = [str(c) for c in classes]
        if len(set(self.classes)) != len(self.classes):
            raise JaxnetError("class tree: a class id appears twice in `classes`")
        self.parents = {str(k): [str(p) for p in ([v] if isinstance(v, str) else v)]
                        for k, v in parents.items()}
        self.names = {str(k): str(v) for k, v in (names or {}).items()}
        self._restrict()

    # -- construction
    @classmethod
    def from_json(cls, obj: Mapping, classes: Sequence[str] | None = None,
                  source: str = "class tree") -> "ClassTree":
        if not isinstance(obj, Mapping) or not isinstance(obj.get("parent"), Mapping):
            raise JaxnetError(f"{source}: expected a JSON object with a 'parent' mapping "
                              f"(child -> parent)")
        if classes is None:
            classes = obj.get("classes")
            if not isinstance(classes, list) or not classes:
                raise JaxnetError(f"{source}: no 'classes' list (node id of each label index)")
        for child, parent in obj["parent"].items():
            ok = isinstance(parent, str) or (isinstance(parent, list) and parent
                                             and all(isinstance(p, str) for p in parent))
            if not ok:
                raise JaxnetError(f"{source}: parent of {child!r} must be a node id or a "
                                  f"list of node ids, got {parent!r}")
        return cls(classes, obj["parent"], obj.get("names"))

    @classmethod
    def load(cls, path, classes: Sequence[str] | None = None) -> "ClassTree":
        """Read a class-tree file; `classes` (node id per label index) overrides its list."""
        try:
            obj = json.loads(Path(path).read_text())
        except OSError as e:
            raise JaxnetError(f"cannot read class tree {path} ({e.strerror})") from None
        except json.JSONDecodeError as e:
            raise JaxnetError(f"class tree {path} is not JSON ({e.msg}, line {e.lineno})") from None
        return cls.from_json(obj, classes, source=f"class tree {path}")

    @classmethod
    def builtin(cls, name: str) -> "ClassTree":
        """A tree shipped with jaxnet (jaxnet/evaluation/trees/NAME.json), e.g. 'fashion_mnist'."""
        path = TREES_DIR / f"{name}.json"
        if not path.exists():
            known = sorted(p.stem for p in TREES_DIR.glob("*.json"))
            raise JaxnetError(f"no built-in class tree {name!r} (known: {', '.join(known)})")
        return cls.load(path)

    @classmethod
    def from_wordnet(cls, wnids: Sequence[str], data_noun: str = WORDNET_NOUNS) -> "ClassTree":
        """The WordNet DAG above `wnids` (e.g. ImageNet's sorted wnids), names = first lemmas."""
        parents, names, todo = {}, {}, list(wnids)
        while todo:
            wnid = todo.pop()
            if wnid in names:
                continue
            synset = wordnet_synset(wnid, data_noun)
            names[wnid] = synset["lemmas"][0]
            if synset["hypernyms"]:
                parents[wnid] = list(synset["hypernyms"])
                todo.extend(synset["hypernyms"])
        return cls(wnids, parents, names)

    def to_json(self) -> dict:
        return {"format": TREE_FORMAT, "classes": list(self.classes),
                "parent": {k: v[0] if len(v) == 1 else list(v) for k, v in self.parents.items()
                           if k != VIRTUAL_ROOT and v and v != [VIRTUAL_ROOT]},
                "names": {k: v for k, v in self.names.items() if k != VIRTUAL_ROOT}}

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    # -- structure
    def _restrict(self):
        """Nodes = classes and their ancestors; heights; a virtual root over several roots."""
        ancestors: dict[str, frozenset] = {}
        visiting: set[str] = set()

        def visit(node):
            if node in ancestors:
                return ancestors[node]
            if node in visiting:
                raise JaxnetError(f"class tree has a cycle through {node!r}")
            visiting.add(node)
            result = {node}
            for p in self.parents.get(node, []):
                result |= visit(p)
            visiting.discard(node)
            ancestors[node] = frozenset(result)
            return ancestors[node]

        for c in self.classes:
            visit(c)
        for c in self.classes:  # a class outside the tree is most likely a typo in the file
            if (len(self.classes) > 1 and not self.parents.get(c)
                    and not any(c in ancestors[d] for d in self.classes if d != c)):
                raise JaxnetError(f"class tree: class {c!r} has no parent and no class under it "
                                  f"(not in the tree?)")
        roots = sorted(n for n in ancestors if not self.parents.get(n))
        if len(roots) > 1:
            for r in roots:
                self.parents[r] = [VIRTUAL_ROOT]
            self.names.setdefault(VIRTUAL_ROOT, "(root)")
            ancestors = {n: a | {VIRTUAL_ROOT} for n, a in ancestors.items()}
            ancestors[VIRTUAL_ROOT] = frozenset([VIRTUAL_ROOT])
        self._ancestors = ancestors
        self.nodes = sorted(ancestors)
        children: dict[str, list[str]] = {n: [] for n in self.nodes}
        for n in self.nodes:
            for p in self.parents.get(n, []):
                children[p].append(n)
        self.height: dict[str, int] = {}

        def height(node):  # iterative-free recursion is fine: WordNet is < 20 levels deep
            if node not in self.height:
                self.height[node] = 1 + max((height(c) for c in children[node]), default=-1)
            return self.height[node]

        for n in self.nodes:
            height(n)

    def ancestors(self, node: str) -> frozenset:
        """All ancestors of a node of the restricted graph, the node itself included."""
        return self._ancestors[node]

    def name(self, node: str) -> str:
        return self.names.get(node, node)

    def class_names(self) -> list[str]:
        return [self.name(c) for c in self.classes]

    def path(self, node: str) -> list[str]:
        """Root-first path to `node` following the first-listed parent at each step."""
        path = [node]
        while self.parents.get(path[-1]):
            path.append(self.parents[path[-1]][0])
        return path[::-1]

    def path_names(self, label: int) -> list[str]:
        """The display names on the path of class `label`, root first."""
        return [self.name(n) for n in self.path(self.classes[label]) if n != VIRTUAL_ROOT]

    def lca_height_matrix(self) -> np.ndarray:
        """[C, C] int32: the height of the lowest common ancestor of classes i and j; 0 on the
        diagonal. Computed level by level: at height h, two classes that share an ancestor of
        height h and no lower one get h."""
        num = len(self.classes)
        member, _ = self._membership()
        heights = np.array([self.height[n] for n in self.nodes])
        result = np.full((num, num), -1, np.int32)
        for h in np.unique(heights):
            cols = member[:, heights == h]
            shared = (cols @ cols.T) > 0
            result[(result < 0) & shared] = h
        if (result < 0).any():  # unreachable: a single (possibly virtual) root is shared by all
            raise AssertionError("class tree: two classes without a common ancestor")
        np.fill_diagonal(result, 0)
        return result

    def within_parent_matrix(self) -> np.ndarray:
        """[C, C] bool: True where class j lies under a parent of class i (for any of i's
        parents; the virtual root does not count as a parent). The diagonal is True."""
        member, index = self._membership()
        parent_of = np.zeros_like(member)
        for i, c in enumerate(self.classes):
            for p in set(self.parents.get(c, [])) - {VIRTUAL_ROOT}:
                parent_of[i, index[p]] = 1.0
        result = (parent_of @ member.T) > 0
        np.fill_diagonal(result, True)
        return result

    def _membership(self):
        """[C, nodes] 0/1 float32: row i marks the ancestors of class i; and node -> column."""
        index = {n: k for k, n in enumerate(self.nodes)}
        member = np.zeros((len(self.classes), len(self.nodes)), np.float32)
        for i, c in enumerate(self.classes):
            member[i, [index[a] for a in self._ancestors[c]]] = 1.0
        return member, index


# ----------------------------------------------------------------------------------- metric
class HierarchyMetric:
    """Hierarchy-aware scores, in the evaluator's metric protocol.

    height_matrix: [C, C] LCA heights (`ClassTree.lca_height_matrix()`), 0 on the diagonal.
    within_parent: [C, C] 0/1, row = true class, column = prediction; 1 where the prediction lies
      under a parent of the true class (`ClassTree.within_parent_matrix()`). Optional.
    `HierarchyMetric.from_tree(tree)` builds both.
    """

    def __init__(self, height_matrix, within_parent=None, k: int = 5):
        self.height_matrix = np.asarray(height_matrix, np.int32)
        c = self.height_matrix.shape[0]
        if self.height_matrix.shape != (c, c):
            raise JaxnetError(f"LCA height matrix must be square, got {self.height_matrix.shape}")
        self.within_parent = None if within_parent is None else np.asarray(within_parent, bool)
        self.k = min(k, c)

    @classmethod
    def from_tree(cls, tree: ClassTree, k: int = 5) -> "HierarchyMetric":
        return cls(tree.lca_height_matrix(), tree.within_parent_matrix(), k)

    def sums(self, scores, labels, mask) -> dict:
        heights = jnp.asarray(self.height_matrix)
        valid = mask > 0
        # top-1 from argmax (same tie rule as top_k: the lower index), not top_k's first column:
        # XLA:CPU turns a top_k whose result has two uses into a full sort (~60x slower).
        top1 = jnp.argmax(scores, axis=-1)
        cost_k = heights[labels[:, None], jax.lax.top_k(scores, self.k)[1]].min(axis=1)
        cost_1 = heights[labels, top1]
        mistake = valid & (top1 != labels)
        out = {
            "hier_count": valid.sum(dtype=jnp.int32),
            "hier_cost_top5_sum": jnp.where(valid, cost_k, 0).sum(dtype=jnp.int32),
            "hier_cost_top1_sum": jnp.where(valid, cost_1, 0).sum(dtype=jnp.int32),
            "hier_mistakes": mistake.sum(dtype=jnp.int32),
            "hier_severity_sum": jnp.where(mistake, cost_1, 0).sum(dtype=jnp.int32),
        }
        if self.within_parent is not None:
            within = jnp.asarray(self.within_parent)[labels, top1]
            out["hier_within_parent"] = (mistake & within).sum(dtype=jnp.int32)
        return out

    def finalize(self, totals: Mapping) -> dict:
        count, mistakes = int(totals["hier_count"]), int(totals["hier_mistakes"])
        out = {
            "hier_cost_top5": float(totals["hier_cost_top5_sum"]) / count if count else None,
            "hier_cost_top1": float(totals["hier_cost_top1_sum"]) / count if count else None,
            # None when there is no top-1 mistake (no severity to average).
            "mistake_severity": (float(totals["hier_severity_sum"]) / mistakes
                                 if mistakes else None),
            "num_mistakes": mistakes,
        }
        if "hier_within_parent" in totals:
            out["mistake_within_parent"] = (float(totals["hier_within_parent"]) / mistakes
                                            if mistakes else None)
        return out
