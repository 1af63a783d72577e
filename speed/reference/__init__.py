"""Plain reference implementations: straightforward, loop-based restatements of the public
reference procedures, kept slow and obvious on purpose. Only benchmarks and tests import them."""
