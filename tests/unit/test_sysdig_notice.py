"""The sysdig role's notice about its capture driver reads as sentences on
every branch of the decision (modern eBPF, the kernel module, none; chosen
or automatic; the fall-back when the modern eBPF capture does not work), and
that capture is classified by what sysdig printed.  The
role's own expressions are templated by Ansible itself, with the role's
defaults and vars and what the host's reads would have registered."""

import pytest
import yaml

from tracekit.paths import provision_dir

ROLE = provision_dir() / "roles" / "sysdig"
KERNEL = "6.1.0-18-amd64"
BTF, MODULES, BUILD = "/sys/kernel/btf/vmlinux", "/proc/modules", "/lib/modules/%s/build/Makefile" % KERNEL


def _task(path, name):
    return next(t for t in yaml.safe_load((ROLE / path).read_text()) if t["name"] == name)


def _template(expression, variables, registered=None):
    """``expression`` templated with the role's defaults and vars, the task's
    ``variables`` (trusted, as the role's files are) and ``registered``
    results (data, as Ansible keeps a command's output)."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    loader = DataLoader()
    role_vars = {**loader.load_from_file(str(ROLE / "defaults/main.yml"), trusted_as_template=True),
                 **loader.load_from_file(str(ROLE / "vars/main.yml"), trusted_as_template=True)}

    def trusted(value):
        if isinstance(value, str):
            return trust_as_template(value)
        if isinstance(value, dict):
            return {k: trusted(v) for k, v in value.items()}
        return [trusted(v) for v in value] if isinstance(value, list) else value

    # The task's own vars, trusted as the role's files are.
    role_vars.update({k: trusted(v) for k, v in variables.items()})
    role_vars.update(registered or {})
    return Templar(loader=loader, variables=role_vars).template(trust_as_template(expression))


def apt_show(version, packages=()):
    """`apt-cache show` text for sysdig ``version`` (None: not in the sources) and other packages."""
    stanzas = (["Package: sysdig\nVersion: %s\n" % version] if version else []) + \
        ["Package: %s\nVersion: 1.0\n" % name for name in packages]
    return "\n".join(stanzas)


def decided_reason(version, kernel_has, packages=(), driver="auto"):
    """The reason the resolve step records (and the notice prints)."""
    task = _task("tasks/resolve.yml", "Resolve | decide the capture driver")
    variables = dict(task["vars"], tracekit_sysdig_kernel=KERNEL, tracekit_sysdig_driver=driver,
                     _tracekit_apt_show=apt_show(version, packages),
                     __tracekit_sysdig_known={"skipped": True, "changed": False},
                     __tracekit_sysdig_kernel_has={"files": [{"path": p} for p in kernel_has]})
    return _template(task["ansible.builtin.set_fact"]["_tracekit_sysdig_driver_reason"], variables)


def notice(reason):
    task = _task("tasks/main.yml", "Notice | the capture driver")
    return _template(task["ansible.builtin.debug"]["msg"], {"_tracekit_sysdig_driver_reason": reason})


KMOD_PACKAGES = ("falcosecurity-scap-dkms", "linux-headers-%s" % KERNEL)


@pytest.mark.parametrize("version, kernel_has, packages, driver, expected", [
    ("0.40.1", [BTF], (), "auto",
     "sysdig captures with its modern eBPF driver (modern_ebpf), which sysdig 0.40.1 on kernel %s with BTF supports."
     % KERNEL),
    # Debian 12: sysdig 0.29.3, older than modern eBPF.
    ("0.29.3", [BTF, MODULES, BUILD], KMOD_PACKAGES, "auto",
     "sysdig captures with its kernel module (kmod), which DKMS builds against the headers of the running kernel, "
     "because modern eBPF cannot work here: sysdig 0.29.3 is older than 0.31."),
    ("0.40.1", [BTF, MODULES, BUILD], KMOD_PACKAGES, "kmod",
     "sysdig captures with its kernel module (kmod), which DKMS builds against the headers of the running kernel, "
     "as tracekit_sysdig_driver asks."),
    # The issue's host: Debian 12's sysdig on a kernel without modules (the test machine's).
    ("0.29.3", [BTF], (), "auto",
     "sysdig has no capture driver here (none). Modern eBPF cannot work: sysdig 0.29.3 is older than 0.31. "
     "The kernel module needs loadable modules (the kernel has none), headers for %s (none installed or in the "
     "apt sources), falcosecurity-scap-dkms (not in the apt sources)." % KERNEL),
    ("0.29.3", [MODULES], (), "auto",
     "sysdig has no capture driver here (none). Modern eBPF cannot work: sysdig 0.29.3 is older than 0.31; "
     "no kernel BTF (/sys/kernel/btf/vmlinux). The kernel module needs headers for %s (none installed or in the "
     "apt sources), falcosecurity-scap-dkms (not in the apt sources)." % KERNEL),
    ("0.40.1", [BTF], (), "none", "sysdig captures with no driver (none), as tracekit_sysdig_driver asks."),
])
def test_driver_decision_reads_as_sentences(version, kernel_has, packages, driver, expected):
    reason = decided_reason(version, kernel_has, packages, driver)
    assert reason == expected
    assert notice(reason) == expected


# What sysdig printed for `timeout 20 sysdig --modern-bpf -M 1 -n 1`, as
# (rc, stdout, stderr). Recorded from the real builds: Ubuntu 26.04's
# 0.40.0+repack-3 and Ubuntu 24.04's 0.36.0+repack-1, each installed
# (--no-install-recommends) into an overlay over the kernel lab's cached
# userland in a private mount namespace; Debian 12's 0.29.3-1+b1 extracted
# from its packages on this machine.
UBUNTU_2604 = (1, "", "MODERN_BPF engine is not supported in this build\n")
UBUNTU_2404 = (1, "", "sysdig: unrecognized option '--modern-bpf'\n")
DEBIAN_12 = (1, "", "sysdig: unrecognized option '--modern-bpf'\n")
# No build with the probe installs here (those three lack it, Debian 13 has
# none, Sysdig's repository is out of reach), so these two are stand-ins:
# an event line as sysdig prints one, and a refusal as falcosecurity's libs
# word it (libpman's and libscap's messages).
CAPTURED = (0, "1 12:02:36.269753803 0 sysdig (4242) > close fd=3(/proc/1/status)\n", "")
REFUSED = (1, "", "libbpf: prog 'sys_enter': BPF program load failed: Operation not permitted\n"
              "libpman: failed to load BPF object\nInitialization issues during scap_init\n")


def capture_answer(rc, stdout, stderr, seconds=20):
    """What "Read the capture's answer" makes of one attempt's output."""
    task = _task("tasks/main.yml", "Read the capture's answer")
    variables = dict(task["vars"], ansible_kernel=KERNEL, _tracekit_sysdig_capture_seconds=seconds)
    registered = {"__tracekit_sysdig_capture": {"rc": rc, "stdout": stdout, "stderr": stderr, "changed": False},
                  "__tracekit_sysdig_installed": {"stdout": "sysdig version 0.40.0+repack", "delta": "0:00:00.01"}}
    return _template(task["ansible.builtin.set_fact"]["_tracekit_sysdig_modern_capture"], variables, registered)


