"""libvirt domain XML: safe parsing (`parse`), serialisation, and the declarative model.

Guest XML is untrusted input: the parser resolves no entities, loads no DTD, fetches nothing,
keeps libxml2's size limits (no huge_tree), and a document carrying a DOCTYPE at all (the vehicle
of entity-expansion and XXE attacks; libvirt XML never has one) is refused.  The element model
lives in `model` (descriptors), `domain` and `devices` (what pyv2v reads and writes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lxml import etree

from ..errors import V2VError


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def parse(text: bytes | str, what: str = "XML") -> etree._Element:
    """Parse XML text safely; a malformed or DTD-carrying document is a one-line V2VError."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                             load_dtd=False, dtd_validation=False, remove_blank_text=True)
    data = text.encode() if isinstance(text, str) else text
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        raise V2VError(f"{what} is not well-formed XML: {_one_line(str(e))}") from e
    if root is None:
        raise V2VError(f"{what} is empty")
    docinfo: Any = root.getroottree().docinfo  # lxml-stubs lack DocInfo.doctype
    if docinfo.doctype:
        raise V2VError(f"{what}: a document type declaration (<!DOCTYPE …>) is not allowed "
                       "(entities are refused in libvirt XML)")
    return root


def parse_file(path: str) -> etree._Element:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise V2VError(f"cannot read {path}: {e.strerror}") from e
    return parse(data, what=path)


def to_string(root: etree._Element) -> str:
    """An element as pretty-printed text (no XML declaration)."""
    return str(etree.tostring(root, pretty_print=True, encoding="unicode"))


def to_document(root: etree._Element, comments: Sequence[str] = ()) -> bytes:
    """A UTF-8 document with an XML declaration and `comments` before the root element."""
    for text in comments:
        root.addprevious(etree.Comment(text))
    return bytes(etree.tostring(etree.ElementTree(root), xml_declaration=True,
                                encoding="utf-8", pretty_print=True))
