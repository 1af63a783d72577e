"""The one exception of the reproduction tools."""

from core.errors import FLSLError


class ReproduceError(FLSLError):
    """A problem with a table name, a reference file, a result file or a command line; the
    one-line message names the file, key or argument at fault."""
