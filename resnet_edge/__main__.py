"""``python -m resnet_edge`` (and ``torchrun -m resnet_edge``) run the command line."""

from .cli import main

main()
