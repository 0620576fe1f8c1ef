#!/bin/sh
# Container entrypoint (PID 2 under tini). Runs as root only to set the login password for
# Cockpit, to start Cockpit and to watch opencode; opencode itself runs as the unprivileged
# user opencoder.
#
# The watchdog (OCC_WATCHDOG=1): Docker's restart policy restarts a process that exits,
# but a wedged opencode keeps its port open and answers nothing. So this script keeps
# opencode as its child and, every OCC_WATCHDOG_INTERVAL seconds, restarts it when it
# exited, when the kernel's OOM killer struck in the container, when its memory passes
# OCC_WATCHDOG_MEMORY_PERCENT of the limit, or when OCC_WATCHDOG_FAILURES health checks in
# a row (each OCC_WATCHDOG_TIMEOUT seconds at most) failed. Each restart is a line
# "EPOCH REASON" in $RESTARTS; `probe` reports them, with memory and CPU from the cgroup
# files, on a second line that Docker's health log keeps and occ status reads.
set -eu

RESTARTS=/var/lib/occ/restarts  # in the container's own layer: kept across Docker restarts

USERNAME="${OPENCODE_SERVER_USERNAME:-opencode}"

curl_quoted() {
  # $1 as a double-quoted value of a curl config file: backslashes and quotes escaped.
  # Only shell builtins, so the value never becomes an argument of another process.
  rest=$1 quoted=
  while :; do
    case $rest in
      *[\\\"]*) ;;
      *) break ;;
    esac
    head=${rest%%[\\\"]*}
    tail=${rest#"$head"}
    char=${tail%"${tail#?}"}
    quoted="$quoted$head\\$char"
    rest=${tail#?}
  done
  printf '"%s%s"' "$quoted" "$rest"
}

probe() {
  # The health endpoint, with the same basic auth a browser uses. $1: seconds to wait.
  # The credentials go to curl as a config file on its standard input (-K -), written by
  # the shell's builtin printf: never in a process's arguments, which every user of the
  # Docker host can read in /proc/*/cmdline.
  if [ -n "${OPENCODE_SERVER_PASSWORD:-}" ]; then
    printf 'user = %s\n' "$(curl_quoted "$USERNAME:$OPENCODE_SERVER_PASSWORD")" \
      | curl -fsS --max-time "$1" -K - http://127.0.0.1:3000/global/health
  else
    curl -fsS --max-time "$1" http://127.0.0.1:3000/global/health
  fi
}

cgroup_value() {
  # The number after KEY $2 in FILE $1 (memory.stat, memory.events, ...), else nothing.
  [ -r "$1" ] || return 0
  while read -r key value; do
    if [ "$key" = "$2" ]; then echo "$value"; return 0; fi
  done < "$1"
}

resources() {
  # "USED LIMIT CPU_NS OOM_KILLS" of this container (cgroup v2, else v1). USED leaves out
  # the page cache, as `docker stats` does; LIMIT 0 means none.
  used=0 limit=0 cache=0 cpu=0 ooms=0
  if [ -r /sys/fs/cgroup/memory.current ]; then
    read -r used < /sys/fs/cgroup/memory.current
    read -r limit < /sys/fs/cgroup/memory.max || limit=0
    cache=$(cgroup_value /sys/fs/cgroup/memory.stat inactive_file)
    usec=$(cgroup_value /sys/fs/cgroup/cpu.stat usage_usec)
    cpu=$(( ${usec:-0} * 1000 ))
    ooms=$(cgroup_value /sys/fs/cgroup/memory.events oom_kill)
  elif [ -r /sys/fs/cgroup/memory/memory.usage_in_bytes ]; then
    m=/sys/fs/cgroup/memory
    read -r used < $m/memory.usage_in_bytes
    read -r limit < $m/memory.limit_in_bytes || limit=0
    cache=$(cgroup_value $m/memory.stat total_inactive_file)
    if [ -r /sys/fs/cgroup/cpuacct/cpuacct.usage ]; then
      read -r cpu < /sys/fs/cgroup/cpuacct/cpuacct.usage
    fi
    ooms=$(cgroup_value $m/memory.oom_control oom_kill)
  fi
  used=$(( used - ${cache:-0} ))
  [ "$used" -ge 0 ] || used=0
  case $limit in max|"") limit=0 ;; esac
  [ "${#limit}" -lt 19 ] || limit=0  # the kernel's "no limit" is a huge number
  echo "$used $limit ${cpu:-0} ${ooms:-0}"
}

report() {
  # One line for occ status: the watchdog's restarts and the container's resource use.
  count=0 last_at=0 last_reason=
  if [ -r "$RESTARTS" ]; then
    while read -r at reason; do
      count=$((count + 1)) last_at=$at last_reason=$reason
    done < "$RESTARTS"
  fi
  set -- $(resources)
  printf 'occ-watchdog {"restarts": %s, "last_reason": "%s", "last_at": %s, ' \
    "$count" "$last_reason" "$last_at"
  printf '"memory_used": %s, "memory_limit": %s, "cpu_ns": %s}\n' "$1" "$2" "$3"
}

case "${1:-serve}" in
  probe)
    status=0
    probe "${2:-4}" || status=$?
    echo
    report
    exit $status
    ;;
  serve)
    ;;
  *)
    exec "$@"
    ;;
