#!/bin/sh
# Measures how fast `steppy validate` reads and checks large plans, in JSON
# and YAML: 1,000 stages x 10 steps (10,000 steps of mixed types), and one
# stage of 10,000 Wait steps. Prints wall time (best of 5), plan size,
# throughput and peak resident memory.
#
#   bench/validate.sh [path/to/steppy]
set -eu
cd "$(dirname "$0")/.."
STEPPY=${1:-build/steppy}
[ -x "$STEPPY" ] || make -s build/steppy
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

/usr/bin/python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
def step(i, j):
    k = (i * 10 + j) % 5
    name = "step %d" % j
    if k == 0:
        return {"type": "CodeBuild", "name": name, "codeBuildName": "proj-%d" % i,
                "sourceVersion": {"type": "branch", "value": "release/${var.V}"},
                "environmentVariableOverrides": [{"name": "A", "value": "1"}],
                "roleArn": "arn:aws:iam::123456789012:role/deploy", "region": "eu-west-1"}
    if k == 1:
        return {"type": "Exec", "name": name, "command": ["echo", "${var.V}"], "env": {"X": "y"}}
    if k == 2:
        return {"type": "Wait", "name": name, "seconds": 0}
    if k == 3:
        return {"type": "Notify", "name": name, "message": "stage %d of ${var.V}" % i}
    return {"type": "Lambda", "name": name, "functionName": "fn", "payload": {"i": i, "j": j}}
wide = {"variables": {"V": {"default": "1.0"}},
        "stages": [{"name": "stage %d" % i, "steps": [step(i, j) for j in range(10)]}
                   for i in range(1000)]}
flat = {"stages": [{"name": "all", "steps": [{"type": "Wait", "name": "w%d" % j, "seconds": 0}
                                             for j in range(10000)]}]}
for name, plan in (("1000x10", wide), ("1x10000", flat)):
    json.dump(plan, open("%s/%s.json" % (d, name), "w"), indent=2)
    # YAML: flow style is valid YAML, block style is what people write.
    def y(v, ind):
        pad = "  " * ind
        if isinstance(v, dict):
            return "".join("\n%s%s: %s" % (pad, k, y(x, ind + 1)) if isinstance(x, (dict, list)) and x
                           else "\n%s%s: %s" % (pad, k, json.dumps(x)) for k, x in v.items())
        if isinstance(v, list):
            out = ""
            for x in v:
                body = y(x, ind + 1)
                if isinstance(x, dict):
                    out += "\n%s- %s" % (pad, body.lstrip("\n").lstrip())
                else:
                    out += "\n%s- %s" % (pad, json.dumps(x))
            return out
        return json.dumps(v)
    open("%s/%s.yaml" % (d, name), "w").write(y(plan, 0).lstrip("\n") + "\n")
PY

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "binary:  $STEPPY"
printf '%-14s %10s %10s %10s %10s\n' plan size best MB/s maxRSS
for f in "$tmp"/1000x10.json "$tmp"/1000x10.yaml "$tmp"/1x10000.json "$tmp"/1x10000.yaml; do
    "$STEPPY" validate -q "$f" || { echo "bench plan invalid: $f" >&2; exit 1; }
    best=""
    for i in 1 2 3 4 5; do
        t0=$(date +%s%N)
        "$STEPPY" validate -q "$f"
        t1=$(date +%s%N)
        t=$(( (t1 - t0) / 1000 ))
        if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
    done
    size=$(stat -c %s "$f")
    rss=$(/usr/bin/python3 -c '
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$STEPPY" validate -q "$f")
    awk -v n="$(basename "$f")" -v s="$size" -v t="$best" -v r="$rss" 'BEGIN {
        printf "%-14s %8.1fKB %8.1fms %10.1f %8.1fMB\n", n, s / 1024, t / 1000, s / t, r / 1024 }'
done

# Inputs shaped to make naive checks quadratic: duplicate detection, unknown
# keys, YAML anchors. Each must stay near linear.
/usr/bin/python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
n = 200000
keys = {"stages": [{"name": "s", "steps": [{"type": "Wait", "name": "w", "seconds": 1}]}]}
keys.update({"unknown%d" % i: i for i in range(n)})
json.dump(keys, open(d + "/adv-keys.json", "w"))
dup = {"stages": [{"name": "s", "steps": [{"type": "Wait", "name": "same", "seconds": 0}] * 50000}]}
json.dump(dup, open(d + "/adv-dupnames.json", "w"))
lines = ["a%d: &a%d {x: 1}" % (i, i) for i in range(50000)]
lines += ["b%d: *a%d" % (i, 49999 - i) for i in range(50000)]
open(d + "/adv-anchors.yaml", "w").write("\n".join(lines) + "\n")
PY
printf '\n%-18s %10s %10s %s\n' adversarial size time result
for f in "$tmp"/adv-keys.json "$tmp"/adv-dupnames.json "$tmp"/adv-anchors.yaml; do
    t0=$(date +%s%N)
    "$STEPPY" validate -q "$f" >/dev/null 2>"$tmp/err" && r=valid || r="exit $?, $(tail -n 1 "$tmp/err")"
    t1=$(date +%s%N)
    awk -v n="$(basename "$f")" -v s="$(stat -c %s "$f")" -v t="$(( (t1 - t0) / 1000 ))" -v r="$r" \
        'BEGIN { printf "%-18s %8.1fKB %8.1fms %s\n", n, s / 1024, t / 1000, r }'
done
