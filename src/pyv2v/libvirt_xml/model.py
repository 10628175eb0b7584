"""A small declarative model of libvirt domain XML, in the style of virt-manager's virtinst.

`XMLProperty("./memory", int)` on a class maps a Python attribute to an XPath (an element's text,
or an attribute when the path ends in ``/@name``); reading walks the tree, writing creates the
missing elements.  Device lists are `XMLChildren`.  Inputs parse domains with these classes and
outputs build them, so one table of paths serves both directions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from lxml import etree


def _split(path: str) -> tuple[list[str], str | None]:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    attr = None
    if parts and parts[-1].startswith("@"):
        attr = parts.pop()[1:]
    return parts, attr


def _find(node: etree._Element, parts: list[str], create: bool) -> etree._Element | None:
    cur = node
    for p in parts:
        nxt = cur.find(p)
        if nxt is None:
            if not create:
                return None
            tag, _, cond = p.partition("[")
            nxt = etree.SubElement(cur, tag)
            if cond:  # tag[@a='v'] — create with that attribute
                k, _, v = cond.rstrip("]").lstrip("@").partition("=")
                nxt.set(k, v.strip("'\""))
        cur = nxt
    return cur


class XMLProperty:
    """A typed view of one value in the element tree (`conv` turns the text into a value)."""

    def __init__(self, path: str, conv: Callable[[str], Any] = str, default: Any = None):
        self.path = path
        self.conv = conv
        self.default = default

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: XMLObject | None, owner: type) -> Any:
        if obj is None:
            return self
        parts, attr = _split(self.path)
        el = _find(obj.node, parts, create=False)
        if el is None:
            return self.default
        raw = el.get(attr) if attr else el.text
        if raw is None:
            return self.default
        raw = raw.strip()
        try:
            return self.conv(raw)
        except ValueError:
            return self.default

    def __set__(self, obj: XMLObject, value: Any) -> None:
        if value is None:
            return
        parts, attr = _split(self.path)
        el = _find(obj.node, parts, create=True)
        assert el is not None
        text = ("yes" if value else "no") if isinstance(value, bool) else str(value)
        if attr:
            el.set(attr, text)
        else:
            el.text = text


class XMLObject:
    """Wraps an element; subclasses declare XMLProperty attributes."""

    TAG = ""

    def __init__(self, node: etree._Element | None = None, **values: Any) -> None:
        self.node = node if node is not None else etree.Element(self.TAG)
        for k, v in values.items():
            setattr(self, k, v)

    def child(self, tag: str) -> etree._Element:
        return etree.SubElement(self.node, tag)


ObjT = TypeVar("ObjT", bound=XMLObject)


class XMLChildren(Generic[ObjT]):
    """All elements matching an XPath, each wrapped in an XMLObject subclass."""

    def __init__(self, path: str, cls: type[ObjT]) -> None:
        self.path = path
        self.cls = cls

    def __get__(self, obj: XMLObject | None, owner: type) -> Any:
        if obj is None:
            return self
        return [self.cls(n) for n in obj.node.findall(self.path)]
