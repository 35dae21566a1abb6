"""Input: random-access sources and grain pipelines."""
