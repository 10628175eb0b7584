"""p2v boot media: `p2v-make-media` builds a live system (from Debian packages of the configured
apt mirror) that runs the p2v client, as a hybrid BIOS+UEFI ISO and a PXE kernel+initrd set.

rootfs.py builds and caches the expensive part (the root filesystem packed as one initramfs);
assemble.py adds the baked configuration as a second, small initramfs layer and writes the ISO
and the PXE set; imagefiles.py holds the systemd units and scripts that run inside the image;
payload.py copies the p2v part of pyv2v and its pure-Python dependencies into the image.
"""
