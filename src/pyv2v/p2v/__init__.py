"""p2v: the client that runs on the physical machine (no libguestfs or libvirt imports here)."""
