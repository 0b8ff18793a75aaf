#!/bin/sh
# Protocol OMNI Phoenix: turn a restart request into exactly one `docker compose up -d
# --force-recreate` of the stack's projects, after a grace period, within a cooldown and a maximum
# rate, logging every decision. Run by omni-phoenix.service when omni-phoenix.path sees
# $PHOENIX_STATE_DIR/restart-requested (docs/phase5.md).
#
# Why it cannot loop: the request file is consumed before anything else happens, so the path unit
# sees no file when this exits; the restart is recorded before the recreate runs, so even a failing
# recreate counts against the cooldown and the hourly maximum. Why it cannot lock the host: a
# non-blocking lock (a second run exits at once), and every docker call runs under `timeout`.
set -u
state=${PHOENIX_STATE_DIR:?set PHOENIX_STATE_DIR}
logdir=${PHOENIX_LOG_DIR:?set PHOENIX_LOG_DIR}
grace=${PHOENIX_GRACE_S:-10}
cooldown=${PHOENIX_COOLDOWN_S:-300}
max_per_hour=${PHOENIX_MAX_PER_HOUR:-3}
timeout_s=${PHOENIX_TIMEOUT_S:-600}
projects=${PHOENIX_PROJECTS:?set PHOENIX_PROJECTS to "project=compose-file ..."}

request=$state/restart-requested
history=$logdir/restart-history
mkdir -p "$logdir"

log() {
    printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >>"$logdir/phoenix.log"
    printf 'phoenix: %s\n' "$*"
}

refuse() {
    log "refused: $1"
    printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" >"$state/restart-refused"
    exit 0
}

exec 9>"$logdir/lock"
if ! flock -n 9; then
    log "another restart is in progress: this run leaves the request to it"
    exit 0
fi
[ -e "$request" ] || exit 0

reason=$(head -c 200 "$request" 2>/dev/null | tr -d '\r\n')
rm -f "$request"
log "restart requested${reason:+ ($reason)}; waiting ${grace}s for the requester to settle"
sleep "$grace"
rm -f "$request"  # requests made during the grace period join this one

now=$(date +%s)
last=$(tail -n 1 "$history" 2>/dev/null | cut -d' ' -f1)
if [ -n "$last" ] && [ $((now - last)) -lt "$cooldown" ]; then
    refuse "cooldown: the last restart was $((now - last))s ago, the cooldown is ${cooldown}s"
fi
recent=$(awk -v since=$((now - 3600)) '$1 >= since' "$history" 2>/dev/null | wc -l)
if [ "$recent" -ge "$max_per_hour" ]; then
    refuse "rate: $recent restarts in the last hour, the maximum is $max_per_hour"
fi
echo "$now${reason:+ $reason}" >>"$history"

status=0
for entry in $projects; do
    project=${entry%%=*}
    file=${entry#*=}
    if timeout "$timeout_s" docker compose -p "$project" -f "$file" up -d --force-recreate \
        >>"$logdir/phoenix.log" 2>&1; then
        log "recreated $project"
    else
        status=$?
        log "FAILED to recreate $project (exit $status); see the lines above"
    fi
done
date -u +%Y-%m-%dT%H:%M:%SZ >"$state/last-restart"
log "restart finished (exit $status)"
exit "$status"
