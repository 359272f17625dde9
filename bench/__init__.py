"""Scripts that measure the project, tune it and draw its figures; not part of the installed package.

Run each one as a module from the repository's root (its docstring gives its command line)::

    python -m bench.benchmarks.pairs --size 384

- :mod:`bench.benchmarks`: time, memory and loss against the tutorial, the seed and the peers;
- :mod:`bench.tuning`: the experiments behind a default or a number in the docs;
- :mod:`bench.figures`: the figures and pages of docs/ drawn from runs;
- :mod:`bench.common`: what several scripts share (the folders, the machine, the commit, timing);
- ``bench/data/``: what the scripts keep (the varied set's cached tutorial losses, a recorded log).

The seed's own TensorFlow code, which the tests check against, is a test fixture: ``tests/seed_tf.py``.
"""
