"""Every command-line tool of jaxnet, as a subcommand of one entry point:

    python -m jaxnet TOOL [ARGS ...]        (or the `jaxnet` console script)
    python -m jaxnet --help                 lists the tools
    python -m jaxnet TOOL --help            one tool's flags

A tool is a module here with `main(argv) -> int | None`, where argv holds the tool's own
arguments (not the program or tool name). Tools written with absl flags are started through
`absl.app.run` (their `main` then receives the program name first, as absl passes it), with
train.py's flag parser (jaxnet.tools.cli.parse_flags: one-line errors) where marked "cli".
This package is the top layer: it may import every library package; none imports it.
"""
import importlib
import sys

# name -> (module, flags: None = argparse, "absl" or "cli" = absl flags and that parser, help)
TOOLS = {
    "report": ("jaxnet.tools.report", None, "every experiment of the story: figures, index.html, REPORT.md"),
    "grid": ("jaxnet.tools.grid", "cli", "evaluate workdirs under several test protocols (the seed's Table 3)"),
    "weights": ("jaxnet.tools.weights", None, "import / export / verify torchvision and timm weights"),
    "prepare": ("jaxnet.tools.prepare", None, "convert ILSVRC-2010/2012 or an image folder to ArrayRecord"),
    "extract": ("jaxnet.tools.extract", None, "features of any layer of a workdir's network, to .npz"),
    "transfer_study": ("jaxnet.tools.transfer_study", None, "probes, fine-tuning and clustering against labels"),
    "task_study": ("jaxnet.tools.task_study", None, "localization and segmentation: scratch, frozen, fine-tuned against labels"),
    "classical_curves": ("jaxnet.tools.classical_curves", None, "the 2011 lessons: accuracy against feature size and data"),
    "landscape": ("jaxnet.tools.landscape", None, "loss landscapes of plain and residual nets (Li 2018)"),
    "model_parallel": ("jaxnet.tools.model_parallel", None, "AlexNet's two columns on two devices, checked against one"),
    "flops": ("jaxnet.tools.flops", None, "parameters and forward FLOPs of every registered model"),
    "bench": ("jaxnet.tools.bench_throughput", "absl", "train-step throughput of a model (accelerator benchmark)"),
    "bench_conv_layers": ("jaxnet.tools.bench_conv_layers", "cli", "each convolution of a net timed in XLA and PyTorch"),
    "bench_time_to_accuracy": ("jaxnet.tools.bench_time_to_accuracy", "cli", "the quickstart against its PyTorch twin: minutes to a target"),
    "bench_data": ("jaxnet.tools.bench_data", None, "input pipeline throughput (decode, augment, batch)"),
    "bench_protocols": ("jaxnet.tools.bench_protocols", "cli", "what each test protocol's views cost per image"),
    "bench_classical": ("jaxnet.tools.bench_classical", None, "classical feature extraction and SVM speed"),
    "consensus": ("jaxnet.tools.consensus", None, "merge several annotators' label files: majority vote or Dawid-Skene, agreement"),
    "bench_consensus": ("jaxnet.tools.bench_consensus", None, "Dawid-Skene's time and peak memory on 50,000 x 20 annotators x 1,000 classes"),
    "labelling": ("jaxnet.tools.labelling", None, "simulated annotators on Fashion-MNIST: consensus accuracy, cost, cleaning"),
}


_FLAGS_DEFINED = set()  # tools whose define_flags() has run in this process


def usage() -> str:
    width = max(map(len, TOOLS))
    lines = ["usage: python -m jaxnet TOOL [ARGS ...]   (python -m jaxnet TOOL --help: its flags)",
             "", "tools:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, _, help_) in TOOLS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in TOOLS:
        print(f"error: unknown tool {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name, flag_kind, _ = TOOLS[name]
    module = importlib.import_module(module_name)
    if flag_kind is None:
        return module.main(rest) or 0
    from absl import app

    if hasattr(module, "define_flags") and name not in _FLAGS_DEFINED:
        module.define_flags()  # flags a tool defines only when it runs (names shared with others)
        _FLAGS_DEFINED.add(name)
    kwargs = {}
    if flag_kind == "cli":
        from jaxnet.tools.cli import parse_flags

        kwargs["flags_parser"] = parse_flags
    app.run(module.main, argv=[f"python -m jaxnet {name}"] + rest, **kwargs)
    return 0
