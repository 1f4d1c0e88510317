#!/usr/bin/env bash
# Records the lab evaluation protocol's datasets (issue 6 protocol, re-run for issue 11):
#
#   attack/SCENARIO-sN  the 8 attack scenarios x seeds, each with --background all
#   train/bNNN          benign mixes the anomaly model trains on
#   val/bNNN            benign mixes its threshold and the incident rule are calibrated on
#   test/bNNN           benign test mixes
#
# Every `provarmor lab run` holds the shared live lock for that run only, so other users
# of the lock interleave. A dataset already recorded (its dataset.json exists) is kept; a
# partial one (an interrupted run) is recorded again. Run as root from the checkout:
#
#   scripts/lab/record_protocol.sh [--out DIR] [PHASE...]
#
# PHASE is one of dev (attack seeds 1-2), benign-fit (train + validation), held-out-3
# (attack seed 3), held-out-45 (attack seeds 4-5), benign-test, or one attack run
# SCENARIO-sSEED; default: all five phases, in that order (what the attack-run figures need
# first; the benign test runs last).
# The evaluation, offline afterwards:
#
#   provarmor eval DIR/attack/*-s[12345] DIR/test/b30[1-3] --train DIR/train/b10[1-4] \
#     --validation DIR/val/b20[12] --seeds 1,2,3,4,5 --jobs 1 --json lab-protocol.json
set -euo pipefail

out=/var/tmp/provarmor-labeval
if [[ ${1:-} == --out ]]; then
    out=$2
    shift 2
fi
lock=/tmp/provarmor-live.lock
here=$(cd "$(dirname "$0")/../.." && pwd)
provarmor=${PROVARMOR:-$here/.venv/bin/provarmor}
sensor=${SENSOR:-ebpf}

scenarios=(tc-webshell-implant tc-browser-dropper tc-supply-chain nodlink-ubuntu
    credential-theft-lateral persistence-sweep log-tampering staging-exfil)

# Benign mixes: name, seed, seconds of work.
train=(b101:101:75 b102:102:75 b103:103:75 b104:104:75)
validation=(b201:201:90 b202:202:90)
test_runs=(b301:301:60 b302:302:60 b303:303:60)

record() { # DIR ARGS... : one lab run under its own hold of the live lock
    local dir=$1
    shift
    if [[ -f $dir/dataset.json ]]; then
        echo "kept     $dir"
        return
    fi
    rm -rf "$dir"
    mkdir -p "$(dirname "$dir")"
    local started=$SECONDS
    # DIR.runner: the pid of the `lab run` process (the parent of every process the lab
    # starts while recording): scripts/lab/lab_tree.py keeps that tree's events.
    flock "$lock" bash -c 'echo $$ >"$0.runner" && exec "$@"' "$dir" \
        "$provarmor" lab run "$@" --sensor "$sensor" --out "$dir" >"$dir.log" 2>&1 || {
        echo "FAILED   $dir (see $dir.log)" >&2
        return 1
    }
    echo "recorded $dir in $((SECONDS - started)) s (waiting for the lock included)"
}

attacks() { # SEED...
    local seed scenario
    for seed in "$@"; do
        for scenario in "${scenarios[@]}"; do
            record "$out/attack/$scenario-s$seed" "$scenario" --seed "$seed" --background all
        done
    done
}

benign() { # ROLE SPEC...
    local role=$1 spec name seed seconds
    shift
    for spec in "$@"; do
        IFS=: read -r name seed seconds <<<"$spec"
        record "$out/$role/$name" benign --seed "$seed" --duration "$seconds"
    done
}

phases=("$@")
[[ ${#phases[@]} -gt 0 ]] || phases=(dev benign-fit held-out-3 held-out-45 benign-test)
for phase in "${phases[@]}"; do
    case $phase in
    dev) attacks 1 2 ;;
    benign-fit) benign train "${train[@]}" && benign val "${validation[@]}" ;;
    held-out-3) attacks 3 ;;
    benign-test) benign test "${test_runs[@]}" ;;
    held-out-45) attacks 4 5 ;;
    *-s[0-9]*) # one attack run, e.g. nodlink-ubuntu-s2 (a first check of new lab code)
        record "$out/attack/$phase" "${phase%-s*}" --seed "${phase##*-s}" --background all
        ;;
    *)
        echo "unknown phase $phase (dev, benign-fit, held-out-3, benign-test, held-out-45," \
            "SCENARIO-sSEED)" >&2
        exit 2
        ;;
    esac
done
