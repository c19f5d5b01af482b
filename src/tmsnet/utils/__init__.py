"""Small shared helpers: argument checks, docstring fragments, parameter objects.

Nothing here knows any science; every layer may import it.
"""
