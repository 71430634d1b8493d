"""The sysdig role's notice about its capture driver reads as sentences on
every branch of the decision (modern eBPF, the kernel module, none; chosen
or automatic; the fall-back when the build lacks the modern probe).  The
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


def _template(expression, variables):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    loader = DataLoader()
    role_vars = {**loader.load_from_file(str(ROLE / "defaults/main.yml"), trusted_as_template=True),
                 **loader.load_from_file(str(ROLE / "vars/main.yml"), trusted_as_template=True)}
    # The task's own vars, trusted as the role's files are.
    role_vars.update({k: trust_as_template(v) if isinstance(v, str) else v for k, v in variables.items()})
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


@pytest.mark.parametrize("kmod_gaps, expected", [
    ([], "sysdig captures with its kernel module (kmod), which DKMS builds against the headers of the running "
         "kernel, because sysdig 0.36.0 was built without the modern eBPF probe (it has no --modern-bpf option)."),
    (["loadable modules (the kernel has none)"],
     "sysdig has no capture driver here (none): sysdig 0.36.0 was built without the modern eBPF probe (it has no "
     "--modern-bpf option), and the kernel module needs loadable modules (the kernel has none)."),
])
def test_fall_back_from_a_build_without_modern_ebpf_reads_as_sentences(kmod_gaps, expected):
    # Ubuntu's sysdig 0.36.0+repack: new enough, but built without the probe.
    task = _task("tasks/main.yml",
                 "Fall back to the kernel module, or to no driver, when this sysdig lacks the modern eBPF probe")
    variables = dict(task["vars"], _tracekit_sysdig_version="0.36.0",
                     _tracekit_sysdig_driver_gaps={"modern_ebpf": [], "kmod": kmod_gaps, "none": [], "auto": []})
    reason = _template(task["ansible.builtin.set_fact"]["_tracekit_sysdig_driver_reason"], variables)
    assert reason == expected
    assert notice(reason) == expected
