"""The pyv2v test harness — not part of the product, never installed on boot media.

What the tests, `make demo` and `make bench` need around the product: bootable source-guest
fixtures (`fixtures`), booting a disk image under qemu to see how far it gets (`bootcheck`), a
private sshd on 127.0.0.1 as the conversion server (`loopback`) and the demo (`demo`).  It uses
the product package `pyv2v`; `pyv2v` never imports it (tests/unit/test_product_boundary.py).
"""
