#!/usr/bin/env bash
# The whole pytest suite as two pytest processes at once, each with its own embedded broker and
# PostgreSQL: the tiers that start whole processes (reliability, e2e, browser) beside the rest.
# Most of the suite waits on the broker and the database rather than on a core, so on 2 cores the
# two overlap: about 13 minutes instead of 20 for one process. Every port is taken free
# (`free_port`), so the two never collide. The side's output is shown once both have ended; the
# suite fails when either does. Arguments go to both (`make test PYTEST_ARGS="-x"`).
set -uo pipefail
BIN="${BIN:-.venv/bin}"
SIDE=(tests/reliability tests/e2e tests/browser)
side_log="$(mktemp)"
trap 'rm -f "$side_log"' EXIT
"$BIN/pytest" "${SIDE[@]}" "$@" > "$side_log" 2>&1 &
side_pid=$!
"$BIN/pytest" tests $(printf -- '--ignore=%s ' "${SIDE[@]}") "$@"
main_rc=$?
wait "$side_pid"
side_rc=$?
echo "::: pytest ${SIDE[*]} (run beside the rest): exit ${side_rc}"
cat "$side_log"
echo "::: pytest tests (but ${SIDE[*]}): exit ${main_rc}; ${SIDE[*]}: exit ${side_rc}"
if [ "$main_rc" -ne 0 ] || [ "$side_rc" -ne 0 ]; then
    exit 1
fi
