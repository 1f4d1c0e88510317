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
# (attack seed 3), benign-test, held-out-45 (attack seeds 4-5); default: all, in that order
# (seeds 1-3 and the benign runs first, so seeds 4-5 can wait for lock time).
# The evaluation, offline afterwards:
#
#   provarmor eval DIR/attack/*-s[12345] DIR/test/b30[1-5] --train DIR/train/b10[1-6] \
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
train=(b101:101:90 b102:102:90 b103:103:90 b104:104:90 b105:105:90 b106:106:90)
validation=(b201:201:120 b202:202:120)
test_runs=(b301:301:100 b302:302:100 b303:303:100 b304:304:100 b305:305:100)

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
[[ ${#phases[@]} -gt 0 ]] || phases=(dev benign-fit held-out-3 benign-test held-out-45)
for phase in "${phases[@]}"; do
    case $phase in
    dev) attacks 1 2 ;;
    benign-fit) benign train "${train[@]}" && benign val "${validation[@]}" ;;
    held-out-3) attacks 3 ;;
    benign-test) benign test "${test_runs[@]}" ;;
    held-out-45) attacks 4 5 ;;
    *)
        echo "unknown phase $phase (dev, benign-fit, held-out-3, benign-test, held-out-45)" >&2
        exit 2
        ;;
    esac
done
