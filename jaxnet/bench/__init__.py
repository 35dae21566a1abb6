"""Benchmarks that print figures (never timed assertions in tests):

    python -m jaxnet.bench                   # the train step's throughput (.throughput)
    python -m jaxnet.bench.time_to_accuracy  # the quickstart's minutes to 93%, vs PyTorch
    python -m jaxnet.bench.conv_layers       # each convolution's time, XLA vs PyTorch
"""
