"""Package build. The C++/CUDA extension (csrc/) is added here by the fused-ops build."""

from setuptools import setup

setup()
