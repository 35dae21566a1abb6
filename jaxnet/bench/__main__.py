"""`python -m jaxnet.bench`: the train step's throughput (jaxnet.bench.throughput)."""
from absl import app

from jaxnet.bench.throughput import main

if __name__ == "__main__":
    app.run(main)
