"""libvirt domain XML: safe parsing (`parse`) and the declarative element model (`model`).

Guest XML is untrusted input: the parser resolves no entities and fetches nothing.
"""

from __future__ import annotations

from lxml import etree

from ..errors import V2VError


def parse(text: bytes | str, what: str = "XML") -> etree._Element:
    """Parse XML text safely; a malformed document is a one-line V2VError."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                             remove_blank_text=True)
    data = text.encode() if isinstance(text, str) else text
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        raise V2VError(f"{what} is not well-formed XML: {e}") from e
    if root is None:
        raise V2VError(f"{what} is empty")
    return root


def parse_file(path: str) -> etree._Element:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise V2VError(f"cannot read {path}: {e.strerror}") from e
    return parse(data, what=path)


def to_string(root: etree._Element) -> str:
    return str(etree.tostring(root, pretty_print=True, encoding="unicode"))
