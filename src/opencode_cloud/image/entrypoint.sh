#!/bin/sh
# Container entrypoint (PID 2 under tini). Runs as root only to set the login password for
# Cockpit and to start Cockpit; opencode itself runs as the unprivileged user opencoder.
set -eu

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

case "${1:-serve}" in
  probe)
    probe "${2:-4}"
    exit $?
    ;;
  serve)
    ;;
  *)
    exec "$@"
    ;;
esac

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
exec setpriv --reuid=opencoder --regid=opencoder --init-groups \
  env HOME=/home/opencoder USER=opencoder SHELL=/bin/bash \
  opencode web --hostname 0.0.0.0 --port 3000
