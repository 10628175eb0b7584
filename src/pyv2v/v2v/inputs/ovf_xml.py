"""Reading OVF elements whatever their namespace prefix: children and attributes matched by
local name (VMware's `vmw:`, VirtualBox's `vbox:`, DMTF's `ovf:`/`rasd:` and unusual prefixes
read the same), text and numbers with one-line errors for bad values.  Used by ovf.py."""

from __future__ import annotations

from lxml import etree

from ...errors import V2VError


def local(el: etree._Element) -> str:
    tag = el.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def kids(el: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in el if local(c) == name]


def first(el: etree._Element, name: str) -> etree._Element | None:
    return next(iter(kids(el, name)), None)


def text(el: etree._Element, name: str) -> str | None:
    c = first(el, name)
    t = (c.text or "").strip() if c is not None else ""
    return t or None


def attr(el: etree._Element, name: str) -> str | None:
    """An attribute by local name in any namespace (ovf:href, href …)."""
    for k, v in el.attrib.items():
        if etree.QName(k).localname == name:
            return str(v)
    return None


def number(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        raise V2VError(f"OVF: {what} is not a number: {text[:40]!r}") from None
