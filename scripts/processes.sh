# Helpers for scripts that start processes (sourced).

# Waits until `url` answers, while process `pid` lives; shows `log` if it died.
wait_for() { # url pid log
  for _ in $(seq 1 150); do
    curl -fsS "$1" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3"; return 1; }
    sleep 0.2
  done
  echo "timed out waiting for $1"; return 1
}

# Removes a run's scratch folder when the run passed; keeps it, and says where, when it failed.
tidy_scratch() { # dir status
  if [ "$2" = 0 ]; then
    rm -rf "$1"
  else
    echo "logs of the failed run kept in $1" >&2
  fi
}
