"""A small declarative model of libvirt XML, in the style of virt-manager's virtinst.

Subclasses of `XMLObject` declare their content as descriptors bound to XPaths relative to the
object's element, and the same declarations serve readers (inputs) and writers (outputs, p2v):

- `XMLProperty("./memory", int)` — an element's text, or an attribute when the path ends in
  ``/@name``; reading walks the tree (missing ⇒ default), writing creates the missing elements,
  writing None removes the value.
- `XMLFlag("./features/acpi")` — an empty element whose presence is a boolean.
- `XMLChild("./cpu", CPUXML)` — one sub-object (``dom.cpu.vendor``); it is bound lazily, so
  reading never changes the tree and the element appears when a value is first written.
- `XMLChildren("./devices/disk", DiskXML)` — all matching elements as objects (a read view);
  containers add new children with `XMLObject.append`.

New elements and attributes are appended in the order they are first written: a builder writes
values in document order, so what it produces is exactly what it reads top to bottom.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

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


def _text(value: object) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


class XMLObject:
    """Wraps one element; subclasses declare XMLProperty/XMLFlag/XMLChild(ren) attributes.

    An object is either standalone (``DiskXML(type="file")`` makes a detached ``<disk>``), wraps
    an existing element, or is a lazy child of a parent object (see `XMLChild`).
    """

    TAG = ""
    _node: etree._Element | None
    _parent: XMLObject | None
    _path: list[str]

    def __init__(self, node: etree._Element | None = None, **values: Any) -> None:
        self._node = node if node is not None else etree.Element(self.TAG)
        self._parent = None
        self._path = []
        self.set(**values)

    @classmethod
    def _lazy(cls: type[ObjT], parent: XMLObject, path: str) -> ObjT:
        obj = cls.__new__(cls)
        obj._node = None
        obj._parent, obj._path = parent, _split(path)[0]
        return obj

    def set(self, **values: Any) -> None:
        """Write several declared values, in the order given."""
        for k, v in values.items():
            if not isinstance(getattr(type(self), k, None), (XMLProperty, XMLFlag)):
                raise AttributeError(f"{type(self).__name__} has no XML property {k!r}")
            setattr(self, k, v)

    def lookup(self) -> etree._Element | None:
        """This object's element, or None while a lazy child does not exist yet."""
        if self._node is None and self._parent is not None:
            parent = self._parent.lookup()
            if parent is not None:
                self._node = _find(parent, self._path, create=False)
        return self._node

    @property
    def node(self) -> etree._Element:
        """This object's element, created (with its missing ancestors) if needed."""
        if self._node is None:
            assert self._parent is not None
            self._node = _find(self._parent.node, self._path, create=True)
        assert self._node is not None
        return self._node

    def exists(self) -> bool:
        return self.lookup() is not None

    def create(self: ObjT) -> ObjT:
        """Make sure the element exists (an empty ``<features/>`` is still written)."""
        self.node  # noqa: B018 — the property creates it
        return self

    def append(self, child: ObjT) -> ObjT:
        """Make `child`'s element the last child of this object's element."""
        self.node.append(child.node)
        return child


ObjT = TypeVar("ObjT", bound=XMLObject)


class XMLProperty:
    """A typed view of one value in the element tree (`conv` turns the text into a value)."""

    def __init__(self, path: str, conv: Callable[[str], Any] = str, default: Any = None):
        self.path = path
        self.parts, self.attr = _split(path)
        self.conv = conv
        self.default = default

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> XMLProperty: ...
    @overload
    def __get__(self, obj: XMLObject, owner: type) -> Any: ...

    def __get__(self, obj: XMLObject | None, owner: type) -> Any:
        if obj is None:
            return self
        base = obj.lookup()
        el = None if base is None else _find(base, self.parts, create=False)
        if el is None:
            return self.default
        raw = el.get(self.attr) if self.attr else el.text
        if raw is None:
            return self.default
        try:
            return self.conv(raw.strip())
        except ValueError:
            return self.default

    def __set__(self, obj: XMLObject, value: Any) -> None:
        if value is None:
            self._remove(obj)
            return
        el = _find(obj.node, self.parts, create=True)
        assert el is not None
        if self.attr:
            el.set(self.attr, _text(value))
        else:
            el.text = _text(value)

    def _remove(self, obj: XMLObject) -> None:
        base = obj.lookup()
        el = None if base is None else _find(base, self.parts, create=False)
        if el is None:
            return
        if self.attr:
            if self.attr in el.attrib:
                del el.attrib[self.attr]
        else:
            el.text = None
            if not len(el) and not el.attrib and self.parts and el.getparent() is not None:
                el.getparent().remove(el)  # type: ignore[union-attr]


class XMLFlag:
    """An empty element whose presence means True (``<features><acpi/>``, ``<readonly/>``)."""

    def __init__(self, path: str) -> None:
        self.parts, _ = _split(path)

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> XMLFlag: ...
    @overload
    def __get__(self, obj: XMLObject, owner: type) -> bool: ...

    def __get__(self, obj: XMLObject | None, owner: type) -> XMLFlag | bool:
        if obj is None:
            return self
        base = obj.lookup()
        return base is not None and _find(base, self.parts, create=False) is not None

    def __set__(self, obj: XMLObject, value: bool | None) -> None:
        if value:
            _find(obj.node, self.parts, create=True)
            return
        base = obj.lookup()
        el = None if base is None else _find(base, self.parts, create=False)
        if el is not None and el.getparent() is not None:
            el.getparent().remove(el)  # type: ignore[union-attr]


class XMLChild(Generic[ObjT]):
    """One sub-object at an XPath (``./cpu``); created in the tree when first written to."""

    def __init__(self, path: str, cls: type[ObjT]) -> None:
        self.path = path
        self.cls = cls

    @overload
    def __get__(self, obj: None, owner: type) -> XMLChild[ObjT]: ...
    @overload
    def __get__(self, obj: XMLObject, owner: type) -> ObjT: ...

    def __get__(self, obj: XMLObject | None, owner: type) -> XMLChild[ObjT] | ObjT:
        if obj is None:
            return self
        return self.cls._lazy(obj, self.path)


class XMLChildren(Generic[ObjT]):
    """All elements matching an XPath, each wrapped in an XMLObject subclass (read view)."""

    def __init__(self, path: str, cls: type[ObjT]) -> None:
        self.path = path
        self.cls = cls

    @overload
    def __get__(self, obj: None, owner: type) -> XMLChildren[ObjT]: ...
    @overload
    def __get__(self, obj: XMLObject, owner: type) -> list[ObjT]: ...

    def __get__(self, obj: XMLObject | None, owner: type) -> XMLChildren[ObjT] | list[ObjT]:
        if obj is None:
            return self
        base = obj.lookup()
        return [] if base is None else [self.cls(n) for n in base.findall(self.path)]
