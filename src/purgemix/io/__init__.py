"""File formats: streaming readers and atomic writers."""

from .readers import FORMATS, Source, SourceError, decode_json_line, fingerprint
from .writers import Writer, write_rows

__all__ = ["FORMATS", "Source", "SourceError", "Writer", "decode_json_line", "fingerprint", "write_rows"]
