"""Helpers every part of the project shares, one implementation each.

``core.errors``     :class:`FLSLError`, the base of every error a tool reports as one
                    ``error: <file or key>: <what is wrong>`` line with exit status 2, and
                    :func:`cli_main`, the handler every command-line tool runs under
``core.files``      atomic file writes (temporary file in the same folder, fsync, rename) with
                    the user's umask
``core.dist``       "is a multi-process job running" and its rank / world size
``core.constants``  image normalisation constants
``core.config``     MMEngine configs read with one-line errors, ``--cfg-options`` checked against
                    the values they replace
``core.images``     image-file checks that need no decoder: a JPEG cut short (no end-of-image
                    marker) raises :class:`core.images.TruncatedJPEG`

``core`` imports nothing from ``pretrain`` or ``benchmarks``; both import from it.
"""
