# pyv2v — set-up, tests, demo, benchmarks.  Every target works from a fresh Debian 12 as root.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := libguestfs-tools python3-guestfs python3-libnbd python3-hivex python3-libvirt \
  nbdkit libnbd-bin qemu-utils qemu-system-x86 ovmf openssh-client openssh-server debootstrap \
  parted fdisk dosfstools e2fsprogs libvirt-clients libvirt-daemon libvirt-daemon-driver-qemu \
  linux-image-amd64 xz-utils tmux \
  python3-venv python3-dev libxml2-utils virt-v2v sudo lvm2 btrfs-progs virt-p2v libgtk-3-0 \
  redis-server python3-celery python3-redis python3-yaml libhivex-bin
export LIBGUESTFS_BACKEND ?= direct
export PYV2V_FIXTURE_CACHE ?= /var/cache/pyv2v/fixtures
# p2v boot media (p2v-make-media): ISO for BIOS+UEFI, initramfs packing
APT_PACKAGES += xorriso grub-pc-bin grub-efi-amd64-bin mtools zstd cpio
# -i libvirt -ic esx://: nbdkit's cookie script runs curl; the test datastore's cert: openssl
APT_PACKAGES += curl openssl
# Windows goldens export hives with hivexregedit; virtio-win ISOs are read with xorriso (above)
APT_PACKAGES += libwin-hivex-perl
# -i libvirt -ic qemu+ssh:// tests: libvirt's proxy=netcat (nc -U) reaches the private libvirtd
APT_PACKAGES += netcat-openbsd
# the fixture builder makes XFS filesystems (debian12-nm-xfs)
APT_PACKAGES += xfsprogs

.PHONY: setup apt venv test lint unit demo bench clean

setup: apt venv

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed

# The product (pyv2v, src/) and, separately, the test harness (pyv2v_harness, harness/): the
# harness is used by the tests, the demo and the benchmarks but is never part of pyv2v's wheel.
$(VENV)/.installed: pyproject.toml harness/pyproject.toml
	test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,fleet]' -e ./harness
	touch $@

lint: venv
	$(VENV)/bin/ruff check src harness tests bench
	$(VENV)/bin/mypy src/pyv2v
	$(VENV)/bin/mypy harness/src/pyv2v_harness

# Two pytest-xdist workers (this machine and CI have 2 cores).  --dist loadgroup keeps the tests
# that share an expensive fixture on one worker (tests/xdist_support.py groups them);
# `make unit` and single-test runs stay serial.
test: setup lint
	$(VENV)/bin/pytest -v -n 2 --dist loadgroup --timeout=1800 --durations=30 tests

unit: venv
	$(VENV)/bin/pytest -q tests/unit

demo: setup
	$(PY) -m pyv2v_harness.demo $(if $(OUTPUT),--output $(OUTPUT))

bench: setup
	$(PY) bench/bench.py

clean:
	rm -rf $(VENV) build *.egg-info