esac

# -- the owner of mounted folders -----------------------------------------------------------
# opencoder takes the uid and gid of the folder OCC_OWNER_FROM (the first read-write bind
# mount), so what opencode writes there belongs to that folder's owner on the host. A
# folder owned by root gives none: opencoder keeps the ids it has. opencoder's own files
# follow (its home in this container's layer, the named volumes); the mounted folders,
# OCC_MOUNT_TARGETS (':'-separated: occ refuses ':' in paths), are never touched.
# Not usermod: it re-owns the home's files recursively, host folders mounted there too.

reown() {
  # chown -h $1 everything under $2 (not crossing file systems with $3 = -xdev), except
  # the mounted folders (find -path patterns, so their * ? [ \ are escaped).
  owner=$1 folder=$2 xdev=${3:-}
  set --
  set -f
  old_ifs=$IFS IFS=:
  for target in ${OCC_MOUNT_TARGETS:-}; do
    set -- "$@" -o -path "$(printf '%s\n' "$target" | sed 's/[][*?\\]/\\&/g')"
  done
  IFS=$old_ifs
  set +f
  # The folder itself last: its owner tells the next start that all of it is done.
  find "$folder" -mindepth 1 $xdev \( -path /proc/occ-none "$@" \) -prune \
    -o -exec chown -h "$owner" {} + && chown -h "$owner" "$folder" \
    || echo "occ: could not give every file in $folder to $owner" >&2
}

adopt_mount_owner() {
  uid=$(id -u opencoder) gid=$(id -g opencoder)
  want="$uid:$gid"
  from=${OCC_OWNER_FROM:-}
  if [ -n "$from" ] && [ -d "$from" ]; then
    owner=$(stat -c '%u:%g' -- "$from")
    case $owner in
      0:*) echo "occ: $from belongs to root on the host: opencode keeps uid $uid" >&2 ;;
      *) want=$owner ;;
    esac
  fi
  # The volumes keep their files across containers: re-owned only when they are not yet
  # (first, since the walk of the home below changes their top folders too).
  for volume in /home/opencoder/workspace /home/opencoder/.local/share/opencode \
                /home/opencoder/.config/opencode /home/opencoder/.local/state/opencode; do
    if [ -d "$volume" ] && [ "$(stat -c '%u:%g' -- "$volume")" != "$want" ]; then
      reown "$want" "$volume"
    fi
  done
  if [ "$want" != "$uid:$gid" ]; then
    sed -i "s/^opencoder:\([^:]*\):$uid:$gid:/opencoder:\1:$want:/" /etc/passwd
    sed -i "s/^opencoder:\([^:]*\):$gid:/opencoder:\1:${want#*:}:/" /etc/group
    reown "$want" /home/opencoder -xdev  # this container's own layer
  fi
}

