"""verify.py: the standalone verifier copied into every export package (standard library only).

A package of its own so that installing Témoin (``pip install .``) ships it with the code.
"""
