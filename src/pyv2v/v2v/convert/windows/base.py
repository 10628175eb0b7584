"""The Windows conversion, stage by stage (the reference's "pre-conversion" plus first boot).

Refuse unsafe NTFS (hibernation, Fast Startup, read-only fallback); open the SYSTEM and SOFTWARE
hives; read what Windows this is; copy the virtio drivers and make the storage driver start at
boot (or keep a bus the guest boots without one); disable the old hypervisor's drivers; queue
the first-boot tasks (pnputil, guest agent, balloon, foreign tools' uninstallers, static IPs);
write both hives back and report `GuestCaps` (buses, q35, Hyper-V enlightenments, localtime
clock, TPM).  Nothing is written into the guest's hives unless every step succeeded.
"""

from __future__ import annotations

import posixpath
import time
from typing import ClassVar

from .... import devnames, log
from ...types import ConvertOptions, GuestCaps, Inspect
from ..guest import Guest
from . import drivers, facts, hygiene, tasks
from .firstboot import Firstboot
from .registry import Hive
from .virtio_win import VirtioWin, locate, matches_qemu_ga

TPM_DEVICE = ("Enum", "ACPI", "MSFT0101")  # a TPM 2.0 the source machine had


class WindowsConverter:
    family: ClassVar[str] = "windows"

    def convert(self, guest: Guest, inspect: Inspect, opts: ConvertOptions) -> GuestCaps:
        start = time.monotonic()
        log.message(f"Converting {inspect.product_name or 'Windows'} to run on KVM")
        facts.check_not_hibernated(guest)
        facts.check_writable(guest)
        root = facts.find_systemroot(guest)
        software = Hive.open(guest, f"{root}/System32/config/SOFTWARE", "HKLM\\SOFTWARE")
        try:
            system = Hive.open(guest, f"{root}/System32/config/SYSTEM", "HKLM\\SYSTEM")
            try:
                caps = self._convert(guest, inspect, opts, root, software, system)
                system.commit()
                software.commit()
            finally:
                system.close()
        finally:
            software.close()
        log.debug(f"conversion took {time.monotonic() - start:.1f} s")
        return caps

    def _convert(
        self,
        guest: Guest,
        inspect: Inspect,
        opts: ConvertOptions,
        root: str,
        software: Hive,
        system: Hive,
    ) -> GuestCaps:
        info = facts.read_info(guest, inspect, software, system, root)
        log.message(
            f"Windows: {info.describe()}, {info.edition or 'unknown edition'}, "
            f"{info.installation_type}, control set {info.control_set}"
        )
        loc = locate()
        vw = VirtioWin.open(loc) if loc else None
        try:
            uefi = inspect.firmware == "uefi"
            inst = drivers.install(
                guest,
                self._sys_drivers(guest, root),
                system,
                software,
                info,
                vw,
                opts.block_bus,
                uefi,
            )
            disabled = hygiene.disable_foreign_services(system, info)
            if disabled:
                log.message(f"Disabled drivers of the old hypervisor: {', '.join(disabled)}")
            drive = (software.get_str(facts.CURRENT_VERSION, "SystemRoot") or "C:")[:2]
            fb = Firstboot(guest, info, drive)
            self._queue_tasks(fb, vw, info, inst, software, system, opts)
            fb.install(system)
        finally:
            if vw is not None:
                vw.close()
        machine = "pc" if inst.block_bus == "ide" else "q35"
        tpm = system.node((info.control_set, *TPM_DEVICE)) is not None or info.osinfo == "win11"
        return GuestCaps(
            block_bus=inst.block_bus,
            net_bus=inst.net_bus,
            video=inst.video,
            machine=machine,
            arch=info.arch,
            firmware=inspect.firmware,
            virtio_rng=inst.virtio_rng,
            virtio_balloon=inst.virtio_balloon,
            acpi=True,
            target_devs=tuple(
                devnames.target_dev(inst.block_bus, i) for i in range(opts.disk_count)
            ),
            hyperv=True,
            clock="localtime",
            tpm=tpm,
        )

    @staticmethod
    def _queue_tasks(
        fb: Firstboot,
        vw: VirtioWin | None,
        info: facts.WindowsInfo,
        inst: drivers.Installed,
        software: Hive,
        system: Hive,
        opts: ConvertOptions,
    ) -> None:
        if inst.driver_dir:
            fb.queue("10-pnputil-virtio-drivers", tasks.pnputil_script(info))
        msis = vw.select(lambda p: matches_qemu_ga(p, info.arch)) if vw else []
        if vw is not None and msis:
            name = posixpath.basename(msis[0]).lower()
            fb.queue(
                "20-install-qemu-guest-agent",
                tasks.qemu_ga_script(fb.add_file(vw.fetch(msis[0]), name)),
            )
        else:
            log.warning(
                "the QEMU guest agent MSI was not found in virtio-win: install "
                "qemu-ga in the guest after the conversion"
            )
        if "blnsvr.exe" in inst.files:
            fb.queue("30-install-balloon-service", tasks.balloon_script())
        for i, u in enumerate(tasks.foreign_uninstalls(software)):
            fb.queue(f"40-uninstall-{i}", tasks.uninstall_script(u))
            log.message(f"Queued the uninstallation of {u.name} for the first boot")
        plan = tasks.network_plan(opts.nics, tasks.source_static_ips(system, info))
        if plan:
            fb.queue("50-static-ip", tasks.network_script(plan))
            log.message(
                "Static IP configuration re-applied at first boot: "
                + ", ".join(f"{mac}={ip.address}/{ip.prefix}" for mac, ip in plan)
            )

    @staticmethod
    def _sys_drivers(guest: Guest, root: str) -> str:
        for sys32 in ("System32", "system32", "SYSTEM32"):
            for drv in ("drivers", "DRIVERS", "Drivers"):
                if guest.is_dir(f"{root}/{sys32}/{drv}"):
                    return f"{root}/{sys32}/{drv}"
        guest.mkdir_p(f"{root}/System32/drivers")
        return f"{root}/System32/drivers"
