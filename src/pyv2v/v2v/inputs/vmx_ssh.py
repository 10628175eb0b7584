"""`-i vmx -it ssh vmx+ssh://[user@]host[:port]/path/guest.vmx`: a VMX on a remote host."""

from __future__ import annotations

from ...errors import V2VError
from ..types import Source
from .base import InputOptions


def remote_source(opts: InputOptions) -> Source:
    raise V2VError("-i vmx -it ssh: not implemented yet")
