"""`--print-source`: the source as virt-v2v prints it (for scripts and golden tests)."""

from __future__ import annotations

from .types import Source


def format_source(src: Source, block_bus: str = "virtio-blk") -> str:
    c = src.cpu
    topo = (f"sockets: {c.sockets} cores/socket: {c.cores} threads/core: {c.threads}"
            if c.sockets and c.cores and c.threads else "")
    lines = [
        "Source guest information (--print-source option):",
        "",
        f"    source name: {src.name}",
        f"hypervisor type: {src.hypervisor}",
        f"         memory: {src.memory} (bytes)",
        f"       nr vCPUs: {src.vcpus}",
        f"     CPU vendor: {c.vendor or ''}",
        f"      CPU model: {c.model or ''}",
        f"   CPU topology: {topo}",
        f"   CPU features: {','.join(src.features)}",
        f"       firmware: {src.firmware}",
        f"          clock: {src.clock or ''}",
        "disks:",
    ]
    for d in src.disks:
        dev = f" [{d.target_dev}]" if d.target_dev else ""
        lines.append(f"\t{d.location} ({d.format or 'auto'}){dev}")
    lines.append("removable media:")
    for r in src.removables:
        lines.append(f"\t{r.kind}" + (f" [{r.target_dev}]" if r.target_dev else ""))
    lines.append("NICs:")
    for n in src.nics:
        kind = "Bridge" if n.vnet_type == "bridge" else "Network"
        mac = f" mac: {n.mac}" if n.mac else ""
        dev = f" [{n.source_dev}]" if n.source_dev else ""
        lines.append(f'\t{kind} "{n.vnet}"{mac}{dev}')
    return "\n".join(lines) + "\n"


def print_source(src: Source, block_bus: str = "virtio-blk") -> None:
    print(format_source(src, block_bus), end="")
