"""``python -m benchmarks``: the benchmark suite (see ``benchmarks/suite.py``);
``python -m benchmarks --gpu-lane``: the GPU lane (``benchmarks/gpu_lane.py``)."""

from benchmarks.suite import main

raise SystemExit(main())