@pytest.mark.parametrize("output, result, says", [
    (UBUNTU_2604, "not_built", "MODERN_BPF engine is not supported in this build"),
    (UBUNTU_2404, "not_built", "sysdig: unrecognized option '--modern-bpf'"),
    (DEBIAN_12, "not_built", "sysdig: unrecognized option '--modern-bpf'"),
    (CAPTURED, "captured", "an event"),
    (REFUSED, "failed", "libbpf: prog 'sys_enter': BPF program load failed: Operation not permitted; "
                        "libpman: failed to load BPF object; Initialization issues during scap_init"),
    # An exit 0 that printed no event is no proof.
    ((0, "", ""), "failed", "it exited with status 0 and printed nothing"),
    # timeout's status: no event came within the bound.
    ((124, "", ""), "failed", "it did not end within 20 s"),
])
def test_the_capture_is_classified_by_what_sysdig_said(output, result, says):
    answer = capture_answer(*output)
    assert answer == {"sysdig": "0.40.0", "kernel": KERNEL, "result": result, "says": says}


def fall_back(capture, kmod_gaps):
    task = _task("tasks/main.yml",
                 "Fall back to the kernel module, or to no driver, when the modern eBPF capture does not work")
    variables = dict(task["vars"], _tracekit_sysdig_modern_capture=capture,
                     _tracekit_sysdig_driver_gaps={"modern_ebpf": [], "kmod": kmod_gaps, "none": [], "auto": []})
    return _template(task["ansible.builtin.set_fact"]["_tracekit_sysdig_driver_reason"], variables)


@pytest.mark.parametrize("output, kmod_gaps, expected", [
    # Ubuntu 26.04: new enough, offers --modern-bpf, built without the probe.
    (UBUNTU_2604, [],
     "sysdig captures with its kernel module (kmod), which DKMS builds against the headers of the running kernel, "
     "because sysdig 0.40.0 is built without the modern eBPF probe (its capture says: MODERN_BPF engine is not "
     "supported in this build)."),
    (UBUNTU_2604, ["loadable modules (the kernel has none)"],
     "sysdig has no capture driver here (none): sysdig 0.40.0 is built without the modern eBPF probe (its capture "
     "says: MODERN_BPF engine is not supported in this build), and the kernel module needs loadable modules (the "
     "kernel has none)."),
    (REFUSED, [],
     "sysdig captures with its kernel module (kmod), which DKMS builds against the headers of the running kernel, "
     "because the modern eBPF probe of sysdig 0.40.0 does not capture on kernel %s (its capture says: libbpf: prog "
     "'sys_enter': BPF program load failed: Operation not permitted; libpman: failed to load BPF object; "
     "Initialization issues during scap_init)." % KERNEL),
])
def test_fall_back_from_a_capture_that_did_not_work_reads_as_sentences(output, kmod_gaps, expected):
    reason = fall_back(capture_answer(*output), kmod_gaps)
    assert reason == expected
    assert notice(reason) == expected
