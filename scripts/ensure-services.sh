#!/usr/bin/env bash
# Make sure the services the tests use are up: start any that are installed but stopped,
# with this machine's usual commands. Prints one line per service; never fails the build
# by itself (the tests decide, under ODDSTREAM_REQUIRE_SERVICES, whether a missing
# service is an error).
set -u

up() { # host port
  python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(0.5)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(1)
PY
}

wait_up() { # name host port
  for _ in $(seq 1 40); do up "$2" "$3" && { echo "  $1: up"; return 0; }; sleep 0.25; done
  echo "  $1: still down after start attempt"
}

check() { # name host port start-command...
  local name=$1 host=$2 port=$3; shift 3
  if up "$host" "$port"; then echo "  $name: up"; return; fi
  if ! command -v "$1" >/dev/null 2>&1; then echo "  $name: down (not installed)"; return; fi
  echo "  $name: down, starting"
  "$@" >/dev/null 2>&1 || true
  wait_up "$name" "$host" "$port"
}

echo "services:"
check PostgreSQL 127.0.0.1 5432 bash -c 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | head -n1) main start'
check Redis 127.0.0.1 6379 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
check NATS 127.0.0.1 4222 start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
check MariaDB 127.0.0.1 3306 start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
exit 0
