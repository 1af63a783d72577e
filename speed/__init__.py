"""Speed benchmarks (``python -m speed.bench_*`` or ``python speed/bench_*.py``) and, in
:mod:`speed.reference`, the plain implementations they time against: literal ports of what the
public reference code does (DINO's label propagation, the official DAVIS evaluator, the authors'
training step). The references also serve the tests as independent computations."""
