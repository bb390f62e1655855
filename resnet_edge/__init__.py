"""resnet-edge: build, train, fuse, quantize, compile and validate the ResNets of He et al. 2015."""

__version__ = "0.1.0"
