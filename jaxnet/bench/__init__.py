"""Benchmarks that print figures (never timed assertions in tests):

    python -m jaxnet.bench                       # throughput of the train step (jaxnet.bench.throughput)
    python -m jaxnet.bench.time_to_accuracy      # the quickstart's minutes to 93%, jaxnet vs PyTorch
"""
