"""The one exception type users see: a one-line message, never a traceback."""


class GdreproError(Exception):
    """Bad input or a missing prerequisite; the CLI prints ``gdrepro: error: <message>`` and exits 2."""
