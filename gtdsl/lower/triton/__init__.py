"""The Triton backend: fusion of the IR into kernels, kernel generation and launch."""
