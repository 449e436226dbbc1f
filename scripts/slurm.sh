#!/usr/bin/env bash
# A single-node Slurm cluster on this host, for the Slurm launch tests (tests/launch/test_slurm_*).
#
# Installs Debian's slurm-wlm and munge when missing, writes /etc/slurm/slurm.conf and cgroup.conf
# for THIS host (its short name, CPUs from nproc, memory from /proc/meminfo less headroom, one
# partition "debug"), creates the munge key, starts munged, slurmctld and slurmd in the background
# and waits until `sinfo` shows the node usable. Safe to run again: daemons that answer are left
# alone (restarted only when the configuration changed), a drained/down node is resumed.
#
# Sandbox-friendly choices: no cgroups (proctrack/linuxproc, task/none), no accounting daemon (so
# `sacct` has nothing; maru's Slurm backend reads `scontrol show job` instead), SlurmUser=root.
# Fast requeue for the preemption test: AuthInfo=cred_expire (how long a requeued job waits before
# it may start again; 120 s by default) and a short scheduling interval.
#
# Environment: MARU_SLURM_WAIT_S (default 90) bounds the wait for the node; MARU_SLURM_CRED_EXPIRE
# (default 10) and MARU_SLURM_SCHED_INTERVAL (default 2) tune the requeue delay.
set -euo pipefail

WAIT_S=${MARU_SLURM_WAIT_S:-90}
CRED_EXPIRE=${MARU_SLURM_CRED_EXPIRE:-10}
SCHED_INTERVAL=${MARU_SLURM_SCHED_INTERVAL:-2}
CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid

say() { echo "slurm.sh: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
    local missing=() pkg
    for pkg in slurm-wlm munge; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
}

host=$(hostname -s)

write_config() {
    local cpus mem_kb mem_mb headroom tmp
    cpus=$(nproc)
    mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    mem_mb=$((mem_kb / 1024))
    headroom=$((mem_mb / 10 > 512 ? mem_mb / 10 : 512))
    mem_mb=$((mem_mb - headroom > 256 ? mem_mb - headroom : 256))
    as_root mkdir -p "$CONF_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd
    tmp=$(mktemp)
    cat >"$tmp" <<EOF
# Written by maru's scripts/slurm.sh for a single-node test cluster on $host.
ClusterName=maru
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=$CRED_EXPIRE
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
PropagateResourceLimits=NONE
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=$SCHED_INTERVAL,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=3600
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    changed=0
    if ! cmp -s "$tmp" "$CONF_DIR/slurm.conf"; then
        as_root install -m 0644 "$tmp" "$CONF_DIR/slurm.conf"
        changed=1
    fi
    printf 'CgroupPlugin=autodetect\nIgnoreSystemd=yes\n' >"$tmp"
    cmp -s "$tmp" "$CONF_DIR/cgroup.conf" || as_root install -m 0644 "$tmp" "$CONF_DIR/cgroup.conf"
    rm -f "$tmp"
}

alive() { [ -s "$1" ] && as_root kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
    if [ ! -s /etc/munge/munge.key ]; then
        say "creating the munge key"
        as_root dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    as_root mkdir -p /run/munge /var/log/munge /var/lib/munge
    as_root chown munge:munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
    as_root chmod 0400 /etc/munge/munge.key
    as_root chmod 0755 /run/munge
    as_root runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    say "munged did not start"; tail -n 20 /var/log/munge/munged.log >&2 || true
    return 1
}

stop_daemon() {  # stop the daemon whose pid file is $1 (only that pid), wait for it to go
    alive "$1" || return 0
    as_root kill "$(cat "$1")" 2>/dev/null || true
    for _ in $(seq 50); do alive "$1" || return 0; sleep 0.2; done
    say "the daemon in $1 did not stop"; return 1
}

start_daemons() {
    if [ "$changed" = 1 ]; then  # a new configuration: restart what runs with the old one
        stop_daemon "$SLURMD_PID"
        stop_daemon "$CTLD_PID"
    fi
    if ! alive "$CTLD_PID"; then
        say "starting slurmctld"
        as_root /usr/sbin/slurmctld
    fi
    for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q "is UP" && break; sleep 0.3; done
    if ! alive "$SLURMD_PID"; then
        say "starting slurmd"
        as_root /usr/sbin/slurmd
    fi
}

diagnose() {
    say "the node did not become usable within ${WAIT_S}s; diagnostics follow"
    { sinfo -N -l; scontrol show node "$host"; scontrol ping; } >&2 2>&1 || true
    say "--- slurmctld.log (tail)"; tail -n 40 "$LOG_DIR/slurmctld.log" >&2 2>/dev/null || true
    say "--- slurmd.log (tail)"; tail -n 40 "$LOG_DIR/slurmd.log" >&2 2>/dev/null || true
}

wait_for_node() {
    local state deadline=$((SECONDS + WAIT_S)) resumed=0
    while [ $SECONDS -lt "$deadline" ]; do
        state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -n 1 || true)
        case "$state" in
            idle | mixed | allocated | completing) echo "slurm.sh: node $host is $state"; return 0 ;;
            *drain* | *down* | *fail*)
                if [ $resumed -eq 0 ]; then  # left over from an earlier start: put it back
                    scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
                    resumed=1
                fi
                ;;
        esac
        sleep 1
    done
    diagnose
    return 1
}

install_packages
write_config
start_munge
start_daemons
wait_for_node
