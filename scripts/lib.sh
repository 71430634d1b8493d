# shellcheck shell=sh
# Shell functions shared by install.sh and scripts/test.sh (POSIX sh, sourced).
# The sourcing script sets $me (its name, the prefix of every message).
me=${me:-tracekit}
# Where the distribution says what it is and where apt's sources are (the
# tests of these scripts point them into a temporary directory).
os_release=${TRACEKIT_OS_RELEASE:-/etc/os-release}
apt_etc=${TRACEKIT_APT_ETC:-/etc/apt}

say() { echo "$me: $*" >&2; }
die() { say "error: $*"; exit 1; }

# --------------------------------------------------------------------- locks

# "3.X" of the Python interpreter $1.
python_version() {
    "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'
}

# lock_file ROOT KIND VERSION: the committed lock (KIND runtime or test) for
# Python VERSION, or one line saying which Pythons have one and exit 1.
lock_file() {
    _lock=$1/locks/$2-py$3.txt
    if [ ! -f "$_lock" ]; then
        _have=""
        for _f in "$1/locks/$2"-py*.txt; do
            [ -f "$_f" ] || continue
            _f=${_f##*-py}
            _have="$_have ${_f%.txt}"
        done
        die "no dependency lock for Python $3 (locks/$2-py$3.txt; there are locks for:${_have:- none}); scripts/lock.sh $3 makes one"
    fi
    echo "$_lock"
}

# ----------------------------------------------------------------- heartbeat
# Long steps run with their output in a log; every $TRACEKIT_HEARTBEAT_INTERVAL
# seconds (default 10) a line says which step is still running, for how long,
# and the log's last line (pip's "Downloading ...", apt's "Unpacking ...").
# Off a terminal (CI, ssh without -t) nothing else would show that the script
# is alive. The printer is a background subshell, stopped by its PID when the
# step ends; the EXIT trap the sourcing script sets stops it too.

heartbeat_pid=""

heartbeat_start() {  # PHASE LOG
    _hb_phase=$1 _hb_log=$2 _hb_t0=$(date +%s)
    (
        set +e
        # Stopped with USR1, which the scripts never trap: a subshell inherits
        # the parent's trap handlers for a moment after the fork, and a TERM
        # (trapped by the scripts) arriving then is lost. Stopped while
        # sleeping, it takes the sleep ($!) along.
        trap 'kill $! 2>/dev/null; exit 0' USR1
        while :; do
            sleep "${TRACEKIT_HEARTBEAT_INTERVAL:-10}" &
            wait $!
            kill -0 $$ 2>/dev/null || exit 0  # the script is gone (SIGKILL): so are we
            _hb_last=$(tail -n 1 "$_hb_log" 2>/dev/null | tr -d '\r' | cut -c1-120)
            say "$_hb_phase: still running after $(($(date +%s) - _hb_t0)) s${_hb_last:+ (last: $_hb_last)}"
        done
    ) &
    heartbeat_pid=$!
}

heartbeat_stop() {
    [ -n "$heartbeat_pid" ] || return 0
    kill -USR1 "$heartbeat_pid" 2>/dev/null || true
    wait "$heartbeat_pid" 2>/dev/null || true
    heartbeat_pid=""
}

# run_step PHASE LOG CMD...: say PHASE, run CMD with its output appended to
# LOG (emptied first) under a heartbeat; CMD's exit status.
run_step() {
    _step_phase=$1 _step_log=$2
    shift 2
    say "$_step_phase"
    heartbeat_start "$_step_phase" "$_step_log"
    _step_rc=0
    "$@" >"$_step_log" 2>&1 </dev/null || _step_rc=$?
    heartbeat_stop
    return "$_step_rc"
}

# pip steps of both scripts, run as run_step PHASE LOG: the lock's wheels only,
# every file checked against its hashes; then the checkout itself without
# dependencies and without fetching a build backend (the lock has it), so
# nothing unpinned is installed.
pip_locked() {  # PHASE LOG VENV LOCK
    run_step "$1" "$2" "$3/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
        --require-hashes --only-binary :all: -r "$4"
}

pip_checkout() {  # PHASE LOG VENV PIP-ARGS... (the checkout, -e or a path)
    _pip_phase=$1 _pip_log=$2 _pip_venv=$3
    shift 3
    run_step "$_pip_phase" "$_pip_log" "$_pip_venv/bin/python" -m pip install --disable-pip-version-check \
        --progress-bar off --no-deps --no-build-isolation --no-index "$@"
}

# The last lines of LOG on stderr, indented (what a failed step said).
show_log_tail() {
    tail -n "${2:-25}" "$1" | sed 's/^/    /' >&2
}

# ----------------------------------------------------------------------- apt

os_field() {  # NAME: that field of os-release (ID, VERSION_ID, VERSION_CODENAME), empty if unset
    # shellcheck disable=SC1090 # a file of shell assignments, by definition
    (. "$os_release" 2>/dev/null && eval "printf '%s' \"\${$1:-}\"")
}

apt_has_candidate() {  # PKG: apt can install it from the configured sources
    LC_ALL=C apt-cache policy "$1" 2>/dev/null | grep -q '^ *Candidate: [^(]'
}

apt_install() {  # PKG...
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

# add_universe_deb822 CODENAME <FILE: the deb822 sources with "universe" added
# to the Components of every stanza whose Suites are CODENAME or CODENAME-*.
add_universe_deb822() {
    awk -v cn="$1" '
        function flush(   i) {
            for (i = 1; i <= n; i++) {
                if (ours && tolower(lines[i]) ~ /^components:/ && lines[i] !~ /[ \t]universe([ \t]|$)/)
                    sub(/[ \t]*$/, " universe", lines[i])
                print lines[i]
            }
            n = 0; ours = 0
        }
        /^[ \t]*$/ { flush(); print; next }
        {
            lines[++n] = $0
            if (tolower($0) ~ /^suites:/) {
                k = split(substr($0, index($0, ":") + 1), w, /[ \t]+/)
                for (j = 1; j <= k; j++) if (w[j] == cn || index(w[j], cn "-") == 1) ours = 1
            }
        }
        END { flush() }'
}

# add_universe_list CODENAME <FILE: the same for a one-line-style sources.list.
add_universe_list() {
    awk -v cn="$1" '
        /^[ \t]*deb(-src)?[ \t]/ {
            body = $0; comment = ""
            if (index(body, "#")) { comment = " " substr(body, index(body, "#")); body = substr(body, 1, index(body, "#") - 1) }
            plain = body; gsub(/\[[^]]*\]/, "", plain)
            k = split(plain, f, /[ \t]+/)
            if (f[1] == "") { for (j = 1; j < k; j++) f[j] = f[j + 1]; k-- }
            has = 0
            for (j = 4; j <= k; j++) if (f[j] == "universe") has = 1
            if ((f[3] == cn || index(f[3], cn "-") == 1) && !has) {
                sub(/[ \t]*$/, " universe", body)
                print body comment
                next
            }
        }
        { print }'
}

# enable_universe APT_ETC CODENAME LOG: add Ubuntu's universe component to the
# release's entries in APT_ETC/sources.list.d/ubuntu.sources (deb822, 24.04
# and later) and APT_ETC/sources.list (22.04), then apt-get update. Each file
# is replaced atomically (rename) after a copy is kept as FILE.tracekit.bak
# (apt ignores *.bak silently); if apt-get update fails the copies are put
# back. Returns 1 when nothing needed universe added or when update failed.
enable_universe() {
    _etc=$1 _cn=$2 _log=$3 _changed=""
    for _src in "$_etc/sources.list.d/ubuntu.sources" "$_etc/sources.list"; do
        [ -f "$_src" ] || continue
        cp -p "$_src" "$_src.tracekit.new"  # its mode and owner; the content follows
        case $_src in
            *.sources) add_universe_deb822 "$_cn" <"$_src" >"$_src.tracekit.new" ;;
            *) add_universe_list "$_cn" <"$_src" >"$_src.tracekit.new" ;;
        esac
        if cmp -s "$_src" "$_src.tracekit.new"; then
            rm -f "$_src.tracekit.new"
            continue
        fi
        cp -p "$_src" "$_src.tracekit.bak"
        mv -f "$_src.tracekit.new" "$_src"
        _changed="$_changed $_src"
    done
    if [ -z "$_changed" ]; then
        say "universe is already enabled for $_cn (or no Ubuntu sources for $_cn in $_etc)"
        return 1
    fi
    say "enabled Ubuntu's universe component in$_changed (previous file kept as *.tracekit.bak)"
    if ! run_step "updating apt's package lists (apt-get update)" "$_log" apt-get update -q; then
        for _src in $_changed; do mv -f "$_src.tracekit.bak" "$_src"; done
        say "apt-get update failed with universe added, so$_changed is back as it was:"
        show_log_tail "$_log"
        return 1
    fi
}

# ensure_universe_for PKG LOG: on Ubuntu, when apt has no candidate for PKG,
# enable universe (where Ubuntu keeps python3-venv, bpftrace, qemu, ...).
# Returns 1 when PKG is still not installable.
ensure_universe_for() {
    apt_has_candidate "$1" && return 0
    [ "$(os_field ID)" = ubuntu ] || return 1
    _cn=$(os_field VERSION_CODENAME)
    [ -n "$_cn" ] || return 1
    say "$1 is not in the configured apt sources; Ubuntu has it in universe"
    enable_universe "$apt_etc" "$_cn" "$2" || return 1
    apt_has_candidate "$1"
}
