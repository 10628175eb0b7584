"""pyv2v.bootcheck (the product's console classifier): canned console text → outcome, and the
line that proves a failure."""

from __future__ import annotations

from console_samples import INITRAMFS, KERNEL, LOGIN, PANIC, SYSTEMD

from pyv2v.bootcheck import CONSOLE_OUTCOMES, OUTCOMES, classify, clean, evidence


def test_still_booting() -> None:
    assert classify(KERNEL + SYSTEMD) is None
    assert classify("") is None


def test_login_prompt() -> None:
    assert classify(KERNEL + SYSTEMD + LOGIN) == "login"


def test_login_prompt_followed_by_kernel_message() -> None:
    text = (KERNEL + "\r\r\nDebian GNU/Linux 12 debian12-physical ttyS0\r\n\r\n"
            "debian12-physical login: [   65.549228] powernow_k8: Power state transitions not "
            "supported\r\n")
    assert classify(text) == "login"


def test_logind_is_not_a_login_prompt() -> None:
    assert classify(SYSTEMD + "Starting systemd-logind.service - User Login Management...\r\n"
                    ) is None


def test_initramfs_shell() -> None:
    assert classify(KERNEL + INITRAMFS) == "initramfs"
    assert classify(KERNEL + "(initramfs) ") == "initramfs"
    assert classify(KERNEL + "ALERT!  UUID=1234 does not exist.  Dropping to a shell!\r\n"
                    ) == "initramfs"


def test_kernel_panic_wins() -> None:
    assert classify(KERNEL + PANIC) == "panic"
    assert classify(KERNEL + PANIC + LOGIN) == "panic"
    assert classify(KERNEL + LOGIN + PANIC) == "panic"


def test_evidence_is_the_proving_line() -> None:
    assert evidence(KERNEL + PANIC, "panic") == (
        "[    2.345999] Kernel panic - not syncing: VFS: Unable to mount root fs on "
        "unknown-block(0,0)")
    assert evidence(KERNEL + INITRAMFS, "initramfs") == (
        "Gave up waiting for root file system device.  Common problems:")
    assert evidence(KERNEL + LOGIN, "login") == ""
    assert evidence(KERNEL, "panic") == ""


def test_clean_strips_escapes_and_carriage_returns() -> None:
    assert clean(SYSTEMD) == ("  OK  ] Started systemd-logind.service - User Login "
                              "Management.\n")


def test_outcomes() -> None:
    assert set(CONSOLE_OUTCOMES) < set(OUTCOMES)
    for text in (KERNEL + LOGIN, KERNEL + INITRAMFS, KERNEL + PANIC):
        assert classify(text) in CONSOLE_OUTCOMES
