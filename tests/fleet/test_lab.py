"""The fleet lab itself: Ansible reaches every host over SSH, each host runs its own
distribution, tracefs mounts inside a host without showing on this machine, one
host can be taken away mid-run, and `down` leaves nothing behind."""

from .conftest import Fleet, bring_up, mount_points, take_down


def test_ansible_reaches_every_host(fleet):
    results = fleet.ansible("all", "ansible.builtin.ping")
    assert {h: r.get("ping") for h, r in results.items()} == {h: "pong" for h in fleet.names}, results


def test_each_host_runs_its_own_distribution(fleet):
    results = fleet.ansible("all", "ansible.builtin.setup", "filter=ansible_distribution_release")
    releases = {h: r.get("ansible_facts", {}).get("ansible_distribution_release") for h, r in results.items()}
    assert releases == fleet.suites, results


def test_inventory_groups_hosts_by_release(fleet):
    for suite in set(fleet.suites.values()):
        results = fleet.ansible(suite, "ansible.builtin.ping")
        assert set(results) == {h for h, s in fleet.suites.items() if s == suite}


def test_tracefs_mounts_inside_a_host_only(fleet):
    before = mount_points()
    mounted = fleet.ansible("all", "ansible.builtin.command", "mount -t tracefs tracefs /sys/kernel/tracing")
    try:
        assert all(r.get("rc") == 0 for r in mounted.values()), mounted
        assert mount_points() == before, "a host's mount showed up on this machine"
        seen = fleet.ansible("all", "ansible.builtin.command", "findmnt -n -o FSTYPE /sys/kernel/tracing")
        assert {h: r.get("stdout") for h, r in seen.items()} == {h: "tracefs" for h in fleet.names}, seen
    finally:
        unmounted = fleet.ansible("all", "ansible.builtin.command", "umount /sys/kernel/tracing")
    assert all(r.get("rc") == 0 for r in unmounted.values()), unmounted


def test_a_stopped_host_is_unreachable_and_the_others_still_answer(fleet):
    victim = "noble2"
    pids = fleet.pids[victim]
    fleet.stop(victim)
    try:
        results = fleet.ansible("all", "ansible.builtin.ping")
        assert results[victim].get("unreachable") is True, results[victim]
        assert {h: r.get("ping") for h, r in results.items() if h != victim} == \
            {h: "pong" for h in fleet.names if h != victim}, results
        for pid in pids:
            assert not _running(pid), f"{victim}: PID {pid} survived `down --host`"
    finally:
        fleet.start(victim)  # later tests get the whole fleet back
    assert fleet.ansible(victim, "ansible.builtin.ping")[victim].get("ping") == "pong"


def test_down_leaves_nothing_and_is_idempotent(fleet, tmp_path):
    """A one-host fleet of its own, over the rootfs the session fleet built (the
    session fleet is checked the same way at teardown)."""
    before = mount_points()
    one = Fleet(tmp_path / "state", {"solo": "noble"})
    try:
        bring_up(one)
        assert one.ansible("all", "ansible.builtin.ping")["solo"].get("ping") == "pong"
    finally:
        assert take_down(one) == []
    assert take_down(one) == [], "a second down must be a no-op"
    assert mount_points() == before


def _running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
