"""The foundation layer: errors, atomic file I/O, device choice, defaults, logging set-up, host facts.

Everything else in the package may import from here; nothing here imports from the rest of the package.
"""
