"""Experiments behind a default or a number in the docs: the stopping rule, the box, the style layers, regions."""