adopt_mount_owner

if [ "${OCC_COCKPIT_ENABLED:-0}" = "1" ]; then
  if [ -x /usr/lib/cockpit/cockpit-ws ]; then
    if [ -n "${OPENCODE_SERVER_PASSWORD:-}" ]; then
      # Cockpit logs in through PAM: the system user gets the same password as the web UI.
      # printf is a builtin, so only the pipe carries the password, no command line.
      printf 'opencoder:%s\n' "$OPENCODE_SERVER_PASSWORD" | chpasswd
    fi
    /usr/lib/cockpit/cockpit-ws --no-tls --port 9090 &
  else
    echo "occ: Cockpit is enabled but this image has none (it was built without" \
      "cockpit_enabled); starting opencode without it" >&2
  fi
fi

cd /home/opencoder/workspace
# Two words for the port: opencode treats it as explicit only as "--port 3000".
set -- setpriv --reuid=opencoder --regid=opencoder --init-groups \
  env HOME=/home/opencoder USER=opencoder SHELL=/bin/bash \
  opencode web --hostname 0.0.0.0 --port 3000
if [ "${OCC_WATCHDOG:-0}" != "1" ]; then
  exec "$@"
fi

# -- the watchdog ---------------------------------------------------------------------------
interval=${OCC_WATCHDOG_INTERVAL:-10}
failures_allowed=${OCC_WATCHDOG_FAILURES:-3}
probe_timeout=${OCC_WATCHDOG_TIMEOUT:-5}
memory_percent=${OCC_WATCHDOG_MEMORY_PERCENT:-90}
# Failed checks count once opencode has answered, or at the latest this long after it
# started (it is up in a few seconds; one that never answers is wedged too).
grace=30
mkdir -p "${RESTARTS%/*}"

record() {
  echo "$(date +%s) $1" >> "$RESTARTS"
  echo "occ watchdog: restarting opencode: $1" >&2
}

start() {
  "$@" &
  pid=$! started=$(date +%s) answered=0 failures=0
  set -- $(resources)
  ooms_seen=$4
}

stop_child() {
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stopping=0
trap 'stopping=1; kill -TERM "$pid" 2>/dev/null || true' TERM INT
start "$@"
while :; do
  sleep "$interval" &
  wait $! 2>/dev/null || true
  if [ "$stopping" = 1 ]; then
    status=0
    wait "$pid" 2>/dev/null || status=$?
    exit "$status"
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    status=0
    wait "$pid" 2>/dev/null || status=$?
    set -- $(resources)
    if [ "$4" -gt "$ooms_seen" ]; then record "OOM-killed"; else record "exited with code $status"; fi
    set -- setpriv --reuid=opencoder --regid=opencoder --init-groups \
      env HOME=/home/opencoder USER=opencoder SHELL=/bin/bash \
      opencode web --hostname 0.0.0.0 --port 3000
    start "$@"
    continue
  fi
  set -- $(resources)
  reason=
  if [ "$4" -gt "$ooms_seen" ]; then
    reason="OOM-killed"
  elif [ "$2" -gt 0 ] && [ $(( $1 * 100 )) -gt $(( $2 * memory_percent )) ]; then
    reason="memory $(( $1 / 1048576 )) MiB of $(( $2 / 1048576 )) MiB"
  elif probe "$probe_timeout" >/dev/null 2>&1; then
    answered=1 failures=0
  elif [ "$answered" = 1 ] || [ $(( $(date +%s) - started )) -gt "$grace" ]; then
    failures=$((failures + 1))
    [ "$failures" -lt "$failures_allowed" ] || reason="unhealthy ($failures health checks failed)"
  fi
  if [ -n "$reason" ]; then
    record "$reason"
    stop_child
    set -- setpriv --reuid=opencoder --regid=opencoder --init-groups \
      env HOME=/home/opencoder USER=opencoder SHELL=/bin/bash \
      opencode web --hostname 0.0.0.0 --port 3000
    start "$@"
  fi
done
