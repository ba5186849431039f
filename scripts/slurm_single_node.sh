#!/usr/bin/env bash
# Start a single-node Slurm on this machine (Debian's slurm-wlm and munge), for the test of
# `gankit sweep --slurm`: munged, slurmctld and slurmd on one node named after the host,
# with every core and all but 1 GiB of memory, one partition `gankit`, and state under
# /var/lib/slurm-gankit. Run as root. `scripts/slurm_single_node.sh stop` stops it again.
#
#     apt-get install -y slurm-wlm munge
#     scripts/slurm_single_node.sh && sinfo
set -euo pipefail
state=/var/lib/slurm-gankit
if [ "${1:-}" = stop ]; then
  pkill -x slurmd || true
  pkill -x slurmctld || true
  pkill -x munged || true
  exit 0
fi
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
mkdir -p "$state/ctld" "$state/d" /var/log/slurm /run/munge /etc/slurm
chown slurm:slurm "$state/ctld" /var/log/slurm
chown munge:munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=gankit
SlurmctldHost=$host
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdTimeout=300
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=gankit Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld
pgrep -x slurmd >/dev/null || /usr/sbin/slurmd
for _ in $(seq 30); do
  if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    sinfo
    exit 0
  fi
  sleep 1
done
echo "slurm did not come up; see /var/log/slurm/" >&2
sinfo >&2 || true
exit 1
